import { constants, createReadStream } from 'node:fs';
import { open, type FileHandle } from 'node:fs/promises';
import { Readable } from 'node:stream';

import type { BlobSource, Descriptor, Digest, OpenOptions } from '@rxpush/core';
import { BlobMissingError, InvalidSourceError } from '@rxpush/core';

import { READ_THEN_CHECK, isNotFound } from '../shared/files.js';
import { checkSize } from './layout-files.js';

// Big reads: layers stream straight to the network, and 1 MiB chunks keep syscalls few.
const READ_CHUNK = 1024 * 1024;

/**
 * A stored blob backed by a file already checked by findBlob. `open()` and `openFile()` check the file again
 * (it may have changed since it was read: no link, same size) and read it from the opened handle, so what
 * was checked is what is read.
 */
export function fileBlobSource(descriptor: Descriptor, role: 'config' | 'layer', path: string, diffId?: Digest): BlobSource {
  const openFile = (options?: OpenOptions): Promise<FileHandle> => openChecked(path, descriptor.digest, descriptor.size, role, options);
  const open = async (options?: OpenOptions): Promise<Readable> => {
    const handle = await openFile(options);
    const size = descriptor.size;
    if (size === 0) {
      await handle.close();
      return Readable.from([]);
    }
    // The end bounds each read to what is left: without it, every read asks for a whole READ_CHUNK (a blob of
    // 64 KiB cost 1 MiB for its bytes and another 1 MiB for the empty read at its end: 300 small blobs made
    // ~600 MB of garbage for V8 to collect).
    return createReadStream(path, {
      fd: handle,
      start: 0,
      end: size - 1,
      highWaterMark: READ_CHUNK,
      ...(options?.signal !== undefined && { signal: options.signal }),
    });
  };
  return { ...storedBlobSource(descriptor, role, path, open, diffId), openFile };
}

/** A blob pushed exactly as a layout's descriptor describes it, its bytes read by `open`. */
export function storedBlobSource(
  descriptor: Descriptor,
  role: 'config' | 'layer',
  origin: string,
  open: (options?: OpenOptions) => Promise<Readable>,
  diffId?: Digest,
): BlobSource {
  const { mediaType, digest, size, urls, annotations } = descriptor;
  return {
    key: digest,
    role,
    mediaType,
    digest,
    size,
    form: 'stored',
    origin,
    ...(diffId !== undefined && { diffId }),
    ...(urls !== undefined && { urls }),
    ...(annotations !== undefined && { annotations }),
    open,
  };
}

async function openChecked(path: string, digest: Digest, size: number, role: string, options?: OpenOptions): Promise<FileHandle> {
  options?.signal?.throwIfAborted();
  const handle = await open(path, READ_THEN_CHECK | constants.O_NOFOLLOW).catch((err: unknown) => {
    if (isNotFound(err)) throw new BlobMissingError(digest, path, `it was removed after the image was read; re-export the image`);
    if ((err as { code?: unknown }).code === 'ELOOP') {
      throw new InvalidSourceError(path, `${path} (${role} ${digest}) became a symbolic link after the image was read; replace it with the blob itself`);
    }
    throw err;
  });
  try {
    const stats = await handle.stat();
    if (!stats.isFile()) throw new InvalidSourceError(path, `${path} (${role} ${digest}) is not a regular file; re-export the image`);
    checkSize(path, stats.size, size, `${role} ${digest}`);
  } catch (err) {
    await handle.close();
    throw err;
  }
  return handle;
}
