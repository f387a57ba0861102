import assert from 'node:assert/strict';
import { Readable } from 'node:stream';
import { buffer } from 'node:stream/consumers';
import { describe, it } from 'node:test';
import * as zlib from 'node:zlib';

import { MediaType, type BlobSource } from '@rxpush/core';

import { assertCompression, compressor, layerCompressionOf, mediaTypeFor, zstdAvailable } from '../src/compression.ts';

const layer = (mediaType: string, form: BlobSource['form'] = 'uncompressed'): BlobSource => ({
  key: 'k',
  role: 'layer',
  mediaType,
  form,
  origin: 'test',
  open: () => Promise.reject(new Error('not read')),
});
const unzstd = (zlib as unknown as { zstdDecompressSync?: (data: Buffer) => Buffer }).zstdDecompressSync;

describe('layer compression', () => {
  it('compresses only uncompressed layers, with gzip unless told otherwise', () => {
    assert.equal(layerCompressionOf(layer(MediaType.ociLayer), undefined), 'gzip');
    assert.equal(layerCompressionOf(layer(MediaType.ociLayer), 'zstd'), 'zstd');
    assert.equal(layerCompressionOf(layer(MediaType.ociLayer), 'none'), false);
    assert.equal(layerCompressionOf(layer(MediaType.ociLayerGzip, 'stored'), 'zstd'), false);
  });

  it('names a zstd layer with the OCI zstd type, whatever its family, and a gzip one in its own family', () => {
    assert.equal(mediaTypeFor(layer(MediaType.dockerLayer), 'zstd'), MediaType.ociLayerZstd);
    assert.equal(mediaTypeFor(layer(MediaType.ociLayer), 'zstd'), MediaType.ociLayerZstd);
    assert.equal(mediaTypeFor(layer(MediaType.dockerLayer), 'gzip'), MediaType.dockerLayerGzip);
    assert.equal(mediaTypeFor(layer(MediaType.dockerLayer), false), MediaType.dockerLayer);
  });

  it('compresses with zstd where Node.js can', { skip: !zstdAvailable && 'this Node.js has no zstd' }, async () => {
    const input = Buffer.from('rxpush '.repeat(10_000));
    const compressed = await buffer(Readable.from([input]).pipe(compressor('zstd')));
    assert.ok(compressed.length < input.length);
    assert.deepEqual(unzstd?.(compressed), input);
    assert.doesNotThrow(() => assertCompression('zstd'));
  });

  it('refuses zstd where Node.js cannot, naming the version it needs', { skip: zstdAvailable && 'this Node.js has zstd' }, () => {
    assert.throws(() => assertCompression('zstd'), { name: 'UnsupportedError', message: /needs Node\.js 22\.15 or newer/ });
    assert.doesNotThrow(() => assertCompression('gzip'));
  });
});
