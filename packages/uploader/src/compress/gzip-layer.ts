import { Transform, type TransformCallback } from 'node:stream';
import { constants, crc32, createDeflateRaw } from 'node:zlib';

import { libdeflate, type Libdeflate } from './libdeflate.js';

/** What deflates the blocks: libdeflate's binding (the default wherever it is built), or Node's zlib. */
export type GzipEngine = 'libdeflate' | 'zlib';

/** Options of {@link gzipLayer}. */
export interface GzipLayerOptions {
  /**
   * The level 0–9 of every deflated block; 0 stores. Default: {@link DEFAULT_COMPRESSION_LEVEL}, and
   * {@link TEXT_COMPRESSION_LEVEL} for blocks that look like text (zlib's defaults: 3, and 4 for text).
   */
  readonly level?: number;
  /** Default: {@link gzipEngine}'s. 'libdeflate' where its binding is not built throws. */
  readonly engine?: GzipEngine;
}

/**
 * The default level (libdeflate's): 1, for blocks that do not look like text. On the benchmark's 8 × 64 MiB
 * of /usr/lib files (docs/benchmarks.md), skopeo writes 137.68 MB; libdeflate's level 1 everywhere 144.85 MB
 * (+5.2 %), level 2 140.29 MB (+1.9 %) for 29 % more CPU; this default, level 1 with text-like blocks at
 * {@link TEXT_COMPRESSION_LEVEL}, 141.8 MB (+3.0 %) for 10 % more than level 1 alone, and 35 % less than zlib's
 * level 3 took for 144.5 MB. On 2-core machines the registry's hashing shares the CPU, so every CPU-second
 * saved shortens a push by about 0.6 s.
 */
export const DEFAULT_COMPRESSION_LEVEL = 1;

/**
 * The level of blocks that look like text (their samples hold under 5 bits a byte) when no level is asked
 * for: libdeflate's lazy levels (4 and up) gain most there, on text, scripts, tables and sparse binaries.
 */
export const TEXT_COMPRESSION_LEVEL = 4;

/** Each engine's default levels, and the entropy under which a block counts as text. */
const DEFAULTS: Record<GzipEngine, { level: number; textLevel: number; textEntropy: number }> = {
  libdeflate: { level: DEFAULT_COMPRESSION_LEVEL, textLevel: TEXT_COMPRESSION_LEVEL, textEntropy: 5 },
  // zlib's greedy level 3 kept within 5 % of skopeo's size; its lazy matching (4+) gains most on text.
  zlib: { level: 3, textLevel: 4, textEntropy: 4.5 },
};

/** The engine gzipLayer uses when none is asked for: libdeflate where its binding is built and loads, else zlib. */
export function gzipEngine(): GzipEngine {
  return libdeflate() === undefined ? 'zlib' : 'libdeflate';
}

/** Input is cut into blocks of this size; each is deflated on its own on the thread pool. */
export const BLOCK_SIZE = 1024 * 1024;
/** Blocks in flight per stream: enough to keep both cores busy with one layer, few enough to bound its memory. */
const WINDOW = 4;
/** Deflate's window: with zlib, each block is compressed with the previous block's last 32 KiB as its dictionary. */
const DICTIONARY_SIZE = 32 * 1024;
/**
 * Before a block is deflated, the bytes of sixteen 4 KiB samples of it (spread evenly, from its start to its
 * end: 6 % of it) are counted, and the order-0 entropy of those counts decides: a block above
 * {@link STORE_ENTROPY} bits a byte is stored, one below the engine's text entropy looks like text.
 */
const SAMPLES = 16;
const SAMPLE_SIZE = 4 * 1024;
/**
 * Random or already compressed data measures 7.99 (32 KiB of random bytes: 7.994); at 7.9, Huffman coding
 * could save 1.3 % at best, and the blocks of the benchmark's files that measure above it deflate to 97.5–99.5 %.
 */
const STORE_ENTROPY = 7.9;
/**
 * zlib's memLevel: 9 (its largest hash table, 64 Ki chains, and 32 Ki symbols per Huffman block) deflates
 * level 3 ~10 % faster than the default 8, for 0.1 % more output on the benchmark's files.
 */
const MEM_LEVEL = 9;

// gzip member header: magic, deflate, no flags, mtime 0, no extra flags, OS unix. Fixed, so output is reproducible.
const HEADER = Buffer.from([0x1f, 0x8b, 0x08, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x03]);
// An empty final block (fixed Huffman, end-of-block only): the blocks before it are sync-flushed, never final.
const FINAL_BLOCK = Buffer.from([0x03, 0x00]);
/** The gzip stream of no bytes with libdeflate: one empty member (with zlib: the same bytes). */
export const EMPTY_GZIP_MEMBER = Buffer.from([...HEADER, ...FINAL_BLOCK, 0, 0, 0, 0, 0, 0, 0, 0]);

/**
 * A gzip stream of its input, made as pigz makes one: the input is cut into 1 MiB blocks, each deflated on
 * libuv's thread pool, four in flight, and written in order, so one layer keeps every core busy. Each block
 * is first probed (the bytes of a few samples counted): a block that does not compress (random or already
 * compressed data) is sent as stored deflate blocks, made here from slices of the input, with no deflate and
 * no copy, so it costs about what a copy would; one that looks like text is deflated at a higher level by
 * default, where lazy matching pays.
 *
 * With libdeflate (the default where its binding is built: 1.5–2 × faster than zlib at the same size), each
 * block is a gzip member of its own, and the stream their concatenation: a multi-member gzip file, which
 * gunzip, Go's compress/gzip (Docker, containerd), pgzip (skopeo) and Node's zlib read as one. With zlib,
 * each block is deflated with the previous block's last 32 KiB as its dictionary and ended by a sync flush,
 * so the blocks join into one member.
 *
 * The output depends only on the input, the engine and the level (each block's choice only on its own
 * bytes), so a layer compressed again yields the same bytes.
 *
 * @example createReadStream('layer.tar').pipe(gzipLayer({ level: 1 })).pipe(createWriteStream('layer.tar.gz'))
 */
export function gzipLayer(options: GzipLayerOptions = {}): Transform {
  const { level } = options;
  const engine = options.engine ?? gzipEngine();
  if (engine !== 'libdeflate' && engine !== 'zlib') throw new RangeError(`gzip engine ${String(engine)} is neither libdeflate nor zlib`);
  const binding = engine === 'libdeflate' ? libdeflate() : undefined;
  if (engine === 'libdeflate' && binding === undefined) {
    throw new Error("gzip engine libdeflate is not built here: run 'node native/build.mjs' in @rxpush/uploader's directory (it needs cc and libdeflate-dev), or use engine 'zlib'");
  }
  return new GzipLayer(binding, blockPlan(engine, level));
}

/** How an engine's blocks are encoded: the level of most blocks, and of those that look like text. */
export interface BlockPlan {
  readonly level: number;
  readonly textLevel: number;
  readonly textEntropy: number;
}

/** The plan of an engine at `level` (every block at it), or at its defaults. */
export function blockPlan(engine: GzipEngine, level?: number): BlockPlan {
  const defaults = DEFAULTS[engine];
  if (level === undefined) return defaults;
  if (!Number.isInteger(level) || level < 0 || level > 9) throw new RangeError(`gzip level ${level} is not a whole number from 0 to 9`);
  return { level, textLevel: level, textEntropy: defaults.textEntropy };
}

/**
 * What a block (its bytes, in pieces) becomes: 'store' (it does not compress, or level 0), or the level to deflate it
 * at. It depends only on the block's bytes, so every reader of a layer (gzipLayer's stream, the uploader's
 * GzipPieces) makes the same bytes of it.
 */
export function chooseBlock(pieces: readonly Buffer[], plan: BlockPlan): 'store' | number {
  if (plan.level === 0) return 'store';
  const entropy = sampledEntropy(pieces);
  if (entropy > STORE_ENTROPY) return 'store';
  return entropy < plan.textEntropy ? plan.textLevel : plan.level;
}

class GzipLayer extends Transform {
  /** libdeflate's binding: a gzip member per block. Undefined: zlib, one member of sync-flushed blocks. */
  readonly #libdeflate: Libdeflate | undefined;
  readonly #plan: BlockPlan;
  /** The input of the block being filled, as it came (not copied). */
  #pieces: Buffer[] = [];
  #filled = 0;
  /** zlib: the last 32 KiB of input before the block being filled, the next deflated block's dictionary. */
  #previous: Buffer | undefined;
  /** The gzip bytes of the blocks in flight, oldest first, each in pieces pushed as they are. */
  readonly #inFlight: Promise<Buffer[]>[] = [];
  /** Block-sized buffers free for joining a block's pieces (at most WINDOW are in use). */
  readonly #spare: Buffer[] = [];
  /** zlib: the CRC and length of the whole input, for the one member's trailer. */
  #crc = 0;
  #length = 0;

  constructor(binding: Libdeflate | undefined, plan: BlockPlan) {
    super({ readableHighWaterMark: BLOCK_SIZE, writableHighWaterMark: BLOCK_SIZE });
    this.#libdeflate = binding;
    this.#plan = plan;
    if (binding === undefined) this.push(HEADER);
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    this.#take(chunk).then(() => callback(), callback);
  }

  override _flush(callback: TransformCallback): void {
    this.#finish().then(() => callback(), callback);
  }

  async #take(chunk: Buffer): Promise<void> {
    if (this.#libdeflate === undefined) this.#crc = crc32(chunk, this.#crc);
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
    if (this.#libdeflate === undefined) this.push(Buffer.concat([FINAL_BLOCK, trailer(this.#crc, this.#length)]));
    // No input, no block: a gzip stream still holds one (empty) member.
    else if (this.#length === 0) this.push(EMPTY_GZIP_MEMBER);
  }

  async #submit(): Promise<void> {
    if (this.#inFlight.length >= WINDOW) await this.#writeOldest();
    const pieces = this.#pieces;
    this.#pieces = [];
    this.#filled = 0;

    const binding = this.#libdeflate;
    const dictionary = this.#previous;
    if (binding === undefined) this.#previous = tail([...(dictionary === undefined ? [] : [dictionary]), ...pieces], DICTIONARY_SIZE);
    const level = chooseBlock(pieces, this.#plan);
    const output = (async () => {
      if (level === 'store') return binding === undefined ? storedBlocks(pieces, false) : storedMember(pieces, binding);
      const deflate = (input: Buffer): Promise<Buffer[]> =>
        binding === undefined ? compressBlock(input, level, dictionary) : binding.gzip(input, level).then((member) => [member]);
      if (pieces.length === 1) return deflate(pieces[0] as Buffer);
      // The block joined into a buffer of this stream's own, used again once the deflate is done with it.
      const joined = this.#spare.pop() ?? Buffer.allocUnsafe(BLOCK_SIZE);
      let at = 0;
      for (const piece of pieces) at += piece.copy(joined, at);
      try {
        return await deflate(joined.subarray(0, at));
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

/** A gzip member's trailer: the CRC-32 and the length (mod 2^32) of what it holds. */
function trailer(crc: number, length: number): Buffer {
  const bytes = Buffer.allocUnsafe(8);
  bytes.writeUInt32LE(crc >>> 0, 0);
  bytes.writeUInt32LE(length % 2 ** 32, 4);
  return bytes;
}

/** `pieces` as a gzip member of their own, of stored blocks: header, {@link storedBlocks} (the last final), trailer. */
export function storedMember(pieces: readonly Buffer[], binding: Libdeflate): Buffer[] {
  let crc = 0;
  for (const piece of pieces) crc = binding.crc32(piece, crc);
  return [HEADER, ...storedBlocks(pieces, true), trailer(crc, sizeOf(pieces))];
}

/**
 * `pieces` as stored deflate blocks, made here rather than by a deflate: a 5-byte header (final only if
 * asked and the last, type 00, padded to the byte boundary that every block here starts on, then LEN and
 * its complement) before each 64 KiB of the input, which follows as slices of the input itself: storing
 * copies nothing.
 */
function storedBlocks(pieces: readonly Buffer[], final: boolean): Buffer[] {
  const output: Buffer[] = [];
  let block: Buffer[] = [];
  let length = 0;
  let lastHeader: Buffer | undefined;
  const close = (): void => {
    const header = Buffer.allocUnsafe(5);
    lastHeader = header;
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
  if (final) (lastHeader as Buffer)[0] = 0x01;
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
