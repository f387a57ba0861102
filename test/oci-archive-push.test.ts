import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtemp, readFile, rm, stat, truncate, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { promisify } from 'node:util';

import { splitDigest } from '@rxpush/core';
import { RegistryClient } from '@rxpush/registry-client';

import { makeOciLayout, type OciLayoutFixture } from '../tools/fixtures.ts';
import { startRegistry, type RunningRegistry } from '../tools/registry.ts';
import { runCli } from './helpers/run-cli.ts';
import { runSkopeo, skopeoCopyToOci, skopeoInspectRaw } from './helpers/skopeo.ts';
import { ofType, pushAll } from './helpers/push-events.ts';

const run = promisify(execFile);
const blobPath = (dir: string, digest: string) => join(dir, 'blobs', 'sha256', splitDigest(digest as `sha256:${string}`).hex);

describe('pushing an OCI archive to the reference registry', () => {
  let registry: RunningRegistry;
  let client: RegistryClient;
  let work: string;
  let layout: OciLayoutFixture;
  /** Written by skopeo from `layout`, as users make them. */
  let archive: string;

  before(async () => {
    work = await mkdtemp(join(tmpdir(), 'rxpush-e2e-archive-'));
    registry = await startRegistry();
    client = new RegistryClient({ registry: registry.host });
    layout = await makeOciLayout(join(work, 'layout'), {
      images: [
        // A layer of several MiB streams out of the archive in more than one read.
        { tags: ['latest', 'v1'], layers: [{ files: 3, fileSize: 1_500_000, seed: 'archive-base' }, { files: 2, fileSize: 50_000, seed: 'archive-app' }] },
        { tags: ['v2'], layers: [{ files: 3, fileSize: 1_500_000, seed: 'archive-base' }, { files: 2, fileSize: 50_000, seed: 'archive-app-2' }] },
      ],
    });
    archive = join(work, 'skopeo.tar');
    await runSkopeo(['copy', '--quiet', `oci:${layout.dir}:latest`, `oci-archive:${archive}:latest`]);
  });
  after(async () => {
    await client?.close();
    await registry?.stop();
    await rm(work, { recursive: true, force: true });
  });

  it('pushes the archive skopeo wrote with push(), and skopeo reads back the same manifest and every blob', async () => {
    const events = await pushAll({ source: `oci-archive:${archive}`, destination: `${registry.host}/archive/app:1.0` });
    const [image] = layout.images;
    assert.deepEqual(
      ofType(events, 'manifest-pushed').map((e) => [e.tag, e.digest, e.size]),
      [['1.0', image!.manifestDigest, image!.manifestSize]],
    );
    assert.deepEqual(ofType(events, 'pushed').map((e) => e.digest).sort(), [...image!.layerDigests, image!.configDigest].sort());
    const raw = await skopeoInspectRaw(`docker://${registry.host}/archive/app:1.0`);
    assert.deepEqual(raw.bytes, await readFile(blobPath(layout.dir, image!.manifestDigest)));
    await skopeoCopyToOci(`docker://${registry.host}/archive/app:1.0`, join(work, 'pulled'));
  });

  it('pushes every tag of an archive GNU tar wrote, shared layers once', async () => {
    const tarred = join(work, 'gnu.tar');
    await run('tar', ['-C', layout.dir, '-cf', tarred, '.']);
    const events = await pushAll({ source: `oci-archive:${tarred}`, destination: `${registry.host}/archive/all`, allTags: true });
    assert.deepEqual(ofType(events, 'manifest-pushed').map((e) => e.tag).sort(), ['latest', 'v1', 'v2']);
    const pushed = ofType(events, 'pushed').map((e) => e.digest);
    assert.equal(new Set(pushed).size, pushed.length, 'a blob was uploaded twice');
    assert.deepEqual((await client.listTags('archive/all')).sort(), ['latest', 'v1', 'v2']);
    const raw = await skopeoInspectRaw(`docker://${registry.host}/archive/all:v2`);
    assert.equal(raw.json.layers[1].digest, layout.images[1]!.layerDigests[1]);
  });

  it('pushes an archive with the CLI, and the pushed digest is the archive manifest', async () => {
    const result = await runCli(['push', `oci-archive:${archive}:latest`, `${registry.host}/archive/cli:latest`, '--progress', 'plain']);
    assert.equal(result.code, 0, result.stderr);
    const digest = layout.images[0]!.manifestDigest;
    assert.match(result.stdout, new RegExp(`^latest: digest: ${digest} size: \\d+$`, 'm'));
    const raw = await skopeoInspectRaw(`docker://${registry.host}/archive/cli:latest`);
    assert.equal(`sha256:${createHash('sha256').update(raw.bytes).digest('hex')}`, digest);
  });

  it('fails in one line naming a truncated archive, and pushes no manifest', async () => {
    const cut = join(work, 'cut.tar');
    await writeFile(cut, await readFile(archive));
    await truncate(cut, Math.floor((await stat(cut)).size / 2));
    const result = await runCli(['push', `oci-archive:${cut}`, `${registry.host}/archive/cut:latest`, '--progress', 'plain']);
    assert.equal(result.code, 1, result.stderr);
    const lines = result.stderr.trimEnd().split('\n');
    assert.equal(lines.length, 1, result.stderr);
    assert.match(lines[0]!, new RegExp(`^rxpush: ${cut.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')} is truncated: .*; copy or export the archive again$`));
    assert.equal(await client.hasManifest('archive/cut', 'latest'), undefined);
  });

  it('pushes no manifest when a layer in the archive does not match its digest', async () => {
    const broken = await makeOciLayout(join(work, 'broken'), { images: [{ tags: ['latest'], layers: [{ files: 1, fileSize: 1000, seed: 'archive-corrupt' }] }] });
    const layer = broken.images[0]!.layerDigests[0]!;
    const bytes = await readFile(blobPath(broken.dir, layer));
    bytes.writeUInt8(bytes.readUInt8(bytes.length - 1) ^ 0xff, bytes.length - 1);
    await writeFile(blobPath(broken.dir, layer), bytes);
    const tarred = join(work, 'broken.tar');
    await run('tar', ['-C', broken.dir, '-cf', tarred, '.']);
    await assert.rejects(pushAll({ source: `oci-archive:${tarred}`, destination: `${registry.host}/archive/broken:latest` }), (error: Error & { code?: string }) => {
      assert.equal(error.code, 'DIGEST_MISMATCH');
      assert.match(error.message, new RegExp(`blobs/sha256/${layer.slice(7)} in ${tarred}`));
      return true;
    });
    assert.equal(await client.hasManifest('archive/broken', 'latest'), undefined);
    assert.equal(await client.hasBlob('archive/broken', layer as `sha256:${string}`), undefined);
  });
});
