#!/usr/bin/env node
// Makes a clone ready to build and test: pnpm dependencies, then (unless
// --deps-only) the Debian packages the end-to-end tests run for real and the
// Node.js 24 that the suite runs on a second time and the Node.js 22 one test pushes with
// (tools/other-nodes.mjs), then
// gzip's libdeflate binding (packages/uploader/native/build.mjs).
// Plain Node ESM with no dependencies: it runs before anything is installed.
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

import { NODE22, NODE24 } from './other-nodes.mjs';

const PNPM = 'pnpm@12.4.2';
const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const stampFile = join(root, 'node_modules', '.rxpush-setup-stamp');

// Binary → the Debian package that ships it.
const SYSTEM_PACKAGES = [
  ['/usr/bin/docker-registry', 'docker-registry'],
  ['/usr/bin/skopeo', 'skopeo'],
  ['/usr/sbin/dockerd', 'docker.io'],
  ['/usr/bin/docker', 'docker.io'],
  ['/usr/bin/containerd', 'containerd'],
  ['/usr/bin/openssl', 'openssl'],
  // gzipLayer's libdeflate binding (packages/uploader/native): a C compiler, the C library's and libdeflate's headers.
  ['/usr/bin/cc', 'gcc'],
  ['/usr/include/stdlib.h', 'libc6-dev'],
  ['/usr/include/libdeflate.h', 'libdeflate-dev'],
];

const args = process.argv.slice(2);
const unknown = args.filter((a) => a !== '--deps-only');
if (unknown.length) fail(`setup: unknown argument ${unknown.join(' ')} (only --deps-only is accepted)`, 2);

installNodeDependencies();
if (!args.includes('--deps-only')) {
  installSystemPackages();
  try {
    NODE24.ensure();
    NODE22.ensure();
  } catch (error) {
    fail(error.message);
  }
}
// With --deps-only (a build) the binding is built if it can be, else gzip uses zlib; a full setup (tests,
// bench, CI) installed what it needs, so there it must build.
run(process.execPath, [join('packages', 'uploader', 'native', 'build.mjs'), ...(args.includes('--deps-only') ? [] : ['--required'])]);

function installNodeDependencies() {
  const wanted = dependencyFingerprint();
  if (nodeModulesComplete() && readStamp() === wanted) return;
  console.log(`setup: installing dependencies (npx -y ${PNPM} install --frozen-lockfile)`);
  run('npx', ['-y', PNPM, 'install', '--frozen-lockfile', '--config.confirmModulesPurge=false']);
  writeFileSync(stampFile, `${wanted}\n`);
}

// Everything pnpm reads to decide what node_modules holds: if none changed and the
// stamp written after the last successful install matches, installing again is a no-op.
function dependencyFingerprint() {
  const hash = createHash('sha256').update(PNPM);
  const files = ['pnpm-lock.yaml', 'pnpm-workspace.yaml', 'package.json', ...workspacePackageJsons()];
  for (const file of files) {
    const path = join(root, file);
    hash.update(`\0${file}\0`);
    if (existsSync(path)) hash.update(readFileSync(path));
  }
  return hash.digest('hex');
}

function workspacePackageJsons() {
  const dir = join(root, 'packages');
  if (!existsSync(dir)) return [];
  return readdirSync(dir, { withFileTypes: true })
    .filter((d) => d.isDirectory() && existsSync(join(dir, d.name, 'package.json')))
    .map((d) => join('packages', d.name, 'package.json'))
    .sort();
}

// A stamp can outlive a half-deleted tree; check that each workspace package with
// dependencies still has its node_modules.
function nodeModulesComplete() {
  if (!existsSync(join(root, 'node_modules', '.modules.yaml'))) return false;
  return workspacePackageJsons().every((file) => {
    const pkg = JSON.parse(readFileSync(join(root, file), 'utf8'));
    const hasDeps = Object.keys({ ...pkg.dependencies, ...pkg.devDependencies, ...pkg.peerDependencies }).length > 0;
    return !hasDeps || existsSync(join(root, dirname(file), 'node_modules'));
  });
}

function readStamp() {
  try {
    return readFileSync(stampFile, 'utf8').trim();
  } catch {
    return undefined;
  }
}

function installSystemPackages() {
  const missing = [...new Set(SYSTEM_PACKAGES.filter(([bin]) => !existsSync(bin)).map(([, pkg]) => pkg))];
  if (missing.length === 0) return;
  const install = `apt-get install -y --no-install-recommends ${missing.join(' ')}`;
  if (process.getuid?.() !== 0) {
    fail(
      `setup: missing Debian package(s) ${missing.join(', ')}; install them with: sudo apt-get update && sudo DEBIAN_FRONTEND=noninteractive ${install}`,
    );
  }
  console.log(`setup: installing Debian package(s) ${missing.join(', ')}`);
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  run('apt-get', ['update'], env);
  run('apt-get', ['install', '-y', '--no-install-recommends', ...missing], env);
  const still = SYSTEM_PACKAGES.filter(([bin]) => !existsSync(bin)).map(([bin]) => bin);
  if (still.length) fail(`setup: ${still.join(', ')} still missing after apt-get install ${missing.join(' ')}`);
}

function run(cmd, cmdArgs, env = process.env) {
  const result = spawnSync(cmd, cmdArgs, { cwd: root, stdio: 'inherit', env });
  if (result.error) fail(`setup: could not run ${cmd}: ${result.error.message}`);
  if (result.status !== 0) {
    fail(`setup: "${cmd} ${cmdArgs.join(' ')}" failed with ${result.signal ?? `exit code ${result.status}`}`);
  }
}

function fail(message, code = 1) {
  console.error(message);
  process.exit(code);
}
