import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import { describe, it, type TestContext } from 'node:test';

import { MediaType, NotSignedError, sha256Digest, VerifyError, type Digest, type ManifestEvent, type PushEvent } from '@rxpush/core';
import {
  buildSchema1,
  generateSigningKey,
  parseSigningKey,
  parseVerifyKey,
  signManifests,
  signSchema1,
  verifyImage,
  verifyPayload,
} from '@rxpush/manifest-signer';
import { RegistryClient } from '@rxpush/registry-client';
import { from, lastValueFrom, Subject, toArray, type Observable } from 'rxjs';
import { MockAgent } from 'undici';

const ORIGIN = 'https://registry.example';
const stream = (...events: PushEvent[]): Observable<PushEvent> => from(events);
const key = parseSigningKey(generateSigningKey().privatePem, { origin: 'k.pem' });

/** The few endpoints signing and verifying use, kept in memory behind a MockAgent. */
function registry(t: TestContext, options: { referrers?: boolean; failSigPut?: boolean } = {}) {
  const agent = new MockAgent();
  agent.disableNetConnect();
  t.after(() => agent.close());
  const blobs = new Map<string, Buffer>();
  const manifests = new Map<string, { bytes: Buffer; type: string }>();
  const puts: string[] = [];
  const pool = agent.get(ORIGIN);
  pool.intercept({ method: 'GET', path: '/v2/' }).reply(200, '').persist();
  pool
    .intercept({ method: 'HEAD', path: (p) => /^\/v2\/app\/blobs\//.test(p) })
    .reply((req) => {
      const found = blobs.get(req.path.split('/').pop()!);
      return found ? { statusCode: 200, data: '', responseOptions: { headers: { 'content-length': String(found.length) } } } : { statusCode: 404, data: '' };
    })
    .persist();
  pool
    .intercept({ method: 'GET', path: (p) => /^\/v2\/app\/blobs\/sha256:/.test(p) })
    .reply((req) => ({ statusCode: blobs.has(req.path.split('/').pop()!) ? 200 : 404, data: blobs.get(req.path.split('/').pop()!) ?? '' }))
    .persist();
  pool.intercept({ method: 'POST', path: '/v2/app/blobs/uploads/' }).reply(202, '', { headers: { location: '/v2/app/blobs/uploads/session' } }).persist();
  pool
    .intercept({ method: 'PUT', path: (p) => p.startsWith('/v2/app/blobs/uploads/session') })
    .reply((req) => {
      const digest = new URL(req.path, ORIGIN).searchParams.get('digest')!;
      blobs.set(digest, Buffer.from(req.body as Uint8Array));
      return { statusCode: 201, data: '', responseOptions: { headers: { 'docker-content-digest': digest } } };
    })
    .persist();
  const manifestPath = (p: string): boolean => p.startsWith('/v2/app/manifests/');
  pool
    .intercept({ method: 'PUT', path: manifestPath })
    .reply((req) => {
      puts.push(req.path);
      if (options.failSigPut === true && req.path.endsWith('.sig')) return { statusCode: 403, data: '{"errors":[{"code":"DENIED","message":"read only"}]}' };
      const bytes = Buffer.from(req.body as Uint8Array);
      const type = (req.headers as Record<string, string>)['content-type']!;
      const digest = sha256Digest(bytes);
      manifests.set(req.path.split('/').pop()!, { bytes, type });
      manifests.set(digest, { bytes, type });
      return { statusCode: 201, data: '', responseOptions: { headers: { 'docker-content-digest': digest } } };
    })
    .persist();
  for (const method of ['HEAD', 'GET'] as const) {
    pool
      .intercept({ method, path: manifestPath })
      .reply((req) => {
        const found = manifests.get(req.path.split('/').pop()!);
        if (found === undefined) return { statusCode: 404, data: '' };
        const headers = { 'content-type': found.type, 'content-length': String(found.bytes.length), 'docker-content-digest': sha256Digest(found.bytes) };
        return { statusCode: 200, data: method === 'GET' ? found.bytes : '', responseOptions: { headers } };
      })
      .persist();
  }
  pool
    .intercept({ method: 'GET', path: (p) => p.startsWith('/v2/app/referrers/') })
    .reply(() =>
      options.referrers === true
        ? { statusCode: 200, data: JSON.stringify({ schemaVersion: 2, mediaType: MediaType.ociIndex, manifests: [] }), responseOptions: { headers: { 'content-type': MediaType.ociIndex } } }
        : { statusCode: 404, data: '' },
    )
    .persist();
  return { client: new RegistryClient({ registry: 'registry.example', dispatcher: agent }), blobs, manifests, puts };
}

function manifestEvent(tags: readonly string[], extra: Partial<ManifestEvent> = {}): ManifestEvent {
  const bytes = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: MediaType.ociManifest, layers: [], tags }));
  return { type: 'manifest', source: 'oci:test', tags, mediaType: MediaType.ociManifest, digest: sha256Digest(bytes), bytes, ...extra };
}
const pushedEvent = (event: ManifestEvent, tag: string): PushEvent => ({
  type: 'manifest-pushed',
  registry: 'registry.example',
  repository: 'app',
  tag,
  digest: event.digest,
  size: event.bytes.byteLength,
  mediaType: event.mediaType,
});

describe('signManifests', () => {
  it('signs each pushed manifest and holds its manifest-pushed events until the signature is in', async (t) => {
    const { client, blobs, manifests } = registry(t);
    const manifest = manifestEvent(['1.0', 'latest']);
    const source = new Subject<PushEvent>();
    const result = lastValueFrom(source.pipe(signManifests({ client, repository: 'app', key }), toArray()));
    source.next(manifest);
    source.next(pushedEvent(manifest, '1.0'));
    source.next(pushedEvent(manifest, 'latest'));
    source.complete();
    const events = await result;
    assert.deepEqual(events.map((e) => e.type), ['manifest', 'signed-manifest', 'manifest-pushed', 'manifest-pushed']);
    const signed = events[1];
    assert.ok(signed?.type === 'signed-manifest');
    assert.equal(signed.digest, manifest.digest);
    assert.equal(signed.keyId, key.keyId);
    assert.deepEqual(signed.tags, ['1.0', 'latest']);
    assert.equal(signed.signatureTag, `${manifest.digest.replace(':', '-')}.sig`);
    const stored = manifests.get(signed.signatureTag!)!;
    assert.equal(sha256Digest(stored.bytes), signed.signature);
    const layer = (JSON.parse(stored.bytes.toString()) as { layers: { digest: Digest; annotations: Record<string, string> }[] }).layers[0]!;
    assert.ok(verifyPayload(blobs.get(layer.digest)!, layer.annotations['dev.cosignproject.cosign/signature']!, key));
  });

  it('works alone on a stream of manifest events, and signs a digest once however often it comes', async (t) => {
    const { client, puts } = registry(t);
    const manifest = manifestEvent(['a']);
    const events = await lastValueFrom(stream(manifest, manifest).pipe(signManifests({ client, repository: 'app', key }), toArray()));
    // The second passes on at once: only the first is signed.
    assert.deepEqual(events.map((e) => e.type).sort(), ['manifest', 'manifest', 'signed-manifest']);
    assert.equal(puts.filter((p) => p.endsWith('.sig')).length, 1);
  });

  it("leaves an index's children and schema 1 manifests alone, and signs children with signChildren", async (t) => {
    const { client } = registry(t);
    const child = manifestEvent([], { child: true });
    const schema1 = manifestEvent(['old'], { mediaType: MediaType.dockerSchema1Signed });
    const plain = await lastValueFrom(stream(child, schema1).pipe(signManifests({ client, repository: 'app', key }), toArray()));
    assert.deepEqual(plain.map((e) => e.type), ['manifest', 'manifest']);
    const all = await lastValueFrom(stream(child).pipe(signManifests({ client, repository: 'app', key, signChildren: true }), toArray()));
    assert.deepEqual(all.map((e) => e.type), ['manifest', 'signed-manifest']);
  });

  it('also attaches the signature as an OCI 1.1 referrer where the registry keeps referrers', async (t) => {
    const { client, manifests } = registry(t, { referrers: true });
    const manifest = manifestEvent(['1.0']);
    const events = await lastValueFrom(stream(manifest).pipe(signManifests({ client, repository: 'app', key }), toArray()));
    const signed = events.find((e) => e.type === 'signed-manifest');
    assert.ok(signed?.type === 'signed-manifest' && signed.referrer !== undefined);
    const referrer = JSON.parse(manifests.get(signed.referrer)!.bytes.toString()) as { artifactType: string; subject: { digest: string; mediaType: string; size: number } };
    assert.equal(referrer.artifactType, 'application/vnd.dev.cosign.artifact.sig.v1+json');
    assert.deepEqual(referrer.subject, { mediaType: manifest.mediaType, digest: manifest.digest, size: manifest.bytes.byteLength });
    // The tag scheme is written as well: it is where cosign looks first.
    assert.ok(manifests.has(signed.signatureTag!));
  });

  it('fails with NotSignedError, saying the image IS pushed, when the signature cannot be stored', async (t) => {
    const { client } = registry(t, { failSigPut: true });
    const manifest = manifestEvent(['1.0']);
    await assert.rejects(lastValueFrom(stream(manifest, pushedEvent(manifest, '1.0')).pipe(signManifests({ client, repository: 'app', key }), toArray())), (error: unknown) => {
      assert.ok(error instanceof NotSignedError);
      assert.equal(error.code, 'NOT_SIGNED');
      assert.match(error.message, new RegExp(`^the image IS pushed \\(${manifest.digest}\\) but NOT signed: pushing its signature to app:sha256-[a-f0-9]{64}\\.sig failed: .*403`));
      return true;
    });
  });

  it('refuses an Ed25519 key up front', () => {
    const ed = parseSigningKey(generateKeyPairSync('ed25519').privateKey.export({ format: 'pem', type: 'pkcs8' }).toString());
    assert.throws(() => signManifests({ client: {} as RegistryClient, repository: 'app', key: ed }), /Ed25519/);
  });
});

describe('verifyImage of a schema 1 manifest', () => {
  it("verifies the JWS of a registry that keeps the pusher's signature, and names the key of one that does not", async (t) => {
    const { client, manifests } = registry(t);
    const config = Buffer.from(JSON.stringify({ architecture: 'amd64', history: [{ created: '2020-01-01T00:00:00Z' }], rootfs: { type: 'layers', diff_ids: ['sha256:' + 'a'.repeat(64)] } }));
    const layers = [{ mediaType: MediaType.dockerLayerGzip, digest: sha256Digest('layer'), size: 5 }];
    const signed = await signSchema1(buildSchema1(config, layers, { name: 'app', tag: '1.0' }).payload, key);
    manifests.set('1.0', { bytes: Buffer.from(signed.bytes), type: MediaType.dockerSchema1Signed });
    const result = await verifyImage({ client, repository: 'app', reference: '1.0', key: parseVerifyKey(key.publicKey.export({ format: 'pem', type: 'spki' }).toString()) });
    assert.deepEqual(result.signatures.map((s) => [s.scheme, s.keyId]), [['schema1', key.keyId]]);

    const other = parseSigningKey(generateSigningKey().privatePem);
    await assert.rejects(verifyImage({ client, repository: 'app', reference: '1.0', key: other }), (error: unknown) => {
      assert.ok(error instanceof VerifyError);
      assert.equal(error.reason, 'other-key');
      assert.match(error.message, new RegExp(`its schema 1 JWS is by ${key.keyId}`));
      return true;
    });
  });
});
