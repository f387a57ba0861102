import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtemp, readdir, readFile, rm, symlink, truncate, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';

import { DigestCache, defaultCacheDir, type CacheFiles } from '@rxpush/blob-checker';
import { sha256Digest, type Logger } from '@rxpush/core';

const dirs: string[] = [];
async function freshDir(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'rxpush-cache-'));
  dirs.push(dir);
  return dir;
}
after(() => Promise.all(dirs.map((dir) => rm(dir, { recursive: true, force: true }))));

/** A logger that keeps its warnings. */
function warnings(): { logger: Logger; lines: string[] } {
  const lines: string[] = [];
  const logger: Logger = {
    debug: () => {},
    info: () => {},
    warn: (_obj, msg) => void lines.push(msg ?? ''),
    error: () => {},
    child: () => logger,
  };
  return { logger, lines };
}

const diffId = sha256Digest('layer.tar');
const gz = sha256Digest('layer.tar.gz');
const GZIP = 'application/vnd.docker.image.rootfs.diff.tar.gzip';

/** A cache in `dir` that has been told one location of `gz`, flushed. */
async function seeded(dir: string): Promise<void> {
  const cache = new DigestCache(dir);
  cache.addLocation(gz, { registry: 'r', repository: 'seed' });
  await cache.flush();
}

/** A disk in memory that lists the reads and writes made of it. */
function countingFiles(): { files: CacheFiles; calls: string[] } {
  const calls: string[] = [];
  const store = new Map<string, string>();
  const files: CacheFiles = {
    read: async (path) => (calls.push('read'), store.get(path)),
    write: async (path, text) => void (calls.push('write'), store.set(path, text)),
  };
  return { files, calls };
}

describe('DigestCache', () => {
  it('remembers compressed forms and locations across instances', async () => {
    const cache = new DigestCache(await freshDir());
    cache.addCompressedForm(diffId, { digest: gz, size: 10, mediaType: GZIP });
    cache.addLocation(gz, { registry: 'localhost:5000', repository: 'a' });
    cache.addLocation(gz, { registry: 'localhost:5000', repository: 'b' });
    cache.addLocation(gz, { registry: 'localhost:5000', repository: 'a' });
    assert.deepEqual((await cache.locations(gz)).map((l) => l.repository), ['a', 'b'], 'this instance sees what it recorded');
    await cache.flush();
    const again = new DigestCache(cache.dir);
    assert.deepEqual(await again.compressedForms(diffId), [{ digest: gz, size: 10, mediaType: GZIP }]);
    assert.deepEqual((await again.locations(gz)).map((l) => l.repository), ['a', 'b']);
  });

  it('writes one file once per flush, and touches the disk for nothing else', async () => {
    const { files, calls } = countingFiles();
    const cache = new DigestCache(await freshDir(), { files });
    for (let i = 0; i < 50; i++) cache.addLocation(sha256Digest(`blob ${i}`), { registry: 'r', repository: 'app' });
    assert.deepEqual(calls, [], 'recording reads and writes nothing');
    await cache.flush();
    assert.deepEqual(calls, ['read', 'write'], 'one batch: the file is re-read, merged and replaced');
    await cache.flush();
    assert.deepEqual(calls, ['read', 'write'], 'nothing new, nothing written');
    const other = new DigestCache(cache.dir, { files });
    await Promise.all(Array.from({ length: 50 }, (_, i) => other.locations(sha256Digest(`blob ${i}`))));
    assert.deepEqual(calls, ['read', 'write', 'read'], 'lookups share one read');
  });

  it('writes nothing when a push learnt only what the file says, and writes what is new', async () => {
    const { files, calls } = countingFiles();
    const dir = await freshDir();
    const first = new DigestCache(dir, { files });
    first.addCompressedForm(diffId, { digest: gz, size: 10, mediaType: GZIP });
    first.addLocation(gz, { registry: 'r', repository: 'app' });
    await first.flush();
    assert.deepEqual(calls, ['read', 'write']);

    // A second push: it looks the layer up, finds it, and records the same again.
    const second = new DigestCache(dir, { files });
    assert.equal((await second.compressedForms(diffId)).length, 1);
    second.addCompressedForm(diffId, { digest: gz, size: 10, mediaType: GZIP });
    second.addLocation(gz, { registry: 'r', repository: 'app' });
    await second.flush();
    assert.deepEqual(calls, ['read', 'write', 'read'], 'nothing new, nothing written');

    const third = new DigestCache(dir, { files });
    await third.locations(gz);
    third.addLocation(gz, { registry: 'r', repository: 'other' });
    await third.flush();
    assert.deepEqual(calls, ['read', 'write', 'read', 'read', 'read', 'write'], 'a new location is written');
    assert.deepEqual((await new DigestCache(dir, { files }).locations(gz)).map((l) => l.repository), ['other', 'app']);
  });

  it('keeps what another run wrote meanwhile', async () => {
    const dir = await freshDir();
    const first = new DigestCache(dir);
    const second = new DigestCache(dir);
    assert.deepEqual(await first.locations(gz), []);
    first.addLocation(gz, { registry: 'r', repository: 'one' });
    second.addLocation(gz, { registry: 'r', repository: 'two' });
    await second.flush();
    await first.flush();
    assert.deepEqual((await new DigestCache(dir).locations(gz)).map((l) => l.repository).sort(), ['one', 'two']);
  });

  it('treats a corrupt file as empty and replaces it', async () => {
    const dir = await freshDir();
    await writeFile(join(dir, 'digests.json'), '{"format": 2, "entries": {"sha256:nope": {}, ');
    const cache = new DigestCache(dir);
    assert.deepEqual(await cache.locations(gz), []);
    await writeFile(join(dir, 'digests.json'), JSON.stringify({ format: 2, entries: { [gz]: { locations: [{ registry: 1 }, { registry: 'r', repository: 'y' }] } } }));
    const reread = new DigestCache(dir);
    assert.deepEqual(await reread.locations(gz), [{ registry: 'r', repository: 'y' }]);
    reread.addLocation(gz, { registry: 'r', repository: 'z' });
    await reread.flush();
    assert.deepEqual((await new DigestCache(dir).locations(gz)).map((l) => l.repository), ['z', 'y']);
  });

  it('leaves a whole, parsable file when several runs write at once', async () => {
    const dir = await freshDir();
    await Promise.all(
      Array.from({ length: 20 }, (_, i) => {
        const cache = new DigestCache(dir);
        cache.addLocation(gz, { registry: 'r', repository: `repo-${i}` });
        return cache.flush();
      }),
    );
    const locations = await new DigestCache(dir).locations(gz);
    assert.ok(locations.length >= 1 && locations.length <= 16);
    assert.deepEqual(await readdir(dir), ['digests.json'], 'no temporary files are left');
  });

  it('keeps at most sixteen locations, newest first', async () => {
    const cache = new DigestCache(await freshDir());
    for (let i = 0; i < 20; i++) cache.addLocation(gz, { registry: 'r', repository: `repo-${i}` });
    await cache.flush();
    const locations = await new DigestCache(cache.dir).locations(gz);
    assert.equal(locations.length, 16);
    assert.equal(locations[0]?.repository, 'repo-19');
  });

  it('lives where RXPUSH_CACHE_DIR or XDG_CACHE_HOME say', () => {
    assert.equal(defaultCacheDir({ RXPUSH_CACHE_DIR: '/tmp/c' }), '/tmp/c');
    assert.equal(defaultCacheDir({ XDG_CACHE_HOME: '/x' }), '/x/rxpush');
  });
});

describe('DigestCache on a hostile disk', () => {
  /** What a cache whose file is `prepare`d that way answers, and what it warns. */
  async function lookUp(prepare: (file: string, dir: string) => Promise<void>) {
    const dir = await freshDir();
    await prepare(join(dir, 'digests.json'), dir);
    const { logger, lines } = warnings();
    const cache = new DigestCache(dir, { logger });
    return { locations: await cache.locations(gz), lines, cache };
  }

  it('passes over a FIFO in place of its file, without waiting for a writer', async () => {
    const { locations } = await lookUp(async (file) => void execFileSync('mkfifo', [file]));
    assert.deepEqual(locations, []);
  });

  it('passes over a symlink to a FIFO, to a device and to a huge file', async () => {
    const huge = join(await freshDir(), 'huge');
    await writeFile(huge, '');
    // Sparse: 1 GiB that takes no disk.
    await truncate(huge, 1024 ** 3);
    const fifo = join(await freshDir(), 'fifo');
    execFileSync('mkfifo', [fifo]);
    for (const target of [fifo, '/dev/zero', '/dev/urandom', huge]) {
      const { locations } = await lookUp((file) => symlink(target, file));
      assert.deepEqual(locations, [], target);
    }
  });

  it('passes over a huge file and a directory in place of its file', async () => {
    assert.deepEqual((await lookUp(async (file) => truncate(await writeFile(file, '').then(() => file), 64 * 1024 ** 2))).locations, []);
    assert.deepEqual((await lookUp(async (file) => void execFileSync('mkdir', [file]))).locations, []);
  });

  it('reads a regular file behind a symlink', async () => {
    const real = await freshDir();
    await seeded(real);
    const { locations } = await lookUp((file) => symlink(join(real, 'digests.json'), file));
    assert.deepEqual(locations, [{ registry: 'r', repository: 'seed' }]);
  });

  it('warns once and goes on when its directory cannot be created', async () => {
    const parent = await freshDir();
    await writeFile(join(parent, 'a-file'), 'not a directory');
    const { logger, lines } = warnings();
    const cache = new DigestCache(join(parent, 'a-file', 'cache'), { logger });
    assert.deepEqual(await cache.locations(gz), []);
    cache.addLocation(gz, { registry: 'r', repository: 'x' });
    await cache.flush();
    cache.addLocation(diffId, { registry: 'r', repository: 'x' });
    await cache.flush();
    assert.equal(lines.length, 1, lines.join('\n'));
    assert.equal(lines[0], `digest cache write failed (${join(parent, 'a-file', 'cache')}: a part of its path is a file, not a directory); going on without it`);
  });

  it('says in words what is wrong with its directory: a file in its place, a full disk', async () => {
    const parent = await freshDir();
    await writeFile(join(parent, 'cache'), 'a file where the directory belongs');
    const { logger, lines } = warnings();
    const cache = new DigestCache(join(parent, 'cache'), { logger });
    cache.addLocation(gz, { registry: 'r', repository: 'x' });
    await cache.flush();
    assert.deepEqual(lines, [`digest cache write failed (${join(parent, 'cache')}: it is there, but not as a directory); going on without it`]);
    const full: CacheFiles = { read: async () => undefined, write: async (file) => Promise.reject(Object.assign(new Error(`ENOSPC: no space left on device, write`), { code: 'ENOSPC', path: file })) };
    const second = warnings();
    const cacheOnFullDisk = new DigestCache(await freshDir(), { logger: second.logger, files: full });
    cacheOnFullDisk.addLocation(gz, { registry: 'r', repository: 'x' });
    await cacheOnFullDisk.flush();
    assert.match(second.lines[0] ?? '', /^digest cache write failed \(\/\S+\/digests\.json: the disk is full\); going on without it$/);
  });

  it('gives up on a disk that does not answer, warning once, and answers nothing from then on', async () => {
    const never = new Promise<never>(() => {});
    const files: CacheFiles = { read: () => never, write: () => never };
    const { logger, lines } = warnings();
    const cache = new DigestCache(await freshDir(), { logger, files, timeoutMs: 20 });
    assert.deepEqual(await cache.locations(gz), []);
    assert.deepEqual(await cache.compressedForms(diffId), []);
    cache.addLocation(gz, { registry: 'r', repository: 'x' });
    await cache.flush();
    assert.equal(lines.length, 1, lines.join('\n'));
    assert.match(lines[0] ?? '', /digest cache read failed \(the read took longer than 20 ms\)/);
  });

  it('gives up on a write that does not finish, so a push is never held up by it', async () => {
    const files: CacheFiles = { read: async () => undefined, write: () => new Promise<never>(() => {}) };
    const { logger, lines } = warnings();
    const cache = new DigestCache(await freshDir(), { logger, files, timeoutMs: 20 });
    cache.addLocation(gz, { registry: 'r', repository: 'x' });
    await cache.flush();
    assert.match(lines.join('\n'), /digest cache write failed/);
  });

  it('warns once when its file cannot be read', async () => {
    const files: CacheFiles = { read: async () => Promise.reject(new Error('EACCES: permission denied')), write: async () => {} };
    const { logger, lines } = warnings();
    const cache = new DigestCache(await freshDir(), { logger, files });
    assert.deepEqual(await cache.locations(gz), []);
    assert.deepEqual(await cache.locations(diffId), []);
    assert.deepEqual(lines, ['digest cache read failed (EACCES: permission denied); going on without it']);
    const written = await readFile(join(cache.dir, 'digests.json'), 'utf8').catch(() => undefined);
    assert.equal(written, undefined);
  });
});
