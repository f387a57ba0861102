import assert from 'node:assert/strict';
import { buffer } from 'node:stream/consumers';
import { describe, it, type TestContext } from 'node:test';

import { MediaType, sha256Digest, type Digest, type IndexRecord } from '@rxpush/core';
import { RegistryClient, type Authenticator } from '@rxpush/registry-client';
import { MockAgent } from 'undici';

import { fails, read, readOne } from './read.js';

const ORIGIN = 'https://source.example';
const STORAGE = 'https://storage.example';

const config = Buffer.from('{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}');
const layer = Buffer.from('layer bytes');

function imageManifest(platform: string): Buffer {
  return Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: MediaType.ociManifest,
      config: { mediaType: MediaType.ociConfig, digest: sha256Digest(config), size: config.length },
      layers: [{ mediaType: MediaType.ociLayerGzip, digest: sha256Digest(layer), size: layer.length }],
      annotations: { platform },
    }),
  );
}

const amd64 = imageManifest('amd64');
const arm64 = imageManifest('arm64');
const index = Buffer.from(
  JSON.stringify({
    schemaVersion: 2,
    mediaType: MediaType.ociIndex,
    manifests: [
      { mediaType: MediaType.ociManifest, digest: sha256Digest(amd64), size: amd64.length, platform: { os: 'linux', architecture: 'amd64' } },
      { mediaType: MediaType.ociManifest, digest: sha256Digest(arm64), size: arm64.length, platform: { os: 'linux', architecture: 'arm64', variant: 'v8' } },
    ],
  }),
);

/** Always offers a token: what reaches another host than the registry must not carry it. */
const auth: Authenticator = { authorize: () => Promise.resolve('Bearer source-token') };

interface Served {
  client: RegistryClient;
  agent: MockAgent;
  /** Authorization headers the storage host was sent. */
  storageAuthorization: (string | undefined)[];
}

/** The source registry as a MockAgent: `app:1` is the image, `multi:1` the index; the layer redirects to storage. */
function source(t: TestContext, overrides: { manifest?: { status: number; body: string; type: string }; blob?: number } = {}): Served {
  const agent = new MockAgent();
  agent.disableNetConnect();
  t.after(() => agent.close());
  const pool = agent.get(ORIGIN);
  const manifests = new Map<string, Buffer>([
    ['/v2/app/manifests/1', amd64],
    ['/v2/app/manifests/also-1', amd64],
    ['/v2/multi/manifests/1', index],
    [`/v2/multi/manifests/${sha256Digest(amd64)}`, amd64],
    [`/v2/multi/manifests/${sha256Digest(arm64)}`, arm64],
  ]);
  pool
    .intercept({ method: 'GET', path: '/v2/app/tags/list' })
    .reply(200, { name: 'app', tags: ['1', 'also-1'] }, { headers: { 'content-type': 'application/json' } })
    .persist();
  pool
    .intercept({ method: 'GET', path: (path) => path.includes('/manifests/') })
    .reply((request) => {
      if (overrides.manifest !== undefined) {
        return { statusCode: overrides.manifest.status, data: overrides.manifest.body, responseOptions: { headers: { 'content-type': overrides.manifest.type } } };
      }
      const bytes = manifests.get(request.path);
      if (bytes === undefined) {
        return { statusCode: 404, data: '{"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest unknown"}]}', responseOptions: { headers: { 'content-type': 'application/json' } } };
      }
      const mediaType = (JSON.parse(bytes.toString()) as { mediaType: string }).mediaType;
      return { statusCode: 200, data: bytes, responseOptions: { headers: { 'content-type': mediaType, 'docker-content-digest': sha256Digest(bytes) } } };
    })
    .persist();
  pool
    .intercept({ method: 'GET', path: (path) => path.includes('/blobs/') })
    .reply((request) => {
      if (overrides.blob !== undefined) return { statusCode: overrides.blob, data: '{"errors":[{"code":"BLOB_UNKNOWN","message":"blob unknown to registry"}]}' };
      return { statusCode: 307, data: '', responseOptions: { headers: { location: `${STORAGE}/bucket${request.path}?sig=x` } } };
    })
    .persist();
  const storageAuthorization: (string | undefined)[] = [];
  agent
    .get(STORAGE)
    .intercept({ method: 'GET', path: (path) => path.startsWith('/bucket/') })
    .reply((request) => {
      const headers = request.headers as Record<string, string | undefined>;
      storageAuthorization.push(headers['authorization'] ?? headers['Authorization']);
      return { statusCode: 200, data: request.path.includes(sha256Digest(config)) ? config : layer };
    })
    .persist();
  return { client: new RegistryClient({ registry: 'source.example', dispatcher: agent, auth }), agent, storageAuthorization };
}

describe('readImages with docker:// sources', () => {
  it('reads an image as its manifest, byte for byte, and blobs that stream from the registry when opened', async (t) => {
    const { client, storageAuthorization } = source(t);
    const image = await readOne('docker://source.example/app:1', { registryClient: client });
    assert.deepEqual(image.tags, ['1']);
    assert.deepEqual(image.manifest, { bytes: amd64, mediaType: MediaType.ociManifest, digest: sha256Digest(amd64) });
    assert.equal(image.layers.kind, 'list');
    const [blob] = image.layers.kind === 'list' ? image.layers.layers : [];
    assert.ok(blob);
    assert.equal(blob.form, 'stored');
    assert.equal(blob.digest, sha256Digest(layer));
    assert.equal(blob.size, layer.length);
    assert.deepEqual(blob.hints, [{ digest: sha256Digest(layer), registry: 'source.example', repository: 'app' }]);
    assert.match(blob.origin, /^docker:\/\/source\.example\/app:1 layer 1 of 1 \(sha256:/);
    assert.deepEqual(await buffer(await blob.open()), layer);
    assert.deepEqual(await buffer(await image.config.open()), config);
    // The storage a registry redirects to never gets the registry's credentials.
    assert.deepEqual(storageAuthorization, [undefined, undefined]);
  });

  it('reads a multi-platform index whole: every image, by digest, under the index', async (t) => {
    const { client } = source(t);
    const [record, ...rest] = await read('docker://source.example/multi:1', { registryClient: client });
    assert.equal(rest.length, 0);
    assert.equal(record?.kind, 'index');
    const { index: raw, manifests, tags } = record as IndexRecord;
    assert.deepEqual(tags, ['1']);
    assert.equal(raw.digest, sha256Digest(index));
    assert.deepEqual(
      manifests.map((m) => [m.manifest?.digest, m.platform?.architecture, m.tags.length]),
      [
        [sha256Digest(amd64), 'amd64', 0],
        [sha256Digest(arm64), 'arm64', 0],
      ],
    );
  });

  it('reads one image of an index with a platform, under the tag', async (t) => {
    const { client } = source(t);
    const image = await readOne('docker://source.example/multi:1', { registryClient: client, platform: 'linux/arm64' });
    assert.equal(image.manifest?.digest, sha256Digest(arm64));
    assert.deepEqual(image.tags, ['1']);
    assert.deepEqual(image.platform, { os: 'linux', architecture: 'arm64', variant: 'v8' });
  });

  it('fetches a single image\'s config once for a platform: the bytes checked are the bytes pushed', async (t) => {
    const { client, storageAuthorization } = source(t);
    const image = await readOne('docker://source.example/app:1', { registryClient: client, platform: 'linux/amd64' });
    assert.equal(storageAuthorization.length, 1);
    assert.deepEqual(await buffer(await image.config.open()), config);
    assert.deepEqual(await buffer(await image.config.open()), config);
    assert.equal(storageAuthorization.length, 1);
  });

  it('says which platforms an index has when the one asked for is not there', async (t) => {
    const { client } = source(t);
    await fails(
      'docker://source.example/multi:1',
      { code: 'SOURCE_NOT_FOUND', message: /^docker:\/\/source\.example\/multi:1 has no image for linux\/s390x; its index sha256:[a-f0-9]{64} in source\.example offers linux\/amd64, linux\/arm64\/v8$/ },
      { registryClient: client, platform: 'linux/s390x' },
    );
  });

  it('refuses a platform that is not os/arch[/variant]', async (t) => {
    const { client } = source(t);
    await fails('docker://source.example/multi:1', { code: 'USAGE', message: /^--platform "amd64" is not os\/arch\[\/variant\]/ }, { registryClient: client, platform: 'amd64' });
  });

  it('says an image or tag the registry does not have is not there, naming image and registry', async (t) => {
    const { client } = source(t);
    await fails('docker://source.example/app:2', {
      code: 'SOURCE_NOT_FOUND',
      message: /^docker:\/\/source\.example\/app:2: source\.example has no such image \(GET https:\/\/source\.example\/v2\/app\/manifests\/2 → 404 MANIFEST_UNKNOWN.*\); check the repository and tag$/,
    }, { registryClient: client });
  });

  it('asks for the source registry\'s own credentials when it refuses', async (t) => {
    const { client } = source(t, { manifest: { status: 401, body: '{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}', type: 'application/json' } });
    await fails('docker://source.example/app:1', {
      code: 'SOURCE_NOT_FOUND',
      message: /^docker:\/\/source\.example\/app:1: source\.example does not let rxpush pull app \(GET .* → 401 UNAUTHORIZED.*\); the source registry needs its own credentials: --src-creds USER:PASS, --src-authfile PATH or docker login source\.example$/,
    }, { registryClient: client });
  });

  it('says a registry that answers HTML is not serving manifests', async (t) => {
    const { client } = source(t, { manifest: { status: 200, body: '<html><body>Sign in</body></html>', type: 'text/html; charset=utf-8' } });
    await fails('docker://source.example/app:1', {
      code: 'INVALID_SOURCE',
      message: /^docker:\/\/source\.example\/app:1: source\.example answered GET \/v2\/app\/manifests\/1 with text\/html, not an image manifest or index; is source\.example a registry/,
    }, { registryClient: client });
  });

  it('says a blob gone from the registry is gone, naming it, the image and the registry', async (t) => {
    const { client } = source(t, { blob: 404 });
    const image = await readOne('docker://source.example/app:1', { registryClient: client });
    const [blob] = image.layers.kind === 'list' ? image.layers.layers : [];
    await assert.rejects(blob!.open(), (err: Error & { code?: string }) => {
      assert.equal(err.code, 'SOURCE_NOT_FOUND');
      assert.match(err.message, /^docker:\/\/source\.example\/app:1 layer 1 of 1 \(sha256:[a-f0-9]{64}\) is gone from source\.example \(GET .* → 404 BLOB_UNKNOWN.*\): it was deleted while copying; nothing was tagged at the destination, copy again$/);
      return true;
    });
  });

  it('needs a client for the registry the source names', async (t) => {
    const { client } = source(t);
    await fails('docker://other.example/app:1', { code: 'USAGE', message: /^source docker:\/\/other\.example\/app:1 is in other\.example, but the registry client given for it is for source\.example$/ }, { registryClient: client });
    await fails('docker://source.example/app:1', { code: 'USAGE', message: /needs the registryClient option/ });
  });

  it('refuses a platform for a source that holds no indexes', async () => {
    for (const source of ['docker-archive:./a.tar', 'docker-daemon:app:1', 'docker-root:app']) {
      const message = new RegExp(`^--platform chooses one image of a multi-platform index \\(a docker://, oci: or oci-archive: source\\); ${source.replace('.', '\\.')} holds single images$`);
      await fails(source, { code: 'USAGE', message }, { platform: 'linux/amd64' });
    }
  });

  it('reads every tag with allTags, one record per manifest', async (t) => {
    const { client } = source(t);
    const records = await read('docker://source.example/app', { registryClient: client, allTags: true });
    assert.deepEqual(
      records.map((r) => [r.tags, r.kind === 'image' ? r.manifest?.digest : undefined]),
      [[['1', 'also-1'], sha256Digest(amd64) as Digest]],
    );
  });
});
