/**
 * tools/bundle/load-bundle.cjs, which runs the CLI bundle's chunks with a V8 code cache: the cache is used,
 * and a cache that is garbled, for another source, or cannot be written never changes what runs.
 * Each load is its own `node` process, as the CLI's runs are.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { chmod, chown, mkdir, mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { describe, it } from 'node:test';
import { promisify } from 'node:util';

import { runCli } from './helpers/run-cli.ts';

const LOADER = join(import.meta.dirname, '..', 'tools', 'bundle', 'load-bundle.cjs');

async function tempDir(t: { after(fn: () => Promise<void>): void }): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'rxpush-bundle-loader-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

/** A bundle of two chunks: the entry requires the other and a Node module, as esbuild's chunks do. */
async function makeBundle(dir: string, word = 'one'): Promise<void> {
  await writeFile(join(dir, 'entry.cjs'), `const { word } = require('./part.cjs');\nconst { sep } = require('node:path');\nexports.say = () => word + sep + __filename.endsWith('entry.cjs');\n`);
  await writeFile(join(dir, 'part.cjs'), `exports.word = ${JSON.stringify(word)};\n`);
}

interface LoadResult {
  said: string;
  status: Record<string, string>;
}

/** Loads the bundle's entry in a new process, runs it, saves the cache as the CLI does, and reports. */
async function load(bundleDir: string, cacheDir: string, nodeFlags: string[] = []): Promise<LoadResult> {
  const script = `
    const { createBundleLoader } = require(${JSON.stringify(LOADER)});
    const loader = createBundleLoader(${JSON.stringify(bundleDir)}, { cacheDir: ${JSON.stringify(cacheDir)} });
    process.once('exit', () => loader.save());
    const said = loader.load('entry.cjs').say();
    process.stdout.write(JSON.stringify({ said, status: Object.fromEntries(loader.status) }));`;
  const { stdout } = await promisify(execFile)(process.execPath, [...nodeFlags, '-e', script], { timeout: 30_000 });
  return JSON.parse(stdout) as LoadResult;
}

/** The cache files of the one bundle that used `cacheDir`. */
async function cacheFiles(cacheDir: string): Promise<string[]> {
  const [versionDir] = await readdir(join(cacheDir, 'code-cache'));
  assert.equal(versionDir, `${process.version}-${process.arch}`);
  const [bundleDir, ...others] = await readdir(join(cacheDir, 'code-cache', versionDir));
  assert.ok(bundleDir !== undefined && others.length === 0, 'one bundle used the cache');
  const dir = join(cacheDir, 'code-cache', versionDir, bundleDir);
  return (await readdir(dir)).map((name) => join(dir, name)).sort();
}

/** A bundle of two chunks run once, so the cache holds a file for each. */
async function cachedBundle(t: { after(fn: () => Promise<void>): void }): Promise<{ bundle: string; cache: string; entryCache: string; partCache: string }> {
  const dir = await tempDir(t);
  const [bundle, cache] = [join(dir, 'bundle'), join(dir, 'cache')];
  await mkdir(bundle);
  await makeBundle(bundle);
  await load(bundle, cache);
  const [entryCache, partCache] = await cacheFiles(cache);
  assert.ok(entryCache !== undefined && partCache !== undefined && entryCache.includes('entry.cjs') && partCache.includes('part.cjs'));
  return { bundle, cache, entryCache, partCache };
}

describe('tools/bundle/load-bundle.cjs', () => {
  it('compiles the chunks the first time, caches them as the process ends, and runs them from the cache after', async (t) => {
    const dir = await tempDir(t);
    const [bundle, cache] = [join(dir, 'bundle'), join(dir, 'cache')];
    await mkdir(bundle);
    await makeBundle(bundle);

    const first = await load(bundle, cache);
    assert.deepEqual(first, { said: 'one/true', status: { 'entry.cjs': 'compiled', 'part.cjs': 'compiled' } });
    const files = await cacheFiles(cache);
    assert.equal(files.length, 2);
    const written = await Promise.all(files.map(async (file) => (await stat(file)).mtimeMs));

    const second = await load(bundle, cache);
    assert.deepEqual(second, { said: 'one/true', status: { 'entry.cjs': 'cached', 'part.cjs': 'cached' } });
    assert.deepEqual(await cacheFiles(cache), files, 'nothing new is written');
    assert.deepEqual(await Promise.all(files.map(async (file) => (await stat(file)).mtimeMs)), written, 'nor rewritten');
  });

  it('ignores a garbled or foreign cache file, runs the chunk compiled, and replaces the file', async (t) => {
    const { bundle, cache, entryCache, partCache } = await cachedBundle(t);

    // A flipped byte in V8's data (at the end of the file): its CRC no longer matches, and V8 would not notice.
    const bytes = await readFile(entryCache);
    const last = bytes.length - 1;
    bytes[last] = (bytes[last] ?? 0) ^ 0xff;
    await writeFile(entryCache, bytes);
    // Cut short, as a full disk would leave a file written in place.
    await writeFile(partCache, (await readFile(partCache)).subarray(0, 100));
    assert.deepEqual(await load(bundle, cache), { said: 'one/true', status: { 'entry.cjs': 'rejected', 'part.cjs': 'rejected' } });
    assert.deepEqual(await load(bundle, cache), { said: 'one/true', status: { 'entry.cjs': 'cached', 'part.cjs': 'cached' } }, 'both were replaced');

    // Whole files, but made by a V8 with other flags (as another Node.js would): V8 itself refuses them.
    assert.deepEqual(await load(bundle, cache, ['--no-opt']), { said: 'one/true', status: { 'entry.cjs': 'rejected', 'part.cjs': 'rejected' } });
  });

  it('runs no cached code from a file that another user owns or others may write, and writes its own 0600', async (t) => {
    const { bundle, cache, entryCache, partCache } = await cachedBundle(t);
    assert.equal((await stat(entryCache)).mode & 0o777, 0o600);
    assert.equal((await stat(join(cache, 'code-cache'))).mode & 0o777, 0o700);

    await chmod(partCache, 0o666);
    const root = process.getuid?.() === 0;
    if (root) await chown(entryCache, 65534, 65534);
    assert.deepEqual(await load(bundle, cache), { said: 'one/true', status: { 'entry.cjs': root ? 'rejected' : 'cached', 'part.cjs': 'rejected' } });
    assert.deepEqual(await load(bundle, cache), { said: 'one/true', status: { 'entry.cjs': 'cached', 'part.cjs': 'cached' } }, 'both were replaced');
  });

  it('never runs cached code of another source, even of the same length, and keeps one file per chunk', async (t) => {
    const dir = await tempDir(t);
    const [bundle, cache] = [join(dir, 'bundle'), join(dir, 'cache')];
    await mkdir(bundle);
    await makeBundle(bundle, 'one');
    await load(bundle, cache);

    // V8 checks a cache against the source's length only: the loader compares the source itself.
    await makeBundle(bundle, 'two');
    assert.deepEqual(await load(bundle, cache), { said: 'two/true', status: { 'entry.cjs': 'cached', 'part.cjs': 'rejected' } });
    assert.deepEqual(await load(bundle, cache), { said: 'two/true', status: { 'entry.cjs': 'cached', 'part.cjs': 'cached' } });

    // A chunk the bundle no longer has loses its file when the cache is next written.
    await rm(join(bundle, 'part.cjs'));
    await writeFile(join(bundle, 'part2.cjs'), 'exports.word = "three";\n');
    await writeFile(join(bundle, 'entry.cjs'), `const { word } = require('./part2.cjs');\nconst { sep } = require('node:path');\nexports.say = () => word + sep + __filename.endsWith('entry.cjs');\n`);
    assert.deepEqual(await load(bundle, cache), { said: 'three/true', status: { 'entry.cjs': 'rejected', 'part2.cjs': 'compiled' } });
    assert.deepEqual((await cacheFiles(cache)).map((file) => basename(file)), ['entry.cjs.bin', 'part2.cjs.bin']);
  });

  it('does not use code cached for the same bundle elsewhere, whose stack traces would name the other files', async (t) => {
    const dir = await tempDir(t);
    const cache = join(dir, 'cache');
    for (const copy of ['one', 'two']) {
      await mkdir(join(dir, copy));
      await makeBundle(join(dir, copy));
    }
    await load(join(dir, 'one'), cache);
    assert.deepEqual(await load(join(dir, 'two'), cache), { said: 'one/true', status: { 'entry.cjs': 'compiled', 'part.cjs': 'compiled' } });
    assert.deepEqual(await load(join(dir, 'one'), cache), { said: 'one/true', status: { 'entry.cjs': 'cached', 'part.cjs': 'cached' } }, 'each copy keeps its own');
  });

  it('runs the bundle just the same where the cache directory cannot be made', async (t) => {
    const dir = await tempDir(t);
    const bundle = join(dir, 'bundle');
    await mkdir(bundle);
    await makeBundle(bundle);
    // A file where a directory should be: no mkdir under it succeeds, not even for root.
    const blocked = join(dir, 'not-a-dir');
    await writeFile(blocked, '');
    assert.deepEqual(await load(bundle, join(blocked, 'cache')), { said: 'one/true', status: { 'entry.cjs': 'compiled', 'part.cjs': 'compiled' } });
    assert.deepEqual(await load(bundle, join(blocked, 'cache')), { said: 'one/true', status: { 'entry.cjs': 'compiled', 'part.cjs': 'compiled' } });
    // Node's recursive mkdir spins forever here (ENOENT under a parent that exists); the process must still end.
    assert.deepEqual(await load(bundle, join('/proc', String(process.pid), 'rxpush-cache')), { said: 'one/true', status: { 'entry.cjs': 'compiled', 'part.cjs': 'compiled' } });
  });
});

describe('the CLI and its code cache', () => {
  it('keeps the bundle\'s compiled code in RXPUSH_CACHE_DIR and reuses it; a garbled cache changes nothing', async (t) => {
    const dir = await tempDir(t);
    const env = { RXPUSH_CACHE_DIR: dir };
    const first = await runCli(['--help'], { env });
    assert.equal(first.code, 0, first.stderr);
    const files = await cacheFiles(dir);
    assert.ok(files.some((file) => basename(file) === 'rxpush.cjs.bin'), 'the entry chunk is cached');
    // Only what --help ran was loaded (and so cached): the command line, not the push.
    const bundleDir = join(import.meta.dirname, '..', 'packages', 'cli', 'bundle');
    for (const file of files) {
      const chunk = await readFile(join(bundleDir, basename(file).replace(/\.bin$/, '')), 'utf8');
      assert.doesNotMatch(chunk, /^\/\/! node_modules\/\.pnpm\/(rxjs|undici|pino)@/m, `${basename(file)} is a chunk of the push`);
    }
    const written = await Promise.all(files.map(async (file) => (await stat(file)).mtimeMs));

    const again = await runCli(['--help'], { env });
    assert.equal(again.stdout, first.stdout);
    // A chunk V8 did not take would be written anew as the run ends.
    assert.deepEqual(await Promise.all(files.map(async (file) => (await stat(file)).mtimeMs)), written, 'V8 took every cached chunk');

    for (const file of files) await writeFile(file, 'garbage');
    const garbled = await runCli(['--help'], { env });
    assert.equal(garbled.code, 0, garbled.stderr);
    assert.equal(garbled.stdout, first.stdout);
    assert.equal(garbled.stderr, '');
    for (const file of files) assert.notEqual(await readFile(file, 'utf8').catch(() => 'gone'), 'garbage', 'replaced');
  });
});
