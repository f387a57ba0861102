import assert from 'node:assert/strict';
import { describe, it, type TestContext } from 'node:test';

import { MediaType, sha256Digest, type Digest } from '@rxpush/core';
import { MockAgent } from 'undici';

import { RegistryClient } from '../src/index.ts';
import { referrerOf, referrersTagOf } from '../src/referrers.ts';

const ORIGIN = 'https://registry.example';
const subject: Digest = `sha256:${'ab'.repeat(32)}`;
const TAG = `sha256-${'ab'.repeat(32)}`;

/** An OCI artifact manifest that refers to `subject`. */
function artifact(extra: object = {}): Buffer {
  return Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: MediaType.ociManifest,
      artifactType: 'application/spdx+json',
      config: { mediaType: 'application/vnd.oci.empty.v1+json', digest: `sha256:${'44'.repeat(32)}`, size: 2 },
      layers: [],
      subject: { mediaType: MediaType.ociManifest, digest: subject, size: 1234 },
      annotations: { 'org.example.kind': 'sbom' },
      ...extra,
    }),
  );
}

interface Answer {
  status: number;
  body?: string;
  headers?: Record<string, string>;
}

/** A client whose requests go to a MockAgent; `on` answers one request and records its body. */
function setup(t: TestContext) {
  const agent = new MockAgent();
  agent.disableNetConnect();
  t.after(() => agent.close());
  const seen: { method: string; path: string; body: string }[] = [];
  const on = (method: string, path: string, reply: (body: string) => Answer) => {
    let body = '';
    agent
      .get(ORIGIN)
      .intercept({ method, path, body: (b) => ((body = String(b ?? '')), true) })
      .reply((opts) => {
        seen.push({ method: opts.method, path: opts.path, body });
        const answer = reply(body);
        return { statusCode: answer.status, data: answer.body ?? '', responseOptions: { headers: answer.headers ?? {} } };
      });
  };
  /** The PUT of a manifest, answered as the reference registry does (201 with its digest, no OCI-Subject). */
  const stores = (path: string, headers: Record<string, string> = {}) =>
    on('PUT', path, (body) => ({ status: 201, headers: { 'docker-content-digest': sha256Digest(Buffer.from(body)), ...headers } }));
  const client = new RegistryClient({ registry: 'registry.example', dispatcher: agent });
  return { client, on, stores, seen };
}

const unknown = { status: 404, body: JSON.stringify({ errors: [{ code: 'MANIFEST_UNKNOWN', message: 'manifest unknown' }] }) };
const indexAnswer = (manifests: object[]): Answer => ({
  status: 200,
  body: JSON.stringify({ schemaVersion: 2, mediaType: MediaType.ociIndex, manifests }),
  headers: { 'content-type': MediaType.ociIndex },
});

describe('referrers tag schema (a registry without the referrers API)', () => {
  it('names the tag after the subject, the hex cut to 64 characters', () => {
    assert.equal(referrersTagOf(subject), TAG);
    assert.equal(referrersTagOf(`sha512:${'0f'.repeat(64)}`), `sha512-${'0f'.repeat(32)}`);
  });

  it('describes a referrer with its artifact type (else its config type) and annotations', () => {
    const bytes = artifact();
    const digest = sha256Digest(bytes);
    assert.deepEqual(referrerOf({ bytes, mediaType: MediaType.ociManifest }, digest), {
      subject,
      descriptor: { mediaType: MediaType.ociManifest, digest, size: bytes.length, artifactType: 'application/spdx+json', annotations: { 'org.example.kind': 'sbom' } },
    });
    const untyped = artifact({ artifactType: undefined, annotations: undefined });
    assert.equal(referrerOf({ bytes: untyped, mediaType: MediaType.ociManifest }, sha256Digest(untyped))?.descriptor.artifactType, 'application/vnd.oci.empty.v1+json');
    // Docker's types have no subject, and a manifest without one (or with one that names no digest) is no referrer.
    assert.equal(referrerOf({ bytes, mediaType: MediaType.dockerManifest }, digest), undefined);
    const plain = artifact({ subject: undefined });
    assert.equal(referrerOf({ bytes: plain, mediaType: MediaType.ociManifest }, sha256Digest(plain)), undefined);
    const broken = artifact({ subject: { digest: 'sha256:nothex' } });
    assert.equal(referrerOf({ bytes: broken, mediaType: MediaType.ociManifest }, sha256Digest(broken)), undefined);
  });

  it('starts the index under the tag when there is none, and lists the manifest in it', async (t) => {
    const { client, on, stores, seen } = setup(t);
    const bytes = artifact();
    stores(`/v2/app/manifests/${sha256Digest(bytes)}`);
    on('GET', `/v2/app/manifests/${TAG}`, () => unknown);
    stores(`/v2/app/manifests/${TAG}`);
    const result = await client.putManifest('app', sha256Digest(bytes), { bytes, mediaType: MediaType.ociManifest });
    assert.deepEqual(result, { digest: sha256Digest(bytes), referrersTag: TAG });
    assert.deepEqual(
      seen.map((s) => `${s.method} ${s.path}`),
      [`PUT /v2/app/manifests/${sha256Digest(bytes)}`, `GET /v2/app/manifests/${TAG}`, `PUT /v2/app/manifests/${TAG}`],
    );
    assert.deepEqual(JSON.parse(seen[2]!.body), {
      schemaVersion: 2,
      mediaType: MediaType.ociIndex,
      manifests: [
        { mediaType: MediaType.ociManifest, digest: sha256Digest(bytes), size: bytes.length, artifactType: 'application/spdx+json', annotations: { 'org.example.kind': 'sbom' } },
      ],
    });
  });

  it('adds to the referrers already listed, and leaves the index alone when the manifest is in it', async (t) => {
    const { client, on, stores, seen } = setup(t);
    const bytes = artifact();
    const earlier = { mediaType: MediaType.ociManifest, digest: `sha256:${'cd'.repeat(32)}`, size: 10, artifactType: 'application/vnd.dev.cosign.artifact.sig.v1+json' };
    stores('/v2/app/manifests/sbom');
    on('GET', `/v2/app/manifests/${TAG}`, () => indexAnswer([earlier]));
    stores(`/v2/app/manifests/${TAG}`);
    await client.putManifest('app', 'sbom', { bytes, mediaType: MediaType.ociManifest });
    const written = JSON.parse(seen[2]!.body) as { manifests: { digest: string }[] };
    assert.deepEqual(written.manifests.map((m) => m.digest), [earlier.digest, sha256Digest(bytes)]);

    // The same manifest pushed again (another tag): read, found, not written.
    stores('/v2/app/manifests/sbom2');
    on('GET', `/v2/app/manifests/${TAG}`, () => ({ ...indexAnswer(written.manifests), body: seen[2]!.body }));
    assert.equal((await client.putManifest('app', 'sbom2', { bytes, mediaType: MediaType.ociManifest })).referrersTag, TAG);
    assert.deepEqual(seen.slice(3).map((s) => s.method), ['PUT', 'GET']);
  });

  it('does nothing more where the registry files the manifest as a referrer itself (OCI-Subject)', async (t) => {
    const { client, stores, seen } = setup(t);
    const bytes = artifact();
    stores('/v2/app/manifests/sbom', { 'oci-subject': subject });
    assert.deepEqual(await client.putManifest('app', 'sbom', { bytes, mediaType: MediaType.ociManifest }), { digest: sha256Digest(bytes) });
    assert.equal(seen.length, 1);
  });

  it('refuses to replace a tag of that name that holds something else, saying the manifest is pushed', async (t) => {
    const { client, on, stores, seen } = setup(t);
    const bytes = artifact();
    const image = JSON.stringify({ schemaVersion: 2, mediaType: MediaType.dockerManifest, config: {}, layers: [] });
    stores('/v2/app/manifests/sbom');
    on('GET', `/v2/app/manifests/${TAG}`, () => ({ status: 200, body: image, headers: { 'content-type': MediaType.dockerManifest } }));
    await assert.rejects(client.putManifest('app', 'sbom', { bytes, mediaType: MediaType.ociManifest }), {
      code: 'UNSUPPORTED',
      message: `the tag ${TAG} of app holds a ${MediaType.dockerManifest} that is not an OCI index of referrers, where the distribution spec keeps the referrers of ${subject}: the manifest is pushed, but not listed as a referrer; move that tag away and push again`,
    });
    assert.equal(seen.length, 2);
  });
});
