/**
 * Issue 10, item 3: pushes of one process share an upload limit. Two pushes given one limiter of a
 * single slot, against the real registry, never upload two blobs at once, and both land.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';

import type { PushEvent } from '@rxpush/core';
import { push, UploadLimiter } from '@rxpush/pipeline';
import { lastValueFrom, map, merge, toArray } from 'rxjs';

import { makeOciLayout } from '../tools/fixtures.ts';
import { startRegistry } from '../tools/registry.ts';

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

    // A blob is uploading from its first `pushing` to its `pushed`.
    const active = new Set<string>();
    let most = 0;
    for (const [name, event] of events) {
      if (event.type === 'pushing') active.add(`${name} ${event.key}`);
      if (event.type === 'pushed') active.delete(`${name} ${event.key}`);
      most = Math.max(most, active.size);
    }
    assert.equal(most, 1);
    assert.equal(events.filter(([, event]) => event.type === 'pushed').length, 8, 'three layers and a config, twice');
    assert.equal(events.filter(([, event]) => event.type === 'manifest-pushed').length, 2);
    assert.equal(limiter.busy, 0);
  });
});
