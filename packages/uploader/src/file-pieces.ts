import { createHash, type Hash } from 'node:crypto';
import type { FileHandle } from 'node:fs/promises';

import { InvalidSourceError, type Digest, type DigestMismatchError, type PushError } from '@rxpush/core';

import { mismatch } from './hashing-stream.js';

/** The size of a piece, and of each of the two buffers they are read into. */
export const PIECE_SIZE = 1024 * 1024;

/** Options of {@link FilePieces}. */
export interface FilePiecesOptions {
  /** The blob's size: this many bytes of the file, from `offset`, are the blob (what follows is not read, as a stream with `end` reads). */
  readonly size: number;
  /** Where the blob starts in the file (default 0: a member of an archive is a range of it). */
  readonly offset?: number;
  /** The file must hash (sha256) to this digest; the last piece is not given out unless it does. */
  readonly expected: Digest;
  /** Where the bytes come from, for error messages. */
  readonly origin: string;
  /** What to do about bytes that are not as expected (the blob source's `remedy`). */
  readonly remedy?: string | undefined;
  /** Called with the running count of the bytes the consumer has taken (for a request body: handed to the connection). */
  readonly onBytes?: (total: number) => void;
  /**
   * Called once the consumer has taken every piece, when it asks for the one after the last (for a request body:
   * every byte is with the connection, and what is left is the answer); the buffers are back in the pool by then.
   */
  readonly onAllSent?: () => void;
  /** The piece size (default {@link PIECE_SIZE}; at least 64 KiB, see below). */
  readonly pieceSize?: number;
  /** Where the buffers come from and go back to (default {@link sharedPiecePool}; used when its size is the piece size). */
  readonly pool?: PiecePool;
}

/**
 * Spare piece buffers of finished uploads, for the next ones: a process allocates its uploads' buffers once
 * rather than once per blob (a push of 32 layers made 64 MiB of buffers for the collector, 8 MiB in use at any
 * time, and the peak RSS grew with the image). It keeps at most `max` spare buffers.
 *
 * @example
 * const pool = new PiecePool(); const buffer = pool.take(); … pool.give(buffer);
 */
export class PiecePool {
  readonly #spare: Buffer[] = [];

  constructor(
    readonly size: number = PIECE_SIZE,
    readonly max: number = 16,
  ) {}

  /** A buffer of `size` bytes, spare or new; its contents are whatever its last user left. */
  take(): Buffer {
    return this.#spare.pop() ?? Buffer.allocUnsafeSlow(this.size);
  }

  /** Keeps `buffer` for the next take(), unless enough are kept. Only a buffer nothing holds any more. */
  give(buffer: Buffer): void {
    if (buffer.length === this.size && this.#spare.length < this.max && !this.#spare.includes(buffer)) this.#spare.push(buffer);
  }

  /** How many spare buffers it holds. */
  get spare(): number {
    return this.#spare.length;
  }
}

/** The pool every upload of the process shares by default: two buffers per upload slot (see DEFAULT_UPLOAD_SLOTS). */
export const sharedPiecePool = new PiecePool(PIECE_SIZE, 16);

/**
 * Below this, a piece handed to a socket may still be queued when the next one is asked for (the Body contract):
 * a smaller piece of a buffer that is used again must be given out as a copy.
 */
export const MIN_PIECE_SIZE = 64 * 1024;

/**
 * A file's bytes as pieces for a request body, read into two buffers that are reused, hashed as they are read.
 *
 * A file stream allocates a new 1 MiB buffer per read and leaves each to the garbage collector once sent: on a
 * large push tens of MB of dead buffers at any time, and a peak RSS that stays (glibc keeps freed memory). Here
 * each upload holds two buffers: while piece n goes out of one, piece n + 1 is read into the other. Piece n's
 * buffer is filled again only when piece n + 1 is asked for, which is when the consumer is done with piece n:
 * the registry client's `pieces` body (see its `Body`) asks for the next piece only once the connection has
 * taken the last one, and every piece but the last is a whole `pieceSize` (reads are repeated until the buffer
 * is full), larger than the socket's high-water mark; a last piece shorter than {@link MIN_PIECE_SIZE} is given
 * out as a copy. Once every piece was taken, both buffers go back to the pool: an upload waiting for the registry's
 * answer holds none. A consumer that holds pieces longer (a Readable that reads ahead) must copy them.
 *
 * The digest is checked before the last piece is given out: a blob that is not what the image says never
 * reaches the registry whole. Failures (read errors, a file shorter than `size`, a digest mismatch) are thrown from the iteration and kept in `failure`, as the request they break may report
 * its own error instead. Iterate once. The caller closes the handle, after {@link FilePieces.stop}: a request can
 * end (an early answer, an abort) before undici is done with its body, and a read must not outlive the handle.
 *
 * @example
 * const pieces = new FilePieces(await open(path), { size, expected: digest, origin: path });
 * await client.finishUpload(session, digest, { body: { pieces, length: size } });
 */
export class FilePieces implements AsyncIterable<Buffer> {
  readonly #handle: FileHandle;
  readonly #options: FilePiecesOptions;
  readonly #pieceSize: number;
  #started = false;
  #stopped = false;
  /** The buffers this iteration reads into, until every piece was taken. */
  #buffers: Buffer[] = [];
  /** The read in flight, if any: the iteration ends only after it. */
  #reading: Promise<unknown> = Promise.resolve();
  /** Why the iteration failed: a read error or a file that is not what the image says. */
  failure: PushError | undefined;

  constructor(handle: FileHandle, options: FilePiecesOptions) {
    this.#handle = handle;
    this.#options = options;
    this.#pieceSize = options.pieceSize ?? PIECE_SIZE;
    if (this.#pieceSize < MIN_PIECE_SIZE) throw new RangeError(`a piece must be at least ${MIN_PIECE_SIZE} bytes, not ${this.#pieceSize}`);
  }

  /** Reads nothing more: for the owner of the handle, before it closes it (a request may end before its body). */
  stop(): Promise<void> {
    this.#stopped = true;
    return this.#reading.then(
      () => undefined,
      () => undefined,
    );
  }

  /**
   * Gives the buffers back to the pool, once the consumer has taken every piece. A request body's consumer asks for
   * the piece after the last only once the connection has taken that one (the Body contract), so nothing can still be
   * queued from them. An iteration that ends otherwise (a failure, an abort, a stop) leaves them to the collector: a
   * broken connection may not have let go of its last piece yet.
   */
  #giveBack(): void {
    const pool = this.#options.pool ?? sharedPiecePool;
    for (const buffer of this.#buffers) pool.give(buffer);
    this.#buffers = [];
  }

  async *[Symbol.asyncIterator](): AsyncGenerator<Buffer, void, undefined> {
    if (this.#started) throw new Error('FilePieces can be iterated once');
    this.#started = true;
    const { size } = this.#options;
    const hash = createHash('sha256');
    // Small blobs (a config) get buffers of their size, not of a piece (nor a second one).
    const length = Math.max(1, Math.min(this.#pieceSize, size));
    const pool = this.#options.pool ?? sharedPiecePool;
    const pooled = length === pool.size;
    const buffer = (index: number): Buffer => {
      this.#buffers[index] ??= pooled ? pool.take() : Buffer.allocUnsafeSlow(length);
      return this.#buffers[index];
    };
    let read = 0;
    let taken = 0;
    try {
      let next = this.#fill(buffer(0), 0, Math.min(length, size));
      for (let index = 1; read < size; index++) {
        const piece = await next;
        // Stopped by the handle's owner: the request is over, whatever undici still asks for.
        if (this.#stopped) return;
        // The file ended early: fewer bytes than the size is always a mismatch.
        if (piece.length === 0) throw this.#fail(this.#mismatch(hash, read)!);
        read += piece.length;
        // The next piece is read while this one is hashed and sent, into the other buffer: its piece was taken.
        if (read < size) next = this.#fill(buffer(index % 2), read, Math.min(length, size - read));
        hash.update(piece);
        if (read === size) {
          // The last piece goes out only once the bytes are known to be the blob: the digest of its `size` bytes.
          const failure = this.#mismatch(hash, read);
          if (failure) throw this.#fail(failure);
        }
        // A short last piece (64 MiB and 11 KiB: the last 11 KiB) may still be queued on the connection after the next
        // is asked for, when its buffer is back in the pool and refilled by another upload: it goes out as a copy.
        yield pooled && piece.length < MIN_PIECE_SIZE ? Buffer.from(piece) : piece;
        // Asked for the next piece: the consumer has taken this one.
        taken += piece.length;
        this.#options.onBytes?.(taken);
      }
      if (size === 0) {
        const failure = this.#mismatch(hash, 0);
        if (failure) throw this.#fail(failure);
      }
      // Every piece was taken, so no buffer is held by the consumer any more: the pool has them for the next upload
      // while this one waits for its answer (which holds no upload slot, and so must hold no buffers).
      this.#giveBack();
      this.#options.onAllSent?.();
    } finally {
      await this.stop();
    }
  }

  #mismatch(hash: Hash, bytes: number): DigestMismatchError | undefined {
    return mismatch({ ...this.#options, expectedSize: this.#options.size }, `sha256:${hash.digest('hex')}`, bytes);
  }

  /**
   * Reads `length` bytes from `position` into the start of `buffer`, fewer only where the file ends; a stopped
   * iteration reads no more (what was read is dropped).
   */
  #fill(buffer: Buffer, position: number, length: number): Promise<Buffer> {
    const at = (this.#options.offset ?? 0) + position;
    const reading = readInto(this.#handle, buffer, at, length, this.#options.origin, () => this.#stopped).catch((error: unknown) => {
      throw this.#fail(error as PushError);
    });
    this.#reading = reading;
    return reading;
  }

  #fail(failure: PushError): PushError {
    this.failure ??= failure;
    return failure;
  }
}

/**
 * Reads `length` bytes of a file from `position` into the start of `buffer`, repeating short reads, fewer only
 * where the file ends or once `stopped()` says so. A read error is an InvalidSourceError naming `origin`.
 */
export async function readInto(handle: FileHandle, buffer: Buffer, position: number, length: number, origin: string, stopped: () => boolean): Promise<Buffer> {
  let filled = 0;
  while (filled < length && !stopped()) {
    const { bytesRead } = await handle.read(buffer, filled, length - filled, position + filled).catch((error: unknown) => {
      const why = error instanceof Error ? error.message : String(error);
      throw new InvalidSourceError(origin, `cannot read ${origin}: ${why}`, { cause: error });
    });
    if (bytesRead === 0) break;
    filled += bytesRead;
  }
  return buffer.subarray(0, filled);
}
