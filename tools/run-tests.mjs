#!/usr/bin/env node
// Runs the test suite with node's runner and tsx. Node 20's --test takes no
// globs, so the test files are found here.
//   node tools/run-tests.mjs                      every test
//   node tools/run-tests.mjs packages/uploader    tests under a directory (or single files)
//   node tools/run-tests.mjs --test-name-pattern=retry packages/uploader   (--options go to node)
//   node tools/run-tests.mjs --node24 [PATH...]    the same tests on this Node, then on Node 24 (npm test does this)
//   node tools/run-tests.mjs --only-node24 [PATH...]   on Node 24 alone (installed by tools/setup.mjs)
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

import { NODE24 } from './other-nodes.mjs';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const SKIP_DIRS = new Set(['node_modules', 'dist', '.git', '.tmp', 'coverage']);
// A hung test must fail, not eat the whole CI budget.
const PER_TEST_TIMEOUT_MS = 5 * 60 * 1000;

const OWN_FLAGS = new Set(['--node24', '--only-node24']);
const args = process.argv.slice(2);
const nodeArgs = args.filter((a) => a.startsWith('--') && !OWN_FLAGS.has(a));
const filters = args.filter((a) => !a.startsWith('--'));

function walk(dir, out) {
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    if (entry.isDirectory()) {
      if (!SKIP_DIRS.has(entry.name)) walk(join(dir, entry.name), out);
    } else if (entry.isFile() && entry.name.endsWith('.test.ts')) {
      out.push(join(dir, entry.name));
    }
  }
  return out;
}

// The places tests live: packages/*/test, test/, docs/examples/.
function defaultRoots() {
  const roots = [];
  const packages = join(root, 'packages');
  if (existsSync(packages)) {
    for (const pkg of readdirSync(packages).sort()) {
      const dir = join(packages, pkg, 'test');
      if (existsSync(dir)) roots.push(dir);
    }
  }
  for (const dir of ['test', join('docs', 'examples')]) {
    if (existsSync(join(root, dir))) roots.push(join(root, dir));
  }
  return roots;
}

let files = [];
if (filters.length === 0) {
  for (const dir of defaultRoots()) walk(dir, files);
} else {
  for (const filter of filters) {
    const path = existsSync(resolve(filter)) ? resolve(filter) : resolve(root, filter);
    if (!existsSync(path)) {
      console.error(`run-tests: ${filter} does not exist (give test files or directories, relative to the repository root)`);
      process.exit(2);
    }
    const found = statSync(path).isDirectory() ? walk(path, []) : [path];
    if (found.length === 0) {
      console.error(`run-tests: no *.test.ts files under ${filter}`);
      process.exit(2);
    }
    files.push(...found);
  }
}
files = [...new Set(files)].sort().map((f) => relative(root, f));
if (files.length === 0) {
  console.error('run-tests: found no *.test.ts files under packages/*/test, test/ or docs/examples/');
  process.exit(1);
}

const nodes = [];
if (!args.includes('--only-node24')) nodes.push(process.execPath);
if (args.includes('--node24') || args.includes('--only-node24')) {
  if (!NODE24.installed()) {
    console.error(`run-tests: Node.js ${NODE24.major} is not installed at ${NODE24.path}; run "node tools/setup.mjs" (npm test does)`);
    process.exit(1);
  }
  nodes.push(NODE24.path);
}

const outcomes = nodes.map((node) => ({ version: versionOf(node), status: runSuite(node) }));
if (outcomes.length > 1) {
  console.log('\nrun-tests: one suite, two Node.js versions:');
  for (const { version, status } of outcomes) console.log(`  Node.js ${version}: ${status === 0 ? 'passed' : `FAILED (exit ${status})`}`);
}
process.exit(outcomes.every(({ status }) => status === 0) ? 0 : 1);

/** Runs the files with `node` (the tests' child processes, such as the CLI, run on that same Node). */
function runSuite(node) {
  if (nodes.length > 1) console.log(`\nrun-tests: Node.js ${versionOf(node)} (${node})`);
  // Tests must neither read nor fill the user's digest cache: give the run its own.
  const cacheDir = mkdtempSync(join(tmpdir(), 'rxpush-test-cache-'));
  const result = spawnSync(
    node,
    ['--import', 'tsx', '--test', '--test-reporter=spec', `--test-timeout=${PER_TEST_TIMEOUT_MS}`, ...nodeArgs, ...files],
    { cwd: root, stdio: 'inherit', env: { ...process.env, RXPUSH_CACHE_DIR: cacheDir } },
  );
  rmSync(cacheDir, { recursive: true, force: true });
  if (result.error) {
    console.error(`run-tests: could not start ${node}: ${result.error.message}`);
    return 1;
  }
  return result.status ?? 1;
}

function versionOf(node) {
  return node === process.execPath ? process.version : spawnSync(node, ['--version'], { encoding: 'utf8' }).stdout.trim();
}
