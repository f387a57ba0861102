/**
 * Issue 10, item 3: pushes of one process share an upload limit. Two pushes given one limiter of a
 * single slot, against the real registry, never send two blobs at once, and both land. And a slot is
 * held while a blob's bytes are sent, not while the registry commits it: behind a proxy that holds the
 * registry's answers, the next blobs are sent meanwhile.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { describe, it } from 'node:test';

import type { PushEvent } from '@rxpush/core';
import { push, UploadLimiter } from '@rxpush/pipeline';
import { lastValueFrom, map, merge, toArray } from 'rxjs';

import { makeOciLayout } from '../tools/fixtures.ts';
import { startRegistry } from '../tools/registry.ts';
import { startFaultProxy } from './helpers/fault-proxy.ts';

describe('an upload limit shared by pushes', () => {
  it('keeps the uploads of two pushes within its slots, and both pushes land', async (t) => {
    const work = await mkdtemp(join(tmpdir(), 'rxpush-limit-e2e-'));
    t.after(() => rm(work, { recursive: true, force: true }));
    const registry = await startRegistry();
    t.after(() => registry.stop());
    const layout = await makeOciLayout(join(work, 'layout'), {
      images: [{ tags: ['latest'], layers: [1, 2, 3].map((i) => ({ files: 1, fileSize: 200_000, seed: `limit-${i}` })) }],
    });
    const limiter = new UploadLimiter(1);
    const pushes = ['one', 'two'].map((name) =>
      push({ source: `oci:${layout.dir}:latest`, destination: `${registry.host}/limit/${name}:v1`, cacheDir: false, uploadLimiter: limiter }).pipe(
        map((event): [string, PushEvent] => [name, event]),
      ),
    );
    const events = await lastValueFrom(merge(...pushes).pipe(toArray()));

    // A blob is being sent from its first `pushing` to the one that reaches its total (every byte handed to the
    // connection; then its slot is free while the registry commits it).
    const active = new Set<string>();
    let most = 0;
    for (const [name, event] of events) {
      if (event.type !== 'pushing') continue;
      if (event.current === event.total) active.delete(`${name} ${event.key}`);
      else active.add(`${name} ${event.key}`);
      most = Math.max(most, active.size);
    }
    assert.equal(most, 1);
    assert.equal(active.size, 0, 'every blob reached its total');
    assert.equal(events.filter(([, event]) => event.type === 'pushed').length, 8, 'three layers and a config, twice');
    assert.equal(events.filter(([, event]) => event.type === 'manifest-pushed').length, 2);
    assert.equal(limiter.busy, 0);
  });
});

describe('an upload slot', () => {
  it('is free once the blob is sent, while the registry commits it: the next blobs are sent meanwhile', { timeout: 60_000 }, async (t) => {
    const work = await mkdtemp(join(tmpdir(), 'rxpush-slot-e2e-'));
    t.after(() => rm(work, { recursive: true, force: true }));
    const registry = await startRegistry();
    t.after(() => registry.stop());
    // Four layers and a config; with concurrency 2, twice that many uploads are under way at most.
    const layout = await makeOciLayout(join(work, 'layout'), {
      images: [{ tags: ['latest'], layers: [1, 2, 3, 4].map((i) => ({ files: 2, fileSize: 1_000_000, seed: `slot-${i}` })) }],
    });
    let answer!: () => void;
    const answers = new Promise<void>((resolve) => (answer = resolve));
    t.after(answer);
    const commits = /\/slot\/x\/blobs\/uploads\/.*digest=/;
    const proxy = await startFaultProxy({ target: registry.host, faults: [{ method: 'PUT', path: commits, fault: { kind: 'hold-answer', until: answers } }] });
    t.after(() => proxy.close());

    const pushing = push({ source: `oci:${layout.dir}:latest`, destination: `${proxy.host}/slot/x:v1`, cacheDir: false, concurrency: 2 }).pipe(toArray());
    const done = lastValueFrom(pushing);
    done.catch(() => {});
    // Commits whose whole body the proxy has (and forwarded) while the registry's answers wait.
    const sent = () => proxy.requests.filter((r) => r.method === 'PUT' && commits.test(r.url) && r.bodyBytes === Number(r.headers['content-length']));
    for (let i = 0; i < 400 && sent().length < 4; i++) await delay(25);
    const whileHeld = sent().length;
    await delay(200);
    const atMost = sent().length;
    answer();
    const events = await done;

    assert.equal(whileHeld, 4, 'blobs sent while the first two commits were unanswered (2: slots held until the answer)');
    assert.equal(atMost, 4, 'no more than twice the concurrency are under way');
    assert.equal(events.filter((event) => event.type === 'pushed').length, 5);
    assert.ok(events.some((event) => event.type === 'manifest-pushed'));
  });
});
