#!/usr/bin/env node
// A committed shim, so the bin link exists from install time on; the code is built into dist.
import { readdirSync, statSync } from 'node:fs';
import module, { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { setFlagsFromString } from 'node:v8';

// Checked before any of rxpush loads: on an older Node it would fail somewhere deep and obscure.
const NEEDED = { major: 20, minor: 19 };
const [major = 0, minor = 0] = process.versions.node.split('.').map(Number);
if (major < NEEDED.major || (major === NEEDED.major && minor < NEEDED.minor)) {
  process.stderr.write(`rxpush: Node.js ${process.versions.node} is too old; rxpush needs Node.js ${NEEDED.major}.${NEEDED.minor} or newer (22 or 24 recommended)\n`);
  process.exit(2);
}

// undici's HTTP parser is WebAssembly; V8 re-compiles it with TurboFan in the background and the
// process waits for that before it exits (~0.3 s, ~35 MB). The baseline compiler is fast enough
// for parsing registry answers. Set before anything loads undici (and before any code is cached: V8 keeps
// cached code only for the flags it was made with).
setFlagsFromString('--liftoff-only');

const bundle = new URL('../bundle/', import.meta.url);
let main;
if (isFresh(new URL('rxpush.cjs', bundle))) {
  // The bundle's chunks are compiled with V8's code of earlier runs, kept in rxpush's cache directory
  // (tools/bundle/load-bundle.cjs); what this run compiled anew is cached as it ends.
  const { createBundleLoader } = createRequire(import.meta.url)('../bundle/load.cjs');
  const loader = createBundleLoader(fileURLToPath(bundle));
  process.once('exit', () => loader.save());
  ({ main } = loader.load('rxpush.cjs'));
} else {
  // Node 22.1+ keeps V8's compiled code of the modules on disk (in the OS temp dir, or NODE_COMPILE_CACHE).
  module.enableCompileCache?.();
  ({ main } = await import('../dist/main.js'));
}
process.exitCode = await main(process.argv.slice(2));

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
  const packages = new URL('../../', import.meta.url);
  for (const name of readdirSync(packages)) {
    try {
      if (statSync(new URL(`${name}/dist/.tsbuildinfo`, packages)).mtimeMs > made) return false;
    } catch {
      // Not a built package of the workspace.
    }
  }
  return true;
}
