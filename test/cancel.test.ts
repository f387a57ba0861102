import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, afterEach, before, describe, it } from 'node:test';

import type { PushEvent } from '@rxpush/core';
import { push, type PushOptions } from '@rxpush/pipeline';
import { RegistryClient } from '@rxpush/registry-client';
import type { Subscription } from 'rxjs';

import { makeOciLayout, type OciLayoutFixture } from '../tools/fixtures.ts';
import { startRegistry, type RunningRegistry } from '../tools/registry.ts';
import { startFaultProxy, type FaultProxy } from './helpers/fault-proxy.ts';
import { CLI_BIN } from './helpers/run-cli.ts';

/** The upload session (UUID) in a blob upload URL. */
const sessionOf = (url: string): string => /\/blobs\/uploads\/([^/?]+)/.exec(url)![1]!;

describe('cancelling a push', () => {
  let registry: RunningRegistry;
  let proxy: FaultProxy;
  let direct: RegistryClient;
  let work: string;
  let layout: OciLayoutFixture;

  before(async () => {
    work = await mkdtemp(join(tmpdir(), 'rxpush-cancel-'));
    registry = await startRegistry();
    proxy = await startFaultProxy({ target: registry.host });
    direct = new RegistryClient({ registry: registry.host });
    layout = await makeOciLayout(join(work, 'layout'), { images: [{ tags: ['latest'], layers: [{ files: 2, fileSize: 200_000, seed: 'cancel' }] }] });
  });
  afterEach(() => proxy.clearFaults());
  after(async () => {
    await direct?.close();
    await proxy?.close();
    await registry?.stop();
    await rm(work, { recursive: true, force: true });
  });

  const layer = () => layout.images[0]!.layerDigests[0]!;
  const start = (repository: string, seen: PushEvent[], options: Partial<PushOptions> = {}): Subscription =>
    push({ source: `oci:${layout.dir}:latest`, destination: `${proxy.host}/${repository}:1.0`, cacheDir: false, ...options }).subscribe((event) => seen.push(event));

  it('aborts the upload in flight and deletes its session when unsubscribed', { timeout: 15_000 }, async () => {
    proxy.addFault({ method: 'PUT', path: new RegExp(`cancel/push/blobs/uploads/.*digest=${layer()}`), fault: { kind: 'stall' } });
    const seen: PushEvent[] = [];
    const subscription = start('cancel/push', seen);
    const upload = await proxy.waitFor('PUT', new RegExp(`cancel/push/blobs/uploads/.*digest=${layer()}`));
    subscription.unsubscribe();

    await proxy.settled(upload);
    assert.equal(upload.aborted, true, 'the stalled PUT was abandoned by the client');
    const deleted = await proxy.waitFor('DELETE', new RegExp(sessionOf(upload.url)));
    await proxy.settled(deleted);
    assert.ok(deleted.status !== undefined && deleted.status < 300, `DELETE answered ${deleted.status}`);
    assert.equal(seen.filter((e) => e.type === 'manifest-pushed').length, 0);
    assert.equal(proxy.requests.filter((r) => r.method === 'PUT' && r.url.includes('/manifests/')).length, 0);
    assert.equal(await direct.hasManifest('cancel/push', '1.0'), undefined);
  });

  it('stops waiting out a Retry-After and deletes the session when unsubscribed during a retry', { timeout: 15_000 }, async () => {
    const put = new RegExp(`cancel/backoff/blobs/uploads/.*digest=${layer()}`);
    proxy.addFault({ method: 'PUT', path: put, fault: { kind: 'status', status: 503, headers: { 'retry-after': '30' } } });
    const seen: PushEvent[] = [];
    let subscription: Subscription | undefined;
    const retrying = new Promise<void>((resolve) => {
      subscription = push({ source: `oci:${layout.dir}:latest`, destination: `${proxy.host}/cancel/backoff:1.0`, cacheDir: false }).subscribe((event) => {
        seen.push(event);
        if (event.type === 'retrying') resolve();
      });
    });
    await retrying;
    assert.equal(seen.find((e) => e.type === 'retrying')?.delayMs, 30_000);
    subscription!.unsubscribe();
    const [upload] = proxy.requests.filter((r) => r.method === 'PUT' && put.test(r.url));
    const deleted = await proxy.waitFor('DELETE', new RegExp(sessionOf(upload!.url)));
    await proxy.settled(deleted);
    assert.equal(proxy.requests.filter((r) => r.method === 'PUT' && put.test(r.url)).length, 1, 'no retry after the cancel');
  });

  it('exits 130 with "rxpush: push cancelled" and no stack on Ctrl-C, deleting the open session', { timeout: 20_000 }, async () => {
    const cache = await mkdtemp(join(work, 'cache-'));
    const put = new RegExp(`cancel/cli/blobs/uploads/.*digest=${layer()}`);
    proxy.addFault({ method: 'PUT', path: put, fault: { kind: 'stall' } });
    const child = spawn(process.execPath, [CLI_BIN, 'push', `oci:${layout.dir}:latest`, `${proxy.host}/cancel/cli:1.0`, '--progress', 'plain'], {
      env: { ...process.env, NO_COLOR: '1', RXPUSH_CACHE_DIR: cache },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stderr = '';
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString('utf8')));
    child.stdout.resume();
    const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
    try {
      const upload = await proxy.waitFor('PUT', put);
      child.kill('SIGINT');
      const code = await exited;
      assert.equal(code, 130, stderr);
      assert.equal(stderr, 'rxpush: push cancelled\n');
      const deleted = await proxy.waitFor('DELETE', new RegExp(sessionOf(upload.url)));
      assert.ok(deleted);
      assert.equal(await direct.hasManifest('cancel/cli', '1.0'), undefined);
    } finally {
      if (child.exitCode === null) child.kill('SIGKILL');
    }
  });
});
