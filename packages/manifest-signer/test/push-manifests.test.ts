import assert from 'node:assert/strict';
import { describe, it, type TestContext } from 'node:test';

import { MediaType, sha256Digest, type BlobSource, type Digest, type ImageRecord, type IndexRecord, type PushEvent } from '@rxpush/core';
import { generateSigningKey, parseSigningKey, pushManifests } from '@rxpush/manifest-signer';
import { RegistryClient } from '@rxpush/registry-client';
import { MockAgent } from 'undici';
import { from, lastValueFrom, Subject, toArray } from 'rxjs';

const ORIGIN = 'https://registry.example';

function blob(name: string, role: 'config' | 'layer'): BlobSource {
  const digest = sha256Digest(name);
  return { key: digest, role, mediaType: role === 'config' ? MediaType.ociConfig : MediaType.ociLayerGzip, digest, size: name.length, form: 'stored', origin: name, open: () => Promise.reject(new Error('not read')) };
}

const config = blob('config', 'config');
const layer = blob('layer', 'layer');
const image: ImageRecord = { kind: 'image', source: 'oci:test', tags: ['1.0', 'latest'], config, layers: { kind: 'list', layers: [layer] } };
const ready = (b: BlobSource): PushEvent => ({ type: 'blob-ready', key: b.key, descriptor: { mediaType: b.mediaType, digest: b.digest as Digest, size: b.size as number } });

/** A client whose manifest PUTs go to a MockAgent that answers with the digest of what it got. */
function registry(t: TestContext) {
  const agent = new MockAgent();
  agent.disableNetConnect();
  t.after(() => agent.close());
  const puts: string[] = [];
  agent
    .get(ORIGIN)
    .intercept({ method: 'PUT', path: (p) => p.startsWith('/v2/app/manifests/') })
    .reply((opts) => {
      puts.push(opts.path);
      return { statusCode: 201, data: '', responseOptions: { headers: { 'docker-content-digest': sha256Digest(opts.body as string) } } };
    })
    .persist();
  return { client: new RegistryClient({ registry: 'registry.example', dispatcher: agent }), puts };
}

describe('pushManifests', () => {
  it('holds the manifest until every blob of the image is ready, then pushes each tag', async (t) => {
    const { client, puts } = registry(t);
    const source = new Subject<PushEvent>();
    const out: PushEvent[] = [];
    const done = lastValueFrom(source.pipe(pushManifests({ client, repository: 'app' }), toArray())).then((events) => out.push(...events));

    source.next({ type: 'image', image });
    source.next(ready(layer));
    await new Promise((resolve) => setTimeout(resolve, 20));
    assert.deepEqual(puts, [], 'no PUT while the config is not ready');

    source.next(ready(config));
    source.complete();
    await done;
    assert.deepEqual(puts, ['/v2/app/manifests/1.0', '/v2/app/manifests/latest']);
    const pushed = out.filter((e) => e.type === 'manifest-pushed');
    assert.deepEqual(pushed.map((e) => e.type === 'manifest-pushed' && e.tag), ['1.0', 'latest']);
    assert.equal(out.at(-1)?.type, 'manifest-pushed');
  });

  it('fails without pushing when the stream ends before a blob is ready', async (t) => {
    const { client, puts } = registry(t);
    const source = new Subject<PushEvent>();
    const result = lastValueFrom(source.pipe(pushManifests({ client, repository: 'app' }), toArray()));
    source.next({ type: 'image', image });
    source.next(ready(config));
    source.complete();
    await assert.rejects(result, (error: Error & { code?: string }) => {
      assert.equal(error.code, 'BLOB_NOT_VERIFIED');
      assert.match(error.message, new RegExp(`not pushing oci:test: ${layer.key} never reached the registry`));
      return true;
    });
    assert.deepEqual(puts, []);
  });

  it('passes every other event through untouched', async (t) => {
    const { client } = registry(t);
    const source = new Subject<PushEvent>();
    const result = lastValueFrom(source.pipe(pushManifests({ client, repository: 'app' }), toArray()));
    const waiting: PushEvent = { type: 'waiting', id: 'abc', key: 'k', role: 'layer' };
    source.next(waiting);
    source.complete();
    assert.deepEqual(await result, [waiting]);
  });

  it('refuses a manifest over 4 MiB before sending it', async (t) => {
    const { client, puts } = registry(t);
    const huge: ImageRecord = { ...image, annotations: { note: 'x'.repeat(4 * 1024 * 1024) } };
    const result = lastValueFrom(from<PushEvent[]>([{ type: 'image', image: huge }, ready(layer), ready(config)]).pipe(pushManifests({ client, repository: 'app', format: 'oci' }), toArray()));
    await assert.rejects(result, (error: Error & { code?: string }) => {
      assert.equal(error.code, 'UNSUPPORTED');
      assert.match(error.message, /^the manifest of oci:test is \d+ bytes; registries refuse manifests over 4 MiB/);
      return true;
    });
    assert.deepEqual(puts, []);
  });

  it('needs a key for schema 1, and refuses an index in schema 1 before pushing anything', async (t) => {
    const { client, puts } = registry(t);
    assert.throws(() => pushManifests({ client, repository: 'app', format: 'schema1' }), /must be signed: give --sign-key FILE/);
    const signKey = parseSigningKey(generateSigningKey().privatePem);
    const index: IndexRecord = { kind: 'index', source: 'oci:multi', tags: ['1.0'], manifests: [image, image], index: { bytes: Buffer.from('{}'), mediaType: MediaType.ociIndex, digest: sha256Digest('{}') } };
    const result = lastValueFrom(from<PushEvent[]>([{ type: 'image', image: index }]).pipe(pushManifests({ client, repository: 'app', format: 'schema1', signKey }), toArray()));
    await assert.rejects(result, /oci:multi is an index of 2 images, and a schema 1 manifest holds one image/);
    assert.deepEqual(puts, []);
  });
});
