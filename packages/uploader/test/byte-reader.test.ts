import assert from 'node:assert/strict';
import { Readable } from 'node:stream';
import { buffer } from 'node:stream/consumers';
import { describe, it } from 'node:test';

import { ByteReader } from '../src/byte-reader.ts';

const bytes = Buffer.from(Array.from({ length: 100 }, (_, i) => i));
/** The bytes in pieces of 7, so chunk boundaries never line up with them. */
const source = (): Readable => Readable.from(Array.from({ length: 15 }, (_, i) => bytes.subarray(i * 7, i * 7 + 7)));

const ANSWER = { method: 'GET', url: 'https://r.example/v2/app/blobs/uploads/1', status: 204 };

describe('ByteReader', () => {
  it('splits a stream into streams of exact lengths across piece boundaries', async () => {
    const reader = new ByteReader(source(), 'test.bin');
    const chunks = [];
    for (const length of [30, 30, 30, 10]) chunks.push(await buffer(reader.take(length)));
    assert.deepEqual(chunks.map((c) => c.length), [30, 30, 30, 10]);
    assert.deepEqual(Buffer.concat(chunks), bytes);
    await reader.end();
  });

  it('skips what the registry already holds, then goes on from there', async () => {
    const reader = new ByteReader(source(), 'test.bin');
    await reader.skip(45, ANSWER);
    assert.deepEqual(await buffer(reader.take(55)), bytes.subarray(45));
    await reader.end();
  });

  it('gathers up to a chunk of a stream of unknown length, the last one shorter', async () => {
    const reader = new ByteReader(source(), 'test.bin');
    const sizes = [];
    for (let chunk = await reader.gather(32); chunk.length > 0; chunk = await reader.gather(32)) sizes.push(chunk.length);
    assert.deepEqual(sizes, [32, 32, 32, 4]);
  });

  it('fails a chunk when the source ends before its recorded size', async () => {
    const reader = new ByteReader(source(), 'test.bin');
    await assert.rejects(buffer(reader.take(120)), /test\.bin ended 20 bytes before its recorded size/);
  });

  it('fails at the end when the source is longer than its recorded size', async () => {
    const reader = new ByteReader(source(), 'test.bin');
    await buffer(reader.take(99));
    await assert.rejects(reader.end(), /test\.bin is longer than its recorded size/);
  });

  it('fails a skip past the end of the source', async () => {
    const reader = new ByteReader(source(), 'test.bin');
    await assert.rejects(reader.skip(150, ANSWER), /^InvalidResponseError: GET https:\/\/r\.example\/v2\/app\/blobs\/uploads\/1 → 204 with a Range of 150 bytes of test\.bin, which has only 100/);
  });
});
