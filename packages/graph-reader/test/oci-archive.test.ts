import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { appendFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { buffer } from 'node:stream/consumers';
import { describe, it } from 'node:test';

import type { BlobSource, ImageRecord, IndexRecord, SourceRecord } from '@rxpush/core';

import { addIndex, layout, tempDir } from './layouts.js';
import { archive, blobMember, layoutEntries, readBlob, run, writeArchive } from './oci-archives.js';
import { read, readOne } from './read.js';

const skopeo = await run('skopeo', ['--version']).then(
  () => true,
  () => false,
);

const layersOf = (image: ImageRecord): readonly BlobSource[] => (image.layers.kind === 'list' ? image.layers.layers : []);
const sha256 = (bytes: Uint8Array) => `sha256:${createHash('sha256').update(bytes).digest('hex')}`;

/** What a record says, without its functions: the same for a layout and its archive but for where blobs come from. */
function summary(record: SourceRecord): unknown {
  const blob = ({ key, role, mediaType, digest, size, diffId, form }: BlobSource) => ({ key, role, mediaType, digest, size, diffId, form });
  const image = (r: ImageRecord) => ({ tags: r.tags, manifest: r.manifest, platform: r.platform, config: blob(r.config), layers: layersOf(r).map(blob) });
  return record.kind === 'image' ? image(record) : { tags: record.tags, index: record.index, manifests: record.manifests.map(image) };
}

const twoImages = {
  images: [
    { tags: ['1.0', 'latest'], layers: [{ files: 1, fileSize: 512, seed: 'base' }, { files: 1, fileSize: 256, seed: 'app' }] },
    { tags: ['dev'], layers: [{ files: 1, fileSize: 512, seed: 'base' }, { files: 1, fileSize: 128, seed: 'dev' }] },
  ],
};

describe('readImages from oci-archive:', () => {
  it('reads the image named latest, its blobs streaming out of the archive', async (t) => {
    const { fixture, file } = await archive(t);
    const [expected] = fixture.images;
    assert.ok(expected);
    const image = await readOne(`oci-archive:${file}`);

    assert.deepEqual(image.tags, ['latest']);
    assert.equal(image.source, `oci-archive:${file}:latest`);
    assert.equal(image.manifest?.digest, expected.manifestDigest);
    assert.deepEqual(Buffer.from(image.manifest?.bytes ?? []), await readBlob(fixture, expected.manifestDigest));
    assert.equal(image.config.origin, `${blobMember(expected.configDigest)} in ${file}`);
    const layers = layersOf(image);
    assert.deepEqual(layers.map((l) => l.digest), expected.layerDigests);
    assert.deepEqual(layers.map((l) => l.size), expected.layerSizes);
    assert.deepEqual(layers.map((l) => l.diffId), expected.diffIds);
    for (const blob of [image.config, ...layers]) {
      const bytes = await buffer(await blob.open());
      assert.equal(sha256(bytes), blob.digest, blob.origin);
      assert.deepEqual(bytes, await readBlob(fixture, blob.digest ?? ''));
    }
  });

  it('reads the same records from an archive as from the layout it was made of', async (t) => {
    const fixture = await layout(t, twoImages);
    await addIndex(fixture, 'multi');
    const tarred = join(await tempDir(t), 'image.tar');
    await writeArchive(tarred, await layoutEntries(fixture.dir));
    for (const [ref, options] of [['latest'], ['dev'], [fixture.images[1]?.manifestDigest], ['multi'], [undefined, { allTags: true }]] as const) {
      const suffix = ref === undefined ? '' : `:${ref}`;
      const fromLayout = await read(`oci:${fixture.dir}${suffix}`, options);
      const fromArchive = await read(`oci-archive:${tarred}${suffix}`, options);
      assert.deepEqual(fromArchive.map(summary), fromLayout.map(summary), `ref ${ref}`);
      assert.deepEqual(
        fromArchive.map((r) => r.source),
        fromLayout.map((r) => r.source.replace(`oci:${fixture.dir}`, `oci-archive:${tarred}`)),
      );
    }
  });

  it('reads an index as one record holding its images', async (t) => {
    const fixture = await layout(t, twoImages);
    const { digest } = await addIndex(fixture, 'multi');
    const file = join(await tempDir(t), 'image.tar');
    await writeArchive(file, await layoutEntries(fixture.dir));
    const [record] = await read(`oci-archive:${file}:multi`);
    assert.equal(record?.kind, 'index');
    const index = record as IndexRecord;
    assert.equal(index.index.digest, digest);
    assert.deepEqual(index.manifests.map((m) => m.manifest?.digest), fixture.images.map((i) => i.manifestDigest));
    const [first] = index.manifests;
    assert.ok(first);
    for (const blob of layersOf(first)) assert.equal(sha256(await buffer(await blob.open())), blob.digest);
  });

  it('reads an archive that skopeo wrote', { skip: !skopeo && 'skopeo is not installed' }, async (t) => {
    const fixture = await layout(t);
    const file = join(await tempDir(t), 'skopeo.tar');
    await run('skopeo', ['copy', '--quiet', `oci:${fixture.dir}:latest`, `oci-archive:${file}:copied`]);
    const image = await readOne(`oci-archive:${file}`);
    assert.deepEqual(image.tags, ['copied']);
    assert.equal(image.manifest?.digest, fixture.images[0]?.manifestDigest);
    for (const blob of [image.config, ...layersOf(image)]) assert.equal(sha256(await buffer(await blob.open())), blob.digest);
  });

  for (const format of ['gnu', 'pax', 'ustar']) {
    it(`reads an archive GNU tar wrote in ${format} format with ./ names`, async (t) => {
      const fixture = await layout(t);
      const file = join(await tempDir(t), `${format}.tar`);
      await run('tar', [`--format=${format}`, '-C', fixture.dir, '-cf', file, '.']);
      const image = await readOne(`oci-archive:${file}`);
      assert.equal(image.manifest?.digest, fixture.images[0]?.manifestDigest);
      for (const blob of [image.config, ...layersOf(image)]) assert.equal(sha256(await buffer(await blob.open())), blob.digest);
    });
  }

  it('finds members whose names only fit in pax or GNU long-name headers', async (t) => {
    const fixture = await layout(t);
    const deep = `${'d'.repeat(120)}/${'e'.repeat(120)}`;
    for (const format of ['gnu', 'pax']) {
      const file = join(await tempDir(t), `${format}.tar`);
      // A long directory before the layout's own files: its name must not leak into theirs.
      await run('mkdir', ['-p', join(fixture.dir, deep)]);
      await writeFile(join(fixture.dir, deep, 'f'.repeat(150)), 'x');
      await run('tar', [`--format=${format}`, '-C', fixture.dir, '-cf', file, deep, 'oci-layout', 'index.json', 'blobs']);
      const image = await readOne(`oci-archive:${file}`);
      assert.equal(image.manifest?.digest, fixture.images[0]?.manifestDigest);
    }
  });

  it('takes the last of members with the same name, as extracting would', async (t) => {
    const { fixture, file } = await archive(t, twoImages, (entries) => {
      const index = entries.find((e) => e.name === 'index.json');
      const json = JSON.parse(Buffer.from(index?.content ?? []).toString());
      json.manifests = json.manifests.filter((m: { annotations?: Record<string, string> }) => m.annotations?.['org.opencontainers.image.ref.name'] === 'dev');
      entries.push({ name: 'index.json', content: Buffer.from(JSON.stringify(json)) });
    });
    const image = await readOne(`oci-archive:${file}`);
    assert.deepEqual(image.tags, ['dev']);
    assert.equal(image.manifest?.digest, fixture.images[1]?.manifestDigest);
  });

  it('refuses to stream a blob once the archive has changed', async (t) => {
    const { file } = await archive(t);
    const image = await readOne(`oci-archive:${file}`);
    await appendFile(file, Buffer.alloc(512));
    await assert.rejects(image.config.open(), { code: 'INVALID_SOURCE', message: new RegExp(`${file} changed after it was read .*; push again`) });
  });

  it('does not open a blob when its read is already cancelled', async (t) => {
    const { file } = await archive(t);
    const image = await readOne(`oci-archive:${file}`);
    const controller = new AbortController();
    controller.abort();
    await assert.rejects(image.config.open({ signal: controller.signal }), { name: 'AbortError' });
  });
});
