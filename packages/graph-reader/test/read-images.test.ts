import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { buffer } from 'node:stream/consumers';
import { describe, it } from 'node:test';
import { promisify } from 'node:util';

import type { IndexRecord } from '@rxpush/core';
import { lastValueFrom, toArray } from 'rxjs';

import { makeOciLayout } from '../../../tools/fixtures.js';
import { readImages } from '../src/index.js';
import { addIndex, blobPath, editIndex, layout, tempDir } from './layouts.js';
import { fails, read, readOne } from './read.js';

const run = promisify(execFile);
const skopeo = await run('skopeo', ['--version']).then(
  () => true,
  () => false,
);

const twoImages = {
  images: [
    { tags: ['1.0', 'latest'], layers: [{ files: 1, fileSize: 512, seed: 'base' }, { files: 1, fileSize: 256, seed: 'app' }] },
    { tags: ['dev'], layers: [{ files: 1, fileSize: 512, seed: 'base' }, { files: 1, fileSize: 128, seed: 'dev' }] },
  ],
};

describe('readImages from oci:', () => {
  it('reads the image named latest, with the stored manifest and file-backed blobs', async (t) => {
    const fixture = await layout(t);
    const [expected] = fixture.images;
    assert.ok(expected);
    const image = await readOne(`oci:${fixture.dir}`);

    assert.deepEqual(image.tags, ['latest']);
    assert.equal(image.source, `oci:${fixture.dir}:latest`);
    assert.deepEqual(image.platform, { architecture: 'amd64', os: 'linux' });
    assert.equal(image.manifest?.digest, expected.manifestDigest);
    assert.equal(image.manifest?.mediaType, 'application/vnd.oci.image.manifest.v1+json');
    assert.deepEqual(Buffer.from(image.manifest?.bytes ?? []), await readFile(blobPath(fixture.dir, expected.manifestDigest)));

    assert.equal(image.config.key, expected.configDigest);
    assert.equal(image.config.role, 'config');
    assert.equal(image.config.form, 'stored');
    assert.equal(image.config.size, expected.configSize);
    assert.equal(image.config.origin, blobPath(fixture.dir, expected.configDigest));

    assert.equal(image.layers.kind, 'list');
    const layers = image.layers.kind === 'list' ? image.layers.layers : [];
    assert.deepEqual(layers.map((l) => l.key), expected.layerDigests);
    assert.deepEqual(layers.map((l) => l.digest), expected.layerDigests);
    assert.deepEqual(layers.map((l) => l.size), expected.layerSizes);
    assert.deepEqual(layers.map((l) => l.diffId), expected.diffIds);
    assert.ok(layers.every((l) => l.role === 'layer' && l.form === 'stored' && l.mediaType === 'application/vnd.oci.image.layer.v1.tar+gzip'));
  });

  it('opens a blob as a stream of exactly the bytes of its digest', async (t) => {
    const fixture = await layout(t);
    const image = await readOne(`oci:${fixture.dir}:latest`);
    const [layer] = image.layers.kind === 'list' ? image.layers.layers : [];
    assert.ok(layer);
    for (const blob of [image.config, layer]) {
      const bytes = await buffer(await blob.open());
      assert.equal(`sha256:${createHash('sha256').update(bytes).digest('hex')}`, blob.digest);
    }
  });

  it('does not open a blob when its read is already cancelled', async (t) => {
    const fixture = await layout(t);
    const image = await readOne(`oci:${fixture.dir}`);
    const controller = new AbortController();
    controller.abort();
    await assert.rejects(image.config.open({ signal: controller.signal }), { name: 'AbortError' });
  });

  it('selects an image by ref name and pushes it under that name', async (t) => {
    const fixture = await layout(t, twoImages);
    const image = await readOne(`oci:${fixture.dir}:dev`);
    assert.deepEqual(image.tags, ['dev']);
    assert.equal(image.manifest?.digest, fixture.images[1]?.manifestDigest);
    assert.equal(image.source, `oci:${fixture.dir}:dev`);
  });

  it('selects an image by digest and pushes it with no tag', async (t) => {
    const fixture = await layout(t, twoImages);
    const digest = fixture.images[1]?.manifestDigest;
    const image = await readOne(`oci:${fixture.dir}:${digest}`);
    assert.deepEqual(image.tags, []);
    assert.equal(image.manifest?.digest, digest);
  });

  it('splits PATH:REF at the first colon, so a ref name may hold colons', async (t) => {
    const fixture = await layout(t, { images: [{ tags: ['app:1.0', 'other'], layers: [{ files: 1, fileSize: 10, seed: 'x' }] }] });
    const image = await readOne(`oci:${fixture.dir}:app:1.0`);
    assert.deepEqual(image.tags, ['app:1.0']);
  });

  it('takes the only image when none is named latest', async (t) => {
    const fixture = await layout(t, { images: [{ tags: ['v1'], layers: [{ files: 1, fileSize: 10, seed: 'x' }] }] });
    const image = await readOne(`oci:${fixture.dir}`);
    assert.deepEqual(image.tags, ['v1']);
  });

  it('takes the only image with no tag when it has no ref name', async (t) => {
    const fixture = await layout(t, { images: [{ tags: ['v1'], layers: [{ files: 1, fileSize: 10, seed: 'x' }] }] });
    await editIndex(fixture.dir, (index) => delete index.manifests[0].annotations);
    const image = await readOne(`oci:${fixture.dir}`);
    assert.deepEqual(image.tags, []);
    assert.equal(image.source, `oci:${fixture.dir}:${fixture.images[0]?.manifestDigest}`);
  });

  it('reads every tag with allTags, merging names of the same manifest into one record', async (t) => {
    const fixture = await layout(t, twoImages);
    const records = await read(`oci:${fixture.dir}`, { allTags: true });
    assert.deepEqual(
      records.map((r) => [r.tags, r.kind === 'image' ? r.manifest?.digest : undefined]),
      [
        [['1.0', 'latest'], fixture.images[0]?.manifestDigest],
        [['dev'], fixture.images[1]?.manifestDigest],
      ],
    );
  });

  it('reads Docker schema 2 manifests stored in a layout', async (t) => {
    const fixture = await layout(t, { format: 'docker' });
    const image = await readOne(`oci:${fixture.dir}`);
    assert.equal(image.manifest?.mediaType, 'application/vnd.docker.distribution.manifest.v2+json');
    assert.equal(image.config.mediaType, 'application/vnd.docker.container.image.v1+json');
  });

  it('reads an index as one record holding its images, with their platforms', async (t) => {
    const fixture = await layout(t, twoImages);
    const { digest: indexDigest } = await addIndex(fixture, 'multi');
    const [record] = await read(`oci:${fixture.dir}:multi`);
    assert.equal(record?.kind, 'index');
    const index = record as IndexRecord;
    assert.deepEqual(index.tags, ['multi']);
    assert.equal(index.index.digest, indexDigest);
    assert.equal(index.index.mediaType, 'application/vnd.oci.image.index.v1+json');
    assert.deepEqual(Buffer.from(index.index.bytes), await readFile(blobPath(fixture.dir, indexDigest)));
    assert.deepEqual(
      index.manifests.map((m) => [m.manifest?.digest, m.platform?.architecture, m.tags]),
      [
        [fixture.images[0]?.manifestDigest, 'amd64', []],
        [fixture.images[1]?.manifestDigest, 'arm64', []],
      ],
    );
  });

  it("reads only the image of an index that a platform picks, under the index's tags", async (t) => {
    const fixture = await layout(t, twoImages);
    await addIndex(fixture, 'multi');
    const arm = await readOne(`oci:${fixture.dir}:multi`, { platform: 'linux/arm64' });
    assert.equal(arm.kind, 'image');
    assert.deepEqual(arm.tags, ['multi']);
    assert.equal(arm.manifest?.digest, fixture.images[1]?.manifestDigest);
    assert.deepEqual(arm.platform, { architecture: 'arm64', os: 'linux', variant: 'v8' });
    const amd = await readOne(`oci:${fixture.dir}:multi`, { platform: 'linux/amd64' });
    assert.equal(amd.manifest?.digest, fixture.images[0]?.manifestDigest);
    // A variant must match when one is asked for.
    await fails(`oci:${fixture.dir}:multi`, { code: 'SOURCE_NOT_FOUND', message: /has no image for linux\/arm64\/v7; its index sha256:[a-f0-9]{64} offers linux\/amd64, linux\/arm64\/v8$/ }, { platform: 'linux/arm64/v7' });
    // A tag of one image is read when its config is of that platform (the fixture's are linux/amd64), else refused.
    assert.equal((await readOne(`oci:${fixture.dir}:dev`, { platform: 'linux/amd64' })).manifest?.digest, fixture.images[1]?.manifestDigest);
    await fails(`oci:${fixture.dir}:dev`, { code: 'SOURCE_NOT_FOUND', message: new RegExp(`^oci:${fixture.dir}:dev is one image, for linux/amd64, not for linux/arm64 \\(--platform\\); drop --platform to take it as it is$`) }, { platform: 'linux/arm64' });
    await fails(`oci:${fixture.dir}:multi`, { code: 'USAGE', message: /^--platform "arm64" is not os\/arch\[\/variant\]/ }, { platform: 'arm64' });
  });

  it('reads a layout that skopeo wrote', { skip: !skopeo && 'skopeo is not installed' }, async (t) => {
    const fixture = await layout(t);
    const copy = join(await tempDir(t), 'copy');
    await run('skopeo', ['copy', '--quiet', `oci:${fixture.dir}:latest`, `oci:${copy}:copied`]);
    const image = await readOne(`oci:${copy}`);
    assert.deepEqual(image.tags, ['copied']);
    assert.equal(image.manifest?.digest, fixture.images[0]?.manifestDigest);
  });

  it('starts reading only when subscribed', async (t) => {
    const dir = join(await tempDir(t), 'later');
    const events = readImages(`oci:${dir}`);
    await makeOciLayout(dir);
    const [event] = await lastValueFrom(events.pipe(toArray()));
    assert.equal(event?.type, 'image');
  });
});

