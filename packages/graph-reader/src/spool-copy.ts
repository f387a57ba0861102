import { once } from 'node:events';
import { constants, createReadStream, createWriteStream } from 'node:fs';
import { open } from 'node:fs/promises';
import { Socket } from 'node:net';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createGunzip } from 'node:zlib';

import { InvalidSourceError } from '@rxpush/core';

import { isGzip } from './shared/files.js';

const ONE_MIB = 1024 * 1024;

/** What spoolArchive found at an archive's path: a FIFO (a shell's `|`, `<(…)`), a socket, or a gzip file. */
export type ArchiveKind = 'fifo' | 'socket' | 'gzip';

/**
 * Streams `path` into a new file `copy`, gunzipped when its first bytes are gzip's, and says whether they were.
 * A pipe cannot be looked at twice: its first chunk is looked at and put back, and goes on into the copy.
 */
export async function copyArchive(path: string, copy: string, kind: ArchiveKind, signal: AbortSignal | undefined): Promise<boolean> {
  // Opening a FIFO waits for a writer, in a thread an abort cannot reach; being its writer for a moment lets it go.
  const letGo = (): void => void open(path, constants.O_WRONLY | constants.O_NONBLOCK).then((handle) => handle.close(), () => {});
  if (kind === 'fifo') signal?.addEventListener('abort', letGo, { once: true });
  try {
    const input = openInput(path, kind, signal);
    const gzip = isGzip(await peek(input));
    const output = createWriteStream(copy, { flags: 'wx', mode: 0o600 });
    const options = signal !== undefined ? [{ signal }] : [];
    try {
      if (gzip) await pipeline(input, createGunzip({ chunkSize: ONE_MIB }), output, ...options);
      else await pipeline(input, output, ...options);
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      if (gzip && typeof code === 'string' && code.startsWith('Z_')) {
        throw new InvalidSourceError(path, `${path} is gzip-compressed, but its stream is damaged (${(error as Error).message}); export the archive again`, { cause: error });
      }
      throw error;
    }
    return gzip;
  } finally {
    signal?.removeEventListener('abort', letGo);
  }
}

/** The first bytes `input` has (none when it is empty), put back for whoever reads it next. */
async function peek(input: Readable): Promise<Buffer> {
  await once(input, 'readable');
  const head = input.read() as Buffer | null;
  if (head === null) return Buffer.alloc(0);
  input.unshift(head);
  return head;
}

/**
 * The archive's bytes as a stream. A socket, which is what Node (unlike a shell's `|`) gives a child as its stdin,
 * cannot be opened by its name (/dev/stdin: ENXIO): this process's own descriptor is read instead.
 */
function openInput(path: string, kind: ArchiveKind, signal: AbortSignal | undefined): Readable {
  const fd = kind === 'socket' ? ownDescriptor(path) : undefined;
  if (fd === undefined) return createReadStream(path, { highWaterMark: ONE_MIB, ...(signal !== undefined && { signal }) });
  const socket = fd === 0 ? process.stdin : new Socket({ fd, readable: true, writable: false });
  signal?.addEventListener('abort', () => socket.destroy(signal.reason as Error), { once: true });
  return socket;
}

/** The descriptor that /dev/stdin, /dev/fd/N or /proc/self/fd/N names, or undefined for any other path. */
function ownDescriptor(path: string): number | undefined {
  if (path === '/dev/stdin') return 0;
  const match = /^\/(?:dev\/fd|proc\/self\/fd)\/(\d+)$/.exec(path);
  return match === null ? undefined : Number(match[1]);
}
