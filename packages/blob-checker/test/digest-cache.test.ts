import assert from 'node:assert/strict';
import { mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';

import { DigestCache, defaultCacheDir } from '@rxpush/blob-checker';
import { sha256Digest } from '@rxpush/core';

const dirs: string[] = [];
async function freshCache(): Promise<DigestCache> {
  const dir = await mkdtemp(join(tmpdir(), 'rxpush-cache-'));
  dirs.push(dir);
  return new DigestCache(dir);
}
after(() => Promise.all(dirs.map((dir) => rm(dir, { recursive: true, force: true }))));

const diffId = sha256Digest('layer.tar');
const gz = sha256Digest('layer.tar.gz');

describe('DigestCache', () => {
  it('remembers compressed forms and locations across instances', async () => {
    const cache = await freshCache();
    await cache.addCompressedForm(diffId, { digest: gz, size: 10, mediaType: 'application/vnd.docker.image.rootfs.diff.tar.gzip' });
    await cache.addLocation(gz, { registry: 'localhost:5000', repository: 'a' });
    await cache.addLocation(gz, { registry: 'localhost:5000', repository: 'b' });
    await cache.addLocation(gz, { registry: 'localhost:5000', repository: 'a' });
    const again = new DigestCache(cache.dir);
    assert.deepEqual(await again.compressedForms(diffId), [{ digest: gz, size: 10, mediaType: 'application/vnd.docker.image.rootfs.diff.tar.gzip' }]);
    assert.deepEqual(
      (await again.locations(gz)).map((l) => l.repository),
      ['a', 'b'],
    );
  });

  it('treats a corrupt entry as empty and replaces it', async () => {
    const cache = await freshCache();
    await cache.addLocation(gz, { registry: 'r', repository: 'x' });
    const [file] = await readdir(join(cache.dir, 'digests'));
    await writeFile(join(cache.dir, 'digests', file!), '{"locations": [{"registry": 1}], "compressed": "nope"');
    assert.deepEqual(await cache.locations(gz), []);
    await writeFile(join(cache.dir, 'digests', file!), '{"locations": [{"registry": 1}, {"registry": "r", "repository": "y"}]}');
    assert.deepEqual(await cache.locations(gz), [{ registry: 'r', repository: 'y' }]);
    await cache.addLocation(gz, { registry: 'r', repository: 'z' });
    assert.deepEqual((await cache.locations(gz)).map((l) => l.repository), ['z', 'y']);
  });

  it('leaves a whole, parsable entry when several runs write at once', async () => {
    const cache = await freshCache();
    const writers = Array.from({ length: 20 }, (_, i) => new DigestCache(cache.dir).addLocation(gz, { registry: 'r', repository: `repo-${i}` }));
    await Promise.all(writers);
    const locations = await cache.locations(gz);
    assert.ok(locations.length >= 1 && locations.length <= 16);
    assert.deepEqual(await readdir(join(cache.dir, 'digests')), [`sha256-${gz.slice(7)}.json`], 'no temporary files are left');
  });

  it('keeps at most sixteen locations, newest first', async () => {
    const cache = await freshCache();
    for (let i = 0; i < 20; i++) await cache.addLocation(gz, { registry: 'r', repository: `repo-${i}` });
    const locations = await cache.locations(gz);
    assert.equal(locations.length, 16);
    assert.equal(locations[0]?.repository, 'repo-19');
  });

  it('lives where RXPUSH_CACHE_DIR or XDG_CACHE_HOME say', () => {
    assert.equal(defaultCacheDir({ RXPUSH_CACHE_DIR: '/tmp/c' }), '/tmp/c');
    assert.equal(defaultCacheDir({ XDG_CACHE_HOME: '/x' }), '/x/rxpush');
  });
});
