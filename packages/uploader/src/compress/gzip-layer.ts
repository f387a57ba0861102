import { Transform, type TransformCallback } from 'node:stream';
import { constants, crc32, deflateRaw } from 'node:zlib';

/** Options of {@link gzipLayer}. */
export interface GzipLayerOptions {
  /** zlib level 0–9 (default {@link DEFAULT_COMPRESSION_LEVEL}); 0 stores. */
  readonly level?: number;
}

/**
 * The default gzip level: 2. Measured on a tar of real files (479 MB of /usr/lib, docs/benchmarks.md):
 * level 2 writes 161 MB with 3.8 CPU-s, 3 % more than skopeo's 156 MB for 4.7 CPU-s; level 1 saves 3 % of
 * the CPU but is 5.5 % larger, level 6 is 4 % smaller for 2.2× the CPU. On 2-core machines the registry's
 * hashing shares the CPU, so every CPU-second saved shortens a push by about 0.6 s.
 */
export const DEFAULT_COMPRESSION_LEVEL = 2;

/** Input is cut into blocks of this size; each is deflated on its own on the thread pool. */
export const BLOCK_SIZE = 1024 * 1024;
/** Blocks in flight per stream. A constant, not the core count, so that the output is the same on every machine. */
const WINDOW = 4;
/** Deflate's window: each block is compressed with the previous block's last 32 KiB as its dictionary. */
const DICTIONARY_SIZE = 32 * 1024;
/** A block whose deflated form is at least this share of its size did not compress: the next ones are stored. */
const INCOMPRESSIBLE = 0.97;
/**
 * While storing, the start of every block is deflated and thrown away, to notice data that compresses again
 * (a tar of a random file followed by text): 3 % of deflating it all. It must compress clearly to count.
 */
const PROBE_SIZE = 32 * 1024;
const COMPRESSES_AGAIN = 0.9;

// gzip member header: magic, deflate, no flags, mtime 0, no extra flags, OS unix. Fixed, so output is reproducible.
const HEADER = Buffer.from([0x1f, 0x8b, 0x08, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x03]);
// An empty final block (fixed Huffman, end-of-block only): the blocks before it are sync-flushed, never final.
const FINAL_BLOCK = Buffer.from([0x03, 0x00]);

interface Block {
  readonly output: Promise<Buffer>;
  /** Whether the block's data compresses, from its deflated size or, for a stored block, its probe's. */
  readonly compresses: Promise<boolean>;
}

/**
 * A gzip stream of its input, made like pigz makes one: the input is cut into 1 MiB blocks, each deflated
 * on libuv's thread pool with the previous block's last 32 KiB as its dictionary and ended by a sync flush
 * (so the pieces join into one valid deflate stream, decoded as one), and written in order, so one layer
 * keeps every core busy. Data that does not compress (random or already compressed) is detected and sent
 * as stored blocks, which cost little more than a copy; a later probe notices data that compresses again.
 *
 * The output depends only on the input and the level (the decisions look only at blocks at a fixed
 * distance behind), so a layer compressed again yields the same bytes. One gzip member, read by every gzip
 * reader (Docker, containerd, skopeo, gunzip).
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
  #buffer = Buffer.allocUnsafe(BLOCK_SIZE);
  #filled = 0;
  #previous: Buffer | undefined;
  readonly #inFlight: Block[] = [];
  #crc = 0;
  #length = 0;
  /** Decided from the blocks written out so far, which are exactly those WINDOW or more behind the next one. */
  #storing = false;

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
    let at = 0;
    while (at < chunk.length) {
      const n = Math.min(chunk.length - at, BLOCK_SIZE - this.#filled);
      chunk.copy(this.#buffer, this.#filled, at, at + n);
      this.#filled += n;
      at += n;
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
    const input = this.#buffer.subarray(0, this.#filled);
    this.#buffer = Buffer.allocUnsafe(BLOCK_SIZE);
    this.#filled = 0;

    const dictionary = this.#previous?.subarray(-DICTIONARY_SIZE);
    this.#previous = input.length >= DICTIONARY_SIZE ? input : Buffer.concat([this.#previous ?? Buffer.alloc(0), input]).subarray(-DICTIONARY_SIZE);
    if (this.#level === 0) {
      const output = compressBlock(input, 0, undefined);
      this.#inFlight.push({ output, compresses: Promise.resolve(false) });
    } else if (this.#storing) {
      const sample = input.subarray(0, PROBE_SIZE);
      const compresses = compressBlock(sample, this.#level, undefined).then((probe) => probe.length < sample.length * COMPRESSES_AGAIN);
      this.#inFlight.push({ output: compressBlock(input, 0, undefined), compresses });
    } else {
      const output = compressBlock(input, this.#level, dictionary);
      this.#inFlight.push({ output, compresses: output.then((deflated) => deflated.length < input.length * INCOMPRESSIBLE) });
    }
  }

  async #writeOldest(): Promise<void> {
    const block = this.#inFlight.shift();
    if (block === undefined) return;
    const output = await block.output;
    this.#storing = !(await block.compresses);
    this.push(output);
  }
}

/** Deflates one block on the thread pool, ending it with a sync flush: byte-aligned and not final. */
function compressBlock(input: Buffer, level: number, dictionary: Buffer | undefined): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    deflateRaw(
      input,
      {
        level,
        // Stored blocks need no search window; deflated ones the default.
        ...(level === 0 && { memLevel: 1 }),
        ...(dictionary !== undefined && dictionary.length > 0 && { dictionary }),
        finishFlush: constants.Z_SYNC_FLUSH,
        chunkSize: BLOCK_SIZE + (BLOCK_SIZE >> 4),
      },
      (error, output) => (error ? reject(error) : resolve(output)),
    );
  });
}
