import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { buffer } from 'node:stream/consumers';
import { describe, it } from 'node:test';
import { crc32, gunzipSync, gzipSync } from 'node:zlib';

import { BLOCK_SIZE, DEFAULT_COMPRESSION_LEVEL, gzipEngine, gzipLayer, TEXT_COMPRESSION_LEVEL, type GzipEngine } from '@rxpush/uploader';

import { libdeflate } from '../src/compress/libdeflate.ts';

/** Text-like bytes that compress well (and differ everywhere, so matches span blocks only through the dictionary). */
function text(size: number): Buffer {
  const lines: string[] = [];
  let length = 0;
  for (let i = 0; length < size; i++) {
    const line = `line ${i}: the quick brown fox jumps over the lazy dog ${i % 97} times\n`;
    lines.push(line);
    length += line.length;
  }
  return Buffer.from(lines.join('')).subarray(0, size);
}

/** Prose of a small vocabulary (about 4.2 bits a byte, as English is), from a seeded generator. */
function prose(size: number, seed = 7): Buffer {
  const words = ['the', 'layer', 'is', 'pushed', 'and', 'a', 'registry', 'keeps', 'of', 'its', 'blobs', 'to', 'when', 'image'];
  const out: string[] = [];
  let length = 0;
  let state = seed;
  while (length < size) {
    state = (Math.imul(state, 1103515245) + 12345) >>> 0;
    const word = `${words[(state >>> 8) % words.length] as string}${(state >>> 20) % 9 === 0 ? '.\n' : ' '}`;
    out.push(word);
    length += word.length;
  }
  return Buffer.from(out.join('')).subarray(0, size);
}

/**
 * Binary-like bytes (5–7 bits a byte, as code is): skewed values from a seeded generator, with repeats that
 * deflate finds, so the same call always gives the same bytes.
 */
function binary(size: number, seed = 1): Buffer {
  const out = Buffer.allocUnsafe(size);
  let state = seed;
  const next = (): number => {
    state = (Math.imul(state, 1103515245) + 12345) >>> 0;
    return state >>> 8;
  };
  for (let at = 0; at < size; ) {
    if (at > 64 && next() % 4 === 0) {
      // A repeat of something recent, as code repeats instruction sequences.
      const length = Math.min(size - at, 4 + (next() % 28));
      const from = at - 1 - (next() % Math.min(at - 1, 4096));
      out.copy(out, at, from, Math.min(at, from + length));
      at += Math.min(length, at - from);
    } else {
      out[at++] = Math.floor(256 * ((next() % 1000) / 1000) ** 3);
    }
  }
  return out;
}

/** Where the libdeflate binding is not built (no cc or libdeflate-dev), its tests are skipped; never in CI. */
const libdeflateBuilt = gzipEngine() === 'libdeflate';

describe('the gzip engine', () => {
  it('is libdeflate wherever its binding is built, as tools/setup.mjs builds it for tests and CI', () => {
    if (process.env.CI) assert.equal(gzipEngine(), 'libdeflate', 'CI must test the libdeflate binding: tools/setup.mjs builds it');
    assert.throws(() => gzipLayer({ engine: 'nope' as GzipEngine }), /gzip engine/);
  });

  it("has a binding that refuses what is not a Buffer and a number, and levels outside libdeflate's 1–12", { skip: !libdeflateBuilt && 'not built here' }, async () => {
    const binding = libdeflate()!;
    assert.throws(() => binding.gzip('text' as unknown as Buffer, 1), { name: 'TypeError', message: /takes a Buffer and a level/ });
    assert.throws(() => (binding.crc32 as (input: Buffer) => number)(Buffer.alloc(1)), { name: 'TypeError', message: /takes a Buffer and a CRC/ });
    for (const level of [0, 13, Number.NaN]) assert.throws(() => binding.gzip(Buffer.alloc(1), level), { name: 'TypeError', message: /1 to 12/ });
    const bytes = text(100_000);
    assert.ok(gunzipSync(await binding.gzip(bytes, 12)).equals(bytes));
    assert.equal(binding.crc32(bytes.subarray(500), binding.crc32(bytes.subarray(0, 500), 0)), crc32(bytes));
  });
});

for (const engine of ['libdeflate', 'zlib'] as const) {
  /** `input` gzipped by gzipLayer with this engine, fed in pieces of `piece` bytes. */
  async function gzip(input: Buffer, options: { level?: number; piece?: number } = {}): Promise<Buffer> {
    const piece = options.piece ?? 64 * 1024;
    const pieces = function* () {
      for (let at = 0; at < input.length; at += piece) yield input.subarray(at, at + piece);
    };
    return buffer(Readable.from(pieces()).pipe(gzipLayer({ engine, ...(options.level !== undefined && { level: options.level }) })));
  }

  const skip = engine === 'libdeflate' && !libdeflateBuilt && 'the libdeflate binding is not built here (packages/uploader/native/build.mjs)';
  describe(`gzipLayer with ${engine}`, { skip }, () => {
    it('writes one gzip stream that gunzip and zlib read back exactly', async () => {
      const inputs = [
        Buffer.alloc(0),
        Buffer.from('a little'),
        text(BLOCK_SIZE),
        text(3 * BLOCK_SIZE + 12345),
        randomBytes(2 * BLOCK_SIZE + 7),
        Buffer.concat([text(2 * BLOCK_SIZE), randomBytes(6 * BLOCK_SIZE), text(3 * BLOCK_SIZE)]),
      ];
      for (const input of inputs) {
        const gz = await gzip(input);
        assert.ok(gunzipSync(gz).equals(input), `zlib, ${input.length} bytes`);
        // An independent reader, that also checks each member's CRC and length.
        assert.ok(execFileSync('gzip', ['-dc'], { input: gz, maxBuffer: 64 * BLOCK_SIZE }).equals(input), `gzip -d, ${input.length} bytes`);
      }
    });

    it('compresses text about as well as zlib does in one stream', async () => {
      const input = text(4 * BLOCK_SIZE);
      const ours = await gzip(input, { level: 6 });
      const zlib = gzipSync(input, { level: 6 });
      // libdeflate's blocks are members of their own, with no match across them: on this text, whose lines
      // repeat from block to block, 2.5 % more; on real files, less than zlib's one stream (docs/benchmarks.md).
      const within = engine === 'libdeflate' ? 1.04 : 1.02;
      assert.ok(ours.length < zlib.length * within, `${ours.length} vs zlib's ${zlib.length}`);
    });

    it('stores data that does not compress, at little more than its size', async () => {
      const input = randomBytes(12 * BLOCK_SIZE);
      const gz = await gzip(input);
      // Stored deflate blocks cost 5 bytes per 64 KiB; the blocks deflated before the switch cost a little more.
      assert.ok(gz.length < input.length * 1.001, `${gz.length} for ${input.length}`);
      assert.ok(gunzipSync(gz).equals(input));
    });

    it('compresses again when the data compresses again after a stretch that does not', async () => {
      const random = randomBytes(8 * BLOCK_SIZE);
      const later = text(16 * BLOCK_SIZE);
      const gz = await gzip(Buffer.concat([random, later]));
      const laterAlone = gzipSync(later, { level: 1 }).length;
      // The switch back is noticed within a few blocks: at most ~5 of the 16 text blocks go stored.
      assert.ok(gz.length < random.length + laterAlone + 5 * BLOCK_SIZE, `${gz.length}`);
    });

    it('gives the same bytes for the same input, however it is fed', async () => {
      // Every kind of block: text (level 3), random (stored), prose (level 4), binary (level 3).
      const input = Buffer.concat([text(2 * BLOCK_SIZE), randomBytes(5 * BLOCK_SIZE), prose(2 * BLOCK_SIZE), binary(BLOCK_SIZE), text(2 * BLOCK_SIZE + 99)]);
      const [a, b, c] = await Promise.all([gzip(input, { piece: 1000 }), gzip(input, { piece: BLOCK_SIZE }), gzip(input, { piece: 3 * BLOCK_SIZE + 1 })]);
      assert.ok(a.equals(b) && b.equals(c));
    });

    it('decides per block by the bytes of its samples: random blocks stored, text and binaries deflated', async () => {
      const random = randomBytes(BLOCK_SIZE);
      const input = Buffer.concat([text(BLOCK_SIZE), random, binary(BLOCK_SIZE), random]);
      const gz = await gzip(input);
      assert.ok(gunzipSync(gz).equals(input));
      // The two random blocks cost their size plus 5 bytes per 64 KiB; the text and binary blocks shrink.
      const deflated = gz.length - 2 * (BLOCK_SIZE + 5 * 17);
      assert.ok(deflated < 0.75 * BLOCK_SIZE, `text + binary block took ${deflated} bytes`);
      assert.ok(deflated > (await gzip(text(BLOCK_SIZE))).length, 'the binary block was deflated, not dropped');
    });

    it('deflates text at a higher level by default, and every block at exactly the level asked for', async () => {
      const english = prose(2 * BLOCK_SIZE);
      const code = binary(2 * BLOCK_SIZE);
      assert.equal(DEFAULT_COMPRESSION_LEVEL, 1);
      assert.equal(TEXT_COMPRESSION_LEVEL, 4);
      const [level, textLevel] = engine === 'libdeflate' ? [DEFAULT_COMPRESSION_LEVEL, TEXT_COMPRESSION_LEVEL] : [3, 4];
      // Text-like blocks: the text level by default, the default level when that is asked for.
      assert.ok((await gzip(english)).equals(await gzip(english, { level: textLevel })));
      assert.ok(!(await gzip(english)).equals(await gzip(english, { level })));
      assert.ok(gunzipSync(await gzip(english)).equals(english));
      // Other blocks: the default level either way.
      assert.ok((await gzip(code)).equals(await gzip(code, { level })));
      assert.ok(gunzipSync(await gzip(code)).equals(code));
    });

    it('stores everything at level 0, and refuses a level outside 0–9', async () => {
      const input = text(2 * BLOCK_SIZE);
      const gz = await gzip(input, { level: 0 });
      assert.ok(gz.length > input.length && gunzipSync(gz).equals(input));
      assert.throws(() => gzipLayer({ level: 10 }), RangeError);
      assert.throws(() => gzipLayer({ level: 1.5 }), RangeError);
    });
  });
}
