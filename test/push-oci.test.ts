import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { open, readFile, writeFile, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { describe, it } from 'node:test';

import { MediaType, splitDigest, type BlobSource, type Digest, type PushEvent } from '@rxpush/core';
import { push } from '@rxpush/pipeline';
import { RegistryClient } from '@rxpush/registry-client';
import { uploadBlobs } from '@rxpush/uploader';
import { lastValueFrom, of, toArray } from 'rxjs';

import { makeOciLayout } from '../tools/fixtures.ts';
import { startFaultProxy } from './helpers/fault-proxy.ts';
import { useRegistry } from './helpers/registry-suite.ts';
import { skopeoCopyToOci, skopeoInspectRaw } from './helpers/skopeo.ts';
import { ofType, pushAll } from './helpers/push-events.ts';

// No digest cache unless a test asks: each test sees exactly what its own push does.

describe('pushing an OCI layout to the reference registry', () => {
  const suite = useRegistry('e2e', {
    images: [
      { tags: ['latest', 'v1'], layers: [{ files: 3, fileSize: 200_000, seed: 'base' }, { files: 2, fileSize: 50_000, seed: 'app' }] },
      { tags: ['v2'], layers: [{ files: 3, fileSize: 200_000, seed: 'base' }, { files: 2, fileSize: 50_000, seed: 'app-2' }] },
    ],
  });

  it('pushes the manifest byte for byte and skopeo reads it back', async () => {
    const events = await pushAll({ source: `oci:${suite.layout.dir}:latest`, destination: `${suite.registry.host}/e2e/app:1.0` });
    const [image] = suite.layout.images;
    const pushed = ofType(events, 'manifest-pushed');
    assert.deepEqual(
      pushed.map((e) => [e.tag, e.digest, e.size]),
      [['1.0', image!.manifestDigest, image!.manifestSize]],
    );
    assert.equal(events.at(-1)?.type, 'manifest-pushed');
    const stored = await readFile(join(suite.layout.dir, 'blobs', 'sha256', splitDigest(image!.manifestDigest as `sha256:${string}`).hex));
    const raw = await skopeoInspectRaw(`docker://${suite.registry.host}/e2e/app:1.0`);
    assert.deepEqual(raw.bytes, stored);
    await skopeoCopyToOci(`docker://${suite.registry.host}/e2e/app:1.0`, join(suite.work, 'copied'));
  });

  it('reports progress for each layer in order: preparing, waiting, pushing, pushed', async () => {
    const events = await pushAll({ source: `oci:${suite.layout.dir}:v2`, destination: `${suite.registry.host}/e2e/progress:v2` });
    const [, image] = suite.layout.images;
    for (const digest of image!.layerDigests) {
      const states = events.filter((e) => 'id' in e && 'key' in e && e.key === digest).map((e) => e.type);
      assert.equal(states[0], 'preparing');
      assert.equal(states[1], 'waiting');
      assert.equal(states.at(-1), 'pushed');
      assert.ok(states.includes('pushing'));
    }
  });

  it('uploads nothing on a second push and says the layers exist', async () => {
    const destination = `${suite.registry.host}/e2e/again:latest`;
    await pushAll({ source: `oci:${suite.layout.dir}:latest`, destination });
    const events = await pushAll({ source: `oci:${suite.layout.dir}:latest`, destination });
    assert.equal(ofType(events, 'pushing').length, 0);
    assert.equal(ofType(events, 'pushed').length, 0);
    assert.equal(ofType(events, 'exists').length, suite.layout.images[0]!.layerDigests.length + 1);
    assert.equal(ofType(events, 'manifest-pushed').length, 1);
  });

  it('pushes every tag with allTags and uploads shared layers once', async () => {
    const events = await pushAll({ source: `oci:${suite.layout.dir}`, destination: `${suite.registry.host}/e2e/all`, allTags: true });
    assert.deepEqual(ofType(events, 'manifest-pushed').map((e) => e.tag).sort(), ['latest', 'v1', 'v2']);
    const pushedDigests = ofType(events, 'pushed').map((e) => e.digest);
    assert.equal(new Set(pushedDigests).size, pushedDigests.length, 'a blob was uploaded twice');
    // base layer shared by both images, plus two app layers and two configs
    assert.equal(pushedDigests.length, 5);
    assert.deepEqual((await suite.client.listTags('e2e/all')).sort(), ['latest', 'v1', 'v2']);
  });

  it('pushes one image under several tags', async () => {
    const events = await pushAll({ source: `oci:${suite.layout.dir}:v1`, destination: `${suite.registry.host}/e2e/tags:a`, tags: ['b', 'c'] });
    assert.deepEqual(ofType(events, 'manifest-pushed').map((e) => e.tag), ['a', 'b', 'c']);
  });

  it('converts to Docker schema 2 with format docker, and the registry accepts it', async () => {
    const events = await pushAll({ source: `oci:${suite.layout.dir}:latest`, destination: `${suite.registry.host}/e2e/docker:latest`, format: 'docker' });
    const [pushed] = ofType(events, 'manifest-pushed');
    assert.equal(pushed?.mediaType, 'application/vnd.docker.distribution.manifest.v2+json');
    const raw = await skopeoInspectRaw(`docker://${suite.registry.host}/e2e/docker:latest`);
    assert.equal(raw.json.mediaType, 'application/vnd.docker.distribution.manifest.v2+json');
    assert.equal(raw.json.layers[0].mediaType, 'application/vnd.docker.image.rootfs.diff.tar.gzip');
    await skopeoCopyToOci(`docker://${suite.registry.host}/e2e/docker:latest`, join(suite.work, 'copied-docker'));
  });

  it('pushes no manifest when a layer does not match its digest', async () => {
    const broken = await makeOciLayout(join(suite.work, 'broken'), { images: [{ tags: ['latest'], layers: [{ files: 1, fileSize: 1000, seed: 'corrupt-me' }] }] });
    const layer = broken.images[0]!.layerDigests[0]! as `sha256:${string}`;
    const path = join(broken.dir, 'blobs', 'sha256', splitDigest(layer).hex);
    const bytes = await readFile(path);
    bytes.writeUInt8(bytes.readUInt8(bytes.length - 1) ^ 0xff, bytes.length - 1);
    await writeFile(path, bytes);
    await assert.rejects(pushAll({ source: `oci:${broken.dir}`, destination: `${suite.registry.host}/e2e/broken:latest` }), (error: Error & { code?: string }) => {
      assert.equal(error.code, 'DIGEST_MISMATCH');
      assert.match(error.message, /does not match its digest/);
      return true;
    });
    assert.equal(await suite.client.hasManifest('e2e/broken', 'latest'), undefined);
    assert.equal(await suite.client.hasBlob('e2e/broken', layer), undefined);
  });

  it('mounts blobs from a repository the digest cache knows holds them', async () => {
    const cacheDir = join(suite.work, 'cache');
    await pushAll({ source: `oci:${suite.layout.dir}:latest`, destination: `${suite.registry.host}/e2e/mount-a:latest`, cacheDir });
    const events = await pushAll({ source: `oci:${suite.layout.dir}:latest`, destination: `${suite.registry.host}/e2e/mount-b:latest`, cacheDir });
    const [image] = suite.layout.images;
    assert.equal(ofType(events, 'pushed').length, 0);
    assert.deepEqual(
      ofType(events, 'mounted').map((e) => [e.digest, e.from]).sort(),
      [...image!.layerDigests, image!.configDigest].map((digest) => [digest, 'e2e/mount-a']).sort(),
    );
    const raw = await skopeoInspectRaw(`docker://${suite.registry.host}/e2e/mount-b:latest`);
    assert.equal(raw.json.layers.length, image!.layerDigests.length);
  });

  it('pushes layers of several MiB read through reused buffers, four at once, and the registry holds every byte', async () => {
    // Pieces of 1 MiB in two buffers per upload: a buffer refilled before the socket took its piece would show as a
    // digest the registry refuses on PUT, or as other bytes read back. Sizes that are no multiple of a MiB.
    const layers = Array.from({ length: 6 }, (_, i) => ({ files: 3, fileSize: 1_100_000 + i * 4099, seed: `pieces-${i}` }));
    const large = await makeOciLayout(join(suite.work, 'pieces'), { images: [{ tags: ['latest'], layers }] });
    const events = await pushAll({ source: `oci:${large.dir}:latest`, destination: `${suite.registry.host}/e2e/pieces:latest`, concurrency: 4 });
    const [image] = large.images;
    assert.equal(ofType(events, 'manifest-pushed').length, 1);
    for (const digest of [...image!.layerDigests, image!.configDigest] as Digest[]) {
      const hash = createHash('sha256');
      for await (const chunk of await suite.client.getBlob('e2e/pieces', digest)) hash.update(chunk as Buffer);
      assert.equal(`sha256:${hash.digest('hex')}`, digest);
    }
  });

  it('pushes layers whose last piece is short, four at once, while the pool hands their buffers to the next uploads', async () => {
    // Stored gzip of one 2 MiB file: 2 MiB and ~1.7 KB a layer. Once every piece is taken, an upload's buffers go
    // back to the pool while its answer comes, and the next upload reads into them: a short last piece still queued
    // on its connection must not be in one of them (the registry would refuse the digest).
    const layers = Array.from({ length: 12 }, (_, i) => ({ files: 1, fileSize: 2 * 1024 * 1024 + i * 7, seed: `short-${i}` }));
    const short = await makeOciLayout(join(suite.work, 'short-last'), { images: [{ tags: ['latest'], layers }], gzipLevel: 0 });
    const [image] = short.images;
    assert.ok(image!.layerSizes.every((size) => size % (1024 * 1024) < 64 * 1024), 'every last piece is short');
    const events = await pushAll({ source: `oci:${short.dir}:latest`, destination: `${suite.registry.host}/e2e/short-last:latest`, concurrency: 4 });
    assert.equal(ofType(events, 'manifest-pushed').length, 1);
    for (const digest of image!.layerDigests as Digest[]) assert.ok(await suite.client.hasBlob('e2e/short-last', digest), digest);
  });

  it('closes the file of a layer whose upload is cancelled mid-PUT, and of one that was pushed', async () => {
    const big = await makeOciLayout(join(suite.work, 'big-file'), { images: [{ tags: ['latest'], layers: [{ files: 4, fileSize: 8_000_000, seed: 'big-file' }] }] });
    const [image] = big.images;
    const handles: FileHandle[] = [];
    const blob = (digest: Digest): BlobSource => {
      const path = join(big.dir, 'blobs', 'sha256', splitDigest(digest).hex);
      return {
        key: digest,
        role: 'layer',
        mediaType: MediaType.ociLayerGzip,
        digest,
        size: image!.layerSizes[0]!,
        form: 'stored',
        origin: path,
        open: () => Promise.reject(new Error('the uploader reads this blob with openFile')),
        openFile: async () => {
          const handle = await open(path);
          handles.push(handle);
          return handle;
        },
      };
    };
    const client = new RegistryClient({ registry: suite.registry.host });
    try {
      const layerDigest = image!.layerDigests[0]! as Digest;
      await new Promise<void>((resolve, reject) => {
        const subscription = of<PushEvent>({ type: 'blob', blob: blob(layerDigest) })
          .pipe(uploadBlobs({ client, repository: 'e2e/file-cancel' }))
          .subscribe({
            next: (event) => {
              if (event.type === 'pushing' && event.current > 0) {
                subscription.unsubscribe();
                resolve();
              }
            },
            error: reject,
            complete: () => reject(new Error('the upload completed before it could be cancelled')),
          });
      });
      // The handle is closed once the aborted request and the read ahead are over.
      for (let i = 0; i < 100 && handles[0]?.fd !== -1; i++) await delay(20);
      assert.equal(handles.length, 1);
      assert.equal(handles[0]!.fd, -1, 'the file was left open');
      assert.equal(await client.hasBlob('e2e/file-cancel', layerDigest), undefined);

      await lastValueFrom(of<PushEvent>({ type: 'blob', blob: blob(layerDigest) }).pipe(uploadBlobs({ client, repository: 'e2e/file-done' }), toArray()));
      assert.equal(handles.length, 2);
      assert.equal(handles[1]!.fd, -1, 'the file of a pushed layer was left open');
      assert.equal((await client.hasBlob('e2e/file-done', layerDigest))?.size, image!.layerSizes[0]);
    } finally {
      await client.close();
    }
  });

  it('aborts uploads in flight when the subscriber unsubscribes', async (t) => {
    const big = await makeOciLayout(join(suite.work, 'big'), { images: [{ tags: ['latest'], layers: [{ files: 4, fileSize: 8_000_000, seed: 'big' }] }] });
    // A proxy with no faults, to see from outside whether the upload was broken off or ran to its end.
    const proxy = await startFaultProxy({ target: suite.registry.host });
    t.after(() => proxy.close());
    const seen: PushEvent[] = [];
    let failed: unknown;
    const subscription = push({ source: `oci:${big.dir}`, destination: `${proxy.host}/e2e/cancel:latest`, cacheDir: false }).subscribe({
      next: (event) => seen.push(event),
      error: (error: unknown) => (failed = error),
      complete: () => (failed = new Error('the push completed before it could be cancelled')),
    });
    // The layer's PUT has reached the registry's side and its body is on the way: cancel now.
    const upload = await proxy.waitFor('PUT', new RegExp(`/e2e/cancel/blobs/uploads/.*digest=${big.images[0]!.layerDigests[0]!}`));
    subscription.unsubscribe();
    assert.equal(failed, undefined);
    await proxy.settled(upload);
    assert.equal(upload.aborted, true, 'the PUT was broken off, not sent to its end');
    assert.equal(ofType(seen, 'manifest-pushed').length, 0);
    assert.equal(await suite.client.hasManifest('e2e/cancel', 'latest'), undefined);
  });
});
