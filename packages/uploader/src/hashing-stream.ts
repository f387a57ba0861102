import { createHash, type Hash } from 'node:crypto';
import { Transform, type TransformCallback } from 'node:stream';

import { DigestMismatchError, type Digest } from '@rxpush/core';

/** Options of {@link HashingStream}. */
export interface HashingStreamOptions {
  /** When set, the stream fails at its end unless the bytes hash to this digest. */
  readonly expected?: Digest;
  /** When set, the stream fails at its end unless exactly this many bytes passed. */
  readonly expectedSize?: number;
  /** Where the bytes come from, for error messages. */
  readonly origin: string;
  /** What to do about bytes that are not as expected (the blob source's `remedy`; default: re-export the image). */
  readonly remedy?: string | undefined;
  /** Called with the running byte count after each chunk. */
  readonly onBytes?: (total: number) => void;
}

/**
 * A pass-through that hashes (sha256) and counts what flows through it, so each byte is hashed once,
 * on its way to the registry. A mismatch fails the stream before it ends, which aborts the request it
 * feeds: the registry never commits bytes that are not what the image says.
 */
export class HashingStream extends Transform {
  readonly #hash: Hash = createHash('sha256');
  readonly #options: HashingStreamOptions;
  #bytes = 0;
  #digest: Digest | undefined;
  /** The error the stream failed with, if it found a mismatch (kept, as request errors may wrap it). */
  failure: DigestMismatchError | undefined;

  constructor(options: HashingStreamOptions) {
    super({ highWaterMark: 1024 * 1024 });
    this.#options = options;
  }

  /** Bytes seen so far. */
  get bytes(): number {
    return this.#bytes;
  }

  /** The digest of all bytes, once the stream has ended. */
  get digest(): Digest | undefined {
    return this.#digest;
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    this.#hash.update(chunk);
    this.#bytes += chunk.length;
    this.#options.onBytes?.(this.#bytes);
    callback(null, chunk);
  }

  override _flush(callback: TransformCallback): void {
    const digest: Digest = `sha256:${this.#hash.digest('hex')}`;
    this.#digest = digest;
    this.failure = mismatch(this.#options, digest, this.#bytes);
    callback(this.failure ?? null);
  }
}

/** How bytes read (`digest`, `bytes`) differ from what the image says they are, if they do. */
export function mismatch(options: HashingStreamOptions, digest: Digest, bytes: number): DigestMismatchError | undefined {
  const { expected, expectedSize, origin, remedy = 'the source is corrupt, re-export the image' } = options;
  if (expectedSize !== undefined && bytes !== expectedSize) {
    return new DigestMismatchError(`${expectedSize} bytes`, `${bytes} bytes`, origin, { message: `${origin} has ${bytes} bytes, but the image says ${expectedSize}; ${remedy}` });
  }
  if (expected !== undefined && digest !== expected) {
    return new DigestMismatchError(expected, digest, origin, { message: `${origin} does not match its digest: expected ${expected}, read ${digest}; ${remedy}` });
  }
  return undefined;
}
