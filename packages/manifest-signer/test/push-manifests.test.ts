import assert from 'node:assert/strict';
import { describe, it, type TestContext } from 'node:test';

import { MediaType, sha256Digest, type BlobSource, type Digest, type ImageRecord, type IndexRecord, type PushEvent } from '@rxpush/core';
import { generateSigningKey, parseSigningKey, pushManifests } from '@rxpush/manifest-signer';
import { RegistryClient } from '@rxpush/registry-client';
import { MockAgent } from 'undici';
import { from, lastValueFrom, Subject, toArray } from 'rxjs';

import { MANIFEST_PUT_RETRIES } from '../src/put-manifest-rechecked.ts';

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

  describe('a PUT refused with DIGEST_INVALID, as the reference registry does while another push links a blob', () => {
    /** PUTs fail `refusals` times with DIGEST_INVALID; HEADs find the blobs in `present`. */
    function refusing(t: TestContext, refusals: number, present: ReadonlySet<string>) {
      const agent = new MockAgent();
      agent.disableNetConnect();
      t.after(() => agent.close());
      const requests: string[] = [];
      const pool = agent.get(ORIGIN);
      pool
        .intercept({ method: 'PUT', path: (p) => p.startsWith('/v2/app/manifests/') })
        .reply((opts) => {
          requests.push(`PUT ${opts.path}`);
          if (refusals-- > 0) {
            const body = JSON.stringify({ errors: [{ code: 'DIGEST_INVALID', message: 'provided digest did not match uploaded content' }] });
            return { statusCode: 400, data: body, responseOptions: { headers: { 'content-type': 'application/json' } } };
          }
          return { statusCode: 201, data: '', responseOptions: { headers: { 'docker-content-digest': sha256Digest(opts.body as string) } } };
        })
        .persist();
      pool
        .intercept({ method: 'HEAD', path: (p) => p.startsWith('/v2/app/blobs/') })
        .reply((opts) => {
          const digest = opts.path.slice('/v2/app/blobs/'.length);
          requests.push(`HEAD ${digest.slice(7, 11)}`);
          const size = [config, layer].find((b) => b.digest === digest)?.size ?? 0;
          return present.has(digest) ? { statusCode: 200, data: '', responseOptions: { headers: { 'content-length': String(size) } } } : { statusCode: 404, data: '' };
        })
        .persist();
      return { client: new RegistryClient({ registry: 'registry.example', dispatcher: agent }), requests };
    }
    const one: ImageRecord = { ...image, tags: ['1.0'] };
    const run = (client: RegistryClient) =>
      lastValueFrom(from<PushEvent[]>([{ type: 'image', image: one }, ready(config), ready(layer)]).pipe(pushManifests({ client, repository: 'app' }), toArray()));

    it('HEADs every blob of the manifest and, all there, PUTs it again', async (t) => {
      const { client, requests } = refusing(t, 1, new Set([config.digest as string, layer.digest as string]));
      const events = await run(client);
      const short = (b: BlobSource) => (b.digest as string).slice(7, 11);
      assert.deepEqual(requests, ['PUT /v2/app/manifests/1.0', `HEAD ${short(config)}`, `HEAD ${short(layer)}`, 'PUT /v2/app/manifests/1.0']);
      const retrying = events.filter((e) => e.type === 'retrying');
      assert.equal(retrying.length, 1);
      assert.match(retrying[0]?.type === 'retrying' ? retrying[0].reason : '', /DIGEST_INVALID/);
      assert.equal(events.at(-1)?.type, 'manifest-pushed');
    });

    it('does not PUT again when a blob of the manifest is missing, and says which request failed', async (t) => {
      const { client, requests } = refusing(t, 1, new Set([config.digest as string]));
      await assert.rejects(run(client), /PUT https:\/\/registry\.example\/v2\/app\/manifests\/1\.0 → 400 DIGEST_INVALID/);
      assert.equal(requests.filter((r) => r.startsWith('PUT')).length, 1);
    });

    it('gives up after a bounded number of PUTs', async (t) => {
      const { client, requests } = refusing(t, Infinity, new Set([config.digest as string, layer.digest as string]));
      await assert.rejects(run(client), /DIGEST_INVALID/);
      assert.equal(requests.filter((r) => r.startsWith('PUT')).length, 1 + MANIFEST_PUT_RETRIES);
    });
  });
});
