import { Transform, type TransformCallback } from 'node:stream';
import { constants, crc32, createDeflateRaw } from 'node:zlib';

/** Options of {@link gzipLayer}. */
export interface GzipLayerOptions {
  /**
   * zlib level 0–9 for every deflated block; 0 stores. Default: {@link DEFAULT_COMPRESSION_LEVEL}, and
   * {@link TEXT_COMPRESSION_LEVEL} for blocks that look like text.
   */
  readonly level?: number;
}

/**
 * The default gzip level: 3, the fastest level whose output stays within 5 % of skopeo's on real files
 * (docs/benchmarks.md). On the benchmark's 8 × 64 MiB of /usr/lib files, skopeo writes 137.68 MB; level 2
 * 147.37 MB (+7.0 %), level 3 144.56 MB (+5.0 %, at the limit) for 14 % more deflate CPU, level 4 137.42 MB
 * for 26 % more; the default, level 3 with text at {@link TEXT_COMPRESSION_LEVEL}, 144.11 MB (+4.7 %). On 2-core
 * machines the registry's hashing shares the CPU, so every CPU-second saved shortens a push by about 0.6 s.
 */
export const DEFAULT_COMPRESSION_LEVEL = 3;

/**
 * The level of blocks that look like text (their samples hold under {@link TEXT_ENTROPY} bits a byte) when
 * no level is asked for: zlib's lazy matching (levels 4 and up) gains most on text. On the benchmark's
 * files it took 0.45 MB (0.3 %) off the output for 1.5 % more deflate CPU.
 */
export const TEXT_COMPRESSION_LEVEL = 4;

/** Input is cut into blocks of this size; each is deflated on its own on the thread pool. */
export const BLOCK_SIZE = 1024 * 1024;
/** Blocks in flight per stream: enough to keep both cores busy with one layer, few enough to bound its memory. */
const WINDOW = 4;
/** Deflate's window: each block is compressed with the previous block's last 32 KiB as its dictionary. */
const DICTIONARY_SIZE = 32 * 1024;
/**
 * Before a block is deflated, the bytes of sixteen 4 KiB samples of it (spread evenly, from its start to its
 * end: 6 % of it) are counted, and the order-0 entropy of those counts decides: a block above
 * {@link STORE_ENTROPY} bits a byte is stored, one below {@link TEXT_ENTROPY} looks like text.
 */
const SAMPLES = 16;
const SAMPLE_SIZE = 4 * 1024;
/**
 * Random or already compressed data measures 7.99 (32 KiB of random bytes: 7.994); at 7.9, Huffman coding
 * could save 1.3 % at best, and the blocks of the benchmark's files that measure above it deflate to 97.5–99.5 %.
 */
const STORE_ENTROPY = 7.9;
/** Text, scripts and tables measure 4–5 bits a byte; code and other binaries 5–7. */
const TEXT_ENTROPY = 4.5;
/**
 * zlib's memLevel: 9 (its largest hash table, 64 Ki chains, and 32 Ki symbols per Huffman block) deflates
 * level 3 ~10 % faster than the default 8, for 0.1 % more output on the benchmark's files.
 */
const MEM_LEVEL = 9;

// gzip member header: magic, deflate, no flags, mtime 0, no extra flags, OS unix. Fixed, so output is reproducible.
const HEADER = Buffer.from([0x1f, 0x8b, 0x08, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x03]);
// An empty final block (fixed Huffman, end-of-block only): the blocks before it are sync-flushed, never final.
const FINAL_BLOCK = Buffer.from([0x03, 0x00]);

/**
 * A gzip stream of its input, made like pigz makes one: the input is cut into 1 MiB blocks, each deflated
 * on libuv's thread pool with the previous block's last 32 KiB as its dictionary and ended by a sync flush
 * (so the pieces join into one valid deflate stream, decoded as one), and written in order, so one layer
 * keeps every core busy. Each block is first probed (the bytes of a few samples counted): a block that
 * does not compress (random or already compressed data) is sent as stored deflate blocks, made here from
 * slices of the input, with no zlib and no copy, so it costs about what a copy would; one that looks like
 * text is deflated one level higher by default, where zlib's lazy matching pays.
 *
 * The output depends only on the input and the level (each block's choice only on its own bytes), so a
 * layer compressed again yields the same bytes. One gzip member, read by every gzip reader (Docker,
 * containerd, skopeo, gunzip).
 *
 * @example createReadStream('layer.tar').pipe(gzipLayer({ level: 1 })).pipe(createWriteStream('layer.tar.gz'))
 */
export function gzipLayer(options: GzipLayerOptions = {}): Transform {
  const { level } = options;
  if (level === undefined) return new GzipLayer(DEFAULT_COMPRESSION_LEVEL, TEXT_COMPRESSION_LEVEL);
  if (!Number.isInteger(level) || level < 0 || level > 9) throw new RangeError(`gzip level ${level} is not a whole number from 0 to 9`);
  return new GzipLayer(level, level);
}

class GzipLayer extends Transform {
  readonly #level: number;
  /** The level of blocks that look like text. */
  readonly #textLevel: number;
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

  constructor(level: number, textLevel: number) {
    super({ readableHighWaterMark: BLOCK_SIZE, writableHighWaterMark: BLOCK_SIZE });
    this.#level = level;
    this.#textLevel = textLevel;
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
    const entropy = this.#level === 0 ? 8 : sampledEntropy(pieces);
    const level = entropy < TEXT_ENTROPY ? this.#textLevel : this.#level;
    const output = (async () => {
      if (entropy > STORE_ENTROPY) return storedBlocks(pieces);
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
    })();
    // Awaited in order by #writeOldest; until then a failure must not count as unhandled.
    output.catch(() => {});
    this.#inFlight.push(output);
  }

  async #writeOldest(): Promise<void> {
    const output = await this.#inFlight.shift();
    for (const piece of output ?? []) this.push(piece);
  }
}

/** Counts of each byte value in a block's samples (one table: it is filled and read synchronously). */
const counts = new Uint32Array(256);

/**
 * The order-0 entropy, in bits a byte, of a block's samples: what Huffman coding alone could bring each byte
 * down to. Counted here in some 50 µs a block, instead of deflating samples on the thread pool as before:
 * that cost 3 % of a deflate per block, and a zlib stream whose ~300 KiB V8 counts towards its next full
 * collection (on random data, the probes' deflate alone was 9 % of a push's CPU).
 */
function sampledEntropy(pieces: readonly Buffer[]): number {
  const size = sizeOf(pieces);
  counts.fill(0);
  let n = 0;
  if (size <= SAMPLES * SAMPLE_SIZE) {
    for (const piece of pieces) n += count(piece, 0, piece.length);
  } else {
    const step = Math.floor((size - SAMPLE_SIZE) / (SAMPLES - 1));
    for (let i = 0; i < SAMPLES; i++) n += countRange(pieces, i * step, SAMPLE_SIZE);
  }
  let bits = 0;
  for (let value = 0; value < 256; value++) {
    const c = counts[value] as number;
    if (c > 0) bits -= c * Math.log2(c / n);
  }
  return n === 0 ? 0 : bits / n;
}

/** Counts `size` bytes of `pieces` from `from` on (slices of the input, not joined for this); returns how many there were. */
function countRange(pieces: readonly Buffer[], from: number, size: number): number {
  let skip = from;
  let left = size;
  for (const piece of pieces) {
    if (left === 0) break;
    if (skip >= piece.length) {
      skip -= piece.length;
      continue;
    }
    const end = Math.min(piece.length, skip + left);
    left -= count(piece, skip, end);
    skip = 0;
  }
  return size - left;
}

/** Counts `bytes[from..to)`; returns how many. */
function count(bytes: Buffer, from: number, to: number): number {
  for (let i = from; i < to; i++) (counts[bytes[i] as number] as number)++;
  return to - from;
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
      memLevel: MEM_LEVEL,
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
