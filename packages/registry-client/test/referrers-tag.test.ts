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
  const seen: { method: string; path: string; body: string; headers: Record<string, string> }[] = [];
  /** `delayMs` holds the answer back, as a registry far away would. */
  const on = (method: string, path: string, reply: (body: string) => Answer, delayMs = 0) => {
    let body = '';
    const scope = agent
      .get(ORIGIN)
      .intercept({ method, path, body: (b) => ((body = String(b ?? '')), true) })
      .reply((opts) => {
        seen.push({ method: opts.method, path: opts.path, body, headers: (opts.headers ?? {}) as Record<string, string> });
        const answer = reply(body);
        return { statusCode: answer.status, data: answer.body ?? '', responseOptions: { headers: answer.headers ?? {} } };
      });
    if (delayMs > 0) scope.delay(delayMs);
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

    // The same manifest pushed again (another tag): this client listed it, so the index is not read again.
    stores('/v2/app/manifests/sbom2');
    assert.equal((await client.putManifest('app', 'sbom2', { bytes, mediaType: MediaType.ociManifest })).referrersTag, TAG);
    assert.deepEqual(seen.slice(3).map((s) => s.method), ['PUT']);

    // Another client finds it listed: read, found, not written.
    const other = setup(t);
    other.stores('/v2/app/manifests/sbom3');
    other.on('GET', `/v2/app/manifests/${TAG}`, () => ({ ...indexAnswer(written.manifests), body: seen[2]!.body }));
    assert.equal((await other.client.putManifest('app', 'sbom3', { bytes, mediaType: MediaType.ociManifest })).referrersTag, TAG);
    assert.deepEqual(other.seen.map((s) => s.method), ['PUT', 'GET']);
  });

  it('lists two referrers of one subject pushed at once, one update of the tag after the other', async (t) => {
    const { client, on, stores, seen } = setup(t);
    const sbom = artifact();
    const sig = artifact({ artifactType: 'application/vnd.example.sig' });
    stores('/v2/app/manifests/sbom');
    stores('/v2/app/manifests/sig');
    // The registry keeps what was last PUT under the tag, as a registry does.
    let stored: string | undefined;
    for (let i = 0; i < 2; i++) {
      // Held back: two updates at once would both read the tag before either wrote it.
      on('GET', `/v2/app/manifests/${TAG}`, () => (stored === undefined ? unknown : { ...indexAnswer([]), body: stored }), 50);
      on('PUT', `/v2/app/manifests/${TAG}`, (body) => ((stored = body), { status: 201, headers: { 'docker-content-digest': sha256Digest(Buffer.from(body)) } }));
    }
    await Promise.all([
      client.putManifest('app', 'sbom', { bytes: sbom, mediaType: MediaType.ociManifest }),
      client.putManifest('app', 'sig', { bytes: sig, mediaType: MediaType.ociManifest }),
    ]);
    const tagRequests = seen.filter((s) => s.path === `/v2/app/manifests/${TAG}`).map((s) => s.method);
    assert.deepEqual(tagRequests, ['GET', 'PUT', 'GET', 'PUT'], 'the second update reads what the first wrote');
    assert.deepEqual(
      (JSON.parse(stored ?? '{}') as { manifests: { digest: string }[] }).manifests.map((m) => m.digest).sort(),
      [sha256Digest(sbom), sha256Digest(sig)].sort(),
    );
  });

  it('writes the index over the ETag it read (If-Match), and reads it again when the registry says it changed (412)', async (t) => {
    const { client, on, stores, seen } = setup(t);
    const bytes = artifact();
    const earlier = { mediaType: MediaType.ociManifest, digest: `sha256:${'cd'.repeat(32)}`, size: 10 };
    const later = { mediaType: MediaType.ociManifest, digest: `sha256:${'ef'.repeat(32)}`, size: 11 };
    stores('/v2/app/manifests/sbom');
    on('GET', `/v2/app/manifests/${TAG}`, () => ({ ...indexAnswer([earlier]), headers: { 'content-type': MediaType.ociIndex, etag: '"v1"' } }));
    on('PUT', `/v2/app/manifests/${TAG}`, () => ({ status: 412, body: '' }));
    on('GET', `/v2/app/manifests/${TAG}`, () => ({ ...indexAnswer([earlier, later]), headers: { 'content-type': MediaType.ociIndex, etag: '"v2"' } }));
    stores(`/v2/app/manifests/${TAG}`);
    await client.putManifest('app', 'sbom', { bytes, mediaType: MediaType.ociManifest });
    const puts = seen.filter((s) => s.method === 'PUT' && s.path.endsWith(TAG));
    assert.deepEqual(puts.map((s) => s.headers['if-match']), ['"v1"', '"v2"']);
    assert.deepEqual((JSON.parse(puts[1]!.body) as { manifests: { digest: string }[] }).manifests.map((m) => m.digest), [earlier.digest, later.digest, sha256Digest(bytes)]);
  });

  it('writes over a weak ETag without If-Match, which could never match it', async (t) => {
    const { client, on, stores, seen } = setup(t);
    const bytes = artifact();
    stores('/v2/app/manifests/sbom');
    on('GET', `/v2/app/manifests/${TAG}`, () => ({ ...indexAnswer([]), headers: { 'content-type': MediaType.ociIndex, etag: 'W/"v1"' } }));
    stores(`/v2/app/manifests/${TAG}`);
    await client.putManifest('app', 'sbom', { bytes, mediaType: MediaType.ociManifest });
    assert.equal(seen.at(-1)?.headers['if-match'], undefined);
  });

  it('gives up after three conditional PUTs refused (412), saying the manifest is pushed', async (t) => {
    const { client, on, stores } = setup(t);
    const bytes = artifact();
    stores('/v2/app/manifests/sbom');
    for (let i = 0; i < 3; i++) {
      on('GET', `/v2/app/manifests/${TAG}`, () => ({ ...indexAnswer([]), headers: { 'content-type': MediaType.ociIndex, etag: `"v${i}"` } }));
      on('PUT', `/v2/app/manifests/${TAG}`, () => ({ status: 412, body: '' }));
    }
    await assert.rejects(client.putManifest('app', 'sbom', { bytes, mediaType: MediaType.ociManifest }), (error: Error & { status?: number }) => {
      assert.equal(error.status, 412);
      assert.match(error.message, new RegExp(`^PUT https://registry\\.example/v2/app/manifests/${TAG} → 412.*; the referrers tag ${TAG} changed under rxpush 3 times: another client is updating it; the manifest is pushed, push it again to list it as a referrer of ${subject}$`));
      return true;
    });
  });

  it('says what to do when the index of referrers is over 4 MiB', async (t) => {
    const { client, on, stores } = setup(t);
    const bytes = artifact();
    stores('/v2/app/manifests/sbom');
    on('GET', `/v2/app/manifests/${TAG}`, () => ({ status: 200, body: '{}', headers: { 'content-type': MediaType.ociIndex, 'content-length': String(5 * 1024 * 1024) } }));
    await assert.rejects(client.putManifest('app', 'sbom', { bytes, mediaType: MediaType.ociManifest }), {
      code: 'UNSUPPORTED',
      message: new RegExp(`rxpush refuses manifests over 4 MiB; that many referrers of ${subject} are more than rxpush lists; remove some of them from the tag's index, or push to a registry with the referrers API$`),
    });
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
