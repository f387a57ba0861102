/**
 * The digest cache end to end: an uncompressed source (a docker-archive skopeo wrote) pushed twice is
 * HEADed by the compressed digests it became, not compressed again; pushed to a new repository of the
 * same registry, its blobs are mounted from the first.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtemp, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { before, describe, it } from 'node:test';

import { useRegistry } from './helpers/registry-suite.ts';
import { runCli } from './helpers/run-cli.ts';
import { skopeoCopy, skopeoInspectRaw } from './helpers/skopeo.ts';
import { ofType, pushAll } from './helpers/push-events.ts';


describe('the digest cache with an uncompressed source', () => {
  const suite = useRegistry('cache-e2e', { images: [{ tags: ['latest'], layers: [1, 2].map((i) => ({ files: 2, fileSize: 300_000, seed: `cache-${i}` })) }] });
  let cacheDir: string;
  let archive: string;

  before(async () => {
    cacheDir = join(suite.work, 'cache');
    archive = join(suite.work, 'image.tar');
    await skopeoCopy(`oci:${suite.layout.dir}:latest`, `docker-archive:${archive}:cache/app:v1`);
  });

  it('compresses on the first push and, on the second, finds the layers by the digests they became', async () => {
    const destination = `${suite.registry.host}/cache/first:v1`;
    const first = await pushAll({ source: `docker-archive:${archive}`, destination, cacheDir });
    const layerDigests = ofType(first, 'pushed').filter((e) => e.role === 'layer').map((e) => e.digest);
    assert.equal(layerDigests.length, 2);

    const second = await pushAll({ source: `docker-archive:${archive}`, destination, cacheDir });
    assert.equal(ofType(second, 'pushing').length, 0, 'nothing is read or compressed again');
    assert.deepEqual(ofType(second, 'exists').filter((e) => e.role === 'layer').map((e) => e.digest).sort(), [...layerDigests].sort());
    assert.equal(ofType(second, 'manifest-pushed')[0]?.digest, ofType(first, 'manifest-pushed')[0]?.digest);
  });

  it('compresses again without the cache', async () => {
    const events = await pushAll({ source: `docker-archive:${archive}`, destination: `${suite.registry.host}/cache/first:v1`, cacheDir: false });
    assert.equal(ofType(events, 'exists').filter((e) => e.role === 'layer').length, 0);
    assert.equal(ofType(events, 'pushed').filter((e) => e.role === 'layer').length, 2);
  });

  it('mounts every blob into a new repository from the one the cache knows, and says so', async () => {
    const result = await runCli(['push', `docker-archive:${archive}`, `${suite.registry.host}/cache/second:v1`, '--progress', 'plain'], {
      env: { RXPUSH_CACHE_DIR: cacheDir },
    });
    assert.equal(result.code, 0, result.stderr);
    const mounted = result.stdout.split('\n').filter((line) => line.endsWith(': Mounted from cache/first'));
    assert.equal(mounted.length, 2, result.stdout);
    assert.doesNotMatch(result.stdout, /Pushed/);
    const raw = await skopeoInspectRaw(`${suite.registry.host}/cache/second:v1`);
    assert.equal(raw.json.layers.length, 2);
  });

  // Issue 11: the cache reads only regular files of bounded size, gives up within a second, warns once.
  const cases: Array<[string, (dir: string) => Promise<string>]> = [
    ['a directory that cannot be created', async (dir) => {
      await writeFile(join(dir, 'file'), 'in the way');
      return join(dir, 'file', 'cache');
    }],
    // Node's recursive mkdir spins forever there (mkdir says ENOENT below a parent that exists): the push
    // printed its digest and the process never ended, one core busy.
    ['a directory under /proc/PID', async () => `/proc/${process.pid}/rxpush-cache`],
    ['a FIFO as its file', async (dir) => {
      execFileSync('mkfifo', [join(dir, 'digests.json')]);
      return dir;
    }],
    ['a symlink to a device as its file', async (dir) => {
      await symlink('/dev/zero', join(dir, 'digests.json'));
      return dir;
    }],
  ];
  for (const [what, prepare] of cases) {
    it(`pushes all the same with ${what}`, async () => {
      const dir = await mkdtemp(join(suite.work, 'hostile-'));
      const cacheDir = await prepare(dir);
      const result = await runCli(['push', `docker-archive:${archive}`, `${suite.registry.host}/hostile/app:v1`, '--progress', 'plain'], {
        env: { RXPUSH_CACHE_DIR: cacheDir },
        timeoutMs: 30_000,
      });
      assert.equal(result.code, 0, result.stderr);
      assert.match(result.stdout, /latest|v1: digest: sha256:/);
      assert.ok(result.stderr.split('\n').filter((line) => line.includes('digest cache')).length <= 1, result.stderr);
    });
  }
});
