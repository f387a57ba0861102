import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { readFile, stat, truncate, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { before, describe, it } from 'node:test';
import { promisify } from 'node:util';

import { splitDigest } from '@rxpush/core';

import { makeOciLayout } from '../tools/fixtures.ts';
import { assertOneLineError } from './helpers/assert-cli.ts';
import { useRegistry } from './helpers/registry-suite.ts';
import { runCli } from './helpers/run-cli.ts';
import { runSkopeo, skopeoCopyToOci, skopeoInspectRaw } from './helpers/skopeo.ts';
import { ofType, pushAll } from './helpers/push-events.ts';

const run = promisify(execFile);
const blobPath = (dir: string, digest: string) => join(dir, 'blobs', 'sha256', splitDigest(digest as `sha256:${string}`).hex);

describe('pushing an OCI archive to the reference registry', () => {
  const suite = useRegistry('e2e-archive', {
    images: [
      // A layer of several MiB streams out of the archive in more than one read.
      { tags: ['latest', 'v1'], layers: [{ files: 3, fileSize: 1_500_000, seed: 'archive-base' }, { files: 2, fileSize: 50_000, seed: 'archive-app' }] },
      { tags: ['v2'], layers: [{ files: 3, fileSize: 1_500_000, seed: 'archive-base' }, { files: 2, fileSize: 50_000, seed: 'archive-app-2' }] },
    ],
  });
  /** Written by skopeo from the suite's layout, as users make them. */
  let archive: string;

  before(async () => {
    archive = join(suite.work, 'skopeo.tar');
    await runSkopeo(['copy', '--quiet', `oci:${suite.layout.dir}:latest`, `oci-archive:${archive}:latest`]);
  });

  it('pushes the archive skopeo wrote with push(), and skopeo reads back the same manifest and every blob', async () => {
    const events = await pushAll({ source: `oci-archive:${archive}`, destination: `${suite.registry.host}/archive/app:1.0` });
    const [image] = suite.layout.images;
    assert.deepEqual(
      ofType(events, 'manifest-pushed').map((e) => [e.tag, e.digest, e.size]),
      [['1.0', image!.manifestDigest, image!.manifestSize]],
    );
    assert.deepEqual(ofType(events, 'pushed').map((e) => e.digest).sort(), [...image!.layerDigests, image!.configDigest].sort());
    const raw = await skopeoInspectRaw(`docker://${suite.registry.host}/archive/app:1.0`);
    assert.deepEqual(raw.bytes, await readFile(blobPath(suite.layout.dir, image!.manifestDigest)));
    await skopeoCopyToOci(`docker://${suite.registry.host}/archive/app:1.0`, join(suite.work, 'pulled'));
  });

  it('pushes every tag of an archive GNU tar wrote, shared layers once', async () => {
    const tarred = join(suite.work, 'gnu.tar');
    await run('tar', ['-C', suite.layout.dir, '-cf', tarred, '.']);
    const events = await pushAll({ source: `oci-archive:${tarred}`, destination: `${suite.registry.host}/archive/all`, allTags: true });
    assert.deepEqual(ofType(events, 'manifest-pushed').map((e) => e.tag).sort(), ['latest', 'v1', 'v2']);
    const pushed = ofType(events, 'pushed').map((e) => e.digest);
    assert.equal(new Set(pushed).size, pushed.length, 'a blob was uploaded twice');
    assert.deepEqual((await suite.client.listTags('archive/all')).sort(), ['latest', 'v1', 'v2']);
    const raw = await skopeoInspectRaw(`docker://${suite.registry.host}/archive/all:v2`);
    assert.equal(raw.json.layers[1].digest, suite.layout.images[1]!.layerDigests[1]);
  });

  it('pushes an archive with the CLI, and the pushed digest is the archive manifest', async () => {
    const result = await runCli(['push', `oci-archive:${archive}:latest`, `${suite.registry.host}/archive/cli:latest`, '--progress', 'plain']);
    assert.equal(result.code, 0, result.stderr);
    const digest = suite.layout.images[0]!.manifestDigest;
    assert.match(result.stdout, new RegExp(`^latest: digest: ${digest} size: \\d+$`, 'm'));
    const raw = await skopeoInspectRaw(`docker://${suite.registry.host}/archive/cli:latest`);
    assert.equal(`sha256:${createHash('sha256').update(raw.bytes).digest('hex')}`, digest);
  });

  it('fails in one line naming a truncated archive, and pushes no manifest', async () => {
    const cut = join(suite.work, 'cut.tar');
    await writeFile(cut, await readFile(archive));
    await truncate(cut, Math.floor((await stat(cut)).size / 2));
    const result = await runCli(['push', `oci-archive:${cut}`, `${suite.registry.host}/archive/cut:latest`, '--progress', 'plain']);
    assertOneLineError(result, new RegExp(`^rxpush: ${cut.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')} is truncated: .*; copy or export the archive again$`));
    assert.equal(await suite.client.hasManifest('archive/cut', 'latest'), undefined);
  });

  it('pushes no manifest when a layer in the archive does not match its digest', async () => {
    const broken = await makeOciLayout(join(suite.work, 'broken'), { images: [{ tags: ['latest'], layers: [{ files: 1, fileSize: 1000, seed: 'archive-corrupt' }] }] });
    const layer = broken.images[0]!.layerDigests[0]!;
    const bytes = await readFile(blobPath(broken.dir, layer));
    bytes.writeUInt8(bytes.readUInt8(bytes.length - 1) ^ 0xff, bytes.length - 1);
    await writeFile(blobPath(broken.dir, layer), bytes);
    const tarred = join(suite.work, 'broken.tar');
    await run('tar', ['-C', broken.dir, '-cf', tarred, '.']);
    await assert.rejects(pushAll({ source: `oci-archive:${tarred}`, destination: `${suite.registry.host}/archive/broken:latest` }), (error: Error & { code?: string }) => {
      assert.equal(error.code, 'DIGEST_MISMATCH');
      assert.match(error.message, new RegExp(`blobs/sha256/${layer.slice(7)} in ${tarred}`));
      return true;
    });
    assert.equal(await suite.client.hasManifest('archive/broken', 'latest'), undefined);
    assert.equal(await suite.client.hasBlob('archive/broken', layer as `sha256:${string}`), undefined);
  });
});
