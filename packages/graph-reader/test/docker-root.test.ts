import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { chmod, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { buffer } from 'node:stream/consumers';
import { describe, it, type TestContext } from 'node:test';
import { fileURLToPath } from 'node:url';

import type { BlobSource, ImageRecord, PushEvent } from '@rxpush/core';
import { PushError } from '@rxpush/core';
import { lastValueFrom, toArray } from 'rxjs';

import { runModuleAsNobody } from '../../../tools/as-nobody.js';
import { readImages } from '../src/index.js';
import { makeDataRoot, tempDir, writeV2Metadata, type DataRootImage, type Driver } from './data-roots.js';
import type { TarEntrySpec } from './tar-splits.js';
import { readImageRecords, readOne } from './read.js';

const base: TarEntrySpec[] = [
  { type: 'directory', name: 'etc/' },
  { type: 'file', name: 'etc/os-release', content: 'NAME=test\n' },
  { type: 'file', name: 'etc/gone.txt', content: 'removed by the next layer\n' },
];
const app: TarEntrySpec[] = [
  { type: 'directory', name: 'app/' },
  { type: 'file', name: 'app/run.sh', content: '#!/bin/sh\necho hi\n' },
  { type: 'symlink', name: 'app/current', linkname: 'run.sh' },
  { type: 'file', name: 'etc/.wh.gone.txt', content: '' },
];
const config: TarEntrySpec[] = [{ type: 'file', name: 'app/config.json', content: '{"debug":false}\n' }];

const appImage: DataRootImage = { repository: 'fix/app', tags: ['v1', 'latest'], layers: [base, app, config] };

/** The layers of a record, following the parent chain from the top as the layer walker does. */
async function walk(image: ImageRecord): Promise<BlobSource[]> {
  assert.equal(image.layers.kind, 'chain');
  const layers: BlobSource[] = [];
  for (let link = image.layers.top; link !== undefined; link = await link.parent()) layers.unshift(link.blob);
  return layers;
}

async function dataRoot(t: TestContext, images: DataRootImage[] = [appImage], driver?: Driver) {
  const root = await tempDir(t);
  const made = await makeDataRoot(root, images, driver);
  return { root, made };
}

function failsWith(code: string, pattern: RegExp): (error: unknown) => boolean {
  return (error) => {
    assert.ok(error instanceof PushError, `expected a PushError, got ${String(error)}`);
    assert.equal(error.code, code, error.message);
    assert.match(error.message, pattern);
    return true;
  };
}

describe('readImages from docker-root:', () => {
  for (const driver of ['vfs', 'overlay2'] as const) {
    it(`reads an image of the ${driver} driver: config as stored, layers as a parent chain rebuilt to their exact tars`, async (t) => {
      const { root, made } = await dataRoot(t, [appImage], driver);
      const [expected] = made;
      const image = await readOne('docker-root:fix/app:v1', { dataRoot: root });

      assert.deepEqual(image.tags, ['v1']);
      assert.equal(image.source, 'docker-root:fix/app:v1');
      assert.equal(image.config.digest, expected!.imageId);
      assert.equal(image.config.mediaType, 'application/vnd.docker.container.image.v1+json');
      assert.equal(image.config.form, 'stored');
      assert.equal(image.config.origin, expected!.configPath);
      assert.deepEqual(await buffer(await image.config.open()), await readFile(expected!.configPath));

      const layers = await walk(image);
      assert.deepEqual(layers.map((layer) => layer.diffId), expected!.diffIds);
      for (const [i, layer] of layers.entries()) {
        assert.equal(layer.form, 'uncompressed');
        assert.equal(layer.key, expected!.diffIds[i]);
        assert.equal(layer.mediaType, 'application/vnd.docker.image.rootfs.diff.tar');
        assert.equal(layer.origin, expected!.layerDirs[i]);
        assert.equal(layer.size, expected!.tars[i]!.length);
        assert.equal(layer.digest, undefined);
        assert.deepEqual(await buffer(await layer.open()), expected!.tars[i]);
      }
    });
  }

  it('finds images by Docker reference rules: a name alone means latest, docker.io and library/ are implied', async (t) => {
    const { root, made } = await dataRoot(t, [
      { repository: 'alpine', tags: ['latest', '3.20'], layers: [base] },
      { repository: '127.0.0.1:5000/team/app', tags: ['1.0'], layers: [app] },
    ]);
    for (const source of ['docker-root:alpine', 'docker-root:alpine:latest', 'docker-root:library/alpine:3.20', 'docker-root:docker.io/library/alpine']) {
      const image = await readOne(source, { dataRoot: root });
      assert.equal(image.config.digest, made[0]!.imageId, source);
    }
    assert.deepEqual((await readOne('docker-root:alpine', { dataRoot: root })).tags, ['latest']);
    assert.equal((await readOne('docker-root:127.0.0.1:5000/team/app:1.0', { dataRoot: root })).config.digest, made[1]!.imageId);
  });

  it('selects an image by repository digest, to push without a tag of its own', async (t) => {
    const { root, made } = await dataRoot(t);
    const store = join(root, 'image', 'vfs', 'repositories.json');
    const json = JSON.parse(await readFile(store, 'utf8')) as { Repositories: Record<string, Record<string, string>> };
    const repoDigest = `sha256:${'d'.repeat(64)}`;
    json.Repositories['fix/app']![`fix/app@${repoDigest}`] = made[0]!.imageId;
    await writeFile(store, JSON.stringify(json));
    const image = await readOne(`docker-root:fix/app@${repoDigest}`, { dataRoot: root });
    assert.equal(image.config.digest, made[0]!.imageId);
    assert.deepEqual(image.tags, []);
  });

  it('reads reference stores keyed by fully qualified names too', async (t) => {
    const { root, made } = await dataRoot(t, [{ repository: 'docker.io/library/busybox', tags: ['1'], layers: [base] }]);
    assert.equal((await readOne('docker-root:busybox:1', { dataRoot: root })).config.digest, made[0]!.imageId);
  });

  it('reads every tag of a repository with allTags, one record per image', async (t) => {
    const { root, made } = await dataRoot(t, [appImage, { repository: 'fix/app', tags: ['v2'], layers: [base, config] }, { repository: 'other', tags: ['x'], layers: [base] }]);
    const images = await readImageRecords('docker-root:fix/app', { dataRoot: root, allTags: true });
    assert.deepEqual(
      images.map((image) => [image.config.digest, image.tags]),
      [
        [made[0]!.imageId, ['v1', 'latest']],
        [made[1]!.imageId, ['v2']],
      ],
    );
    await assert.rejects(readImageRecords('docker-root:fix/app:v1', { dataRoot: root, allTags: true }), failsWith('USAGE', /names one image but all tags were asked for/));
  });

  it('reads a layer that several tags share once, as one blob the walker pushes once', async (t) => {
    const { root } = await dataRoot(t, [appImage, { repository: 'fix/app', tags: ['v2'], layers: [base, config] }]);
    const [one, two] = await readImageRecords('docker-root:fix/app', { dataRoot: root, allTags: true });
    const [sharedOne, , configOne] = await walk(one!);
    const [sharedTwo, configTwo] = await walk(two!);
    assert.equal(sharedOne, sharedTwo);
    // Same files, but another parent: another chain ID, so another layer of Docker's store with the same key.
    assert.notEqual(configOne, configTwo);
    assert.equal(configOne!.key, configTwo!.key);
  });

  it('carries Docker distribution metadata as hints, split into registry and repository', async (t) => {
    const { root, made } = await dataRoot(t);
    const gz = `sha256:${'a'.repeat(64)}`;
    await writeV2Metadata(root, made[0]!.diffIds[0]!, [
      { Digest: gz, SourceRepository: 'docker.io/library/alpine' },
      { Digest: gz, SourceRepository: '127.0.0.1:5000/team/app' },
      { Digest: 'not a digest', SourceRepository: 'x' },
    ]);
    const dir = join(root, 'image', 'vfs', 'distribution', 'v2metadata-by-diffid', 'sha256');
    await writeFile(join(dir, made[0]!.diffIds[1]!.slice(7)), '{ damaged');
    const layers = await walk(await readOne('docker-root:fix/app:v1', { dataRoot: root }));
    assert.deepEqual(layers[0]!.hints, [
      { digest: gz, registry: 'docker.io', repository: 'library/alpine' },
      { digest: gz, registry: '127.0.0.1:5000', repository: 'team/app' },
    ]);
    assert.equal(layers[1]!.hints, undefined);
    assert.equal(layers[2]!.hints, undefined);
  });

  describe('bad input', () => {
    it('lists images the data root has when the one asked for is not there', async (t) => {
      const { root } = await dataRoot(t);
      await assert.rejects(readImageRecords('docker-root:fix/app:v9', { dataRoot: root }), failsWith('SOURCE_NOT_FOUND', /^no image fix\/app:v9 in .*repositories\.json; it has fix\/app:latest, fix\/app:v1$/));
      await assert.rejects(readImageRecords('docker-root:nothing', { dataRoot: root }), failsWith('SOURCE_NOT_FOUND', /^no image nothing:latest in /));
    });

    it('says when the data root does not exist or is not one', async (t) => {
      const dir = await tempDir(t);
      await assert.rejects(readImageRecords('docker-root:a', { dataRoot: join(dir, 'missing') }), failsWith('SOURCE_NOT_FOUND', /Docker data root .*missing does not exist; give Docker's with --data-root DIR/));
      await assert.rejects(readImageRecords('docker-root:a', { dataRoot: dir }), failsWith('INVALID_SOURCE', /has no image\/ directory.*containerd image store.*docker-daemon:NAME:TAG/));
    });

    it('refuses a source that names no valid image', async () => {
      await assert.rejects(readImageRecords('docker-root:', {}), failsWith('USAGE', /names no image/));
      await assert.rejects(readImageRecords('docker-root:Bad Name', {}), failsWith('USAGE', /does not name an image/));
    });

    it('asks which storage driver when several have the image, and reads the one given', async (t) => {
      const root = await tempDir(t);
      const [vfs] = await makeDataRoot(root, [appImage], 'vfs');
      const [overlay] = await makeDataRoot(root, [{ ...appImage, layers: [base, app] }], 'overlay2');
      await assert.rejects(readImageRecords('docker-root:fix/app:v1', { dataRoot: root }), failsWith('USAGE', /has fix\/app for several storage drivers \(overlay2, vfs\); choose .* --storage-driver/));
      assert.equal((await readOne('docker-root:fix/app:v1', { dataRoot: root, storageDriver: 'overlay2' })).config.digest, overlay!.imageId);
      assert.equal((await readOne('docker-root:fix/app:v1', { dataRoot: root, storageDriver: 'vfs' })).config.digest, vfs!.imageId);
      await assert.rejects(readImageRecords('docker-root:fix/app:v1', { dataRoot: root, storageDriver: 'btrfs' }), failsWith('SOURCE_NOT_FOUND', /no images of storage driver btrfs \(it has: overlay2, vfs\)/));
      await assert.rejects(readImageRecords('docker-root:fix/app:v1', { dataRoot: root, storageDriver: '../x' }), failsWith('USAGE', /not a driver name/));
    });

    it('refuses storage drivers whose files it cannot read', async (t) => {
      const { root } = await dataRoot(t);
      await rename(join(root, 'image', 'vfs'), join(root, 'image', 'zfs'));
      await assert.rejects(readImageRecords('docker-root:fix/app:v1', { dataRoot: root }), failsWith('UNSUPPORTED', /stored by the zfs storage driver; docker-root: reads vfs, overlay2, fuse-overlayfs; push docker-daemon:NAME:TAG instead/));
    });

    it('refuses a config that does not match its image ID', async (t) => {
      const { root, made } = await dataRoot(t);
      const path = made[0]!.configPath;
      await writeFile(path, (await readFile(path, 'utf8')).replace('"amd64"', '"arm64"'));
      await assert.rejects(readImageRecords('docker-root:fix/app:v1', { dataRoot: root }), failsWith('DIGEST_MISMATCH', new RegExp(`^${path} does not match its digest`)));
    });

    it('refuses a layer chain whose diffs are not the config diff IDs', async (t) => {
      const { root, made } = await dataRoot(t);
      await writeFile(join(made[0]!.layerDirs[1]!, 'diff'), made[0]!.diffIds[2]!);
      await assert.rejects(readImageRecords('docker-root:fix/app:v1', { dataRoot: root }), failsWith('INVALID_SOURCE', /lists 3 layers but the layer chain .* has 3, differing at layer 2/));
    });

    it('refuses a parent chain that loops, naming the parent file', async (t) => {
      const { root, made } = await dataRoot(t);
      const [image] = made;
      await writeFile(join(image!.layerDirs[0]!, 'parent'), image!.chainIds[2]!);
      await assert.rejects(
        readImageRecords('docker-root:fix/app:v1', { dataRoot: root }),
        failsWith('INVALID_SOURCE', new RegExp(`^${join(image!.layerDirs[0]!, 'parent')} points back to layer ${image!.chainIds[2]}: the layer chain loops`)),
      );
    });

    it('refuses a parent that points to a missing layer, naming both', async (t) => {
      const { root, made } = await dataRoot(t);
      const [image] = made;
      const missing = `sha256:${'0'.repeat(64)}`;
      await writeFile(join(image!.layerDirs[1]!, 'parent'), missing);
      await assert.rejects(
        readImageRecords('docker-root:fix/app:v1', { dataRoot: root }),
        failsWith('INVALID_SOURCE', new RegExp(`${join(image!.layerDirs[1]!, 'parent')} names layer ${missing}, but .*${'0'.repeat(64)} does not exist`)),
      );
    });

    it('refuses an image whose top layer is missing from the layer store', async (t) => {
      const { root, made } = await dataRoot(t);
      await rm(made[0]!.layerDirs[2]!, { recursive: true });
      await assert.rejects(readImageRecords('docker-root:fix/app:v1', { dataRoot: root }), failsWith('INVALID_SOURCE', /the top layer of the image .* is sha256:.*, but .* does not exist/));
    });

    it('refuses a layer without tar-split metadata, pointing to the daemon', async (t) => {
      const { root, made } = await dataRoot(t);
      await rm(join(made[0]!.layerDirs[1]!, 'tar-split.json.gz'));
      await assert.rejects(readImageRecords('docker-root:fix/app:v1', { dataRoot: root }), failsWith('INVALID_SOURCE', /has no tar-split.json.gz, so its exact tar cannot be rebuilt .*docker-daemon:NAME:TAG/));
    });

    it('refuses a damaged tar-split before any image is emitted', async (t) => {
      const { root, made } = await dataRoot(t);
      const tarSplit = join(made[0]!.layerDirs[0]!, 'tar-split.json.gz');
      const bytes = await readFile(tarSplit);
      await writeFile(tarSplit, bytes.subarray(0, bytes.length / 2));
      const events: PushEvent[] = [];
      await assert.rejects(
        lastValueFrom(readImages('docker-root:fix/app:v1', { dataRoot: root }).pipe(toArray())).then((all) => events.push(...all)),
        failsWith('INVALID_SOURCE', new RegExp(`^${tarSplit} cannot be decompressed`)),
      );
      assert.equal(events.length, 0);
    });

    it('refuses a tar-split naming a file outside the layer before anything is read', async (t) => {
      const { root, made } = await dataRoot(t);
      const { gzipSync } = await import('node:zlib');
      const tarSplit = join(made[0]!.layerDirs[0]!, 'tar-split.json.gz');
      await writeFile(tarSplit, gzipSync('{"type":1,"name":"../../../../etc/shadow","size":10,"payload":"AAAAAAAAAAA=","position":0}\n'));
      await assert.rejects(readImageRecords('docker-root:fix/app:v1', { dataRoot: root }), failsWith('INVALID_SOURCE', /names the file "..\/..\/..\/..\/etc\/shadow", which is outside layer/));
    });

    it("refuses a layer whose storage driver files are gone", async (t) => {
      const { root, made } = await dataRoot(t);
      await rm(made[0]!.filesDirs[1]!, { recursive: true });
      await assert.rejects(readImageRecords('docker-root:fix/app:v1', { dataRoot: root }), failsWith('INVALID_SOURCE', /the files of layer .* \(vfs cache id [0-9a-f]{64}\) are missing/));
    });

    it('fails the layer stream with DIGEST_MISMATCH naming the file when a layer file changed after reading', async (t) => {
      const { root, made } = await dataRoot(t);
      const layers = await walk(await readOne('docker-root:fix/app:v1', { dataRoot: root }));
      await writeFile(join(made[0]!.filesDirs[1]!, 'app/run.sh'), '#!/bin/sh\necho HI\n');
      await assert.rejects(buffer(await layers[1]!.open()), failsWith('DIGEST_MISMATCH', /app\/run.sh \(a file of layer .*\) does not match its digest/));
    });

    it('explains a data root it may not read: run as root, or go through the daemon', async (t) => {
      const { root } = await dataRoot(t);
      await chmod(root, 0o700);
      const script = `
        import { readImages } from ${JSON.stringify(fileURLToPath(new URL('../dist/index.js', import.meta.url)))};
        import { lastValueFrom } from 'rxjs';
        try { await lastValueFrom(readImages('docker-root:fix/app:v1', { dataRoot: ${JSON.stringify(root)} })); console.log('read'); }
        catch (err) { console.log(JSON.stringify({ code: err.code, message: err.message })); }`;
      const asRoot = process.getuid?.() === 0;
      // As root nothing is denied: the check then runs as nobody, a user without rights to the data root,
      // from a bundled copy of the script (the checkout may be closed to nobody).
      if (!asRoot) await chmod(root, 0o000);
      let run: { status: number | null; stdout: string; stderr: string };
      try {
        const resolveDir = dirname(fileURLToPath(import.meta.url));
        if (asRoot) {
          const result = await runModuleAsNobody(script, resolveDir);
          run = { status: result.code, stdout: result.stdout, stderr: result.stderr };
        } else {
          run = spawnSync(process.execPath, ['--input-type=module', '-e', script], { cwd: join(resolveDir, '..'), encoding: 'utf8' });
        }
      } finally {
        if (!asRoot) await chmod(root, 0o700);
      }
      assert.equal(run.status, 0, run.stderr);
      const result = JSON.parse(run.stdout) as { code: string; message: string };
      assert.equal(result.code, 'INVALID_SOURCE');
      assert.match(result.message, new RegExp(`^cannot read ${root}/image for docker-root:fix/app:v1: permission denied; .*run rxpush as root \\(e.g. with sudo\\).*docker group.*docker-daemon:NAME:TAG`));
    });
  });
});
