import { randomBytes } from 'node:crypto';
import { constants, type Stats } from 'node:fs';
import { open, rename, rm, stat, writeFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { join } from 'node:path';

import { fileReason, isDigest, makeDirectory, silentLogger, type Digest, type Logger } from '@rxpush/core';

/** A compressed form of a layer: what one diff ID was pushed as. */
export interface CompressedForm {
  readonly digest: Digest;
  readonly size: number;
  readonly mediaType: string;
}

/** A place a blob is known to be. */
export interface BlobLocation {
  readonly registry: string;
  readonly repository: string;
}

interface Entry {
  compressed?: CompressedForm[];
  locations?: BlobLocation[];
  /** When the entry was last written, in seconds since the epoch: the oldest entries are dropped first. */
  used?: number;
}

/** How the cache reads and writes its one file; tests stand in a slow or failing disk. */
export interface CacheFiles {
  /** The file's text, or undefined when there is none to read (absent, not a regular file, too large). */
  read(path: string, maxBytes: number): Promise<string | undefined>;
  /** Replaces the file whole (creating its directory). */
  write(path: string, text: string): Promise<void>;
}

/** Options of {@link DigestCache}. */
export interface DigestCacheOptions {
  /** Told once, at warn, when the cache is given up on. */
  readonly logger?: Logger;
  /** How long a read or a write may take before the cache gives up on itself for this push (default 1000 ms). */
  readonly timeoutMs?: number;
  /** The file access (default: the disk, regular files only). */
  readonly files?: CacheFiles;
}

// Enough to find a mount source and the few compressions in use; old entries fall off the end.
const MAX_LOCATIONS = 16;
const MAX_FORMS = 4;
// A few thousand blobs of recent pushes: ~1 ms to parse. A larger file is not read, and is rewritten.
const MAX_ENTRIES = 4000;
const MAX_FILE_BYTES = 4 * 1024 * 1024;
const FILE_NAME = 'digests.json';
/** An entry's last use is written again only when it is older than this (seconds): a push that learnt nothing new writes nothing. */
const USED_REFRESH_S = 24 * 60 * 60;
const FORMAT = 2;

/**
 * The default cache directory: `$RXPUSH_CACHE_DIR`, else `$XDG_CACHE_HOME/rxpush`, else `~/.cache/rxpush`.
 */
export function defaultCacheDir(env: NodeJS.ProcessEnv = process.env): string {
  return env['RXPUSH_CACHE_DIR'] ?? join(env['XDG_CACHE_HOME'] ?? join(homedir(), '.cache'), 'rxpush');
}

/**
 * A persistent digest cache: which compressed blobs a layer's diff ID became, and which registries and
 * repositories hold a blob, so a later push can HEAD without recompressing and mount across repositories.
 *
 * One JSON file, `dir/digests.json`, read once, on the first lookup (a push that asks nothing reads
 * nothing), and written once, by {@link flush}, with everything the push learnt: re-read, merged and
 * replaced whole by rename, so concurrent runs never see half a file and rarely lose each other's
 * entries (a lost entry only costs a re-check). Only a regular file of at most 4 MiB is read (a FIFO, a
 * device or a huge file, or a symlink to one, is passed over); a read or write that takes longer than a
 * second, or fails, makes the cache give up on itself for this instance: one warning, then it answers
 * nothing and writes nothing. It is a cache: it never fails or stalls a push.
 *
 * @example
 * const cache = new DigestCache(defaultCacheDir(), { logger });
 * cache.addLocation(digest, { registry: 'localhost:5000', repository: 'app' });
 * await cache.flush();
 */
export class DigestCache {
  readonly dir: string;
  readonly #logger: Logger;
  readonly #timeoutMs: number;
  readonly #files: CacheFiles;
  #loaded: Promise<Map<Digest, Entry>> | undefined;
  /** What this instance learnt since the last flush, to merge into the file as it is then. */
  #pending = new Map<Digest, Entry>();
  /** The file's entries as this instance read them, before its own changes. */
  #asRead: Map<Digest, Entry> | undefined;
  #gaveUp = false;

  constructor(dir: string, options: DigestCacheOptions = {}) {
    this.dir = dir;
    this.#logger = (options.logger ?? silentLogger).child({ pkg: 'blob-checker' });
    this.#timeoutMs = options.timeoutMs ?? 1000;
    this.#files = options.files ?? diskFiles;
  }

  get #path(): string {
    return join(this.dir, FILE_NAME);
  }

  /** The compressed forms a diff ID is known as, newest first. */
  async compressedForms(diffId: Digest): Promise<CompressedForm[]> {
    return [...((await this.#entry(diffId))?.compressed ?? [])];
  }

  /** The registries and repositories known to hold a blob, newest first. */
  async locations(digest: Digest): Promise<BlobLocation[]> {
    return [...((await this.#entry(digest))?.locations ?? [])];
  }

  /** Records that a diff ID was pushed as `form`; written by the next {@link flush}. */
  addCompressedForm(diffId: Digest, form: CompressedForm): void {
    this.#change(diffId, (entry) => {
      const others = (entry.compressed ?? []).filter((known) => known.digest !== form.digest);
      entry.compressed = [form, ...others].slice(0, MAX_FORMS);
    });
  }

  /** Records that `location` holds a blob; written by the next {@link flush}. */
  addLocation(digest: Digest, location: BlobLocation): void {
    this.#change(digest, (entry) => {
      const others = (entry.locations ?? []).filter((known) => known.registry !== location.registry || known.repository !== location.repository);
      entry.locations = [location, ...others].slice(0, MAX_LOCATIONS);
    });
  }

  /** Writes what was recorded since the last flush, merged into the file as it is now. Never rejects. */
  async flush(): Promise<void> {
    if (this.#pending.size === 0 || this.#gaveUp) return;
    const pending = this.#pending;
    this.#pending = new Map();
    // A second push of the same image learns what the file says already: no write (it cost a mkdir, a
    // write and a rename of up to 4 MiB on every push).
    const read = this.#asRead;
    if (read !== undefined && [...pending].every(([digest, change]) => alreadyKnown(read.get(digest), change))) return;
    await this.#bounded('write', async () => {
      const entries = parseFile(await this.#files.read(this.#path, MAX_FILE_BYTES));
      for (const [digest, change] of pending) entries.set(digest, merge(entries.get(digest), change));
      await this.#files.write(this.#path, serialize(entries));
    });
  }

  #change(digest: Digest, change: (entry: Entry) => void): void {
    const used = Math.floor(Date.now() / 1000);
    // The pending change and, once loaded, the in-memory copy: later lookups of this push see it.
    const pending = this.#pending.get(digest) ?? {};
    change(pending);
    pending.used = used;
    this.#pending.set(digest, pending);
    void this.#loaded?.then((entries) => void entries.set(digest, merge(entries.get(digest), pending)));
  }

  async #entry(digest: Digest): Promise<Entry | undefined> {
    this.#loaded ??= this.#load();
    return (await this.#loaded).get(digest);
  }

  async #load(): Promise<Map<Digest, Entry>> {
    let entries = new Map<Digest, Entry>();
    await this.#bounded('read', async () => {
      entries = parseFile(await this.#files.read(this.#path, MAX_FILE_BYTES));
      this.#asRead = new Map(entries);
    });
    for (const [digest, change] of this.#pending) entries.set(digest, merge(entries.get(digest), change));
    return entries;
  }

  /** Runs one read or write, giving up (once, with a warning) when it fails or takes too long. */
  async #bounded(what: 'read' | 'write', work: () => Promise<void>): Promise<void> {
    if (this.#gaveUp) return;
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<'timeout'>((resolve) => {
      timer = setTimeout(() => resolve('timeout'), this.#timeoutMs);
    });
    try {
      const outcome = await Promise.race([work().then(() => 'done' as const), timeout]);
      if (outcome === 'timeout') this.#giveUp(what, new Error(`the ${what} took longer than ${this.#timeoutMs} ms`));
    } catch (error) {
      this.#giveUp(what, error);
    } finally {
      clearTimeout(timer);
    }
  }

  #giveUp(what: string, error: unknown): void {
    if (this.#gaveUp) return;
    this.#gaveUp = true;
    this.#pending.clear();
    const reason = cacheFailure(error);
    this.#logger.warn({ dir: this.dir, reason }, `digest cache ${what} failed (${reason}); going on without it`);
  }
}

/** A failure of the cache's disk in words, with the path it was at (`/x/cache: the disk is full`), not Node's errno text. */
function cacheFailure(error: unknown): string {
  const { code, path } = error as NodeJS.ErrnoException;
  if (typeof code !== 'string') return error instanceof Error ? error.message : String(error);
  // mkdir of the cache directory where a file (or something else) has its name.
  const reason = code === 'EEXIST' ? 'it is there, but not as a directory' : fileReason(error, 'new file');
  return typeof path === 'string' ? `${path}: ${reason}` : reason;
}

/**
 * The disk: reads only a regular file of at most `maxBytes` (a FIFO, device, directory or anything
 * larger, also behind a symlink, reads as absent), opening it non-blocking so that a FIFO swapped in
 * between the check and the open cannot stall; writes a temporary file and renames it over the old one.
 */
export const diskFiles: CacheFiles = {
  async read(path, maxBytes) {
    let info: Stats;
    try {
      info = await stat(path);
    } catch {
      return undefined;
    }
    if (!info.isFile() || info.size > maxBytes) return undefined;
    const handle = await open(path, constants.O_RDONLY | constants.O_NONBLOCK);
    try {
      const opened = await handle.stat();
      if (!opened.isFile() || opened.size > maxBytes) return undefined;
      // One byte more than allowed tells a file that grew since from one that fits.
      const buffer = Buffer.alloc(Math.min(maxBytes + 1, opened.size + 1));
      let length = 0;
      while (length < buffer.length) {
        const { bytesRead } = await handle.read(buffer, length, buffer.length - length, length);
        if (bytesRead === 0) break;
        length += bytesRead;
      }
      return length > maxBytes ? undefined : buffer.toString('utf8', 0, length);
    } finally {
      await handle.close();
    }
  },
  async write(path, text) {
    const dir = join(path, '..');
    await makeDirectory(dir);
    const temporary = `${path}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`;
    try {
      await writeFile(temporary, text, { flag: 'wx' });
      await rename(temporary, path);
    } catch (error) {
      await rm(temporary, { force: true });
      throw error;
    }
  },
};

/** The newest `MAX_ENTRIES` entries, within the size the reader accepts. */
function serialize(entries: Map<Digest, Entry>): string {
  const newest = [...entries].sort(([, a], [, b]) => (b.used ?? 0) - (a.used ?? 0)).slice(0, MAX_ENTRIES);
  for (;;) {
    const text = JSON.stringify({ format: FORMAT, entries: Object.fromEntries(newest) });
    if (text.length <= MAX_FILE_BYTES || newest.length === 0) return text;
    newest.splice(Math.floor(newest.length * 0.75));
  }
}

/** Whether the file already says all that a change says, with a last use recent enough to keep. */
function alreadyKnown(entry: Entry | undefined, change: Entry): boolean {
  if (entry === undefined) return false;
  const forms = new Set((entry.compressed ?? []).map((form) => form.digest));
  const places = entry.locations ?? [];
  return (
    (change.compressed ?? []).every((form) => forms.has(form.digest)) &&
    (change.locations ?? []).every((place) => places.some((other) => other.registry === place.registry && other.repository === place.repository)) &&
    (change.used ?? 0) - (entry.used ?? 0) < USED_REFRESH_S
  );
}

function merge(into: Entry | undefined, change: Entry): Entry {
  const compressed = [...(change.compressed ?? []), ...(into?.compressed ?? [])].filter(
    (form, index, all) => all.findIndex((other) => other.digest === form.digest) === index,
  );
  const locations = [...(change.locations ?? []), ...(into?.locations ?? [])].filter(
    (place, index, all) => all.findIndex((other) => other.registry === place.registry && other.repository === place.repository) === index,
  );
  return {
    ...(compressed.length > 0 && { compressed: compressed.slice(0, MAX_FORMS) }),
    ...(locations.length > 0 && { locations: locations.slice(0, MAX_LOCATIONS) }),
    used: Math.max(into?.used ?? 0, change.used ?? 0),
  };
}

/** Keeps only well-formed parts of the file: it may be corrupt or written by another version. */
function parseFile(text: string | undefined): Map<Digest, Entry> {
  const entries = new Map<Digest, Entry>();
  if (text === undefined) return entries;
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch {
    return entries;
  }
  if (typeof raw !== 'object' || raw === null) return entries;
  const { format, entries: stored } = raw as Record<string, unknown>;
  if (format !== FORMAT || typeof stored !== 'object' || stored === null) return entries;
  for (const [digest, value] of Object.entries(stored)) {
    if (!isDigest(digest) || typeof value !== 'object' || value === null) continue;
    entries.set(digest, parseEntry(value as Record<string, unknown>));
  }
  return entries;
}

function parseEntry(raw: Record<string, unknown>): Entry {
  const { compressed, locations, used } = raw;
  const entry: Entry = {};
  if (Array.isArray(compressed)) {
    entry.compressed = compressed
      .filter(
        (form): form is CompressedForm =>
          typeof form === 'object' && form !== null && isDigest(form.digest) && Number.isSafeInteger(form.size) && typeof form.mediaType === 'string',
      )
      .slice(0, MAX_FORMS);
  }
  if (Array.isArray(locations)) {
    entry.locations = locations
      .filter((place): place is BlobLocation => typeof place === 'object' && place !== null && typeof place.registry === 'string' && typeof place.repository === 'string')
      .slice(0, MAX_LOCATIONS);
  }
  if (typeof used === 'number' && Number.isFinite(used)) entry.used = used;
  return entry;
}
