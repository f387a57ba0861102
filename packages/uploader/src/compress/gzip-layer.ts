import { Transform, type TransformCallback } from 'node:stream';
import { constants, crc32, createDeflateRaw } from 'node:zlib';

/** Options of {@link gzipLayer}. */
export interface GzipLayerOptions {
  /** zlib level 0–9 (default {@link DEFAULT_COMPRESSION_LEVEL}); 0 stores. */
  readonly level?: number;
}

/**
 * The default gzip level: 3, the fastest level whose output stays within 5 % of skopeo's on real files
 * (docs/benchmarks.md). On the benchmark's 8 × 64 MiB of /usr/lib files, skopeo writes 137.7 MB; level 2
 * 147.3 MB (+7 %), level 3 144.5 MB (+4.9 %) for 9 % more CPU, level 4 137.3 MB for 25 % more. On 2-core
 * machines the registry's hashing shares the CPU, so every CPU-second saved shortens a push by about 0.6 s.
 */
export const DEFAULT_COMPRESSION_LEVEL = 3;

/** Input is cut into blocks of this size; each is deflated on its own on the thread pool. */
export const BLOCK_SIZE = 1024 * 1024;
/** Blocks in flight per stream: enough to keep both cores busy with one layer, few enough to bound its memory. */
const WINDOW = 4;
/** Deflate's window: each block is compressed with the previous block's last 32 KiB as its dictionary. */
const DICTIONARY_SIZE = 32 * 1024;
/**
 * Before a block is deflated, four 8 KiB samples of it (spread evenly, from its start to its end) are,
 * and thrown away: 3 % of deflating it all. A block whose samples do not shrink below 95 % is stored instead.
 */
const SAMPLES = 4;
const SAMPLE_SIZE = 8 * 1024;
const COMPRESSES = 0.95;

// gzip member header: magic, deflate, no flags, mtime 0, no extra flags, OS unix. Fixed, so output is reproducible.
const HEADER = Buffer.from([0x1f, 0x8b, 0x08, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x03]);
// An empty final block (fixed Huffman, end-of-block only): the blocks before it are sync-flushed, never final.
const FINAL_BLOCK = Buffer.from([0x03, 0x00]);

/**
 * A gzip stream of its input, made like pigz makes one: the input is cut into 1 MiB blocks, each deflated
 * on libuv's thread pool with the previous block's last 32 KiB as its dictionary and ended by a sync flush
 * (so the pieces join into one valid deflate stream, decoded as one), and written in order, so one layer
 * keeps every core busy. Each block is first probed (a few samples deflated and thrown away): a block
 * that does not compress (random or already compressed data) is sent as stored deflate blocks, made here
 * from slices of the input, with no zlib and no copy, so it costs about what a copy would.
 *
 * The output depends only on the input and the level (each block's choice only on its own bytes), so a
 * layer compressed again yields the same bytes. One gzip member, read by every gzip reader (Docker,
 * containerd, skopeo, gunzip).
 *
 * @example createReadStream('layer.tar').pipe(gzipLayer({ level: 1 })).pipe(createWriteStream('layer.tar.gz'))
 */
export function gzipLayer(options: GzipLayerOptions = {}): Transform {
  const level = options.level ?? DEFAULT_COMPRESSION_LEVEL;
  if (!Number.isInteger(level) || level < 0 || level > 9) throw new RangeError(`gzip level ${level} is not a whole number from 0 to 9`);
  return new GzipLayer(level);
}

class GzipLayer extends Transform {
  readonly #level: number;
  /** The input of the block being filled, as it came (not copied). */
  #pieces: Buffer[] = [];
  #filled = 0;
  /** The last 32 KiB of input before the block being filled: the next deflated block's dictionary. */
  #previous: Buffer | undefined;
  /** The gzip bytes of the blocks in flight, oldest first, each in pieces pushed as they are. */
  readonly #inFlight: Promise<Buffer[]>[] = [];
  /** Block-sized buffers free for joining a block's pieces (at most WINDOW are in use). */
  readonly #spare: Buffer[] = [];
  #crc = 0;
  #length = 0;

  constructor(level: number) {
    super({ readableHighWaterMark: BLOCK_SIZE, writableHighWaterMark: BLOCK_SIZE });
    this.#level = level;
    this.push(HEADER);
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    this.#take(chunk).then(() => callback(), callback);
  }

  override _flush(callback: TransformCallback): void {
    this.#finish().then(() => callback(), callback);
  }

  async #take(chunk: Buffer): Promise<void> {
    this.#crc = crc32(chunk, this.#crc);
    this.#length += chunk.length;
    let rest = chunk;
    while (rest.length > 0) {
      const n = Math.min(rest.length, BLOCK_SIZE - this.#filled);
      this.#pieces.push(rest.subarray(0, n));
      this.#filled += n;
      rest = rest.subarray(n);
      if (this.#filled === BLOCK_SIZE) await this.#submit();
    }
  }

  async #finish(): Promise<void> {
    if (this.#filled > 0) await this.#submit();
    while (this.#inFlight.length > 0) await this.#writeOldest();
    const trailer = Buffer.alloc(8);
    trailer.writeUInt32LE(this.#crc >>> 0, 0);
    trailer.writeUInt32LE(this.#length % 2 ** 32, 4);
    this.push(Buffer.concat([FINAL_BLOCK, trailer]));
  }

  async #submit(): Promise<void> {
    if (this.#inFlight.length >= WINDOW) await this.#writeOldest();
    const pieces = this.#pieces;
    this.#pieces = [];
    this.#filled = 0;

    const dictionary = this.#previous;
    this.#previous = tail([...(dictionary === undefined ? [] : [dictionary]), ...pieces], DICTIONARY_SIZE);
    const level = this.#level;
    const deflate = level === 0 ? Promise.resolve(false) : compresses(pieces, level);
    const output = deflate.then(async (worth) => {
      if (!worth) return storedBlocks(pieces);
      if (pieces.length === 1) return compressBlock(pieces[0] as Buffer, level, dictionary);
      // The block joined into a buffer of this stream's own, used again once zlib is done with it.
      const joined = this.#spare.pop() ?? Buffer.allocUnsafe(BLOCK_SIZE);
      let at = 0;
      for (const piece of pieces) at += piece.copy(joined, at);
      try {
        return await compressBlock(joined.subarray(0, at), level, dictionary);
      } finally {
        this.#spare.push(joined);
      }
    });
    // Awaited in order by #writeOldest; until then a failure must not count as unhandled.
    output.catch(() => {});
    this.#inFlight.push(output);
  }

  async #writeOldest(): Promise<void> {
    const output = await this.#inFlight.shift();
    for (const piece of output ?? []) this.push(piece);
  }
}

/** Whether a block is worth deflating: its samples, deflated alone, shrink clearly. */
async function compresses(pieces: readonly Buffer[], level: number): Promise<boolean> {
  const size = sizeOf(pieces);
  const step = Math.max(0, Math.floor((size - SAMPLE_SIZE) / (SAMPLES - 1)));
  const samples = size <= SAMPLES * SAMPLE_SIZE ? Buffer.concat(pieces) : Buffer.concat(Array.from({ length: SAMPLES }, (_, i) => range(pieces, i * step, SAMPLE_SIZE)));
  return sizeOf(await compressBlock(samples, level, undefined)) < samples.length * COMPRESSES;
}

/** `size` bytes of `pieces` from `from` on, copied into one buffer (pieces are slices of the input, not to be joined whole). */
function range(pieces: readonly Buffer[], from: number, size: number): Buffer {
  const out = Buffer.allocUnsafe(size);
  let skip = from;
  let at = 0;
  for (const piece of pieces) {
    if (at === size) break;
    if (skip >= piece.length) {
      skip -= piece.length;
      continue;
    }
    at += piece.copy(out, at, skip, Math.min(piece.length, skip + size - at));
    skip = 0;
  }
  return out.subarray(0, at);
}

/** The last `size` bytes of `pieces` (or all of them, if fewer), as one buffer. */
function tail(pieces: readonly Buffer[], size: number): Buffer {
  const last = pieces.at(-1);
  if (last !== undefined && last.length >= size) return last.subarray(last.length - size);
  const taken: Buffer[] = [];
  let length = 0;
  for (let i = pieces.length - 1; i >= 0 && length < size; i--) {
    const piece = pieces[i] as Buffer;
    taken.unshift(piece);
    length += piece.length;
  }
  return Buffer.concat(taken).subarray(-size);
}

/** Stored deflate blocks hold at most this many bytes each. */
const STORED_MAX = 65_535;

/**
 * `pieces` as stored deflate blocks, made here rather than by zlib: a 5-byte header (not final, type 00,
 * padded to the byte boundary that every block here starts on, then LEN and its complement) before each
 * 64 KiB of the input, which follows as slices of the input itself: storing copies nothing.
 */
function storedBlocks(pieces: readonly Buffer[]): Buffer[] {
  const output: Buffer[] = [];
  let block: Buffer[] = [];
  let length = 0;
  const close = (): void => {
    const header = Buffer.allocUnsafe(5);
    header[0] = 0x00;
    header.writeUInt16LE(length, 1);
    header.writeUInt16LE(~length & 0xffff, 3);
    output.push(header, ...block);
    block = [];
    length = 0;
  };
  for (const piece of pieces) {
    let rest = piece;
    while (rest.length > 0) {
      const n = Math.min(rest.length, STORED_MAX - length);
      block.push(rest.subarray(0, n));
      length += n;
      rest = rest.subarray(n);
      if (length === STORED_MAX) close();
    }
  }
  if (length > 0 || output.length === 0) close();
  return output;
}

/** zlib's output comes in pieces of this size, pushed as they are: no joining copy, little unused buffer. */
const OUTPUT_CHUNK = 64 * 1024;

/**
 * Deflates one block on the thread pool, ending it with a sync flush: byte-aligned and not final. Its
 * output, in 64 KiB pieces. (zlib's one-call deflateRaw() would allocate a 1 MiB output buffer and join
 * the pieces into another: at ~3 MiB of garbage per MiB of input, V8's collector ran a full collection
 * every few MB and took a quarter of a push's CPU.)
 */
function compressBlock(input: Buffer, level: number, dictionary: Buffer | undefined): Promise<Buffer[]> {
  return new Promise((resolve, reject) => {
    const deflate = createDeflateRaw({
      level,
      ...(dictionary !== undefined && dictionary.length > 0 && { dictionary }),
      finishFlush: constants.Z_SYNC_FLUSH,
      chunkSize: OUTPUT_CHUNK,
    });
    const output: Buffer[] = [];
    deflate.on('data', (piece: Buffer) => output.push(piece));
    deflate.once('error', reject);
    deflate.once('end', () => resolve(output));
    deflate.end(input);
  });
}

/** Bytes in `pieces`. */
function sizeOf(pieces: readonly Buffer[]): number {
  return pieces.reduce((sum, piece) => sum + piece.length, 0);
}
