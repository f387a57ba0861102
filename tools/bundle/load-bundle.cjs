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
// cannot be written is simply not written. Nothing here loads node:crypto (~3 ms, which `rxpush --help`
// would not otherwise pay): each cache file holds the source it was made for, compared byte for byte, and a
// CRC-32 of V8's data, which V8 itself does not check in release builds.
const { closeSync, fstatSync, mkdirSync, openSync, readdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } = require('node:fs');
const Module = require('node:module');
const { homedir } = require('node:os');
const { dirname, join } = require('node:path');
const vm = require('node:vm');
const { crc32 } = require('node:zlib');

/** "RXPC", format 1; then the lengths of the chunk's path and source and the CRC-32 of V8's data (u32 LE each). */
const MAGIC = Buffer.from('RXPC\x01\x00\x00\x00', 'latin1');
const HEADER = MAGIC.length + 12;

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
 * or `rejected` (a file was there but unusable: garbled, stale, or refused by V8).
 * With `cacheDir: null` nothing is cached.
 */
function createBundleLoader(bundleDir, options = {}) {
  const cacheRoot = options.cacheDir === undefined ? defaultCacheDir() : options.cacheDir;
  // V8 rejects data of another V8 or flag set, but each Node.js keeps its own files rather than fight over one;
  // and each copy of the bundle too, as code V8 made for a file names that file in stack traces.
  const place = (crc32(bundleDir) >>> 0).toString(16).padStart(8, '0');
  const cacheDir = cacheRoot === null ? null : join(cacheRoot, 'code-cache', `${process.version}-${process.arch}`, place);
  const modules = new Map();
  const toSave = [];
  const status = new Map();

  function load(name) {
    const known = modules.get(name);
    if (known !== undefined) return known.exports;
    const file = join(bundleDir, name);
    const sourceBytes = readFileSync(file);
    const path = Buffer.from(file);
    const cacheFile = cacheDir === null ? null : join(cacheDir, `${name}.bin`);
    const cached = cacheFile === null ? { found: false } : readCache(cacheFile, path, sourceBytes);
    const script = new vm.Script(Module.wrap(sourceBytes.toString('utf8')), { filename: file, ...(cached.data !== undefined && { cachedData: cached.data }) });
    const state = cached.data !== undefined && !script.cachedDataRejected ? 'cached' : cached.found ? 'rejected' : 'compiled';
    status.set(name, state);
    if (state !== 'cached' && cacheFile !== null) toSave.push({ script, cacheFile, path, sourceBytes });

    const module = { exports: {}, filename: file, id: file, loaded: false };
    modules.set(name, module);
    const nodeRequire = Module.createRequire(file);
    const chunkRequire = (specifier) => (specifier.startsWith('./') ? load(specifier.slice(2)) : nodeRequire(specifier));
    chunkRequire.resolve = nodeRequire.resolve;
    script.runInThisContext().call(module.exports, module.exports, chunkRequire, module, file, dirname(file));
    module.loaded = true;
    return module.exports;
  }

  /** V8's data from a cache file, when the file is there (`found`) and was made, whole, for this very file and source (`data`). */
  function readCache(cacheFile, path, sourceBytes) {
    let bytes;
    let fd;
    try {
      fd = openSync(cacheFile, 'r');
    } catch {
      return { found: false };
    }
    try {
      // Cached data is code V8 runs without parsing the source again: only a file of this user's own that
      // nobody else may write is used (RXPUSH_CACHE_DIR may name a shared directory). Checked on the open file,
      // so it cannot be swapped between the check and the read.
      const info = fstatSync(fd);
      const uid = typeof process.getuid === 'function' ? process.getuid() : undefined;
      if (!info.isFile() || (uid !== undefined && info.uid !== uid) || (info.mode & 0o022) !== 0) return { found: true };
      bytes = readFileSync(fd);
    } catch {
      return { found: true };
    } finally {
      closeSync(fd);
    }
    if (bytes.length < HEADER || !bytes.subarray(0, MAGIC.length).equals(MAGIC)) return { found: true };
    const pathLength = bytes.readUInt32LE(MAGIC.length);
    const sourceLength = bytes.readUInt32LE(MAGIC.length + 4);
    const check = bytes.readUInt32LE(MAGIC.length + 8);
    const sourceStart = HEADER + pathLength;
    const dataStart = sourceStart + sourceLength;
    if (pathLength !== path.length || sourceLength !== sourceBytes.length || dataStart >= bytes.length) return { found: true };
    // V8 checks only a cache's length against the source: this compares the source itself.
    if (!bytes.subarray(HEADER, sourceStart).equals(path) || !bytes.subarray(sourceStart, dataStart).equals(sourceBytes)) return { found: true };
    const data = bytes.subarray(dataStart);
    return crc32(data) >>> 0 === check ? { found: true, data } : { found: true };
  }

  function save() {
    if (toSave.length === 0 || cacheDir === null) return;
    try {
      makeDirectory(cacheDir);
    } catch {
      return;
    }
    for (const { script, cacheFile, path, sourceBytes } of toSave.splice(0)) {
      try {
        const data = script.createCachedData();
        const header = Buffer.alloc(HEADER);
        MAGIC.copy(header);
        header.writeUInt32LE(path.length, MAGIC.length);
        header.writeUInt32LE(sourceBytes.length, MAGIC.length + 4);
        header.writeUInt32LE(crc32(data) >>> 0, MAGIC.length + 8);
        const temp = `${cacheFile}.${process.pid}.tmp`;
        writeFileSync(temp, Buffer.concat([header, path, sourceBytes, data]), { mode: 0o600 });
        // Whole or not at all, whatever another rxpush running at the same time does.
        renameSync(temp, cacheFile);
      } catch {
        // Not writable, full, gone: the next run compiles again.
      }
    }
    dropGone();
  }

  // Each build names its chunks anew: the files of chunks this bundle no longer has go when a new one is written.
  function dropGone() {
    try {
      const current = new Set(readdirSync(bundleDir));
      for (const file of readdirSync(cacheDir)) {
        if (!current.has(file.replace(/\.bin(\.\d+\.tmp)?$/, ''))) rmSync(join(cacheDir, file), { force: true });
      }
    } catch {
      // Someone else is cleaning up too.
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
    mkdirSync(path, { mode: 0o700 });
    return;
  } catch (error) {
    if (isDirectoryAfter(error, path)) return;
    const parent = dirname(path);
    if (error.code !== 'ENOENT' || parent === path) throw error;
    makeDirectory(parent);
  }
  try {
    mkdirSync(path, { mode: 0o700 });
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
