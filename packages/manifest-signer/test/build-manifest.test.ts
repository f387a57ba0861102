import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import { MediaType, sha256Digest, type BlobSource, type Descriptor, type Digest, type ImageRecord } from '@rxpush/core';
import { buildManifest, convertMediaType } from '@rxpush/manifest-signer';

const digestOf = (text: string): Digest => sha256Digest(text);

function blob(key: string, role: 'config' | 'layer', mediaType: string): BlobSource {
  return { key, role, mediaType, digest: key as Digest, size: 10, form: 'stored', origin: key, open: () => Promise.reject(new Error('not read')) };
}

function ociImage(withManifest: boolean): { image: ImageRecord; descriptors: Map<string, Descriptor> } {
  const config = blob(digestOf('config'), 'config', MediaType.ociConfig);
  const layer = blob(digestOf('layer'), 'layer', MediaType.ociLayerGzip);
  const descriptors = new Map<string, Descriptor>([
    [config.key, { mediaType: config.mediaType, digest: config.key as Digest, size: 10 }],
    [layer.key, { mediaType: layer.mediaType, digest: layer.key as Digest, size: 10 }],
  ]);
  const stored = Buffer.from(
    JSON.stringify({ schemaVersion: 2, mediaType: MediaType.ociManifest, config: descriptors.get(config.key), layers: [descriptors.get(layer.key)] }),
  );
  const image: ImageRecord = {
    kind: 'image',
    source: 'oci:test',
    tags: ['latest'],
    config,
    layers: { kind: 'list', layers: [layer] },
    ...(withManifest && { manifest: { bytes: stored, mediaType: MediaType.ociManifest, digest: sha256Digest(stored) } }),
  };
  return { image, descriptors };
}

describe('buildManifest', () => {
  it('reuses the stored manifest byte for byte when nothing changes', () => {
    const { image, descriptors } = ociImage(true);
    const built = buildManifest(image, (key) => descriptors.get(key)!);
    assert.equal(built, image.manifest);
  });

  it('rewrites media types to Docker schema 2 when asked', () => {
    const { image, descriptors } = ociImage(true);
    const built = buildManifest(image, (key) => descriptors.get(key)!, 'docker');
    const json = JSON.parse(Buffer.from(built.bytes).toString());
    assert.equal(built.mediaType, MediaType.dockerManifest);
    assert.equal(json.mediaType, MediaType.dockerManifest);
    assert.equal(json.config.mediaType, MediaType.dockerConfig);
    assert.equal(json.layers[0].mediaType, MediaType.dockerLayerGzip);
    assert.equal(built.digest, sha256Digest(built.bytes));
  });

  it('builds a manifest when the source has none, in Docker format by default', () => {
    const { image, descriptors } = ociImage(false);
    const built = buildManifest(image, (key) => descriptors.get(key)!);
    assert.equal(built.mediaType, MediaType.dockerManifest);
  });

  it('refuses zstd layers in a Docker manifest with a hint', () => {
    assert.throws(() => convertMediaType(MediaType.ociLayerZstd, 'docker'), /no Docker schema 2 equivalent; push with --format oci/);
  });

  it('keeps media types it does not know when the format stays', () => {
    assert.equal(convertMediaType('application/vnd.example.thing', 'oci'), 'application/vnd.example.thing');
  });
});
