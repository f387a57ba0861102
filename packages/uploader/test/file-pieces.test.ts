import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtemp, open, rm, writeFile, type FileHandle } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, describe, it } from 'node:test';

import { sha256Digest } from '@rxpush/core';
import { FilePieces, PiecePool } from '@rxpush/uploader';

const PIECE = 64 * 1024;

describe('FilePieces', () => {
  let dir: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'rxpush-pieces-'));
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  /** A file of `size` random bytes, opened; closed after the test. */
  const file = async (name: string, size: number): Promise<{ path: string; bytes: Buffer; handle: FileHandle }> => {
    const path = join(dir, name);
    const bytes = randomBytes(size);
    await writeFile(path, bytes);
    return { path, bytes, handle: await open(path) };
  };

  /** Iterates as the registry client's body contract says: each piece is done with before the next is asked for. */
  const collect = async (pieces: AsyncIterable<Buffer>): Promise<Buffer[]> => {
    const copies: Buffer[] = [];
    for await (const piece of pieces) copies.push(Buffer.from(piece));
    return copies;
  };

  it('yields the file in whole pieces, the last one shorter, and counts the bytes', async () => {
    const { bytes, handle } = await file('whole', 3 * PIECE + 1000);
    try {
      const counts: number[] = [];
      const pieces = await collect(new FilePieces(handle, { size: bytes.length, expected: sha256Digest(bytes), origin: 'whole', pieceSize: PIECE, onBytes: (n) => counts.push(n) }));
      assert.deepEqual(pieces.map((p) => p.length), [PIECE, PIECE, PIECE, 1000]);
      assert.deepEqual(Buffer.concat(pieces), bytes);
      assert.deepEqual(counts, [PIECE, 2 * PIECE, 3 * PIECE, bytes.length]);
    } finally {
      await handle.close();
    }
  });

  it('counts a piece once the consumer has taken it, and says when it has taken every one', async () => {
    const { bytes, handle } = await file('taken', 2 * PIECE + 10);
    try {
      const counts: number[] = [];
      let allSent = 0;
      const pool = new PiecePool(PIECE, 4);
      const options = { size: bytes.length, expected: sha256Digest(bytes), origin: 'taken', pieceSize: PIECE, pool };
      const iterator = new FilePieces(handle, { ...options, onBytes: (n) => counts.push(n), onAllSent: () => allSent++ })[Symbol.asyncIterator]();
      assert.equal((await iterator.next()).done, false);
      assert.deepEqual(counts, [], 'the first piece is given out, not yet taken');
      await iterator.next();
      await iterator.next();
      assert.deepEqual(counts, [PIECE, 2 * PIECE]);
      assert.equal(allSent, 0, 'the last piece is out, but not yet taken');
      assert.equal(pool.spare, 0);
      assert.equal((await iterator.next()).done, true);
      assert.deepEqual(counts, [PIECE, 2 * PIECE, bytes.length]);
      assert.equal(allSent, 1);
      assert.equal(pool.spare, 2, 'the buffers are back in the pool when it says so');

      // Broken off before the end: never all sent, and the buffers stay with the collector.
      const cut = new FilePieces(handle, { ...options, onAllSent: () => allSent++ })[Symbol.asyncIterator]();
      await cut.next();
      await cut.return(undefined);
      assert.equal(allSent, 1);
      assert.equal(pool.spare, 0, 'it took the two buffers and gave none back');
    } finally {
      await handle.close();
    }
  });

  it('gives a short last piece out as a copy: a socket may still hold it when its buffer is back in the pool', async () => {
    const first = await file('short-last-1', 2 * PIECE + 100);
    const second = await file('short-last-2', 2 * PIECE);
    try {
      const pool = new PiecePool(PIECE, 4);
      // As a socket takes pieces: one at least 64 KiB long is written out before the next is asked for; a shorter one
      // may stay queued, by reference, until later.
      const queued: Buffer[] = [];
      for await (const piece of new FilePieces(first.handle, { size: first.bytes.length, expected: sha256Digest(first.bytes), origin: 'short-last', pieceSize: PIECE, pool })) {
        if (piece.length < 64 * 1024) queued.push(piece);
      }
      assert.equal(pool.spare, 2);
      // Another upload refills the pool's buffers meanwhile.
      for await (const piece of new FilePieces(second.handle, { size: second.bytes.length, expected: sha256Digest(second.bytes), origin: 'short-last', pieceSize: PIECE, pool })) void piece;
      assert.equal(queued.length, 1);
      assert.deepEqual(queued[0], first.bytes.subarray(2 * PIECE), 'the queued last piece is still the first file\'s');
    } finally {
      await first.handle.close();
      await second.handle.close();
    }
  });

  it('reads into two buffers, taking turns', async () => {
    const { bytes, handle } = await file('turns', 5 * PIECE);
    try {
      const memory: ArrayBufferLike[] = [];
      for await (const piece of new FilePieces(handle, { size: bytes.length, expected: sha256Digest(bytes), origin: 'turns', pieceSize: PIECE })) {
        memory.push(piece.buffer);
      }
      assert.equal(new Set(memory).size, 2);
      assert.deepEqual(memory.slice(2), memory.slice(0, 3));
      assert.notEqual(memory[0], memory[1]);
    } finally {
      await handle.close();
    }
  });

  it('never reads into the piece a consumer holds, though it reads the next one ahead', async () => {
    const { bytes, handle } = await file('held', 4 * PIECE);
    try {
      const iterator = new FilePieces(handle, { size: bytes.length, expected: sha256Digest(bytes), origin: 'held', pieceSize: PIECE })[Symbol.asyncIterator]();
      for (let index = 0; index < 4; index++) {
        const { value: piece } = await iterator.next();
        assert.ok(piece);
        const copy = Buffer.from(piece);
        // The read ahead of the next piece is under way meanwhile (and a slow consumer lets it finish).
        await sleep(20);
        assert.deepEqual(piece, copy, `piece ${index} changed while it was held`);
        assert.deepEqual(piece, bytes.subarray(index * PIECE, (index + 1) * PIECE));
      }
      assert.equal((await iterator.next()).done, true);
    } finally {
      await handle.close();
    }
  });

  it('takes its buffers from the pool and gives them back once every piece was taken, for the next file', async () => {
    const first = await file('pooled-1', 3 * PIECE);
    const second = await file('pooled-2', 3 * PIECE);
    try {
      const pool = new PiecePool(PIECE, 4);
      const memory = async (handle: FileHandle, bytes: Buffer): Promise<{ pieces: FilePieces; seen: Set<ArrayBufferLike> }> => {
        const pieces = new FilePieces(handle, { size: bytes.length, expected: sha256Digest(bytes), origin: 'pooled', pieceSize: PIECE, pool });
        const seen = new Set<ArrayBufferLike>();
        const copies: Buffer[] = [];
        for await (const piece of pieces) {
          seen.add(piece.buffer);
          copies.push(Buffer.from(piece));
        }
        assert.deepEqual(Buffer.concat(copies), bytes);
        return { pieces, seen };
      };
      const one = await memory(first.handle, first.bytes);
      assert.equal(pool.spare, 2, 'both buffers went back once every piece was taken');
      await one.pieces.stop();
      assert.equal(pool.spare, 2, 'nothing is given twice');
      const two = await memory(second.handle, second.bytes);
      assert.equal(two.seen.size, 2);
      assert.ok([...two.seen].every((memory) => one.seen.has(memory)), "the second file was read into the first one's buffers");
    } finally {
      await first.handle.close();
      await second.handle.close();
    }
  });

  it('keeps no more spare buffers than its max, and none of another size', () => {
    const pool = new PiecePool(PIECE, 2);
    const buffers = [pool.take(), pool.take(), pool.take()];
    for (const buffer of buffers) pool.give(buffer);
    pool.give(Buffer.alloc(10));
    assert.equal(pool.spare, 2);
    assert.equal(pool.take().length, PIECE);
  });

  it('gives a blob smaller than a piece buffers of its own size', async () => {
    const { bytes, handle } = await file('small', 1728);
    try {
      const memory: number[] = [];
      for await (const piece of new FilePieces(handle, { size: bytes.length, expected: sha256Digest(bytes), origin: 'small' })) memory.push(piece.buffer.byteLength);
      assert.deepEqual(memory, [1728]);
    } finally {
      await handle.close();
    }
  });

  it('reads an empty blob as no pieces', async () => {
    const { handle } = await file('empty', 0);
    try {
      assert.deepEqual(await collect(new FilePieces(handle, { size: 0, expected: sha256Digest(''), origin: 'empty' })), []);
    } finally {
      await handle.close();
    }
  });

  it('does not give out the last piece of a file that does not match its digest', async () => {
    const { bytes, handle } = await file('mismatch', 2 * PIECE + 10);
    try {
      const pieces = new FilePieces(handle, { size: bytes.length, expected: sha256Digest('other'), origin: 'blobs/sha256/abc', pieceSize: PIECE });
      const seen: number[] = [];
      await assert.rejects(
        (async () => {
          for await (const piece of pieces) seen.push(piece.length);
        })(),
        /blobs\/sha256\/abc does not match its digest/,
      );
      assert.deepEqual(seen, [PIECE, PIECE]);
      assert.equal(pieces.failure?.code, 'DIGEST_MISMATCH');
    } finally {
      await handle.close();
    }
  });

  it('fails on a file shorter than the blob, and reads a longer one only to the size', async () => {
    const short = await file('short', 2 * PIECE);
    const long = await file('long', 2 * PIECE + 1);
    try {
      const expected = sha256Digest(short.bytes);
      await assert.rejects(collect(new FilePieces(short.handle, { size: 3 * PIECE, expected, origin: 'short', pieceSize: PIECE })), /short has 131072 bytes, but the image says 196608/);
      const blob = long.bytes.subarray(0, 2 * PIECE);
      const pieces = await collect(new FilePieces(long.handle, { size: blob.length, expected: sha256Digest(blob), origin: 'long', pieceSize: PIECE }));
      assert.deepEqual(Buffer.concat(pieces), blob);
    } finally {
      await short.handle.close();
      await long.handle.close();
    }
  });

  it('names the file when it cannot be read', async () => {
    const { bytes, handle } = await file('closed', PIECE);
    await handle.close();
    const pieces = new FilePieces(handle, { size: bytes.length, expected: sha256Digest(bytes), origin: 'blobs/closed' });
    await assert.rejects(collect(pieces), /^InvalidSourceError: cannot read blobs\/closed: /);
    assert.equal(pieces.failure?.name, 'InvalidSourceError');
  });

  it('reads nothing more once stopped, and stop() waits for the read in flight', async () => {
    const { path, bytes, handle } = await file('stopped', 4 * PIECE);
    let reads = 0;
    let inFlight = 0;
    // A handle whose reads take a while, to stop in the middle of one.
    const slow = {
      read: async (buffer: Buffer, offset: number, length: number, position: number) => {
        reads++;
        inFlight++;
        await sleep(10);
        inFlight--;
        return handle.read(buffer, offset, length, position);
      },
    } as unknown as FileHandle;
    try {
      const pieces = new FilePieces(slow, { size: bytes.length, expected: sha256Digest(bytes), origin: path, pieceSize: PIECE });
      const iterator = pieces[Symbol.asyncIterator]();
      await iterator.next();
      // The second piece is being read ahead now.
      await pieces.stop();
      assert.equal(inFlight, 0);
      const before = reads;
      await iterator.return(undefined);
      await sleep(30);
      assert.equal(reads, before);
      assert.equal(pieces.failure, undefined, 'stopping is no failure of the file');
    } finally {
      await handle.close();
    }
  });

  it('is iterated once, and refuses pieces smaller than a socket takes at once', async () => {
    const { bytes, handle } = await file('once', 10);
    try {
      const pieces = new FilePieces(handle, { size: 10, expected: sha256Digest(bytes), origin: 'once' });
      await collect(pieces);
      await assert.rejects(collect(pieces), /iterated once/);
      assert.throws(() => new FilePieces(handle, { size: 10, expected: sha256Digest(bytes), origin: 'once', pieceSize: 1024 }), RangeError);
    } finally {
      await handle.close();
    }
  });
});
