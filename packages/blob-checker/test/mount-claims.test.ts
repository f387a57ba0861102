import assert from 'node:assert/strict';
import { mkdtemp, readdir, rm, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it, type TestContext } from 'node:test';

import { checkBlobs, DigestCache } from '@rxpush/blob-checker';
import { MediaType, sha256Digest, type BlobSource, type PushEvent } from '@rxpush/core';
import { RegistryClient } from '@rxpush/registry-client';
import { MockAgent } from 'undici';
import { from, lastValueFrom, toArray } from 'rxjs';

import { MountClaims } from '../src/mount-claims.ts';

const target = { registry: 'registry.example', repository: 'app', digest: sha256Digest('base') };

async function tempDir(t: TestContext): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'rxpush-claims-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

describe('MountClaims', () => {
  it('lets one holder at a time work on a blob and repository, across instances sharing a directory', async (t) => {
    const dir = await tempDir(t);
    const log: string[] = [];
    const work = (name: string) => async () => {
      log.push(`${name} in`);
      await new Promise((resolve) => setTimeout(resolve, 30));
      log.push(`${name} out`);
    };
    const signal = new AbortController().signal;
    await Promise.all(['a', 'b', 'c'].map((name) => new MountClaims(dir, { pollMs: 5 }).hold(target, signal, work(name))));
    for (let i = 0; i < log.length; i += 2) assert.equal(log[i]?.replace(' in', ''), log[i + 1]?.replace(' out', ''), log.join(', '));
    assert.deepEqual(await readdir(join(dir, 'claims')), [], 'every claim is given back');
  });

  it('lets waiters that find their answer once the holder is done go on without taking the claim', async (t) => {
    const dir = await tempDir(t);
    const signal = new AbortController().signal;
    const ran: string[] = [];
    let mounted = false;
    const mount = (name: string) => async () => {
      ran.push(name);
      await new Promise((resolve) => setTimeout(resolve, 30));
      mounted = true;
      return 'mounted';
    };
    const recheck = async () => (mounted ? 'exists' : undefined);
    const answers = await Promise.all(['a', 'b', 'c'].map((name) => new MountClaims(dir, { pollMs: 5 }).hold(target, signal, mount(name), recheck)));
    assert.equal(ran.length, 1, 'only one of them did the work');
    assert.deepEqual([...answers].sort(), ['exists', 'exists', 'mounted']);
  });

  it('does not make other blobs wait', async (t) => {
    const dir = await tempDir(t);
    const claims = new MountClaims(dir, { pollMs: 5 });
    const signal = new AbortController().signal;
    let inner = false;
    await claims.hold(target, signal, () => claims.hold({ ...target, digest: sha256Digest('other') }, signal, async () => void (inner = true)));
    assert.equal(inner, true);
  });

  it('takes over a claim left behind by a process that died', async (t) => {
    const dir = await tempDir(t);
    const claims = new MountClaims(dir, { staleMs: 1000, pollMs: 5 });
    // Hold once to learn the claim's file name, then leave an old copy of it behind.
    let name = '';
    await claims.hold(target, new AbortController().signal, async () => void (name = (await readdir(join(dir, 'claims')))[0] ?? ''));
    const left = join(dir, 'claims', name);
    await writeFile(left, '999999\n');
    const old = new Date(Date.now() - 60_000);
    await utimes(left, old, old);
    assert.equal(await claims.hold(target, new AbortController().signal, async () => 'ran'), 'ran');
  });

  it('runs the work unguarded when claims cannot be kept there', async (t) => {
    const dir = await tempDir(t);
    // A file where the claims directory should be: no claim can be created under it, even by root.
    await writeFile(join(dir, 'claims'), '');
    assert.equal(await new MountClaims(dir).hold(target, new AbortController().signal, async () => 'ran'), 'ran');
  });

  it('stops waiting with CancelledError when the push is cancelled', async (t) => {
    const dir = await tempDir(t);
    const claims = new MountClaims(dir, { pollMs: 5 });
    const controller = new AbortController();
    let release: (() => void) | undefined;
    const first = claims.hold(target, new AbortController().signal, () => new Promise<void>((resolve) => (release = resolve)));
    while (release === undefined) await new Promise((resolve) => setTimeout(resolve, 5));
    const second = claims.hold(target, controller.signal, async () => 'ran');
    controller.abort();
    await assert.rejects(second, { name: 'CancelledError' });
    release?.();
    await first;
  });
});

describe('checkBlobs with mount sources', () => {
  const base: BlobSource = {
    key: target.digest,
    role: 'layer',
    mediaType: MediaType.ociLayerGzip,
    digest: target.digest,
    size: 4,
    form: 'stored',
    origin: 'base',
    open: () => Promise.reject(new Error('not read')),
  };

  /** The blob is missing at the first HEAD and there at the next, as when another push mounts it meanwhile. */
  function registry(t: TestContext) {
    const agent = new MockAgent();
    agent.disableNetConnect();
    t.after(() => agent.close());
    const requests: string[] = [];
    let heads = 0;
    const pool = agent.get('https://registry.example');
    pool
      .intercept({ method: 'HEAD', path: `/v2/app/blobs/${target.digest}` })
      .reply(() => {
        requests.push('HEAD');
        const there = heads++ > 0;
        return { statusCode: there ? 200 : 404, data: '', responseOptions: { headers: there ? { 'content-length': '4' } : {} } };
      })
      .persist();
    pool
      .intercept({ method: 'POST', path: (p) => p.startsWith('/v2/app/blobs/uploads/') })
      .reply(() => {
        requests.push('POST');
        return { statusCode: 201, data: '' };
      })
      .persist();
    return { client: new RegistryClient({ registry: 'registry.example', dispatcher: agent }), requests };
  }

  it('looks again just before mounting, and does not mount a blob the repository now holds', async (t) => {
    const cache = new DigestCache(await tempDir(t));
    await cache.addLocation(target.digest, { registry: 'registry.example', repository: 'other' });
    const { client, requests } = registry(t);
    const events = await lastValueFrom(from<PushEvent[]>([{ type: 'blob', blob: base }]).pipe(checkBlobs({ client, repository: 'app', cache }), toArray()));
    assert.deepEqual(requests, ['HEAD', 'HEAD'], 'no mount request');
    assert.deepEqual(events.map((e) => e.type), ['exists', 'blob-ready']);
  });
});
