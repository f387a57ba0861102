import type { FileHandle } from 'node:fs/promises';
import { addAbortSignal, Readable } from 'node:stream';

import { DigestMismatchError, type PushError } from '@rxpush/core';

import { Crc64 } from './crc64.js';
import type { TarSplitEntry } from './entries.js';

/** Opens the content of a file a tar-split names, wherever the layer's files are. */
export interface TarSplitFiles {
  /** Opens the file named `name` (bytes of the tar header's name) for reading; `path` names it in messages. */
  open(name: Buffer): Promise<{ readonly handle: FileHandle; readonly path: string }>;
}

/** Options of {@link assembleTarSplit}. */
export interface AssembleTarSplitOptions {
  /** The layer the tar is of, for messages. */
  readonly origin: string;
  readonly signal?: AbortSignal;
}

const ONE_MIB = 1024 * 1024;
// Headers and small files are gathered into chunks of about this size: one 512-byte write per header
// would cost more in stream overhead downstream (hashing, gzip) than the bytes themselves.
const BATCH_BYTES = 256 * 1024;

/**
 * Rebuilds a layer's exact tar stream from its tar-split entries and its files on disk, as Docker does
 * for `docker save` and `docker push`: raw segments as recorded, then each file's content read from
 * `files`, in order. Streams: one file is open at a time and at most about 1 MiB is in memory.
 *
 * Each file must have the size the entry records and, as it is read, the CRC-64 tar-split recorded;
 * otherwise the stream fails with a `PushError` of code DIGEST_MISMATCH naming the file and the layer.
 * Errors of `entries` and `files` fail the stream as they are. The caller (the uploader) still checks
 * the sha256 of the whole stream against the diff ID.
 *
 * @example assembleTarSplit(readTarSplitEntries(tarSplitPath), layerFiles, { origin }).pipe(hash)
 */
export function assembleTarSplit(entries: AsyncIterable<TarSplitEntry>, files: TarSplitFiles, options: AssembleTarSplitOptions): Readable {
  const stream = Readable.from(chunks(entries, files, options.origin), { objectMode: false, highWaterMark: ONE_MIB });
  return options.signal !== undefined ? addAbortSignal(options.signal, stream) : stream;
}

async function* chunks(entries: AsyncIterable<TarSplitEntry>, files: TarSplitFiles, origin: string): AsyncGenerator<Buffer> {
  let batch: Buffer[] = [];
  let batched = 0;
  const take = (): Buffer => {
    const out = batch.length === 1 ? batch[0]! : Buffer.concat(batch, batched);
    batch = [];
    batched = 0;
    return out;
  };

  for await (const entry of entries) {
    if (entry.kind === 'segment') {
      batch.push(entry.bytes);
      batched += entry.bytes.length;
    } else if (entry.size > 0) {
      // Entries without content (directories, links, devices, whiteouts) are their header only.
      const { handle, path } = await files.open(entry.name);
      try {
        const { size } = await handle.stat();
        if (size !== entry.size) throw changed(path, origin, `is ${size} bytes, but the layer recorded ${entry.size}`);
        const crc = new Crc64();
        for (let left = entry.size; left > 0; ) {
          const buffer = Buffer.allocUnsafe(Math.min(left, ONE_MIB));
          const { bytesRead } = await handle.read(buffer, 0, buffer.length, null);
          if (bytesRead === 0) throw changed(path, origin, `ended after ${entry.size - left} of its ${entry.size} bytes`);
          const piece = buffer.subarray(0, bytesRead);
          crc.update(piece);
          left -= bytesRead;
          if (batched + bytesRead > ONE_MIB) yield take();
          batch.push(piece);
          batched += bytesRead;
          if (batched >= BATCH_BYTES) yield take();
        }
        const actual = crc.digest();
        if (entry.crc64 !== undefined && !actual.equals(entry.crc64)) {
          throw new DigestMismatchError(`crc64:${entry.crc64.toString('hex')}`, `crc64:${actual.toString('hex')}`, `${path} (a file of layer ${origin})`);
        }
      } finally {
        await handle.close();
      }
    }
    if (batched >= BATCH_BYTES) yield take();
  }
  if (batched > 0) yield take();
}

/** A file whose size no longer matches: the rebuilt tar cannot hash to the diff ID, so it is a digest mismatch too. */
function changed(path: string, origin: string, what: string): PushError {
  return new DigestMismatchError('the size tar-split recorded', what, origin, {
    message: `${path} (a file of layer ${origin}) ${what}: the layer's files changed after Docker stored it; pull or load the image into Docker again`,
  });
}
