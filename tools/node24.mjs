// The second Node.js the suite runs on: Node 24 LTS, from the npm registry's `node` package (which brings
// the platform's official binary as a package), installed once into node_modules/.cache and reused.
// Plain Node ESM with no dependencies: tools/setup.mjs uses it before anything is installed.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The major version tested beside the one running; `node@24` follows its patch releases. */
export const NODE24_MAJOR = 24;

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const dir = join(root, 'node_modules', '.cache', `rxpush-node${NODE24_MAJOR}`);

/** Where the Node 24 binary is once installed. */
export const node24Path = join(dir, 'node_modules', 'node', 'bin', 'node');

/** The installed binary's version (e.g. `v24.21.0`) when it is there and of the right major, else undefined. */
export function installedNode24() {
  if (!existsSync(node24Path)) return undefined;
  const result = spawnSync(node24Path, ['--version'], { encoding: 'utf8' });
  const version = result.status === 0 ? result.stdout.trim() : '';
  return version.startsWith(`v${NODE24_MAJOR}.`) ? version : undefined;
}

/**
 * Installs Node 24 with npm unless it is there already; returns its version. Throws with what to do when
 * npm cannot install it.
 */
export function ensureNode24() {
  const ready = installedNode24();
  if (ready) return ready;
  console.log(`setup: installing Node.js ${NODE24_MAJOR} for the second test run (npm install node@${NODE24_MAJOR} into ${dir})`);
  // The package's preinstall fetches the binary package for this platform; npm runs it for a direct install.
  const result = spawnSync('npm', ['install', '--prefix', dir, '--no-save', '--no-package-lock', '--no-audit', '--no-fund', `node@${NODE24_MAJOR}`], {
    stdio: 'inherit',
  });
  const version = installedNode24();
  if (result.status !== 0 || !version) {
    throw new Error(
      `setup: could not install Node.js ${NODE24_MAJOR} from the npm registry (npm install node@${NODE24_MAJOR} ${result.error ? `failed: ${result.error.message}` : `exited ${result.status}`}); check the network or npm's registry setting, then run npm test again`,
    );
  }
  return version;
}
