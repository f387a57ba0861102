import assert from 'node:assert/strict';
import { mkdtemp } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { describe, it } from 'node:test';

import type { PushEvent } from '@rxpush/core';
import { push, type PushOptions } from '@rxpush/pipeline';
import { lastValueFrom, type Subscription } from 'rxjs';

import { startFaultProxy } from './helpers/fault-proxy.ts';
import { useProxiedRegistry } from './helpers/proxied-registry.ts';
import { startCli } from './helpers/run-cli.ts';

/** The upload session (UUID) in a blob upload URL. */
const sessionOf = (url: string): string => /\/blobs\/uploads\/([^/?]+)/.exec(url)![1]!;

describe('cancelling a push', () => {
  const env = useProxiedRegistry('cancel', [{ tags: ['latest'], layers: [{ files: 2, fileSize: 200_000, seed: 'cancel' }] }]);

  const layer = () => env.layout.images[0]!.layerDigests[0]!;
  const start = (repository: string, seen: PushEvent[], options: Partial<PushOptions> = {}): Subscription =>
    push({ source: `oci:${env.layout.dir}:latest`, destination: `${env.proxy.host}/${repository}:1.0`, cacheDir: false, ...options }).subscribe((event) => seen.push(event));

  it('aborts the upload in flight and deletes its session when unsubscribed', { timeout: 15_000 }, async () => {
    env.proxy.addFault({ method: 'PUT', path: new RegExp(`cancel/push/blobs/uploads/.*digest=${layer()}`), fault: { kind: 'stall' } });
    const seen: PushEvent[] = [];
    const subscription = start('cancel/push', seen);
    const upload = await env.proxy.waitFor('PUT', new RegExp(`cancel/push/blobs/uploads/.*digest=${layer()}`));
    subscription.unsubscribe();

    await env.proxy.settled(upload);
    assert.equal(upload.aborted, true, 'the stalled PUT was abandoned by the client');
    const deleted = await env.proxy.waitFor('DELETE', new RegExp(sessionOf(upload.url)));
    await env.proxy.settled(deleted);
    assert.ok(deleted.status !== undefined && deleted.status < 300, `DELETE answered ${deleted.status}`);
    assert.equal(seen.filter((e) => e.type === 'manifest-pushed').length, 0);
    assert.equal(env.proxy.requests.filter((r) => r.method === 'PUT' && r.url.includes('/manifests/')).length, 0);
    assert.equal(await env.direct.hasManifest('cancel/push', '1.0'), undefined);
  });

  it('stops waiting out a Retry-After and deletes the session when unsubscribed during a retry', { timeout: 15_000 }, async () => {
    const put = new RegExp(`cancel/backoff/blobs/uploads/.*digest=${layer()}`);
    env.proxy.addFault({ method: 'PUT', path: put, fault: { kind: 'status', status: 503, headers: { 'retry-after': '30' } } });
    const seen: PushEvent[] = [];
    let subscription: Subscription | undefined;
    const retrying = new Promise<void>((resolve) => {
      subscription = push({ source: `oci:${env.layout.dir}:latest`, destination: `${env.proxy.host}/cancel/backoff:1.0`, cacheDir: false }).subscribe((event) => {
        seen.push(event);
        if (event.type === 'retrying') resolve();
      });
    });
    await retrying;
    assert.equal(seen.find((e) => e.type === 'retrying')?.delayMs, 30_000);
    subscription!.unsubscribe();
    const [upload] = env.proxy.requests.filter((r) => r.method === 'PUT' && put.test(r.url));
    const deleted = await env.proxy.waitFor('DELETE', new RegExp(sessionOf(upload!.url)));
    await env.proxy.settled(deleted);
    assert.equal(env.proxy.requests.filter((r) => r.method === 'PUT' && put.test(r.url)).length, 1, 'no retry after the cancel');
  });

  for (const [signal, status, repository] of [['SIGINT', 130, 'cli'], ['SIGTERM', 143, 'cli-term']] as const) {
    it(`exits ${status} with "rxpush: push cancelled" and no stack on ${signal === 'SIGINT' ? 'Ctrl-C' : signal}, deleting the open session`, { timeout: 20_000 }, async (t) => {
      const cache = await mkdtemp(join(env.work, 'cache-'));
      const put = new RegExp(`cancel/${repository}/blobs/uploads/.*digest=${layer()}`);
      env.proxy.addFault({ method: 'PUT', path: put, fault: { kind: 'stall' } });
      const cli = startCli(t, ['push', `oci:${env.layout.dir}:latest`, `${env.proxy.host}/cancel/${repository}:1.0`, '--progress', 'plain'], { env: { RXPUSH_CACHE_DIR: cache } });
      const upload = await env.proxy.waitFor('PUT', put);
      cli.child.kill(signal);
      const { code, stderr } = await cli.result;
      assert.equal(code, status, stderr);
      assert.equal(stderr, 'rxpush: push cancelled\n');
      const deleted = await env.proxy.waitFor('DELETE', new RegExp(sessionOf(upload.url)));
      await env.proxy.settled(deleted);
      assert.ok(deleted.status !== undefined && deleted.status < 300, `DELETE answered ${deleted.status}`);
      assert.equal(await env.direct.hasManifest(`cancel/${repository}`, '1.0'), undefined);
    });
  }
});

describe('cancelling a push whose uploads wait for a slot', () => {
  const env = useProxiedRegistry('cancel-ahead', [{ tags: ['latest'], layers: [1, 2, 3, 4].map((i) => ({ files: 1, fileSize: 300_000, seed: `ahead-${i}` })) }]);

  it('gives back every session: those of the uploads in flight and those opened ahead of their slot', { timeout: 20_000 }, async () => {
    const put = /cancel\/ahead\/blobs\/uploads\/.*digest=/;
    env.proxy.addFault({ method: 'PUT', path: put, fault: { kind: 'stall' } });
    const posts = () => env.proxy.requests.filter((r) => r.method === 'POST' && r.url.includes('cancel/ahead/blobs/uploads/') && r.status === 202);
    const subscription = push({ source: `oci:${env.layout.dir}:latest`, destination: `${env.proxy.host}/cancel/ahead:1.0`, cacheDir: false, concurrency: 2 }).subscribe();
    await env.proxy.waitFor('PUT', put);
    // Two uploads send (stalled); two more have opened their sessions and wait for a slot.
    for (let i = 0; i < 200 && posts().length < 4; i++) await delay(25);
    assert.equal(posts().length, 4, 'sessions opened');
    subscription.unsubscribe();

    // Every session the registry opened is given back: as many distinct sessions DELETEd as POSTs answered.
    const deletes = () => env.proxy.requests.filter((r) => r.method === 'DELETE' && r.url.includes('cancel/ahead/blobs/uploads/') && r.status !== undefined && r.status < 300);
    for (let i = 0; i < 200 && deletes().length < posts().length; i++) await delay(25);
    assert.equal(new Set(deletes().map((r) => sessionOf(r.url))).size, posts().length, 'sessions left open in the registry');
    assert.equal(await env.direct.hasManifest('cancel/ahead', '1.0'), undefined);
  });
});

describe('cancelling a copy', () => {
  // The source and the destination are one registry behind two proxies: two hosts to rxpush, so nothing is mounted.
  const env = useProxiedRegistry('cancel-copy', [{ tags: ['latest'], layers: [{ files: 2, fileSize: 200_000, seed: 'cancel-copy' }] }]);

  it('on Ctrl-C aborts the source blob being read and gives back the destination session, tagging nothing', { timeout: 20_000 }, async (t) => {
    const destination = await startFaultProxy({ target: env.registry.host });
    t.after(() => destination.close());
    const pushed = await lastValueFrom(push({ source: `oci:${env.layout.dir}:latest`, destination: `${env.registry.host}/src/app:1`, cacheDir: false }));
    assert.equal(pushed?.type, 'manifest-pushed');
    const layer = env.layout.images[0]!.layerDigests[0]!;
    // The source's answer for the layer never comes: the copy is reading it when Ctrl-C comes.
    env.proxy.addFault({ method: 'GET', path: new RegExp(`/src/app/blobs/${layer}$`), fault: { kind: 'stall' } });
    const cache = await mkdtemp(join(env.work, 'cache-'));
    const cli = startCli(t, ['copy', `docker://${env.proxy.host}/src/app:1`, `${destination.host}/dst/app:1`, '--progress', 'plain'], { env: { RXPUSH_CACHE_DIR: cache } });
    const read = await env.proxy.waitFor('GET', new RegExp(`/src/app/blobs/${layer}$`));
    cli.child.kill('SIGINT');
    const { code, stderr } = await cli.result;
    assert.equal(code, 130, stderr);
    assert.equal(stderr, 'rxpush: copy cancelled\n');
    await env.proxy.settled(read);
    assert.equal(read.aborted, true, 'the source GET was abandoned');
    // Every upload session the destination opened is given back.
    const posts = destination.requests.filter((r) => r.method === 'POST' && r.url.includes('/dst/app/blobs/uploads/') && r.status === 202);
    for (const post of posts) await destination.settled(post);
    const deletes = () => destination.requests.filter((r) => r.method === 'DELETE' && r.url.includes('/dst/app/blobs/uploads/'));
    for (let i = 0; i < 200 && deletes().length < posts.length; i++) await delay(25);
    assert.ok(posts.length > 0, 'the copy had opened a session for the layer');
    assert.equal(deletes().length, posts.length, 'sessions left open');
    assert.equal(await env.direct.hasManifest('dst/app', '1'), undefined);
  });
});
