import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buffer } from 'node:stream/consumers';
import { describe, it, type TestContext } from 'node:test';
import { promisify } from 'node:util';

import type { BlobSource, LayerLink, SourceRecord } from '@rxpush/core';

import { makeOciLayout } from '../../../tools/fixtures.js';
import { entry, makeDockerSave, makeLegacyDockerSave, sha256, type SaveImageSpec } from './docker-save-fixtures.js';
import { readImageRecords, readOne } from './read.js';

const run = promisify(execFile);
const skopeo = await run('skopeo', ['--version']).then(
  () => true,
  () => false,
);

async function tempDir(t: TestContext): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'rxpush-docker-archive-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

/** The layers of a record, base first, walking a parent chain as the layer walker does. */
async function layersOf(record: SourceRecord): Promise<BlobSource[]> {
  assert.equal(record.kind, 'image');
  if (record.layers.kind === 'list') return [...record.layers.layers];
  const layers: BlobSource[] = [];
  for (let link: LayerLink | undefined = record.layers.top; link !== undefined; link = await link.parent()) layers.unshift(link.blob);
  return layers;
}

const app: SaveImageSpec = { repoTags: ['example.com/app:1.0', 'example.com/app:latest'], layers: [{ 'etc/base': 'base' }, { 'app/bin': 'app' }, { 'app/conf': 'conf' }] };
const tool: SaveImageSpec = { repoTags: ['tool:2'], layers: [{ 'etc/base': 'base' }, { 'usr/bin/tool': 'tool' }] };

describe('readImages from docker-archive: (manifest.json)', () => {
  it('reads the only image: uncompressed layers with their diff IDs, the config as stored', async (t) => {
    const fixture = await makeDockerSave(join(await tempDir(t), 'app.tar'), { images: [app] });
    const [expected] = fixture.images;
    assert.ok(expected);
    const image = await readOne(`docker-archive:${fixture.path}`);

    assert.deepEqual(image.tags, ['1.0', 'latest']);
    assert.equal(image.source, `docker-archive:${fixture.path}:example.com/app:1.0`);
    assert.deepEqual(image.platform, { architecture: 'amd64', os: 'linux' });
    assert.equal(image.manifest, undefined);

    assert.equal(image.config.key, expected.configDigest);
    assert.equal(image.config.digest, expected.configDigest);
    assert.equal(image.config.form, 'stored');
    assert.equal(image.config.size, expected.config?.length);
    assert.equal(image.config.mediaType, 'application/vnd.docker.container.image.v1+json');
    assert.deepEqual(await buffer(await image.config.open()), expected.config);

    const layers = await layersOf(image);
    assert.deepEqual(layers.map((l) => l.key), expected.diffIds);
    assert.deepEqual(layers.map((l) => l.diffId), expected.diffIds);
    assert.deepEqual(layers.map((l) => l.size), expected.layerSizes);
    assert.deepEqual(layers.map((l) => l.origin), expected.layerIds.map((id) => `${fixture.path}:${id}/layer.tar`));
    assert.ok(layers.every((l) => l.form === 'uncompressed' && l.role === 'layer' && l.digest === undefined && l.mediaType === 'application/vnd.docker.image.rootfs.diff.tar'));
  });

  it('streams each layer straight out of the archive, byte for byte', async (t) => {
    const fixture = await makeDockerSave(join(await tempDir(t), 'app.tar'), { images: [app] });
    const layers = await layersOf(await readOne(`docker-archive:${fixture.path}`));
    // Several at once, as the uploader compresses them.
    const bytes = await Promise.all(layers.map(async (layer) => buffer(await layer.open())));
    assert.deepEqual(bytes.map(sha256), fixture.images[0]?.diffIds);
  });

  it('selects an image by NAME:TAG, in either spelling of a Docker Hub name', async (t) => {
    const fixture = await makeDockerSave(join(await tempDir(t), 'two.tar'), { images: [app, tool] });
    const image = await readOne(`docker-archive:${fixture.path}:docker.io/library/tool:2`);
    assert.deepEqual(image.tags, ['2']);
    assert.equal(image.config.digest, fixture.images[1]?.configDigest);
    const byPort = await readOne(`docker-archive:${fixture.path}:example.com/app:latest`);
    assert.deepEqual(byPort.tags, ['latest']);
  });

  it('selects an image by @INDEX, as skopeo does', async (t) => {
    const fixture = await makeDockerSave(join(await tempDir(t), 'two.tar'), { images: [app, tool] });
    const image = await readOne(`docker-archive:${fixture.path}:@1`);
    assert.deepEqual(image.tags, ['2']);
  });

  it('reads every image with allTags, each with its tags', async (t) => {
    const fixture = await makeDockerSave(join(await tempDir(t), 'two.tar'), { images: [app, tool] });
    const records = await readImageRecords(`docker-archive:${fixture.path}`, { allTags: true });
    assert.deepEqual(
      records.map((r) => [r.tags, r.config.digest]),
      [
        [['1.0', 'latest'], fixture.images[0]?.configDigest],
        [['2'], fixture.images[1]?.configDigest],
      ],
    );
    // The shared base layer has one key, so the walker pushes it once.
    const [first, second] = await Promise.all(records.map(layersOf));
    assert.equal(first?.[0]?.key, second?.[0]?.key);
  });

  it('follows the links docker save writes for a repeated layer', async (t) => {
    const fixture = await makeDockerSave(join(await tempDir(t), 'repeat.tar'), { images: [{ repoTags: ['r:1'], layers: [{ a: '1' }, { b: '2' }, { a: '1' }] }] });
    const layers = await layersOf(await readOne(`docker-archive:${fixture.path}`));
    assert.equal(layers[2]?.key, layers[0]?.key);
    assert.equal(sha256(await buffer(await (layers[2] as BlobSource).open())), fixture.images[0]?.diffIds[2]);
  });

  it('reads the layout of newer Docker, with layers under blobs/sha256', async (t) => {
    const fixture = await makeDockerSave(join(await tempDir(t), 'oci.tar'), {
      images: [tool],
      edit: (entries) => {
        const manifest = JSON.parse(String(entry(entries, 'manifest.json').data));
        const moved = manifest[0].Layers.map((name: string) => {
          const layer = entry(entries, name);
          layer.name = `blobs/sha256/${sha256(layer.data as Buffer).slice(7)}`;
          return layer.name;
        });
        const config = entry(entries, manifest[0].Config);
        config.name = `blobs/sha256/${manifest[0].Config.slice(0, 64)}`;
        entry(entries, 'manifest.json').data = JSON.stringify([{ ...manifest[0], Config: config.name, Layers: moved }]);
      },
    });
    const image = await readOne(`docker-archive:${fixture.path}`);
    assert.equal(image.config.digest, fixture.images[0]?.configDigest);
    assert.deepEqual((await layersOf(image)).map((l) => l.origin), fixture.images[0]?.diffIds.map((d) => `${fixture.path}:blobs/sha256/${d.slice(7)}`));
  });

  it('reads an archive skopeo wrote', { skip: !skopeo && 'skopeo is not installed' }, async (t) => {
    const dir = await tempDir(t);
    const layout = await makeOciLayout(join(dir, 'layout'));
    const archive = join(dir, 'skopeo.tar');
    await run('skopeo', ['copy', '--quiet', `oci:${layout.dir}:latest`, `docker-archive:${archive}:fixtures/app:v1`]);
    const image = await readOne(`docker-archive:${archive}:fixtures/app:v1`);
    const layers = await layersOf(image);
    assert.deepEqual(layers.map((l) => l.diffId), layout.images[0]?.diffIds);
    for (const layer of layers) assert.equal(sha256(await buffer(await layer.open())), layer.diffId);
  });
});

describe('readImages from docker-archive: (legacy, per-layer json)', () => {
  const legacy = { repoTags: ['old/app:1'], layers: [{ base: 'b' }, { mid: 'm' }, { top: 't' }] };

  it('reads the image as a parent chain from the top layer named in repositories', async (t) => {
    const fixture = await makeLegacyDockerSave(join(await tempDir(t), 'legacy.tar'), { images: [legacy] });
    const [expected] = fixture.images;
    const image = await readOne(`docker-archive:${fixture.path}`);
    assert.deepEqual(image.tags, ['1']);
    assert.equal(image.layers.kind, 'chain');
    assert.equal(image.layers.kind === 'chain' ? image.layers.top?.id : undefined, expected?.layerIds.at(-1));
    const layers = await layersOf(image);
    assert.deepEqual(layers.map((l) => l.diffId), expected?.diffIds);
    assert.deepEqual(layers.map((l) => l.origin), expected?.layerIds.map((id) => `${fixture.path}:${id}/layer.tar`));
    for (const layer of layers) assert.equal(sha256(await buffer(await layer.open())), layer.diffId);
  });

  it('makes the image config from the top layer json, with the diff IDs and a history entry per layer', async (t) => {
    const fixture = await makeLegacyDockerSave(join(await tempDir(t), 'legacy.tar'), { images: [legacy] });
    const image = await readOne(`docker-archive:${fixture.path}:old/app:1`);
    const bytes = await buffer(await image.config.open());
    assert.equal(sha256(bytes), image.config.digest);
    assert.equal(bytes.length, image.config.size);
    const config = JSON.parse(bytes.toString());
    assert.deepEqual(config.rootfs, { type: 'layers', diff_ids: fixture.images[0]?.diffIds });
    assert.equal(config.history.length, 3);
    assert.equal(config.history[0].author, 'rxpush tests');
    assert.match(config.history[2].created_by, /^\/bin\/sh -c #\(nop\) ADD file 2 in \/ <&>$/);
    assert.deepEqual(config.config, { Cmd: ['/bin/sh'], Env: ['PATH=/usr/bin:/bin'] });
    for (const key of ['id', 'parent', 'Size']) assert.equal(config[key], undefined);
    assert.deepEqual(image.platform, { architecture: 'amd64', os: 'linux' });
  });

  it('reads every tag with allTags, sharing the layers two images have in common', async (t) => {
    const second = { repoTags: ['old/app:2'], layers: [{ base: 'b' }, { mid: 'm' }, { other: 'o' }] };
    const fixture = await makeLegacyDockerSave(join(await tempDir(t), 'legacy.tar'), { images: [legacy, second] });
    const records = await readImageRecords(`docker-archive:${fixture.path}`, { allTags: true });
    assert.deepEqual(records.map((r) => r.tags).sort(), [['1'], ['2']]);
    const [a, b] = await Promise.all(records.map(layersOf));
    assert.equal(a?.[1]?.key, b?.[1]?.key);
    assert.notEqual(a?.[2]?.key, b?.[2]?.key);
  });
});
