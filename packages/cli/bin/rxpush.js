#!/usr/bin/env node
// A committed shim, so the bin link exists from install time on; the code is built into dist and bundle.
// CommonJS (bin/package.json), as the bundle's chunks are: an ES module entry would start Node's ESM loader
// only to load this file (~3 ms of every run).
'use strict';
const { readdirSync, statSync } = require('node:fs');
const module_ = require('node:module');
const { join } = require('node:path');

// Checked before any of rxpush loads: on an older Node it would fail somewhere deep and obscure.
const NEEDED = { major: 20, minor: 19 };
const [major = 0, minor = 0] = process.versions.node.split('.').map(Number);
if (major < NEEDED.major || (major === NEEDED.major && minor < NEEDED.minor)) {
  process.stderr.write(`rxpush: Node.js ${process.versions.node} is too old; rxpush needs Node.js ${NEEDED.major}.${NEEDED.minor} or newer (22 or 24 recommended)\n`);
  process.exit(2);
}

const bundle = join(__dirname, '..', 'bundle');
run().then((code) => {
  process.exitCode = code;
});

async function run() {
  let main;
  if (isFresh(join(bundle, 'rxpush.cjs'))) {
    // The bundle's chunks are compiled with V8's code of earlier runs, kept in rxpush's cache directory
    // (tools/bundle/load-bundle.cjs); what this run compiled anew is cached as it ends.
    const loader = require('../bundle/load.cjs').createBundleLoader(bundle);
    process.once('exit', () => loader.save());
    ({ main } = loader.load('rxpush.cjs'));
  } else {
    // undici's HTTP parser is WebAssembly; V8 re-compiles it with TurboFan in the background and the process
    // waits for that before it exits (~0.3 s, ~35 MB); the baseline compiler is fast enough for registry answers.
    // Set before any code is cached, as V8 keeps cached code only for the flags it was made with. (The bundle
    // sets it only while undici compiles its parser: tools/bundle/liftoff-client-h1.cjs.)
    require('node:v8').setFlagsFromString('--liftoff-only');
    // Node 22.1+ keeps V8's compiled code of the modules on disk (in the OS temp dir, or NODE_COMPILE_CACHE).
    module_.enableCompileCache?.();
    ({ main } = await import('../dist/main.js'));
  }
  return main(process.argv.slice(2));
}

/**
 * The bundle (tools/bundle-cli.mjs) loads much faster than the ~500 modules it holds, but it
 * must not outlive their sources: it is used only while no package of the workspace was built after it.
 */
function isFresh(file) {
  let made;
  try {
    made = statSync(file).mtimeMs;
  } catch {
    return false;
  }
  const packages = join(__dirname, '..', '..');
  for (const name of readdirSync(packages)) {
    try {
      if (statSync(join(packages, name, 'dist', '.tsbuildinfo')).mtimeMs > made) return false;
    } catch {
      // Not a built package of the workspace.
    }
  }
  return true;
}
