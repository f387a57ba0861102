import assert from 'node:assert/strict';
import { appendFile, rename, rm, symlink, truncate, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, it, type TestContext } from 'node:test';

import type { ImageRecord } from '@rxpush/core';
import { PushError } from '@rxpush/core';
import { lastValueFrom, toArray } from 'rxjs';

import type { OciLayoutFixture } from '../../../tools/fixtures.js';
import { readImages } from '../src/index.js';
import { addIndex, blobPath, editIndex, editManifest, layout, pipeAt, readJson, tempDir } from './layouts.js';
import { fails, invalid } from './read.js';

async function image(t: TestContext): Promise<{ fixture: OciLayoutFixture; manifest: string; config: string; layers: string[] }> {
  const fixture = await layout(t);
  const [first] = fixture.images;
  assert.ok(first);
  return { fixture, manifest: first.manifestDigest, config: first.configDigest, layers: first.layerDigests };
}

describe('readImages from oci: fails clearly', () => {
  describe('on a source that is not a layout', () => {
    it('when the directory does not exist', async (t) => {
      const dir = join(await tempDir(t), 'absent');
      await fails(`oci:${dir}`, { name: 'SourceNotFoundError', code: 'SOURCE_NOT_FOUND', message: /^OCI layout directory .*absent does not exist; check PATH/ });
    });

    it('when it starts with ~, which the shell left alone after oci:, saying so', async () => {
      // Relative to the working directory, which has no directory named ~.
      await fails('oci:~/rxpush-absent-image:latest', {
        code: 'SOURCE_NOT_FOUND',
        message: /^OCI layout directory ~\/rxpush-absent-image does not exist; check PATH in oci:PATH\[:REF\] \(the shell expands ~ only at the start of a word, not after oci:; write oci:\$HOME\/rxpush-absent-image\)$/,
      });
    });

    it('when PATH is a file', async (t) => {
      const file = join(await tempDir(t), 'image.tar');
      await writeFile(file, 'x');
      await fails(`oci:${file}`, invalid(/image\.tar is not a directory; .*oci-archive:PATH/));
    });

    it('when the oci-layout file is missing', async (t) => {
      const dir = await tempDir(t);
      await fails(`oci:${dir}`, invalid(/is not an OCI image layout \(.*oci-layout is missing\)/));
    });

    it('when the layout version is not 1.0.0', async (t) => {
      const { fixture } = await image(t);
      await writeFile(join(fixture.dir, 'oci-layout'), JSON.stringify({ imageLayoutVersion: '2.0.0' }));
      await fails(`oci:${fixture.dir}`, invalid(/oci-layout has imageLayoutVersion "2.0.0"; rxpush reads OCI image layouts of version 1.0.0/));
    });

    it('when index.json is missing', async (t) => {
      const { fixture } = await image(t);
      await rm(join(fixture.dir, 'index.json'));
      await fails(`oci:${fixture.dir}`, invalid(/is not an OCI image layout \(.*index\.json is missing\)/));
    });
  });

  describe('on a pipe where a file should be, without waiting for a writer', () => {
    for (const name of ['index.json', 'oci-layout']) {
      it(`when ${name} is a pipe`, { timeout: 5_000 }, async (t) => {
        const { fixture } = await image(t);
        const pipe = await pipeAt(t, join(fixture.dir, name));
        await fails(`oci:${fixture.dir}`, invalid(new RegExp(`${name.replace('.', '\\.')} \\(.*\\) is not a regular file`)));
        assert.equal(pipe.waited(), false, 'it was refused at once, not after waiting in open() for a writer');
      });
    }
  });

  describe('on a malformed index.json', () => {
    it('when it is not JSON', async (t) => {
      const { fixture } = await image(t);
      await writeFile(join(fixture.dir, 'index.json'), '{"schemaVersion": 2,');
      await fails(`oci:${fixture.dir}`, invalid(/index\.json is not JSON \(/));
    });

    it('when it has no manifests', async (t) => {
      const { fixture } = await image(t);
      await editIndex(fixture.dir, (index) => delete index.manifests);
      await fails(`oci:${fixture.dir}`, invalid(/index\.json has no "manifests" array/));
    });

    it('when its schemaVersion is not 2', async (t) => {
      const { fixture } = await image(t);
      await editIndex(fixture.dir, (index) => (index.schemaVersion = 1));
      await fails(`oci:${fixture.dir}`, invalid(/index\.json has "schemaVersion" 1, expected 2/));
    });

    it('when its mediaType is not an OCI index', async (t) => {
      const { fixture } = await image(t);
      await editIndex(fixture.dir, (index) => (index.mediaType = 'application/vnd.oci.image.manifest.v1+json'));
      await fails(`oci:${fixture.dir}`, invalid(/index\.json has "mediaType" "application\/vnd\.oci\.image\.manifest\.v1\+json", expected application\/vnd\.oci\.image\.index\.v1\+json/));
    });

    it('when an entry lacks a size', async (t) => {
      const { fixture } = await image(t);
      await editIndex(fixture.dir, (index) => delete index.manifests[0].size);
      await fails(`oci:${fixture.dir}`, invalid(/index\.json has manifests\[0\] whose "size" is missing/));
    });

    it('when it is larger than a document may be', async (t) => {
      const { fixture } = await image(t);
      await editIndex(fixture.dir, (index) => (index.annotations = { padding: 'x'.repeat(5 * 1024 * 1024) }));
      await fails(`oci:${fixture.dir}`, invalid(/index\.json \(the layout index\) is \d+ bytes, more than the 4194304/));
    });

    it('when a digest is malformed, before using it as a path', async (t) => {
      const { fixture } = await image(t);
      await editIndex(fixture.dir, (index) => (index.manifests[0].digest = 'sha256:../../../etc/passwd'));
      await fails(`oci:${fixture.dir}`, {
        name: 'DigestFormatError',
        code: 'INVALID_DIGEST',
        message: /^invalid digest of manifests\[0\] in .*index\.json: "sha256:\.\.\/\.\.\/\.\.\/etc\/passwd"/,
      });
    });
  });

  describe('on a selection it cannot make', () => {
    const two = { images: [{ tags: ['a'], layers: [{ files: 1, fileSize: 10, seed: 'a' }] }, { tags: ['b'], layers: [{ files: 1, fileSize: 10, seed: 'b' }] }] };

    it('when the ref is unknown, listing the refs the layout has', async (t) => {
      const fixture = await layout(t, two);
      await fails(`oci:${fixture.dir}:c`, { name: 'SourceNotFoundError', code: 'SOURCE_NOT_FOUND', message: /no image named "c" in .*index\.json; it has: a, b$/ });
    });

    it('when no image has the digest', async (t) => {
      const fixture = await layout(t, two);
      const digest = `sha256:${'0'.repeat(64)}`;
      await fails(`oci:${fixture.dir}:${digest}`, { name: 'SourceNotFoundError', code: 'SOURCE_NOT_FOUND', message: /no image with digest sha256:0{64} in .*; it has: a, b$/ });
    });

    it('when a REF that looks like a digest is malformed', async (t) => {
      const fixture = await layout(t, two);
      await fails(`oci:${fixture.dir}:sha256:abc`, { name: 'DigestFormatError', code: 'INVALID_DIGEST', message: /invalid digest in source oci:.*:sha256:abc: "sha256:abc"/ });
    });

    it('when there are several images and none is named latest', async (t) => {
      const fixture = await layout(t, two);
      await fails(`oci:${fixture.dir}`, invalid(/holds 2 images and none is named "latest"; choose one as oci:.*:REF or push them all with --all-tags \(it has: a, b\)/));
    });

    it('when the layout lists no images', async (t) => {
      const { fixture } = await image(t);
      await editIndex(fixture.dir, (index) => (index.manifests = []));
      await fails(`oci:${fixture.dir}`, invalid(/index\.json lists no images/));
    });

    it('when all tags are asked for and a REF is given too', async (t) => {
      const fixture = await layout(t, two);
      await fails(`oci:${fixture.dir}:a`, { name: 'UsageError', code: 'USAGE', message: /names an image \(a\) but all tags were asked for/ }, { allTags: true });
    });

    it('when all tags are asked for and no image has a ref name', async (t) => {
      const { fixture, manifest } = await image(t);
      await editIndex(fixture.dir, (index) => delete index.manifests[0].annotations);
      await fails(`oci:${fixture.dir}`, invalid(new RegExp(`has no ref names to push as tags; it names no images; select one by digest: ${manifest}`)), { allTags: true });
    });
  });

  describe('on a malformed manifest', () => {
    it('when it is not JSON', async (t) => {
      const { fixture, manifest } = await image(t);
      const bad = await editManifest(fixture.dir, manifest, () => 'not json');
      await fails(`oci:${fixture.dir}`, invalid(new RegExp(`${bad.slice(7)} is not JSON \\(`)));
    });

    it('when it has no config', async (t) => {
      const { fixture, manifest } = await image(t);
      await editManifest(fixture.dir, manifest, (m) => void delete m.config);
      await fails(`oci:${fixture.dir}`, invalid(/blobs\/sha256\/[0-9a-f]{64} has no "config" descriptor/));
    });

    it('when it has no layers array', async (t) => {
      const { fixture, manifest } = await image(t);
      await editManifest(fixture.dir, manifest, (m) => void (m.layers = {}));
      await fails(`oci:${fixture.dir}`, invalid(/has no "layers" array/));
    });

    it('when its mediaType differs from its descriptor', async (t) => {
      const { fixture, manifest } = await image(t);
      await editManifest(fixture.dir, manifest, (m) => void (m.mediaType = 'application/vnd.docker.distribution.manifest.v2+json'));
      await fails(`oci:${fixture.dir}`, invalid(/has "mediaType" "application\/vnd\.docker\.distribution\.manifest\.v2\+json", expected application\/vnd\.oci\.image\.manifest\.v1\+json/));
    });

    it('when its schemaVersion is not 2', async (t) => {
      const { fixture, manifest } = await image(t);
      await editManifest(fixture.dir, manifest, (m) => void (m.schemaVersion = 1));
      await fails(`oci:${fixture.dir}`, invalid(/has "schemaVersion" 1, expected 2/));
    });

    it('when a layer digest is malformed', async (t) => {
      const { fixture, manifest } = await image(t);
      await editManifest(fixture.dir, manifest, (m) => void (m.layers[1].digest = 'sha256:ABC'));
      await fails(`oci:${fixture.dir}`, { name: 'DigestFormatError', code: 'INVALID_DIGEST', message: /^invalid digest of layers\[1\] in .*blobs\/sha256\/[0-9a-f]{64}: "sha256:ABC"/ });
    });

    it('when the index entry names a type that is not an image', async (t) => {
      const { fixture } = await image(t);
      await editIndex(fixture.dir, (index) => (index.manifests[0].mediaType = 'application/vnd.example.thing+json'));
      await fails(`oci:${fixture.dir}`, { name: 'UnsupportedError', code: 'UNSUPPORTED', message: /as application\/vnd\.example\.thing\+json, not an image manifest or index; rxpush pushes images only/ });
    });
  });

  describe('on a missing or damaged blob', () => {
    it('when the manifest is missing', async (t) => {
      const { fixture, manifest } = await image(t);
      await rm(blobPath(fixture.dir, manifest));
      await fails(`oci:${fixture.dir}`, { name: 'BlobMissingError', code: 'BLOB_MISSING', message: new RegExp(`^blob ${manifest} is missing from .*: manifest ${manifest} names it; .*re-export the image`) });
    });

    it('when the config is missing', async (t) => {
      const { fixture, manifest, config } = await image(t);
      await rm(blobPath(fixture.dir, config));
      await fails(`oci:${fixture.dir}`, { name: 'BlobMissingError', code: 'BLOB_MISSING', message: new RegExp(`^blob ${config} is missing from .*: config of manifest ${manifest} names it`) });
    });

    it('when a layer is missing', async (t) => {
      const { fixture, manifest, layers } = await image(t);
      await rm(blobPath(fixture.dir, layers[2] ?? ''));
      await fails(`oci:${fixture.dir}`, { name: 'BlobMissingError', code: 'BLOB_MISSING', message: new RegExp(`^blob ${layers[2]} is missing from .*: layer 3 of manifest ${manifest} names it`) });
    });

    it('when the manifest does not hash to its digest', async (t) => {
      const { fixture, manifest } = await image(t);
      const path = blobPath(fixture.dir, manifest);
      const json = await readJson(path);
      // Same length, different bytes: only the hash can tell.
      json.schemaVersion = 3;
      await writeFile(path, JSON.stringify(json));
      await fails(`oci:${fixture.dir}`, { name: 'DigestMismatchError', code: 'DIGEST_MISMATCH', message: new RegExp(`${manifest.slice(7)} does not match its digest: expected ${manifest}, read sha256:`) });
    });

    it('when the config does not hash to its digest', async (t) => {
      const { fixture, config } = await image(t);
      const path = blobPath(fixture.dir, config);
      const json = await readJson(path);
      json.os = 'xxxxx';
      await writeFile(path, JSON.stringify(json));
      await fails(`oci:${fixture.dir}`, { name: 'DigestMismatchError', code: 'DIGEST_MISMATCH', message: new RegExp(`${config.slice(7)} does not match its digest: expected ${config}`) });
    });

    it('when a layer file is not the size its descriptor says', async (t) => {
      const { fixture, manifest, layers } = await image(t);
      await truncate(blobPath(fixture.dir, layers[0] ?? ''), 100);
      await fails(`oci:${fixture.dir}`, invalid(new RegExp(`${layers[0]?.slice(7)} \\(layer 1 of manifest ${manifest}\\) is 100 bytes but its descriptor says \\d+; the blob is truncated`)));
    });

    it('when a blob is a symbolic link', async (t) => {
      const { fixture, layers } = await image(t);
      const path = blobPath(fixture.dir, layers[1] ?? '');
      const elsewhere = join(await tempDir(t), 'layer');
      await rename(path, elsewhere);
      await symlink(elsewhere, path);
      await fails(`oci:${fixture.dir}`, invalid(/\(layer 2 of manifest sha256:[0-9a-f]{64}\) is a symbolic link: rxpush reads only regular files inside the layout/));
    });

    it('when the blobs directory leads out of the layout', async (t) => {
      const { fixture } = await image(t);
      const outside = join(await tempDir(t), 'blobs');
      await rename(join(fixture.dir, 'blobs'), outside);
      await symlink(outside, join(fixture.dir, 'blobs'));
      await fails(`oci:${fixture.dir}`, invalid(/resolves to .*, outside the layout .*; rxpush refuses blobs outside the layout/));
    });
  });

  describe('on an index it cannot push', () => {
    it('when an image of the index is missing', async (t) => {
      const { fixture, manifest } = await image(t);
      await addIndex(fixture, 'multi');
      await rm(blobPath(fixture.dir, manifest));
      await fails(`oci:${fixture.dir}:multi`, { name: 'BlobMissingError', code: 'BLOB_MISSING', message: new RegExp(`^blob ${manifest} is missing`) });
    });

    it('when a layer of an image of the index is missing', async (t) => {
      const { fixture, layers } = await image(t);
      await addIndex(fixture, 'multi');
      await rm(blobPath(fixture.dir, layers[0] ?? ''));
      await fails(`oci:${fixture.dir}:multi`, { name: 'BlobMissingError', code: 'BLOB_MISSING', message: new RegExp(`^blob ${layers[0]} is missing`) });
    });

    it('when the index holds something other than image manifests', async (t) => {
      const { fixture } = await image(t);
      const inner = await addIndex(fixture, 'inner');
      await addIndex(fixture, 'outer', [{ mediaType: 'application/vnd.oci.image.index.v1+json', ...inner }]);
      await fails(`oci:${fixture.dir}:outer`, { name: 'UnsupportedError', code: 'UNSUPPORTED', message: new RegExp(`lists ${inner.digest} as application/vnd\\.oci\\.image\\.index\\.v1\\+json; rxpush pushes indexes of image manifests only`) });
    });
  });

  describe('on a blob that changes after it was read', () => {
    const firstLayer = async (fixture: OciLayoutFixture) => {
      const [record] = await lastValueFrom(readImages(`oci:${fixture.dir}`).pipe(toArray()));
      assert.equal(record?.type, 'image');
      const img = record.image as ImageRecord;
      return img.layers.kind === 'list' ? img.layers.layers[0] : undefined;
    };

    it('when a layer was truncated before it is opened', async (t) => {
      const { fixture, layers } = await image(t);
      const layer = await firstLayer(fixture);
      assert.ok(layer);
      await truncate(blobPath(fixture.dir, layers[0] ?? ''), 1);
      await assert.rejects(layer.open(), /is 1 bytes but its descriptor says/);
      await rm(blobPath(fixture.dir, layers[0] ?? ''));
      await assert.rejects(layer.open(), (err: unknown) => err instanceof PushError && err.code === 'BLOB_MISSING');
    });

    it('reads no further than the descriptor\'s size, even when the file grew after it was opened', async (t) => {
      const { fixture, layers } = await image(t);
      const layer = await firstLayer(fixture);
      assert.ok(layer?.size !== undefined);
      const stream = await layer.open();
      await appendFile(blobPath(fixture.dir, layers[0] ?? ''), 'appended after the open');
      let bytes = 0;
      for await (const chunk of stream) bytes += (chunk as Buffer).length;
      assert.equal(bytes, layer.size);
    });
  });
});

describe('readImages with other transports', () => {
  it('names the supported transports when the transport is unknown', async () => {
    await fails('tarball:./x.tar', { name: 'UsageError', code: 'USAGE', message: /^source "tarball:\.\/x\.tar" has an unknown transport "tarball:"; use one of oci:PATH\[:REF\], oci-archive:PATH\[:REF\], .*docker:\/\/REF$/ });
  });

  it('names the supported transports when there is no transport', async () => {
    await fails('./layout', { name: 'UsageError', code: 'USAGE', message: /^source "\.\/layout" has no transport; use one of oci:PATH/ });
  });

  it('refuses an oci: source without a directory', async () => {
    await fails('oci::latest', { name: 'UsageError', code: 'USAGE', message: /names no directory: use oci:PATH\[:REF\]/ });
  });

  it('refuses a REF that is not a valid ref name', async () => {
    await fails('oci:./layout:bad ref!', { name: 'UsageError', code: 'USAGE', message: /"bad ref!" is not a valid ref name or digest/ });
  });
});
