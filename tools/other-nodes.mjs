// The Node.js versions tested beside the one running, from the npm registry's `node` package (which brings the
// platform's official binary as a package), each installed once into node_modules/.cache and reused: Node 24 LTS,
// which the whole suite runs on a second time, and Node 22 LTS, which test/node22.test.ts pushes with.
// Plain Node ESM with no dependencies: tools/setup.mjs uses it before anything is installed.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');

/**
 * One major version of Node.js, installed on demand: `node@MAJOR` follows its patch releases.
 *
 * @example const node22 = otherNode(22); node22.ensure(); spawnSync(node22.path, ['--version'])
 */
export function otherNode(major) {
  const dir = join(root, 'node_modules', '.cache', `rxpush-node${major}`);
  const path = join(dir, 'node_modules', 'node', 'bin', 'node');

  /** The installed binary's version (e.g. `v24.21.0`) when it is there and of the right major, else undefined. */
  const installed = () => {
    if (!existsSync(path)) return undefined;
    const result = spawnSync(path, ['--version'], { encoding: 'utf8' });
    const version = result.status === 0 ? result.stdout.trim() : '';
    return version.startsWith(`v${major}.`) ? version : undefined;
  };

  /** Installs it with npm unless it is there already; returns its version. Throws with what to do when npm cannot. */
  const ensure = () => {
    const ready = installed();
    if (ready) return ready;
    console.log(`setup: installing Node.js ${major} for the tests (npm install node@${major} into ${dir})`);
    // The package's preinstall fetches the binary package for this platform; npm runs it for a direct install.
    const result = spawnSync('npm', ['install', '--prefix', dir, '--no-save', '--no-package-lock', '--no-audit', '--no-fund', `node@${major}`], {
      stdio: 'inherit',
    });
    const version = installed();
    if (result.status !== 0 || !version) {
      throw new Error(
        `setup: could not install Node.js ${major} from the npm registry (npm install node@${major} ${result.error ? `failed: ${result.error.message}` : `exited ${result.status}`}); check the network or npm's registry setting, then run npm test again`,
      );
    }
    return version;
  };

  return { major, path, installed, ensure };
}

/** The second Node.js the whole suite runs on. */
export const NODE24 = otherNode(24);
/** The LTS between the oldest supported (20.19) and 24: the CLI's bundle and native binding are checked on it. */
export const NODE22 = otherNode(22);
