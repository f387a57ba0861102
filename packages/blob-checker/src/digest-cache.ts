import { randomBytes } from 'node:crypto';
import { mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { join } from 'node:path';

import { isDigest, splitDigest, type Digest } from '@rxpush/core';

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
}

// Enough to find a mount source and the few compressions in use; old entries fall off the end.
const MAX_LOCATIONS = 16;
const MAX_FORMS = 4;
const MAX_ENTRY_BYTES = 64 * 1024;

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
 * One small JSON file per digest under `dir/digests/`, each replaced whole by rename, so concurrent runs
 * never see half a file (the last writer of an entry wins; a lost update only costs a re-check). A file
 * that does not parse is treated as absent and overwritten. It is a cache: every failure to read or write
 * it is ignored by its users, never fatal to a push.
 *
 * @example
 * const cache = new DigestCache(defaultCacheDir());
 * await cache.addLocation(digest, { registry: 'localhost:5000', repository: 'app' });
 */
export class DigestCache {
  readonly dir: string;

  constructor(dir: string) {
    this.dir = dir;
  }

  /** The compressed forms a diff ID is known as, newest first. */
  async compressedForms(diffId: Digest): Promise<CompressedForm[]> {
    return (await this.#read(diffId)).compressed ?? [];
  }

  /** The registries and repositories known to hold a blob, newest first. */
  async locations(digest: Digest): Promise<BlobLocation[]> {
    return (await this.#read(digest)).locations ?? [];
  }

  async addCompressedForm(diffId: Digest, form: CompressedForm): Promise<void> {
    await this.#update(diffId, (entry) => {
      const others = (entry.compressed ?? []).filter((known) => known.digest !== form.digest);
      entry.compressed = [form, ...others].slice(0, MAX_FORMS);
    });
  }

  async addLocation(digest: Digest, location: BlobLocation): Promise<void> {
    await this.#update(digest, (entry) => {
      const others = (entry.locations ?? []).filter((known) => known.registry !== location.registry || known.repository !== location.repository);
      entry.locations = [location, ...others].slice(0, MAX_LOCATIONS);
    });
  }

  #path(digest: Digest): string {
    const { algorithm, hex } = splitDigest(digest);
    return join(this.dir, 'digests', `${algorithm}-${hex}.json`);
  }

  async #read(digest: Digest): Promise<Entry> {
    let text: string;
    try {
      text = await readFile(this.#path(digest), 'utf8');
    } catch {
      return {};
    }
    return text.length > MAX_ENTRY_BYTES ? {} : parseEntry(text);
  }

  async #update(digest: Digest, change: (entry: Entry) => void): Promise<void> {
    const entry = await this.#read(digest);
    change(entry);
    const path = this.#path(digest);
    await mkdir(join(this.dir, 'digests'), { recursive: true });
    const temporary = `${path}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`;
    try {
      await writeFile(temporary, JSON.stringify(entry));
      await rename(temporary, path);
    } catch (error) {
      await rm(temporary, { force: true });
      throw error;
    }
  }
}

/** Keeps only well-formed parts of an entry: the file may be corrupt or written by another version. */
function parseEntry(text: string): Entry {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch {
    return {};
  }
  if (typeof raw !== 'object' || raw === null) return {};
  const { compressed, locations } = raw as Record<string, unknown>;
  const entry: Entry = {};
  if (Array.isArray(compressed)) {
    entry.compressed = compressed.filter(
      (form): form is CompressedForm =>
        typeof form === 'object' && form !== null && isDigest(form.digest) && Number.isSafeInteger(form.size) && typeof form.mediaType === 'string',
    );
  }
  if (Array.isArray(locations)) {
    entry.locations = locations.filter(
      (place): place is BlobLocation => typeof place === 'object' && place !== null && typeof place.registry === 'string' && typeof place.repository === 'string',
    );
  }
  return entry;
}
