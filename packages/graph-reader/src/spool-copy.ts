import { constants, createReadStream, createWriteStream } from 'node:fs';
import { open, stat } from 'node:fs/promises';
import { Socket } from 'node:net';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createGunzip } from 'node:zlib';

import { InvalidSourceError } from '@rxpush/core';

import { isGzip } from './shared/files.js';

const ONE_MIB = 1024 * 1024;

/**
 * Streams `path` into a new file `copy`, gunzipped when its first bytes are gzip's, and says whether they were.
 * A pipe cannot be looked at twice: its first chunk decides, and goes on into the copy with the rest.
 */
export async function copyArchive(path: string, copy: string, signal: AbortSignal | undefined, pipe: boolean): Promise<boolean> {
  // Opening a pipe waits for a writer, in a thread an abort cannot reach; being its writer for a moment lets it go.
  const letGo = (): void => void open(path, constants.O_WRONLY | constants.O_NONBLOCK).then((handle) => handle.close(), () => {});
  if (pipe) signal?.addEventListener('abort', letGo, { once: true });
  try {
    return await copyFrom(path, copy, signal);
  } finally {
    signal?.removeEventListener('abort', letGo);
  }
}

async function copyFrom(path: string, copy: string, signal: AbortSignal | undefined): Promise<boolean> {
  const input = await openInput(path, signal);
  const chunks = input[Symbol.asyncIterator]() as AsyncIterator<Buffer>;
  const first = await chunks.next();
  const head: Buffer = first.done === true ? Buffer.alloc(0) : first.value;
  const gzip = isGzip(head);
  const bytes = Readable.from(
    (async function* () {
      yield head;
      for (let next = await chunks.next(); next.done !== true; next = await chunks.next()) yield next.value;
    })(),
    { objectMode: false },
  );
  const output = createWriteStream(copy, { flags: 'wx', mode: 0o600 });
  const options = signal !== undefined ? [{ signal }] : [];
  try {
    if (gzip) await pipeline(bytes, createGunzip({ chunkSize: ONE_MIB }), output, ...options);
    else await pipeline(bytes, output, ...options);
  } catch (error) {
    // The input is read through the generator, which pipeline ends but does not destroy.
    input.destroy();
    const code = (error as NodeJS.ErrnoException).code;
    if (gzip && typeof code === 'string' && code.startsWith('Z_')) {
      throw new InvalidSourceError(path, `${path} is gzip-compressed, but its stream is damaged (${(error as Error).message}); export the archive again`, { cause: error });
    }
    throw error;
  }
  return gzip;
}

/**
 * The archive's bytes as a stream. A socket, which is what Node (unlike a shell's `|`) gives a child as its stdin,
 * cannot be opened by its name (/dev/stdin: ENXIO): this process's own descriptor is read instead.
 */
async function openInput(path: string, signal: AbortSignal | undefined): Promise<Readable> {
  const fd = ownDescriptor(path);
  if (fd === undefined || !(await stat(path)).isSocket()) return createReadStream(path, { highWaterMark: ONE_MIB, ...(signal !== undefined && { signal }) });
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
