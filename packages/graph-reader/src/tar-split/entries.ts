import { constants, createReadStream } from 'node:fs';
import { open } from 'node:fs/promises';
import { createGunzip } from 'node:zlib';

import { InvalidSourceError, SourceError } from '@rxpush/core';

import { READ_THEN_CHECK, isCode } from '../shared/files.js';
import { parseJsonObject } from '../shared/json.js';

/**
 * One entry of a tar-split file (github.com/vbatts/tar-split, `tar/storage`): either raw bytes of the
 * tar stream (headers, padding, the end-of-archive blocks), or a file whose content is to be read
 * from disk. Concatenated in order, they are the original tar byte for byte.
 */
export type TarSplitEntry =
  | { readonly kind: 'segment'; readonly position: number; readonly bytes: Buffer }
  | {
      readonly kind: 'file';
      readonly position: number;
      /** The name as the tar header gives it, as bytes (tar-split keeps names that are not UTF-8 in `name_raw`). */
      readonly name: Buffer;
      readonly size: number;
      /** CRC-64/ISO of the content (8 bytes); absent for entries without content. */
      readonly crc64: Buffer | undefined;
    };

/** Limits on what a tar-split file may inflate to: it is metadata, and a corrupt or crafted one must not exhaust memory or time. */
export interface TarSplitLimits {
  /** The most bytes the whole file may decompress to (default 1 GiB: headers of about a million files). */
  readonly maxBytes?: number;
  /** The longest one entry (line) may be (default 16 MiB: a PAX header with large extended attributes). */
  readonly maxEntryBytes?: number;
}

// tar-split's storage.Type values.
const FILE_TYPE = 1;
const SEGMENT_TYPE = 2;
const ONE_MIB = 1024 * 1024;
const DEFAULT_MAX_BYTES = 1024 * ONE_MIB;
const DEFAULT_MAX_ENTRY_BYTES = 16 * ONE_MIB;
const NEWLINE = 0x0a;

/**
 * Reads a `tar-split.json.gz` as a stream of entries: gunzipped in 1 MiB pieces and split into
 * newline-delimited JSON entries, each checked (type, position in sequence, field types) before it is
 * yielded. Only one entry is held at a time.
 *
 * Throws a `SourceError` (INVALID_SOURCE) naming `path` when the file is a symbolic link, is not gzip, is
 * truncated, holds an entry that is not tar-split's, or exceeds `limits`; and the file system's error when it
 * cannot be opened (for the caller to explain).
 *
 * @example for await (const entry of readTarSplitEntries('/var/lib/docker/image/vfs/layerdb/sha256/…/tar-split.json.gz')) console.log(entry.kind)
 */
export async function* readTarSplitEntries(path: string, limits: TarSplitLimits = {}, signal?: AbortSignal): AsyncGenerator<TarSplitEntry> {
  const maxBytes = limits.maxBytes ?? DEFAULT_MAX_BYTES;
  const maxEntryBytes = limits.maxEntryBytes ?? DEFAULT_MAX_ENTRY_BYTES;
  // O_NOFOLLOW: metadata is read from the layer's own directory, never through a link.
  const handle = await open(path, READ_THEN_CHECK | constants.O_NOFOLLOW).catch((err: unknown) => {
    if (isCode(err, 'ELOOP')) throw corrupt(path, 'is a symbolic link; Docker writes a regular file there', err);
    throw err;
  });
  const stats = await handle.stat().catch(async (err: unknown) => {
    await handle.close();
    throw err;
  });
  if (!stats.isFile()) {
    await handle.close();
    throw corrupt(path, 'is not a regular file');
  }
  const input = createReadStream(path, { fd: handle, ...(signal !== undefined && { signal }) });
  const gunzip = createGunzip({ chunkSize: ONE_MIB });
  input.on('error', (err) => gunzip.destroy(err));
  input.pipe(gunzip);

  let total = 0;
  let position = 0;
  let pending: Buffer[] = [];
  let pendingBytes = 0;
  try {
    try {
      for await (const chunk of gunzip as AsyncIterable<Buffer>) {
        total += chunk.length;
        if (total > maxBytes) throw corrupt(path, `decompresses to more than ${maxBytes} bytes, more than layer metadata may have`);
        let start = 0;
        for (let end = chunk.indexOf(NEWLINE); end >= 0; end = chunk.indexOf(NEWLINE, start)) {
          const line = pendingBytes === 0 ? chunk.subarray(start, end) : Buffer.concat([...pending, chunk.subarray(start, end)]);
          pending = [];
          pendingBytes = 0;
          start = end + 1;
          if (line.length > maxEntryBytes) throw corrupt(path, `has an entry of ${line.length} bytes, more than the ${maxEntryBytes} allowed`);
          if (line.length > 0) yield parseEntry(line, position++, path);
        }
        if (start < chunk.length) {
          const rest = chunk.subarray(start);
          pendingBytes += rest.length;
          if (pendingBytes > maxEntryBytes) throw corrupt(path, `has an entry of more than the ${maxEntryBytes} bytes allowed`);
          pending.push(rest);
        }
      }
    } catch (err) {
      if (err instanceof SourceError || (err as Error).name === 'AbortError') throw err;
      // zlib's own words ("unexpected end of file", "incorrect header check") say what is wrong.
      throw corrupt(path, `cannot be decompressed (${(err as Error).message})`, err);
    }
    if (pendingBytes > 0) yield parseEntry(Buffer.concat(pending), position++, path);
    if (position === 0) throw corrupt(path, 'holds no entries');
  } finally {
    input.destroy();
    gunzip.destroy();
  }
}

function parseEntry(line: Buffer, expectedPosition: number, path: string): TarSplitEntry {
  const entry = parseJsonObject(line, (problem) => corrupt(path, `has entry ${expectedPosition} that ${problem}`));
  // Entries are written numbered from 0; a gap or repeat means lines were lost, spliced or reordered.
  if (entry.position !== expectedPosition) {
    throw corrupt(path, `has entry ${expectedPosition} at position ${JSON.stringify(entry.position) ?? 'missing'}`);
  }
  const payload = base64Field(entry.payload, path, expectedPosition, 'payload');
  if (entry.type === SEGMENT_TYPE) return { kind: 'segment', position: expectedPosition, bytes: payload ?? Buffer.alloc(0) };
  if (entry.type !== FILE_TYPE) throw corrupt(path, `has entry ${expectedPosition} of unknown type ${JSON.stringify(entry.type) ?? 'missing'}`);

  const size = entry.size ?? 0;
  if (typeof size !== 'number' || !Number.isSafeInteger(size) || size < 0) {
    throw corrupt(path, `has file entry ${expectedPosition} whose size ${JSON.stringify(size)} is not a byte count`);
  }
  const raw = base64Field(entry.name_raw, path, expectedPosition, 'name_raw');
  if (entry.name !== undefined && typeof entry.name !== 'string') throw corrupt(path, `has file entry ${expectedPosition} whose name is not a string`);
  const name = raw !== undefined && raw.length > 0 ? raw : Buffer.from(entry.name ?? '', 'utf8');
  if (size > 0 && (payload === undefined || payload.length !== 8)) {
    throw corrupt(path, `has file entry ${expectedPosition} (${name.toString('utf8')}) without its 8-byte CRC-64`);
  }
  return { kind: 'file', position: expectedPosition, name, size, crc64: payload };
}

function base64Field(value: unknown, path: string, position: number, field: string): Buffer | undefined {
  if (value === undefined || value === null) return undefined;
  if (typeof value !== 'string' || !/^[A-Za-z0-9+/]*={0,2}$/.test(value)) throw corrupt(path, `has entry ${position} whose ${field} is not base64`);
  return Buffer.from(value, 'base64');
}

function corrupt(path: string, problem: string, cause?: unknown): SourceError {
  return new InvalidSourceError(path,
    `${path} ${problem}: the layer's tar-split metadata is damaged, so its exact tar cannot be rebuilt; pull or load the image into Docker again`,
    cause !== undefined ? { cause } : undefined,
  );
}
