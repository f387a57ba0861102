import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { promisify } from 'node:util';

import { lastValueFrom, toArray } from 'rxjs';

import { makeOciLayout, type OciLayoutFixture } from '../../tools/fixtures.ts';
import { startRegistry, type RunningRegistry } from '../../tools/registry.ts';
import { missingBlobs } from './check-blobs-alone.ts';
import { nightlyPush } from './custom-pipeline.ts';

const run = promisify(execFile);

describe('the docs examples', () => {
  let registry: RunningRegistry;
  let work: string;
  let layout: OciLayoutFixture;

  before(async () => {
    work = await mkdtemp(join(tmpdir(), 'rxpush-examples-'));
    registry = await startRegistry();
    layout = await makeOciLayout(join(work, 'layout'), {
      images: [
        { tags: ['1.0'], layers: [{ files: 2, fileSize: 10_000, seed: 'shared' }, { files: 1, fileSize: 5_000, seed: 'one' }] },
        { tags: ['2.0'], layers: [{ files: 2, fileSize: 10_000, seed: 'shared' }, { files: 1, fileSize: 5_000, seed: 'two' }] },
      ],
    });
  });
  after(async () => {
    await registry?.stop();
    await rm(work, { recursive: true, force: true });
  });

  it('checks blobs alone: everything is missing before a push and nothing after', async () => {
    const destination = `${registry.host}/examples/app`;
    const before = await missingBlobs(`oci:${layout.dir}:1.0`, destination);
    assert.deepEqual(before.map((blob) => blob.digest).sort(), [...layout.images[0]!.layerDigests, layout.images[0]!.configDigest].sort());
    await lastValueFrom(nightlyPush(`oci:${layout.dir}`, destination, () => {}).pipe(toArray()));
    assert.deepEqual(await missingBlobs(`oci:${layout.dir}:1.0`, destination), []);
  });

  it('pushes every tag renamed by the custom pipeline, with its own progress lines', async () => {
    const lines: string[] = [];
    await lastValueFrom(nightlyPush(`oci:${layout.dir}`, `${registry.host}/examples/nightly`, (line) => lines.push(line)).pipe(toArray()));
    assert.ok(lines.includes(`${registry.host}/examples/nightly:1.0-nightly -> ${layout.images[0]!.manifestDigest}`), lines.join('\n'));
    assert.ok(lines.includes(`${registry.host}/examples/nightly:2.0-nightly -> ${layout.images[1]!.manifestDigest}`), lines.join('\n'));
    assert.equal(lines.filter((line) => line.endsWith('bytes)')).length, 5, 'the shared layer is uploaded once');
  });

  it('runs both examples as scripts', async () => {
    const custom = await run(process.execPath, ['--import', 'tsx', 'docs/examples/custom-pipeline.ts', `oci:${layout.dir}`, `${registry.host}/examples/script`]);
    assert.match(custom.stdout, /2 tag\(s\) pushed/);
    const check = await run(process.execPath, ['--import', 'tsx', 'docs/examples/check-blobs-alone.ts', `oci:${layout.dir}:2.0`, `${registry.host}/examples/script`]);
    assert.match(check.stdout, /the registry has every blob/);
  });
});
