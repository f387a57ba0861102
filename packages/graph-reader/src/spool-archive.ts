import { mkdtemp, open, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';

import { fileReason, InvalidSourceError, isPushError, silentLogger, type Logger } from '@rxpush/core';

import { READ_THEN_CHECK, isGzip } from './shared/files.js';
import type { ArchiveKind } from './spool-copy.js';

/** A source as {@link spoolArchive} leaves it: `source` to read, and `release()` once the push is done with it. */
export interface SpooledSource {
  /** The source to give readImages: the one asked for, or the same with the plain copy's path. */
  readonly source: string;
  /** Removes the copy, if one was made; safe to call more than once. */
  release(): Promise<void>;
  /**
   * `error` as the user should read it: where a failure of reading the copy (its contents are no docker save
   * archive, a layer is not its diff ID) names the copy, it names the archive they gave instead, which is what
   * they can look at and fix. Anything else is given back as it is.
   */
  named<E>(error: E): E;
}

export interface SpoolArchiveOptions {
  /** Where the copy's temporary directory goes (default the OS's, `TMPDIR`). */
  readonly tmpDir?: string;
  /** Aborting it stops the copy and removes what was written. */
  readonly signal?: AbortSignal;
  readonly logger?: Logger;
}

const ARCHIVE_TRANSPORTS = ['docker-archive:', 'oci-archive:'];

/**
 * An archive source (`docker-archive:`, `oci-archive:`) that cannot be read in place, made readable, as skopeo does:
 * rxpush reads an archive at random (each layer from its offset, again on a retry), which neither a pipe
 * (`docker-archive:/dev/stdin`, `<(docker save app)`) nor a gzip-compressed file (`docker save app | gzip`) allows.
 * Such an archive is copied, gunzipped when it is gzip, into a plain tar in a temporary directory of its own (0700);
 * every other source is given back as it is, with nothing to release. The copy is streamed, never held in memory,
 * and takes the archive's unpacked size on disk until `release()`.
 *
 * Fails with an InvalidSourceError naming the archive when its gzip stream is damaged or the copy cannot be
 * written (no space left: `TMPDIR` says where it goes); a source that does not exist or is a plain tar is left for
 * readImages to judge. Nothing is left on disk after a failure or an abort.
 *
 * @example
 * const spooled = await spoolArchive('docker-archive:/dev/stdin:app:1');
 * try { await lastValueFrom(readImages(spooled.source).pipe(...)); }
 * catch (error) { throw spooled.named(error); }
 * finally { await spooled.release(); }
 */
export async function spoolArchive(source: string, options: SpoolArchiveOptions = {}): Promise<SpooledSource> {
  const transport = ARCHIVE_TRANSPORTS.find((prefix) => source.startsWith(prefix));
  const unchanged: SpooledSource = { source, release: async () => {}, named: (error) => error };
  if (transport === undefined) return unchanged;
  // PATH ends at the first colon, as the archive references read it (so PATH cannot hold one).
  const text = source.slice(transport.length);
  const colon = text.indexOf(':');
  const path = colon < 0 ? text : text.slice(0, colon);
  const rest = colon < 0 ? '' : text.slice(colon);
  const kind = await needsCopy(path);
  if (kind === undefined) return unchanged;

  const logger = (options.logger ?? silentLogger).child({ pkg: 'graph-reader' });
  const base = options.tmpDir ?? tmpdir();
  const dir = await mkdtemp(join(base, 'rxpush-archive-')).catch((error: unknown) => {
    throw new InvalidSourceError(path, `cannot make a directory in ${base} to copy ${path} into (${fileReason(error, 'directory')}); set TMPDIR to a directory rxpush may write`, { cause: error });
  });
  const release = (): Promise<void> => rm(dir, { recursive: true, force: true });
  const copy = join(dir, copyName(path));
  if (copy.includes(':')) {
    await release();
    throw new InvalidSourceError(path, `cannot copy ${path} into ${dir}: the directory's path has a ":", which an archive source cannot name; set TMPDIR to another directory`);
  }
  try {
    // Loaded only for a copy: every other push (the usual one) needs neither zlib nor stream pipelines here.
    const { copyArchive } = await import('./spool-copy.js');
    const gzip = await copyArchive(path, copy, kind, options.signal);
    logger.info({ archive: path, copy }, `${path} is ${describe(kind, gzip)}: copied into ${copy} to read it at random`);
  } catch (error) {
    await release();
    if (options.signal?.aborted === true || isPushError(error)) throw error;
    const reason = (error as { code?: unknown }).code === 'ENOSPC' ? 'no space left on the device' : (error as Error).message;
    throw new InvalidSourceError(path, `cannot copy ${path} into ${dir} to read it (${reason}); set TMPDIR to a directory with room for the unpacked archive`, { cause: error });
  }
  return { source: `${transport}${copy}${rest}`, release, named: (error) => renamed(error, copy, path) };
}

/** `error`, its message and text fields (a PushError's `path`, `origin`) saying `to` where they said `from`. */
function renamed<E>(error: E, from: string, to: string): E {
  if (!(error instanceof Error)) return error;
  // Changed in place: the error keeps its class, code and stack, which a caller may check.
  const fields = error as unknown as Record<string, unknown>;
  for (const key of ['message', ...Object.keys(error)]) {
    const value = fields[key];
    if (typeof value === 'string' && value.includes(from)) fields[key] = value.split(from).join(to);
  }
  return error;
}

/** Why the file at `path` must be copied to be read (a pipe of either kind, or gzip), or undefined for neither. */
async function needsCopy(path: string): Promise<ArchiveKind | undefined> {
  const stats = await stat(path).catch(() => undefined);
  if (stats === undefined || stats.isDirectory()) return undefined;
  if (stats.isFIFO()) return 'fifo';
  if (stats.isSocket()) return 'socket';
  // A device (a terminal as /dev/stdin, /dev/zero) is left for readImages to refuse: it may never end.
  if (!stats.isFile()) return undefined;
  const handle = await open(path, READ_THEN_CHECK).catch(() => undefined);
  if (handle === undefined) return undefined;
  try {
    const head = Buffer.alloc(2);
    const { bytesRead } = await handle.read(head, 0, head.length, 0);
    return isGzip(head.subarray(0, bytesRead)) ? 'gzip' : undefined;
  } finally {
    await handle.close();
  }
}

function describe(kind: ArchiveKind, gzip: boolean): string {
  if (kind === 'gzip') return 'gzip-compressed';
  return gzip ? 'a pipe of a gzip-compressed archive' : 'a pipe';
}

/** The copy's file name: the archive's own, without its .gz (a pipe's name, such as 63 of /dev/fd/63, says nothing). */
function copyName(path: string): string {
  const name = basename(path).replace(/\.t?gz$/i, (ext) => (ext.toLowerCase() === '.tgz' ? '.tar' : ''));
  return /\.tar$/i.test(name) ? name : 'archive.tar';
}
