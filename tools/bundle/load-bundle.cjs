'use strict';
// Copied into packages/cli/bundle/ as load.cjs by tools/bundle-cli.mjs; the bin requires it to run the bundle.
//
// Loads the CLI bundle's CommonJS chunks with a V8 code cache. Compiling the chunks' ~1.8 MB of source is
// ~40 ms of a second push's ~190 ms of CPU, and Node 20 has no compile cache for user code
// (module.enableCompileCache() is Node 22.1+, and keeps its cache in the OS temp dir). As v8-compile-cache
// does, each chunk is compiled through vm.Script with the code V8 made for it in an earlier run; the cache
// is written after the command ran, so it holds the functions the command used, not only the top level.
//
// The cache is an optimisation and never fails a command: a file that is missing, unreadable, truncated,
// garbled, from another Node.js or for another source is ignored (and replaced), and a cache directory that
// cannot be written is simply not written.
const { createHash } = require('node:crypto');
const { mkdirSync, readdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } = require('node:fs');
const Module = require('node:module');
const { homedir } = require('node:os');
const { basename, dirname, join } = require('node:path');
const vm = require('node:vm');

/** Bytes of the SHA-256 of the V8 data that head each cache file: V8 trusts the data it is given. */
const CHECK_BYTES = 32;

/**
 * rxpush's cache directory, as the digest cache finds it (packages/blob-checker's defaultCacheDir, which the
 * loader cannot import: it runs before any of the bundle): `$RXPUSH_CACHE_DIR`, `$XDG_CACHE_HOME/rxpush`, `~/.cache/rxpush`.
 */
function defaultCacheDir(env = process.env) {
  return env.RXPUSH_CACHE_DIR || join(env.XDG_CACHE_HOME || join(homedir(), '.cache'), 'rxpush');
}

/**
 * Makes a loader of the chunks in `bundleDir`. `load(name)` returns a chunk's exports, evaluating it once;
 * `save()` writes the cache of every chunk compiled without usable cached code (call it as the process ends);
 * `status` tells, per chunk file, whether it was `cached` (V8 took the cached code), `compiled` (no cache file),
 * or `rejected` (a file was there but unusable).
 * With `cacheDir: null` nothing is cached.
 */
function createBundleLoader(bundleDir, options = {}) {
  const cacheRoot = options.cacheDir === undefined ? defaultCacheDir() : options.cacheDir;
  // V8 rejects data of another V8 or flag set, but each Node.js keeps its own files rather than fight over one;
  // and each copy of the bundle too, as code V8 made for a file names that file in stack traces.
  const place = createHash('sha256').update(bundleDir).digest('hex').slice(0, 16);
  const cacheDir = cacheRoot === null ? null : join(cacheRoot, 'code-cache', `${process.version}-${process.arch}`, place);
  const modules = new Map();
  const toSave = [];
  const status = new Map();

  function load(name) {
    const known = modules.get(name);
    if (known !== undefined) return known.exports;
    const file = join(bundleDir, name);
    const source = readFileSync(file, 'utf8');
    // V8 checks only a cache's length against the source: the key must be the source itself.
    const cacheFile = cacheDir === null ? null : join(cacheDir, `${name}-${createHash('sha256').update(source).digest('hex').slice(0, 32)}.bin`);
    const cached = cacheFile === null ? { found: false } : readCache(cacheFile);
    const script = new vm.Script(Module.wrap(source), { filename: file, ...(cached.data !== undefined && { cachedData: cached.data }) });
    const state = cached.data !== undefined && !script.cachedDataRejected ? 'cached' : cached.found ? 'rejected' : 'compiled';
    status.set(name, state);
    if (state !== 'cached' && cacheFile !== null) toSave.push({ name, script, cacheFile });

    const module = { exports: {}, filename: file, id: file, loaded: false };
    modules.set(name, module);
    const nodeRequire = Module.createRequire(file);
    const chunkRequire = (specifier) => (specifier.startsWith('./') ? load(specifier.slice(2)) : nodeRequire(specifier));
    chunkRequire.resolve = nodeRequire.resolve;
    script.runInThisContext().call(module.exports, module.exports, chunkRequire, module, file, dirname(file));
    module.loaded = true;
    return module.exports;
  }

  /** The V8 data of a cache file, when the file is there (`found`) and whole (`data`). */
  function readCache(cacheFile) {
    let bytes;
    try {
      bytes = readFileSync(cacheFile);
    } catch {
      return { found: false };
    }
    const data = bytes.subarray(CHECK_BYTES);
    const whole = bytes.length > CHECK_BYTES && createHash('sha256').update(data).digest().equals(bytes.subarray(0, CHECK_BYTES));
    return whole ? { found: true, data } : { found: true };
  }

  function save() {
    if (toSave.length === 0 || cacheDir === null) return;
    try {
      makeDirectory(cacheDir);
    } catch {
      return;
    }
    for (const { name, script, cacheFile } of toSave.splice(0)) {
      try {
        const data = script.createCachedData();
        const temp = `${cacheFile}.${process.pid}.tmp`;
        writeFileSync(temp, Buffer.concat([createHash('sha256').update(data).digest(), data]));
        // Whole or not at all, whatever another rxpush running at the same time does.
        renameSync(temp, cacheFile);
        dropOlder(name, basename(cacheFile));
      } catch {
        // Not writable, full, gone: the next run compiles again.
      }
    }
  }

  // Each build names its chunks anew (the entry keeps its name), so an upgrade leaves the old files behind:
  // those of chunks this bundle no longer has, and the entry's earlier versions, go when a new one is written.
  let current;
  function dropOlder(name, keep) {
    current ??= new Set(readdirSync(bundleDir));
    for (const file of readdirSync(cacheDir)) {
      const chunk = file.replace(/-[0-9a-f]{32}\.bin(\.\d+\.tmp)?$/, '');
      if (file !== keep && (chunk === name || !current.has(chunk))) rmSync(join(cacheDir, file), { force: true });
    }
  }

  return { load, save, status };
}

/**
 * `mkdir -p` that always ends, as @rxpush/core's makeDirectory (which the loader cannot import): Node's
 * recursive mkdir retries forever where mkdir answers ENOENT under a parent that exists (under /proc/PID, say),
 * and this runs as the process exits.
 */
function makeDirectory(path) {
  try {
    mkdirSync(path);
    return;
  } catch (error) {
    if (isDirectoryAfter(error, path)) return;
    const parent = dirname(path);
    if (error.code !== 'ENOENT' || parent === path) throw error;
    makeDirectory(parent);
  }
  try {
    mkdirSync(path);
  } catch (error) {
    if (!isDirectoryAfter(error, path)) throw error;
  }
}

function isDirectoryAfter(error, path) {
  if (error.code !== 'EEXIST') return false;
  try {
    return statSync(path).isDirectory();
  } catch {
    return false;
  }
}

module.exports = { createBundleLoader, defaultCacheDir };
