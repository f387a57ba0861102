import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { buffer } from 'node:stream/consumers';
import { describe, it } from 'node:test';
import { gunzipSync, gzipSync } from 'node:zlib';

import { BLOCK_SIZE, gzipLayer } from '@rxpush/uploader';

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

/** `input` gzipped by gzipLayer, fed in pieces of `piece` bytes. */
async function gzip(input: Buffer, options: { level?: number; piece?: number } = {}): Promise<Buffer> {
  const piece = options.piece ?? 64 * 1024;
  const pieces = function* () {
    for (let at = 0; at < input.length; at += piece) yield input.subarray(at, at + piece);
  };
  return buffer(Readable.from(pieces()).pipe(gzipLayer(options.level === undefined ? {} : { level: options.level })));
}

describe('gzipLayer', () => {
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
      // An independent reader, that also insists on a single valid member with the right CRC and length.
      assert.ok(execFileSync('gzip', ['-dc'], { input: gz, maxBuffer: 64 * BLOCK_SIZE }).equals(input), `gzip -d, ${input.length} bytes`);
    }
  });

  it('compresses text about as well as zlib does in one stream', async () => {
    const input = text(4 * BLOCK_SIZE);
    const ours = await gzip(input, { level: 6 });
    const zlib = gzipSync(input, { level: 6 });
    assert.ok(ours.length < zlib.length * 1.02, `${ours.length} vs zlib's ${zlib.length}`);
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
    const input = Buffer.concat([text(2 * BLOCK_SIZE), randomBytes(5 * BLOCK_SIZE), text(2 * BLOCK_SIZE + 99)]);
    const [a, b, c] = await Promise.all([gzip(input, { piece: 1000 }), gzip(input, { piece: BLOCK_SIZE }), gzip(input, { piece: 3 * BLOCK_SIZE + 1 })]);
    assert.ok(a.equals(b) && b.equals(c));
  });

  it('stores everything at level 0, and refuses a level outside 0–9', async () => {
    const input = text(2 * BLOCK_SIZE);
    const gz = await gzip(input, { level: 0 });
    assert.ok(gz.length > input.length && gunzipSync(gz).equals(input));
    assert.throws(() => gzipLayer({ level: 10 }), RangeError);
    assert.throws(() => gzipLayer({ level: 1.5 }), RangeError);
  });
});
