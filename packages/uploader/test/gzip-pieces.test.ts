import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, open, rm, writeFile, type FileHandle } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { buffer } from 'node:stream/consumers';
import { describe, it, type TestContext } from 'node:test';
import { gunzipSync } from 'node:zlib';

import type { Digest } from '@rxpush/core';

import { BLOCK_SIZE, gzipEngine, gzipLayer } from '../src/index.ts';
import { GzipPieces } from '../src/compress/gzip-pieces.ts';

const sha256 = (bytes: Buffer): Digest => `sha256:${createHash('sha256').update(bytes).digest('hex')}`;

/** Lines of text that differ everywhere (deflated), in `size` bytes. */
function text(size: number): Buffer {
  let out = '';
  for (let i = 0; out.length < size; i++) out += `${i}: a line of a layer's text, which deflates well ${i % 13}\n`;
  return Buffer.from(out).subarray(0, size);
}

/** `layer` in a file between other bytes, as an archive's member is: the file, and where the layer starts. */
async function inFile(dir: string, layer: Buffer): Promise<{ path: string; offset: number }> {
  const path = join(dir, `archive-${layer.length}-${Math.random()}.tar`);
  const before = randomBytes(1536);
  await writeFile(path, Buffer.concat([before, layer, randomBytes(1024)]));
  return { path, offset: before.length };
}

/** `layer` in a file between other bytes, opened: closed and removed when the test ends. */
async function layerFile(t: TestContext, layer: Buffer): Promise<{ handle: FileHandle; path: string; offset: number }> {
  const dir = await mkdtemp(join(tmpdir(), 'gzip-pieces-'));
  const { path, offset } = await inFile(dir, layer);
  const handle = await open(path);
  t.after(async () => {
    await handle.close();
    await rm(dir, { recursive: true, force: true });
  });
  return { handle, path, offset };
}

/** The pieces as a connection takes them: each copied as it is given out, before the next is asked for. */
async function take(pieces: AsyncIterable<Buffer>): Promise<Buffer> {
  const copies: Buffer[] = [];
  for await (const piece of pieces) copies.push(Buffer.from(piece));
  return Buffer.concat(copies);
}

const skip = gzipEngine() !== 'libdeflate' && 'the libdeflate binding is not built here (packages/uploader/native/build.mjs)';

describe('GzipPieces', { skip }, () => {
  it("makes the bytes gzipLayer makes of a layer, from a range of a file, and learns its digest and diff ID", async (t) => {
    const dir = await mkdtemp(join(tmpdir(), 'gzip-pieces-'));
    t.after(() => rm(dir, { recursive: true, force: true }));
    const layers = [
      Buffer.alloc(0),
      Buffer.from('a little'),
      text(BLOCK_SIZE),
      randomBytes(3 * BLOCK_SIZE + 17),
      Buffer.concat([text(2 * BLOCK_SIZE + 5), randomBytes(6 * BLOCK_SIZE), text(BLOCK_SIZE), randomBytes(999)]),
    ];
    for (const layer of layers) {
      const { path, offset } = await inFile(dir, layer);
      const handle = await open(path);
      try {
        const pieces = new GzipPieces(handle, { size: layer.length, offset, expected: sha256(layer), origin: path });
        const gz = await take(pieces);
        const expected = await buffer(Readable.from([layer]).pipe(gzipLayer()));
        assert.ok(gz.equals(expected), `${layer.length} bytes: the same gzip bytes as gzipLayer's`);
        assert.ok(gunzipSync(gz).equals(layer));
        assert.equal(pieces.digest, sha256(gz));
        assert.equal(pieces.diffId, sha256(layer));
      } finally {
        await handle.close();
      }
    }
  });

  it('reads into reused buffers: a piece given out is overwritten later, so it must be taken (copied) when given', async (t) => {
    // Random data: every block is stored, each member in a pooled buffer given back once the next piece is asked for.
    const layer = randomBytes(12 * BLOCK_SIZE);
    const { handle, path, offset } = await layerFile(t, layer);
    const held: Buffer[] = [];
    const copies: Buffer[] = [];
    for await (const piece of new GzipPieces(handle, { size: layer.length, offset, origin: path })) {
      held.push(piece);
      copies.push(Buffer.from(piece));
    }
    assert.ok(gunzipSync(Buffer.concat(copies)).equals(layer), 'what was taken when given is the layer');
    assert.ok(!Buffer.concat(held).equals(Buffer.concat(copies)), 'pieces held by reference were reused: the buffers are');
  });

  it('gives a buffer back only when the piece after it is asked for, however long the connection takes the piece', async (t) => {
    const dir = await mkdtemp(join(tmpdir(), 'gzip-pieces-'));
    t.after(() => rm(dir, { recursive: true, force: true }));
    // Two uploads at once share the pool; each takes a piece only after a while (a socket still writing it), and
    // asks for the next one only then. A buffer given back earlier would be refilled by the other upload meanwhile.
    const layers = [randomBytes(10 * BLOCK_SIZE), randomBytes(10 * BLOCK_SIZE)];
    const slowly = async (layer: Buffer): Promise<Buffer> => {
      const { path, offset } = await inFile(dir, layer);
      const handle = await open(path);
      try {
        const copies: Buffer[] = [];
        for await (const piece of new GzipPieces(handle, { size: layer.length, offset, origin: path })) {
          for (let i = 0; i < 20; i++) await new Promise((resolve) => setImmediate(resolve));
          copies.push(Buffer.from(piece));
        }
        return gunzipSync(Buffer.concat(copies));
      } finally {
        await handle.close();
      }
    };
    const [a, b] = await Promise.all(layers.map(slowly));
    assert.ok(a!.equals(layers[0]!) && b!.equals(layers[1]!));
  });

  it('says when the consumer has taken every piece, and only then', async (t) => {
    for (const layer of [Buffer.alloc(0), randomBytes(2 * BLOCK_SIZE + 3)]) {
      const { handle, path, offset } = await layerFile(t, layer);
      let allSent = 0;
      const iterator = new GzipPieces(handle, { size: layer.length, offset, origin: path, onAllSent: () => allSent++ })[Symbol.asyncIterator]();
      let pieces = 0;
      while (!(await iterator.next()).done) {
        pieces++;
        assert.equal(allSent, 0, `${layer.length} bytes: piece ${pieces} is out, not yet taken`);
      }
      assert.equal(allSent, 1, `${layer.length} bytes: every piece taken`);
    }
    const layer = randomBytes(2 * BLOCK_SIZE);
    const { handle, path, offset } = await layerFile(t, layer);
    let allSent = 0;
    const cut = new GzipPieces(handle, { size: layer.length, offset, origin: path, onAllSent: () => allSent++ })[Symbol.asyncIterator]();
    await cut.next();
    await cut.return(undefined);
    assert.equal(allSent, 0, 'broken off before the end');
  });

  it('gives a short stored member out in a buffer of its own: a socket may still hold it when the pool reuses buffers', async (t) => {
    // Level 0: every block stored, the last one 100 bytes long.
    const layers = [randomBytes(2 * BLOCK_SIZE + 100), randomBytes(4 * BLOCK_SIZE)];
    const [first, second] = await Promise.all(layers.map((layer) => layerFile(t, layer)));
    const queued: Buffer[] = [];
    const copies: Buffer[] = [];
    for await (const piece of new GzipPieces(first!.handle, { size: layers[0]!.length, offset: first!.offset, origin: first!.path, level: 0 })) {
      copies.push(Buffer.from(piece));
      // As a socket takes pieces: a short one may stay queued, by reference, after the next is asked for.
      if (piece.length < 64 * 1024) queued.push(piece);
    }
    // Another upload takes the pool's stored-member buffers and fills them meanwhile.
    await take(new GzipPieces(second!.handle, { size: layers[1]!.length, offset: second!.offset, origin: second!.path, level: 0 }));
    assert.equal(queued.length, 1);
    assert.deepEqual(queued[0], copies.at(-1), 'the queued last member is still the first layer\'s');
    assert.ok(gunzipSync(Buffer.concat(copies)).equals(layers[0]!));
  });

  it('refuses a layer that is not its diff ID, or shorter than its size, before the last piece is given out', async (t) => {
    const layer = text(2 * BLOCK_SIZE + 100);
    const { handle, path, offset } = await layerFile(t, layer);
    for (const options of [
      { size: layer.length, expected: sha256(Buffer.from('another layer')) },
      // The file ends 1024 bytes after the layer: a size beyond that is a short read.
      { size: layer.length + 5000, expected: sha256(layer) },
    ]) {
      const pieces = new GzipPieces(handle, { ...options, offset, origin: path });
      const given: Buffer[] = [];
      await assert.rejects(
        (async () => {
          for await (const piece of pieces) given.push(Buffer.from(piece));
        })(),
        { code: 'DIGEST_MISMATCH' },
      );
      assert.equal(pieces.failure?.code, 'DIGEST_MISMATCH');
      assert.equal(pieces.digest, undefined);
      assert.ok(given.length < 3, `${given.length} of the 3 members were given out`);
    }
  });

  it('stops reading when its owner stops it, and says it failed only when it did', async (t) => {
    const layer = randomBytes(8 * BLOCK_SIZE);
    const { handle, path, offset } = await layerFile(t, layer);
    const pieces = new GzipPieces(handle, { size: layer.length, offset, origin: path });
    const iterator = pieces[Symbol.asyncIterator]();
    assert.equal((await iterator.next()).done, false);
    await pieces.stop();
    assert.equal((await iterator.next()).done, true);
    assert.equal(pieces.failure, undefined);
  });
});
