import { Readable } from 'node:stream';

import { InvalidResponseError, InvalidSourceError } from '@rxpush/core';

/** Pieces handed to a request body are at most this large, so a chunk never sits in memory whole. */
const PIECE = 1024 * 1024;

/**
 * Reads a stream in exact byte counts: the pieces of chunked uploads. Nothing is read ahead of what
 * is asked for, so at most one stream piece (≤ 1 MiB here) is held besides what a caller gathers.
 */
export class ByteReader {
  readonly #iterator: AsyncIterator<Buffer>;
  readonly #origin: string;
  #pending: Buffer | undefined;

  constructor(stream: Readable, origin: string) {
    this.#iterator = stream[Symbol.asyncIterator]() as AsyncIterator<Buffer>;
    this.#origin = origin;
  }

  /** The next piece of at most `max` bytes, or undefined at the end of the stream. */
  async read(max: number): Promise<Buffer | undefined> {
    let piece = this.#pending;
    if (piece === undefined) {
      const next = await this.#iterator.next();
      if (next.done === true) return undefined;
      piece = next.value;
    }
    if (piece.length > max) {
      this.#pending = piece.subarray(max);
      return piece.subarray(0, max);
    }
    this.#pending = undefined;
    return piece;
  }

  /**
   * Reads and drops `count` bytes (they pass through the hashing stages all the same): the bytes the registry
   * said it holds in its answer to `answer`.
   */
  async skip(count: number, answer: { method: string; url: string; status: number }): Promise<void> {
    let left = count;
    while (left > 0) {
      const piece = await this.read(left);
      if (piece === undefined) {
        throw new InvalidResponseError({
          ...answer,
          problem: `with a Range of ${count} bytes of ${this.#origin}, which has only ${count - left}: the session holds other bytes; push again`,
        });
      }
      left -= piece.length;
    }
  }

  /** A stream of exactly the next `length` bytes, read as the request sends them. */
  take(length: number): Readable {
    const pieces = async function* (reader: ByteReader, origin: string): AsyncGenerator<Buffer> {
      let left = length;
      while (left > 0) {
        const piece = await reader.read(Math.min(left, PIECE));
        if (piece === undefined) throw new InvalidSourceError(origin, `${origin} ended ${left} bytes before its recorded size; re-export the image`);
        left -= piece.length;
        yield piece;
      }
    };
    return Readable.from(pieces(this, this.#origin), { objectMode: false });
  }

  /** The next `max` bytes in one buffer (fewer at the end of the stream). */
  async gather(max: number): Promise<Buffer> {
    const pieces: Buffer[] = [];
    let size = 0;
    while (size < max) {
      const piece = await this.read(max - size);
      if (piece === undefined) break;
      pieces.push(piece);
      size += piece.length;
    }
    return Buffer.concat(pieces, size);
  }

  /** Reads to the end, failing if bytes remain: the end is where the hashing stages check the digest. */
  async end(): Promise<void> {
    for (let piece = await this.read(1); piece !== undefined; piece = await this.read(1)) {
      if (piece.length > 0) throw new InvalidSourceError(this.#origin, `${this.#origin} is longer than its recorded size; re-export the image`);
    }
  }
}
