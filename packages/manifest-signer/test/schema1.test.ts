import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { describe, it } from 'node:test';

import { MediaType, sha256Digest, type Descriptor } from '@rxpush/core';
import { buildSchema1, EMPTY_LAYER, EMPTY_LAYER_DIGEST, generateSigningKey, parseSchema1, parseSigningKey, signSchema1 } from '@rxpush/manifest-signer';

const sha = (text: string): string => createHash('sha256').update(text).digest('hex');
const layer = (name: string, mediaType: string = MediaType.dockerLayerGzip): Descriptor => ({ mediaType, digest: sha256Digest(name), size: name.length });

// Written the way Docker writes a config: Go's key order and spacing, a shell line with && in it.
const CONFIG = Buffer.from(
  JSON.stringify({
    architecture: 'amd64',
    config: { Env: ['PATH=/bin'], Cmd: ['/bin/sh', '-c', 'a && b'], Labels: { z: '1', a: '2' } },
    created: '2024-05-01T10:00:00.120000000Z',
    history: [
      { created: '2024-05-01T09:00:00Z', created_by: '/bin/sh -c #(nop) ADD file:abc in / ' },
      { created: '2024-05-01T09:30:00.5+00:00', created_by: '/bin/sh -c #(nop) ENV X=<1>', empty_layer: true },
      { created: '2024-05-01T10:00:00Z', created_by: 'RUN a && b', author: 'me', comment: 'c' },
    ],
    os: 'linux',
    rootfs: { type: 'layers', diff_ids: ['sha256:' + sha('d1'), 'sha256:' + sha('d2')] },
  }),
);
const LAYERS = [layer('one'), layer('two')];

describe('Docker schema 1 manifests', () => {
  it("builds fsLayers and history top first, with v1 IDs chained from the layers as Docker's builder does", () => {
    const { payload, digest, needsEmptyLayer } = buildSchema1(CONFIG, LAYERS, { name: 'library/app', tag: '1.0' });
    assert.equal(digest, sha256Digest(payload));
    assert.equal(needsEmptyLayer, true);
    const manifest = JSON.parse(payload.toString()) as { schemaVersion: number; name: string; tag: string; architecture: string; fsLayers: { blobSum: string }[]; history: { v1Compatibility: string }[] };
    assert.deepEqual(Object.keys(manifest), ['schemaVersion', 'name', 'tag', 'architecture', 'fsLayers', 'history']);
    assert.equal(manifest.schemaVersion, 1);
    assert.equal(manifest.name, 'library/app');
    assert.equal(manifest.tag, '1.0');
    assert.deepEqual(manifest.fsLayers.map((l) => l.blobSum), [LAYERS[1]!.digest, EMPTY_LAYER_DIGEST, LAYERS[0]!.digest]);

    const [top, empty, base] = manifest.history.map((h) => h.v1Compatibility);
    const baseId = sha(`${LAYERS[0]!.digest.slice(7)} `);
    const emptyId = sha(`${EMPTY_LAYER_DIGEST.slice(7)} ${baseId}`);
    assert.equal(base, `{"id":"${baseId}","created":"2024-05-01T09:00:00Z","container_config":{"Cmd":["/bin/sh -c #(nop) ADD file:abc in / "]}}`);
    assert.equal(
      empty,
      `{"id":"${emptyId}","parent":"${baseId}","created":"2024-05-01T09:30:00.5Z","container_config":{"Cmd":["/bin/sh -c #(nop) ENV X=\\u003c1\\u003e"]},"throwaway":true}`,
    );
    const topId = sha(`${LAYERS[1]!.digest.slice(7)} ${emptyId} ${CONFIG.toString()}`);
    // The config itself, keys sorted, rootfs and history gone, nested members kept in their order, & escaped as Go does.
    assert.equal(
      top,
      `{"architecture":"amd64","config":{"Env":["PATH=/bin"],"Cmd":["/bin/sh","-c","a \\u0026\\u0026 b"],"Labels":{"z":"1","a":"2"}},"created":"2024-05-01T10:00:00.120000000Z","id":"${topId}","os":"linux","parent":"${emptyId}"}`,
    );
  });

  it("is indented with three spaces, as Go's MarshalIndent(m, \"\", \"   \") writes it", () => {
    const { payload } = buildSchema1(CONFIG, LAYERS, { name: 'app', tag: 'x' });
    assert.match(payload.toString(), /^\{\n {3}"schemaVersion": 1,\n {3}"name": "app",\n {3}"tag": "x",\n {3}"architecture": "amd64",\n {3}"fsLayers": \[\n {6}\{\n {9}"blobSum": /);
    assert.match(payload.toString(), /\n {3}\]\n\}$/);
  });

  it('reads a config without history as one entry per layer', () => {
    const bare = Buffer.from(JSON.stringify({ architecture: 'arm64', created: '2020-01-01T00:00:00Z', rootfs: { type: 'layers', diff_ids: [] } }));
    const { payload, needsEmptyLayer } = buildSchema1(bare, LAYERS, { name: 'app', tag: 'x' });
    assert.equal(needsEmptyLayer, false);
    assert.equal((JSON.parse(payload.toString()) as { history: unknown[] }).history.length, 2);
  });

  it('refuses a history that does not name the layers, and layers schema 1 cannot name', () => {
    assert.throws(() => buildSchema1(CONFIG, [layer('one')], { name: 'app', tag: 'x' }), /history names 2 layer\(s\) but the image has 1.*--format docker/);
    assert.throws(() => buildSchema1(CONFIG, [layer('one'), layer('two', MediaType.ociLayerZstd)], { name: 'app', tag: 'x' }), /cannot be named by a schema 1 manifest.*--format oci/);
  });

  it('knows the bytes of the empty layer by their digest', () => {
    assert.equal(sha256Digest(EMPTY_LAYER), EMPTY_LAYER_DIGEST);
  });
});

describe('schema 1 JWS signatures (libtrust)', () => {
  const key = parseSigningKey(generateSigningKey().privatePem);
  const { payload, digest } = buildSchema1(CONFIG, LAYERS, { name: 'app', tag: '1.0' });

  it('splices the signatures in before the closing brace, pretty as libtrust writes them, and keeps the payload digest', async () => {
    const signed = await signSchema1(payload, key, new Date('2024-06-01T12:00:00.789Z'));
    assert.equal(signed.mediaType, MediaType.dockerSchema1Signed);
    assert.equal(signed.digest, digest);
    const text = Buffer.from(signed.bytes).toString();
    const head = payload.toString().replace(/\n\}$/, '');
    assert.ok(text.startsWith(`${head},\n   "signatures": [\n      {\n         "header": {\n            "jwk": {\n               "crv": "P-256",\n               "kid": "${key.keyId}",\n               "kty": "EC",\n               "x": "`));
    assert.match(text, /\n {12}\},\n {12}"alg": "ES256"\n {9}\},\n {9}"signature": "[\w-]+",\n {9}"protected": "[\w-]+"\n {6}\}\n {3}\]\n\}$/);
    const document = JSON.parse(text) as { signatures: { protected: string }[] };
    const header = JSON.parse(Buffer.from(document.signatures[0]!.protected, 'base64url').toString()) as Record<string, unknown>;
    assert.deepEqual(Object.keys(header), ['formatLength', 'formatTail', 'time']);
    assert.equal(header['formatLength'], payload.length - 2);
    assert.equal(Buffer.from(header['formatTail'] as string, 'base64url').toString(), '\n}');
    assert.equal(header['time'], '2024-06-01T12:00:00Z');
  });

  it('verifies its own signature, and no longer once the payload is changed', async () => {
    const signed = await signSchema1(payload, key);
    const parsed = await parseSchema1(signed.bytes);
    assert.equal(parsed.digest, digest);
    assert.equal(parsed.name, 'app');
    assert.deepEqual(parsed.signatures.map((s) => [s.keyId, s.valid]), [[key.keyId, true]]);
    const tampered = Buffer.from(Buffer.from(signed.bytes).toString().replace('"tag": "1.0"', '"tag": "2.0"'));
    assert.deepEqual((await parseSchema1(tampered)).signatures.map((s) => s.valid), [false]);
  });

  it('signs with RS256 for an RSA key', async () => {
    const { generateKeyPairSync } = await import('node:crypto');
    const rsa = parseSigningKey(generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey.export({ format: 'pem', type: 'pkcs1' }).toString());
    const signed = await signSchema1(payload, rsa);
    const parsed = await parseSchema1(signed.bytes);
    assert.deepEqual(parsed.signatures.map((s) => [s.algorithm, s.valid]), [['RS256', true]]);
    assert.match(Buffer.from(signed.bytes).toString(), /"jwk": \{\n {15}"e": "AQAB",\n {15}"kid": "[A-Z2-7:]+",\n {15}"kty": "RSA",\n {15}"n": /);
  });
});
