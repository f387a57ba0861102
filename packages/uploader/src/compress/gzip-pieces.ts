import { createHash, type Hash } from 'node:crypto';
import type { FileHandle } from 'node:fs/promises';

import type { Digest, DigestMismatchError, PushError } from '@rxpush/core';

import { MIN_PIECE_SIZE, PiecePool, readInto, sharedPiecePool } from '../file-pieces.js';
import { mismatch } from '../hashing-stream.js';
import { BLOCK_SIZE, blockPlan, chooseBlock, EMPTY_GZIP_MEMBER, storedMember } from './gzip-layer.js';
import { libdeflate, type Libdeflate } from './libdeflate.js';

/** Options of {@link GzipPieces}. */
export interface GzipPiecesOptions {
  /** The layer's (uncompressed) bytes: this many of the file, from `offset`. */
  readonly size: number;
  /** Where the layer starts in the file (default 0). */
  readonly offset?: number;
  /** The layer's bytes must hash (sha256) to this diff ID; the last piece is not given out unless they do. */
  readonly expected?: Digest;
  /** Where the bytes come from, for error messages. */
  readonly origin: string;
  /** What to do about bytes that are not as expected (the blob source's `remedy`). */
  readonly remedy?: string | undefined;
  /** The gzip level (default gzipLayer's). */
  readonly level?: number;
  /** Called with the running count of the layer's bytes read. */
  readonly onBytes?: (read: number) => void;
  /** Called once the consumer has taken every piece (for a request body: every byte is with the connection). */
  readonly onAllSent?: () => void;
}

/** Blocks read ahead and being deflated, as gzipLayer keeps in flight: both cores busy with one layer. */
const WINDOW = 4;
/** A stored member of a whole block: the block, 5 bytes per stored deflate block of at most 65 535, the member's 18. */
const STORED_MEMBER_SIZE = BLOCK_SIZE + 5 * Math.ceil(BLOCK_SIZE / 65_535) + 18;
/** Buffers of stored members, shared by the process's uploads as the input buffers are ({@link sharedPiecePool}). */
const storedPool = new PiecePool(STORED_MEMBER_SIZE, 16);

/** Thrown by a read that found the iteration stopped: never a failure. */
const STOPPED = new Error('GzipPieces stopped');

interface Block {
  /** The block's gzip member, one piece. */
  readonly member: Promise<Buffer>;
  /** The pool buffer the member is in, if it is one (a stored block's): given back once the connection took it. */
  readonly pooled?: Buffer;
}

/**
 * A layer file's bytes (an archive's member) gzipped as pieces for a request body, the same bytes gzipLayer makes
 * with libdeflate (the same blocks, choices and members), read without a stream into buffers that are reused.
 *
 * A stream of the layer allocated a new 1 MiB buffer per read and left it to the garbage collector once sent: on
 * random data (stored, as slices of the input) 20 full collections and the page faults of fresh memory per
 * 537 MB, ~16 % of a push's CPU. Here each block is read into a buffer of a process-wide pool, hashed (diff ID),
 * probed, and either deflated by libdeflate on the thread pool (its member is a copy: the input goes back to the
 * pool when the deflate ends) or copied, as a stored member, into a buffer of a second pool; the input goes back
 * at once. Each member is one piece of at least its block's size. A stored member's buffer goes back when the
 * next piece is asked for: the registry client's `pieces` body (see its `Body`) asks for it only once the
 * connection has taken the last one, which for a piece larger than the socket's high-water mark (16 KiB, 64 KiB
 * from Node 22 on) means handed to the kernel; a shorter one (of a short last block) is a buffer of its own.
 * Deflated members are fresh buffers, a quarter of a block or so.
 *
 * The diff ID is checked before the last piece is given out, and `digest` (of the gzip bytes) and `diffId` are
 * set once every piece was. Failures are thrown from the iteration and kept in `failure`. Iterate once; the
 * caller closes the handle, after {@link GzipPieces.stop}.
 *
 * @example
 * const pieces = new GzipPieces(await open(archive), { offset, size, expected: diffId, origin });
 * session = await client.uploadChunk(session, { pieces });
 * await client.finishUpload(session, pieces.digest!);
 */
export class GzipPieces implements AsyncIterable<Buffer> {
  readonly #handle: FileHandle;
  readonly #options: GzipPiecesOptions;
  readonly #libdeflate: Libdeflate;
  #started = false;
  #stopped = false;
  /** The reads so far, in order: each block is read after the one before it. */
  #reading: Promise<unknown> = Promise.resolve();
  /** Why the iteration failed: a read error or a layer that is not what the image says. */
  failure: PushError | undefined;
  /** The sha256 of the gzip bytes, once every piece was given out. */
  digest: Digest | undefined;
  /** The sha256 of the layer's bytes, once every piece was given out. */
  diffId: Digest | undefined;

  /** True where libdeflate's binding is built: GzipPieces makes libdeflate's members only. */
  static get available(): boolean {
    return libdeflate() !== undefined;
  }

  constructor(handle: FileHandle, options: GzipPiecesOptions) {
    const binding = libdeflate();
    if (binding === undefined) throw new Error('GzipPieces needs the libdeflate binding (packages/uploader/native); use gzipLayer');
    this.#handle = handle;
    this.#options = options;
    this.#libdeflate = binding;
    // Refused here, before anything is read: a level outside 0–9.
    blockPlan('libdeflate', options.level);
  }

  /** Reads nothing more: for the owner of the handle, before it closes it (a request may end before its body). */
  stop(): Promise<void> {
    this.#stopped = true;
    return this.#reading.then(
      () => undefined,
      () => undefined,
    );
  }

  async *[Symbol.asyncIterator](): AsyncGenerator<Buffer, void, undefined> {
    if (this.#started) throw new Error('GzipPieces can be iterated once');
    this.#started = true;
    const { size } = this.#options;
    const plan = blockPlan('libdeflate', this.#options.level);
    const input = createHash('sha256');
    const output = createHash('sha256');
    const blocks = Math.ceil(size / BLOCK_SIZE);
    let read = 0;
    let next = 0;
    const pending: Promise<Block>[] = [];
    const readAhead = (): void => {
      while (pending.length < WINDOW && next < blocks && !this.#stopped) {
        const index = next++;
        const block = this.#reading.then(async (): Promise<Block> => {
          const buffer = sharedPiecePool.take();
          const length = Math.min(BLOCK_SIZE, size - index * BLOCK_SIZE);
          const bytes = await this.#fill(buffer, index * BLOCK_SIZE, length);
          // Stopped meanwhile: what was read is dropped, and is no failure of the layer's.
          if (this.#stopped) throw STOPPED;
          input.update(bytes);
          read += bytes.length;
          this.#options.onBytes?.(read);
          if (bytes.length < length || read === size) {
            const failure = this.#mismatch(input, read);
            if (failure) throw this.#fail(failure);
          }
          const choice = chooseBlock([bytes], plan);
          if (choice === 'store') {
            const pooled = storedPool.take();
            let at = 0;
            for (const piece of storedMember([bytes], this.#libdeflate)) at += piece.copy(pooled, at);
            sharedPiecePool.give(buffer);
            if (at < MIN_PIECE_SIZE) {
              // A short member (a layer's last block) may still be queued on the connection after the next piece is
              // asked for, when a pooled buffer would be refilled: it goes out in a buffer of its own.
              const member = Buffer.from(pooled.subarray(0, at));
              storedPool.give(pooled);
              return { member: Promise.resolve(member) };
            }
            return { member: Promise.resolve(pooled.subarray(0, at)), pooled };
          }
          // libdeflate's member is a copy of its own: the input is free once it is made.
          const member = this.#libdeflate.gzip(bytes, choice).finally(() => sharedPiecePool.give(buffer));
          member.catch(() => {});
          return { member };
        });
        // Awaited in order below; until then a failure must not count as unhandled.
        block.catch(() => {});
        this.#reading = block;
        pending.push(block);
      }
    };

    try {
      if (size === 0) {
        const failure = this.#mismatch(input, 0);
        if (failure) throw this.#fail(failure);
        output.update(EMPTY_GZIP_MEMBER);
        this.#finish(input, output);
        yield EMPTY_GZIP_MEMBER;
        this.#options.onAllSent?.();
        return;
      }
      readAhead();
      for (let block = pending.shift(); block !== undefined; block = pending.shift()) {
        let taken: { piece: Buffer; pooled?: Buffer | undefined };
        try {
          const { member, pooled } = await block;
          readAhead();
          taken = { piece: await member, pooled };
        } catch (error) {
          if (this.#stopped) return;
          throw error;
        }
        // Stopped by the handle's owner: the request is over, whatever undici still asks for.
        if (this.#stopped) return;
        const { piece, pooled } = taken;
        output.update(piece);
        if (pending.length === 0) this.#finish(input, output);
        yield piece;
        // Asked for the next piece: the connection has taken this one (larger than its high-water mark).
        if (pooled !== undefined) storedPool.give(pooled);
      }
      this.#options.onAllSent?.();
    } finally {
      await this.stop();
    }
  }

  #finish(input: Hash, output: Hash): void {
    this.diffId = `sha256:${input.copy().digest('hex')}`;
    this.digest = `sha256:${output.digest('hex')}`;
  }

  #mismatch(hash: Hash, bytes: number): DigestMismatchError | undefined {
    const { expected, origin, size, remedy } = this.#options;
    return mismatch({ ...(expected !== undefined && { expected }), expectedSize: size, origin, remedy }, `sha256:${hash.copy().digest('hex')}`, bytes);
  }

  /** Reads `length` bytes from `position` (in the layer) into the start of `buffer`, fewer only where the file ends. */
  #fill(buffer: Buffer, position: number, length: number): Promise<Buffer> {
    const at = (this.#options.offset ?? 0) + position;
    return readInto(this.#handle, buffer, at, length, this.#options.origin, () => this.#stopped).catch((error: unknown) => {
      throw this.#fail(error as PushError);
    });
  }

  #fail(failure: PushError): PushError {
    this.failure ??= failure;
    return failure;
  }
}
