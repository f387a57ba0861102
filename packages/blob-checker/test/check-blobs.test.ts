import assert from 'node:assert/strict';
import { describe, it, type TestContext } from 'node:test';

import { checkBlobs } from '@rxpush/blob-checker';
import { MediaType, sha256Digest, type BlobSource, type PushEvent } from '@rxpush/core';
import { RegistryClient } from '@rxpush/registry-client';
import { MockAgent } from 'undici';
import { from, lastValueFrom, toArray } from 'rxjs';

const ORIGIN = 'https://registry.example';

function blob(name: string, released: string[] = []): BlobSource {
  const digest = sha256Digest(name);
  return {
    key: digest,
    role: 'layer',
    mediaType: MediaType.ociLayerGzip,
    digest,
    size: 4,
    form: 'stored',
    origin: name,
    open: () => Promise.reject(new Error('not read')),
    release: () => void released.push(name),
  };
}

/** HEADs answered by a MockAgent: `present` blobs exist (after `delay` ms, to reorder answers). */
function registry(t: TestContext, present: Map<string, number>) {
  const agent = new MockAgent();
  agent.disableNetConnect();
  t.after(() => agent.close());
  const heads: string[] = [];
  agent
    .get(ORIGIN)
    .intercept({ method: 'HEAD', path: (p) => p.startsWith('/v2/app/blobs/') })
    .reply((opts) => {
      const digest = opts.path.slice('/v2/app/blobs/'.length);
      heads.push(digest);
      const there = present.has(digest);
      return { statusCode: there ? 200 : 404, data: '', responseOptions: { headers: there ? { 'content-length': '4', 'docker-content-digest': digest } : {} } };
    })
    .delay(5)
    .persist();
  return { client: new RegistryClient({ registry: 'registry.example', dispatcher: agent }), heads };
}

const types = (events: PushEvent[]) => events.map((e) => `${e.type}:${'key' in e ? e.key.slice(7, 11) : e.type === 'blob' ? e.blob.key.slice(7, 11) : ''}`);

describe('checkBlobs', () => {
  it('turns blobs the registry has into exists and blob-ready, and releases them', async (t) => {
    const released: string[] = [];
    const there = blob('there', released);
    const missing = blob('missing', released);
    const { client } = registry(t, new Map([[there.key, 0]]));
    const events = await lastValueFrom(from<PushEvent[]>([{ type: 'blob', blob: there }, { type: 'blob', blob: missing }]).pipe(checkBlobs({ client, repository: 'app' }), toArray()));
    assert.deepEqual(types(events), [
      `exists:${there.key.slice(7, 11)}`,
      `blob-ready:${there.key.slice(7, 11)}`,
      `waiting:${missing.key.slice(7, 11)}`,
      `blob:${missing.key.slice(7, 11)}`,
    ]);
    assert.deepEqual(released, ['there']);
  });

  it('asks the registry once per digest, however many tasks name it', async (t) => {
    const a = blob('a');
    const { client, heads } = registry(t, new Map());
    await lastValueFrom(from<PushEvent[]>([{ type: 'blob', blob: a }, { type: 'blob', blob: a }]).pipe(checkBlobs({ client, repository: 'app' }), toArray()));
    assert.deepEqual(heads, [a.key]);
  });

  it('keeps the order of the tasks while checking them side by side', async (t) => {
    const blobs = ['one', 'two', 'three', 'four', 'five'].map((name) => blob(name));
    const { client } = registry(t, new Map(blobs.filter((_, i) => i % 2 === 0).map((b) => [b.key, 0])));
    const events = await lastValueFrom(from<PushEvent[]>(blobs.map((b) => ({ type: 'blob', blob: b }))).pipe(checkBlobs({ client, repository: 'app', concurrency: 5 }), toArray()));
    const order = events.filter((e) => e.type === 'blob-ready' || e.type === 'blob').map((e) => (e.type === 'blob' ? e.blob.key : e.type === 'blob-ready' ? e.key : ''));
    assert.deepEqual(order, blobs.map((b) => b.key));
  });

  it("puts the client's retries of a HEAD into its own stream, with the blob's id, in a pipeline built by hand", async (t) => {
    const agent = new MockAgent();
    agent.disableNetConnect();
    t.after(() => agent.close());
    const there = blob('there');
    const pool = agent.get(ORIGIN);
    pool.intercept({ method: 'HEAD', path: `/v2/app/blobs/${there.key}` }).reply(503, '');
    pool.intercept({ method: 'HEAD', path: `/v2/app/blobs/${there.key}` }).reply(200, '', { headers: { 'content-length': '4' } });
    const client = new RegistryClient({ registry: 'registry.example', dispatcher: agent, retry: { baseDelayMs: 0 } });
    const events = await lastValueFrom(from<PushEvent[]>([{ type: 'blob', blob: there }]).pipe(checkBlobs({ client, repository: 'app' }), toArray()));
    assert.deepEqual(events.map((e) => e.type), ['retrying', 'exists', 'blob-ready']);
    assert.deepEqual(events[0], { type: 'retrying', id: there.key.slice(7, 19), attempt: 1, delayMs: 0, reason: events[0]?.type === 'retrying' ? events[0].reason : '' });
    assert.match(events[0]?.type === 'retrying' ? events[0].reason : '', /^HEAD https:\/\/registry\.example\/v2\/app\/blobs\/sha256:[0-9a-f]{64} → 503/);
  });

  it('in a dry run, HEADs the mount source instead of asking for a mount', async (t) => {
    const layer = { ...blob('mountable'), hints: [{ digest: sha256Digest('mountable'), registry: 'registry.example', repository: 'base' }] };
    const agent = new MockAgent();
    agent.disableNetConnect();
    t.after(() => agent.close());
    const requests: string[] = [];
    agent
      .get(ORIGIN)
      .intercept({ method: (m) => m !== '', path: () => true })
      .reply((opts) => {
        requests.push(`${opts.method} ${opts.path}`);
        const there = opts.method === 'HEAD' && opts.path.startsWith('/v2/base/');
        return { statusCode: there ? 200 : 404, data: '', responseOptions: { headers: there ? { 'content-length': '4', 'docker-content-digest': layer.key } : {} } };
      })
      .persist();
    const client = new RegistryClient({ registry: 'registry.example', dispatcher: agent });
    const events = await lastValueFrom(from<PushEvent[]>([{ type: 'blob', blob: layer }]).pipe(checkBlobs({ client, repository: 'app', dryRun: true }), toArray()));
    assert.deepEqual(events[0], { type: 'mounted', id: layer.key.slice(7, 19), key: layer.key, role: 'layer', digest: layer.key, from: 'base', dryRun: true });
    assert.equal(events[1]?.type, 'blob-ready');
    assert.deepEqual(requests, [`HEAD /v2/app/blobs/${layer.key}`, `HEAD /v2/base/blobs/${layer.key}`]);
  });
});
