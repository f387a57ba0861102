/**
 * docker-root: from an overlay2 data root, the storage driver most Docker installs use. A private
 * dockerd with overlay2 loads the fixtures; its data root is copied and the daemon stopped, so no
 * daemon exists while rxpush pushes; then a fresh dockerd pulls every image back, and the layers it
 * computes must be the originals.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { lstat, mkdir, mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { promisify } from 'node:util';

import { readImages } from '@rxpush/graph-reader';
import { push } from '@rxpush/pipeline';
import { lastValueFrom, toArray } from 'rxjs';

import { startDockerd, type StartDockerdResult } from '../tools/dockerd.ts';
import { startRegistry } from '../tools/registry.ts';
import { inspectImage, loadFixtures } from './helpers/docker-root-fixtures.ts';

const run = promisify(execFile);

describe('pushing from an overlay2 data root', () => {
  it('pushes from the data root of a stopped overlay2 engine, and a fresh engine pulls back the same layers', async (t) => {
    const started: StartDockerdResult = await startDockerd({ storageDriver: 'overlay2' }).catch((err: Error) => ({
      // Only the kernel or file system refusing overlay mounts lands here; vfs (docker-root.test.ts) needs neither.
      skipped: `dockerd cannot use overlay2 here: ${err.message.split('\n')[0]}`,
    }));
    if ('skipped' in started) {
      t.skip(started.skipped);
      return;
    }
    const work = await mkdtemp(join(tmpdir(), 'rxpush-docker-root-overlay2-'));
    t.after(() => rm(work, { recursive: true, force: true }));
    const registry = await startRegistry();
    t.after(() => registry.stop());

    const dataRoot = join(work, 'data-root');
    let loaded;
    try {
      loaded = await loadFixtures(started, work);
      await mkdir(dataRoot);
      await run('cp', ['-a', join(started.dataRoot, 'image'), join(started.dataRoot, 'overlay2'), dataRoot]);
    } finally {
      await started.stop();
    }

    // overlay2 keeps a whiteout as a character device named like the file it hides: only its header may be read.
    const [event] = await lastValueFrom(readImages('docker-root:fix/tricky:v1', { dataRoot }).pipe(toArray()));
    assert.ok(event?.type === 'image' && event.image.kind === 'image' && event.image.layers.kind === 'chain');
    const cacheId = (await readFile(join(event.image.layers.top!.blob.origin, 'cache-id'), 'utf8')).trim();
    assert.ok((await lstat(join(dataRoot, 'overlay2', cacheId, 'diff', 'data', 'gone.txt'))).isCharacterDevice());

    const refs = ['fix/app:v1', 'fix/app:v2', 'fix/tricky:v1'];
    for (const ref of refs) {
      await lastValueFrom(push({ source: `docker-root:${ref}`, destination: `${registry.host}/overlay2/${ref.replace('fix/', '')}`, dataRoot, cacheDir: false }).pipe(toArray()));
    }

    const puller = await startDockerd();
    assert.ok(!('skipped' in puller), 'dockerd ran with overlay2 but not with vfs');
    try {
      for (const ref of refs) {
        const pushed = `${registry.host}/overlay2/${ref.replace('fix/', '')}`;
        await puller.docker(['pull', pushed]);
        assert.deepEqual(await inspectImage(puller, pushed), loaded.get(ref), ref);
      }
    } finally {
      await puller.stop();
    }
  });
});
