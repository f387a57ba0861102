/**
 * docker-root: end to end. A private dockerd (vfs) loads generated images, including a layer with
 * hard links, symbolic links, an empty directory, a PAX long name and whiteouts; its data root is
 * copied and the images removed from the daemon, so nothing but files is behind what rxpush reads.
 * rxpush pushes from the copy to the reference registry, and dockerd pulls the images back: the
 * layers it computes must be the originals.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { promisify } from 'node:util';
import { gunzipSync, gzipSync } from 'node:zlib';

import type { BlobSource, PushEvent } from '@rxpush/core';
import { readImages } from '@rxpush/graph-reader';
import { push } from '@rxpush/pipeline';
import { RegistryClient } from '@rxpush/registry-client';
import { lastValueFrom, toArray } from 'rxjs';

import { startRegistry, type RunningRegistry } from '../tools/registry.ts';
import { useDockerd } from './helpers/docker-engine.ts';
import { FIXTURE_REFS, inspectImage, loadFixtures, type InspectedImage } from './helpers/docker-root-fixtures.ts';
import { runCli } from './helpers/run-cli.ts';
import { runCliAsNobody } from '../tools/as-nobody.ts';
import { skopeoInspect, skopeoInspectRaw } from './helpers/skopeo.ts';
import { ofType, pushAll } from './helpers/push-events.ts';
import { assertOneLineError } from './helpers/assert-cli.ts';

const run = promisify(execFile);

/** The layers of an image in a data root, base first, as rxpush reads them. */
async function layersOf(dataRoot: string, source: string): Promise<BlobSource[]> {
  const [event] = await lastValueFrom(readImages(source, { dataRoot }).pipe(toArray()));
  assert.ok(event?.type === 'image' && event.image.kind === 'image');
  const layers: BlobSource[] = [];
  const { layers: list } = event.image;
  assert.equal(list.kind, 'chain');
  for (let link = list.top; link !== undefined; link = await link.parent()) layers.unshift(link.blob);
  return layers;
}

describe('pushing from a Docker data root (docker-root:), no daemon needed', () => {
  const dockerd = useDockerd();
  let registry: RunningRegistry;
  let client: RegistryClient;
  let work: string;
  /** A copy of the engine's data root (image/ and vfs/), with no daemon behind it. */
  let dataRoot: string;
  /** `docker image inspect` RootFS.Layers and Id of each loaded image, before it was removed. */
  let loaded: Map<string, InspectedImage>;
  let copies = 0;

  /** A fresh copy of the data root, for a test to damage. */
  async function copyOfDataRoot(): Promise<string> {
    const copy = join(work, `damaged-${++copies}`);
    await run('cp', ['-a', dataRoot, copy]);
    return copy;
  }

  /** Pulls `ref` into the engine and checks the layers Docker computed are the original image's. */
  async function pullsBackAs(ref: string, original: string): Promise<void> {
    await dockerd.engine.docker(['pull', ref]);
    const pulled = await inspectImage(dockerd.engine, ref);
    assert.deepEqual(pulled.layers, loaded.get(original)!.layers);
    assert.equal(pulled.id, loaded.get(original)!.id);
  }

  before(async () => {
    if (dockerd.skipped !== undefined) return;
    const engine = dockerd.engine;
    work = await mkdtemp(join(tmpdir(), 'rxpush-docker-root-'));
    registry = await startRegistry();
    client = new RegistryClient({ registry: registry.host });

    loaded = await loadFixtures(engine, work);

    dataRoot = join(work, 'data-root');
    await run('mkdir', [dataRoot]);
    await run('cp', ['-a', join(engine.dataRoot, 'image'), join(engine.dataRoot, 'vfs'), dataRoot]);
    // Gone from the daemon: what it pulls later is downloaded, not found locally.
    await engine.docker(['rmi', ...FIXTURE_REFS]);
  });

  after(async () => {
    await client?.close();
    await registry?.stop();
    if (work !== undefined) await rm(work, { recursive: true, force: true });
  });

  it('pushes an image from the copy and docker pulls back the same layers; the pull leaves hints docker-root: reads', async (t) => {
    if (!dockerd.require(t)) return;
    const events = await pushAll({ source: 'docker-root:fix/app:v1', destination: `${registry.host}/root/app:v1`, dataRoot });
    const [pushed] = ofType(events, 'manifest-pushed');
    assert.equal(pushed?.tag, 'v1');
    assert.equal(ofType(events, 'pushed').length, 3);

    const raw = await skopeoInspectRaw(`${registry.host}/root/app:v1`);
    assert.equal(raw.json.mediaType, 'application/vnd.docker.distribution.manifest.v2+json');
    assert.equal(raw.json.config.digest, loaded.get('fix/app:v1')!.id);
    assert.deepEqual(raw.json.layers.map((layer: { mediaType: string }) => layer.mediaType), Array(2).fill('application/vnd.docker.image.rootfs.diff.tar.gzip'));
    assert.equal((await skopeoInspect(`${registry.host}/root/app:v1`)).Layers.length, 2);
    await pullsBackAs(`${registry.host}/root/app:v1`, 'fix/app:v1');

    // Docker recorded which compressed digests it pulled, from where: rxpush reads that as hints.
    const layers = await layersOf(dockerd.engine.dataRoot, `docker-root:${registry.host}/root/app:v1`);
    assert.deepEqual(
      layers.map((layer) => layer.hints?.find((hint) => hint.registry === registry.host)),
      raw.json.layers.map((layer: { digest: string }) => ({ digest: layer.digest, registry: registry.host, repository: 'root/app' })),
    );
  });

  it('rebuilds a layer with hard links, symbolic links, an empty directory, a PAX long name and whiteouts exactly, through the CLI', async (t) => {
    if (!dockerd.require(t)) return;
    const cache = join(work, 'cli-cache');
    const result = await runCli(['push', 'docker-root:fix/tricky:v1', `${registry.host}/root/tricky:v1`, '--data-root', dataRoot, '--progress', 'plain'], {
      env: { RXPUSH_CACHE_DIR: cache },
    });
    assert.equal(result.code, 0, result.stderr);
    assert.match(result.stdout, /^v1: digest: sha256:[a-f0-9]{64} size: \d+$/m);
    await pullsBackAs(`${registry.host}/root/tricky:v1`, 'fix/tricky:v1');
  });

  it('reads Docker Hub names in the short form Docker stores, a name alone meaning latest', async (t) => {
    if (!dockerd.require(t)) return;
    const events = await pushAll({ source: 'docker-root:plain', destination: `${registry.host}/root/plain`, dataRoot });
    assert.deepEqual(ofType(events, 'manifest-pushed').map((e) => e.tag), ['latest']);
    assert.equal((await skopeoInspectRaw(`${registry.host}/root/plain:latest`)).json.config.digest, loaded.get('plain:latest')!.id);
  });

  it('pushes every tag of a repository with allTags, uploading the shared base layer once', async (t) => {
    if (!dockerd.require(t)) return;
    const events = await pushAll({ source: 'docker-root:fix/app', destination: `${registry.host}/root/all`, dataRoot, allTags: true });
    assert.deepEqual(ofType(events, 'manifest-pushed').map((e) => e.tag).sort(), ['v1', 'v2']);
    const uploaded = ofType(events, 'pushed').map((e) => e.digest);
    assert.equal(new Set(uploaded).size, uploaded.length, 'a blob was uploaded twice');
    await pullsBackAs(`${registry.host}/root/all:v2`, 'fix/app:v2');
  });

  describe('bad input: a clear error, and no manifest pushed', () => {
    it('fails with DIGEST_MISMATCH naming the file when a layer file was changed', async (t) => {
      if (!dockerd.require(t)) return;
      const root = await copyOfDataRoot();
      const [, top] = await layersOf(root, 'docker-root:fix/app:v1');
      const cacheId = (await readFile(join(top!.origin, 'cache-id'), 'utf8')).trim();
      const file = join(root, 'vfs', 'dir', cacheId, 'data', 'root-app', 'file-0001.bin');
      const bytes = await readFile(file);
      bytes[100] = bytes[100]! ^ 0xff;
      await writeFile(file, bytes);

      await assert.rejects(pushAll({ source: 'docker-root:fix/app:v1', destination: `${registry.host}/root/corrupt-file:v1`, dataRoot: root }), (error: Error & { code?: string }) => {
        assert.equal(error.code, 'DIGEST_MISMATCH');
        assert.ok(error.message.startsWith(`${file} (a file of layer ${top!.origin}) does not match its digest`), error.message);
        return true;
      });
      assert.equal(await client.hasManifest('root/corrupt-file', 'v1'), undefined);
    });

    it("fails with DIGEST_MISMATCH naming the layer when its rebuilt tar is not its diff ID", async (t) => {
      if (!dockerd.require(t)) return;
      const root = await copyOfDataRoot();
      const [base] = await layersOf(root, 'docker-root:fix/app:v1');
      // Change one byte of the first header (its mtime) in the tar-split: files are intact, the tar is not.
      const tarSplit = join(base!.origin, 'tar-split.json.gz');
      const lines = gunzipSync(await readFile(tarSplit)).toString('utf8').split('\n');
      const first = JSON.parse(lines[0]!) as { payload: string };
      const header = Buffer.from(first.payload, 'base64');
      header[140] = header[140] === 0x30 ? 0x31 : 0x30;
      lines[0] = JSON.stringify({ ...first, payload: header.toString('base64') });
      await writeFile(tarSplit, gzipSync(lines.join('\n')));

      await assert.rejects(pushAll({ source: 'docker-root:fix/app:v1', destination: `${registry.host}/root/corrupt-tar:v1`, dataRoot: root }), (error: Error & { code?: string }) => {
        assert.equal(error.code, 'DIGEST_MISMATCH');
        assert.ok(error.message.startsWith(`${base!.origin} does not match its digest: expected ${base!.diffId}`), error.message);
        return true;
      });
      assert.equal(await client.hasManifest('root/corrupt-tar', 'v1'), undefined);
    });

    it('refuses a parent chain that loops before uploading anything', async (t) => {
      if (!dockerd.require(t)) return;
      const root = await copyOfDataRoot();
      const [base, top] = await layersOf(root, 'docker-root:fix/app:v1');
      const topChain = `sha256:${top!.origin.split('/').at(-1)}`;
      await writeFile(join(base!.origin, 'parent'), topChain);
      const events: PushEvent[] = [];
      await assert.rejects(
        lastValueFrom(push({ source: 'docker-root:fix/app:v1', destination: `${registry.host}/root/loop:v1`, dataRoot: root, cacheDir: false }).pipe(toArray())).then((all) => events.push(...all)),
        (error: Error & { code?: string }) => {
          assert.equal(error.code, 'INVALID_SOURCE');
          assert.match(error.message, new RegExp(`^${join(base!.origin, 'parent')} points back to layer ${topChain}: the layer chain loops`));
          return true;
        },
      );
      assert.equal(events.length, 0);
      assert.equal(await client.hasManifest('root/loop', 'v1'), undefined);
    });

    it('refuses a parent that names a missing layer, through the CLI', async (t) => {
      if (!dockerd.require(t)) return;
      const root = await copyOfDataRoot();
      const [, top] = await layersOf(root, 'docker-root:fix/app:v1');
      const missing = `sha256:${'e'.repeat(64)}`;
      await writeFile(join(top!.origin, 'parent'), missing);
      const result = await runCli(['push', 'docker-root:fix/app:v1', `${registry.host}/root/missing:v1`, '--data-root', root], { env: { RXPUSH_CACHE_DIR: join(work, 'cli-cache') } });
      assertOneLineError(result, new RegExp(`^rxpush: ${join(top!.origin, 'parent')} names layer ${missing}, but .* does not exist`));
      assert.equal(await client.hasManifest('root/missing', 'v1'), undefined);
    });

    it('names the images the data root has when the tag asked for is not there', async (t) => {
      if (!dockerd.require(t)) return;
      const result = await runCli(['push', 'docker-root:fix/app:v9', `${registry.host}/root/nope:v9`, '--data-root', dataRoot], { env: { RXPUSH_CACHE_DIR: join(work, 'cli-cache') } });
      assertOneLineError(result, /^rxpush: no image fix\/app:v9 in .*repositories\.json; it has fix\/app:v1, fix\/app:v2, fix\/tricky:v1, plain:latest$/);
    });

    it('tells a user who may not read the data root to run as root or go through the daemon', async (t) => {
      if (!dockerd.require(t)) return;
      // The engine's real data root is root's alone (0710), as /var/lib/docker is: run the CLI as nobody
      // (from a copy: the checkout itself may be closed to nobody).
      const result = await runCliAsNobody(['push', 'docker-root:fix/app:v1', `${registry.host}/root/denied:v1`, '--data-root', dockerd.engine.dataRoot]);
      assertOneLineError(result, /^rxpush: cannot read .* permission denied; .*run rxpush as root \(e\.g\. with sudo\).*docker-daemon:NAME:TAG/);
    });
  });
});
