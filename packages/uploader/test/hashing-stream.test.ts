import assert from 'node:assert/strict';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { Writable } from 'node:stream';
import { describe, it } from 'node:test';

import { sha256Digest } from '@rxpush/core';
import { HashingStream } from '@rxpush/uploader';

const sink = (): Writable => new Writable({ write: (_chunk, _encoding, done) => done() });

describe('HashingStream', () => {
  it('hashes and counts what flows through it', async () => {
    const seen: number[] = [];
    const hasher = new HashingStream({ origin: 'test', onBytes: (n) => seen.push(n) });
    await pipeline(Readable.from([Buffer.from('hello '), Buffer.from('world')]), hasher, sink());
    assert.equal(hasher.digest, sha256Digest('hello world'));
    assert.equal(hasher.bytes, 11);
    assert.deepEqual(seen, [6, 11]);
  });

  it('fails at the end when the bytes do not match the expected digest', async () => {
    const hasher = new HashingStream({ origin: 'blobs/sha256/abc', expected: sha256Digest('other') });
    await assert.rejects(pipeline(Readable.from([Buffer.from('hello')]), hasher, sink()), /blobs\/sha256\/abc does not match its digest/);
    assert.equal(hasher.failure?.code, 'DIGEST_MISMATCH');
  });

  it('fails when the byte count differs from the expected size', async () => {
    const hasher = new HashingStream({ origin: 'layer.tar', expected: sha256Digest('hello'), expectedSize: 4 });
    await assert.rejects(pipeline(Readable.from([Buffer.from('hello')]), hasher, sink()), /layer.tar has 5 bytes, but the image says 4/);
  });

  it('ends its messages with what the source says to do, re-exporting by default', async () => {
    const remedy = 'the registry sent other bytes; copy again';
    const read = (options: ConstructorParameters<typeof HashingStream>[0]) => pipeline(Readable.from([Buffer.from('hello')]), new HashingStream(options), sink());
    await assert.rejects(read({ origin: 'a', expected: sha256Digest('other') }), /^DigestMismatchError: a does not match its digest: expected sha256:[0-9a-f]{64}, read sha256:[0-9a-f]{64}; the source is corrupt, re-export the image$/);
    await assert.rejects(read({ origin: 'b', expected: sha256Digest('other'), remedy }), /^DigestMismatchError: b does not match its digest: expected sha256:[0-9a-f]{64}, read sha256:[0-9a-f]{64}; the registry sent other bytes; copy again$/);
    await assert.rejects(read({ origin: 'c', expectedSize: 4, remedy }), /^DigestMismatchError: c has 5 bytes, but the image says 4; the registry sent other bytes; copy again$/);
  });
});
