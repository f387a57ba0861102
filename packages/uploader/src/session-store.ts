import { createHash } from 'node:crypto';
import { lstat, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { hostname } from 'node:os';
import { join } from 'node:path';

import { makeDirectory, silentLogger, type Logger } from '@rxpush/core';

/** Which upload a stored session belongs to: the same blob, to the same repository of the same registry. */
export interface SessionKey {
  readonly registry: string;
  readonly repository: string;
  /** The blob's key (its digest, or diff ID for a layer compressed on the way). */
  readonly blob: string;
  /** The source's size, when known: a session for a blob of another size is not resumed. */
  readonly size?: number | undefined;
}

/** What is kept of an upload session between runs. */
export interface StoredSession {
  readonly location: string;
  /** Bytes the registry had confirmed when it was saved (the next run asks the registry again). */
  readonly offset: number;
  /** The chunk size the upload went in, so the next run goes on in the same steps. */
  readonly chunkSize: number;
}

/** Where chunked uploads are kept, so that a push broken off (crash, kill, Ctrl-C) resumes in the next run. */
export interface SessionStore {
  load(key: SessionKey): Promise<StoredSession | undefined>;
  save(key: SessionKey, session: StoredSession): Promise<void>;
  forget(key: SessionKey): Promise<void>;
  /**
   * The upload that saved this session has ended without committing it (it is kept for a later push): from now on
   * `load()` in this process may hand it out. Until then (or `forget()`) it belongs to an upload still running.
   */
  release?(key: SessionKey): void;
}

/**
 * Session files saved by an upload still running in this process: two `push()` calls of one blob to one repository
 * at once (two tags pushed side by side by a library) must not both write into one session, as two processes must
 * not (the pid says that). Kept for the process, since every push makes a store of its own.
 */
const running = new Set<string>();

/** A session file is a few hundred bytes; anything larger (or not a regular file) is not read. */
const MAX_ENTRY_BYTES = 16 * 1024;

/**
 * A {@link SessionStore} of small JSON files in `<dir>/uploads/`, one per upload, readable by the user only
 * (a Location's `_state` is the registry's key to the session). It never fails a push: a file that cannot be
 * read, written or parsed is treated as absent, and logged at debug level.
 *
 * @example const sessions = fileSessionStore(defaultCacheDir())
 */
export function fileSessionStore(dir: string, options: { logger?: Logger } = {}): Required<SessionStore> {
  const logger = (options.logger ?? silentLogger).child({ part: 'session-store' });
  const folder = join(dir, 'uploads');
  const fileOf = (key: SessionKey): string =>
    join(folder, `${createHash('sha256').update(`${key.registry}\0${key.repository}\0${key.blob}`).digest('hex')}.json`);
  // Writes of one upload come one after the other, the last one winning.
  const writing = new Map<string, Promise<void>>();

  return {
    async load(key) {
      const file = fileOf(key);
      if (running.has(file)) {
        logger.debug({ file }, 'upload session belongs to an upload still running in this process; not resumed');
        return undefined;
      }
      try {
        const info = await lstat(file);
        if (!info.isFile() || info.size > MAX_ENTRY_BYTES) return undefined;
        const entry = JSON.parse(await readFile(file, 'utf8')) as Partial<SessionKey & StoredSession & Owner>;
        const valid =
          entry.registry === key.registry &&
          entry.repository === key.repository &&
          entry.blob === key.blob &&
          entry.size === key.size &&
          typeof entry.location === 'string' &&
          Number.isSafeInteger(entry.offset) &&
          Number.isSafeInteger(entry.chunkSize) &&
          (entry.chunkSize ?? 0) > 0;
        if (!valid) return undefined;
        if (ownedByAnotherLivePush(entry)) {
          logger.debug({ file, pid: entry.pid }, 'upload session belongs to a push still running; not resumed');
          return undefined;
        }
        return { location: entry.location!, offset: entry.offset!, chunkSize: entry.chunkSize! };
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== 'ENOENT') logger.debug({ file, err: error }, 'upload session not read');
        return undefined;
      }
    },
    save(key, session) {
      const file = fileOf(key);
      running.add(file);
      const previous = writing.get(file) ?? Promise.resolve();
      const next = previous.then(async () => {
        try {
          await makeDirectory(folder, 0o700);
          const temporary = `${file}.${process.pid}.tmp`;
          const { size, ...rest } = key;
          const owner: Owner = { pid: process.pid, host: hostname() };
          await writeFile(temporary, JSON.stringify({ ...rest, ...(size !== undefined && { size }), ...session, ...owner, savedAt: new Date().toISOString() }), { mode: 0o600 });
          await rename(temporary, file);
        } catch (error) {
          logger.debug({ file, err: error }, 'upload session not saved');
        }
      });
      writing.set(file, next);
      return next;
    },
    release(key) {
      running.delete(fileOf(key));
    },
    async forget(key) {
      const file = fileOf(key);
      running.delete(file);
      await writing.get(file);
      await rm(file, { force: true }).catch((error: unknown) => logger.debug({ file, err: error }, 'upload session not removed'));
    },
  };
}

/** The process that saved a session, so that another push on the machine leaves it alone while it runs. */
interface Owner {
  readonly pid?: number;
  readonly host?: string;
}

/**
 * True when the session was saved by another process on this machine that is still running: a push of the same
 * image to the same repository at the same time (two CI jobs). Its session is live; resuming it would send a second
 * stream into one upload. A session of a process that has ended is resumed, as is one of this process (a push
 * tried again in one library process) and one from another machine sharing the directory, which cannot be asked.
 */
function ownedByAnotherLivePush(owner: Owner): boolean {
  if (owner.host !== hostname() || !Number.isSafeInteger(owner.pid) || owner.pid === process.pid || (owner.pid ?? 0) <= 0) return false;
  try {
    process.kill(owner.pid!, 0);
    return true;
  } catch (error) {
    // EPERM: the process exists, another user's.
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}
