#!/usr/bin/env node
// Writes one npm tarball per package (after `npm run build`), the way they are published:
//   node tools/pack.mjs [DIR]        DIR defaults to dist/ at the repository root
// pnpm's pack, not npm's: it replaces `workspace:*` with the packages' real versions (lerna keeps them
// in step), so the tarballs install with plain `npm install`. Each package's `files` ships dist without
// its .tsbuildinfo, and src, which the source maps point at.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, rmSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const PNPM = 'pnpm@12.4.2';
const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const out = resolve(process.argv[2] ?? join(root, 'dist'));

for (const name of readdirSync(join(root, 'packages'))) {
  try {
    readdirSync(join(root, 'packages', name, 'dist'));
  } catch {
    fail(`pack: packages/${name}/dist is missing: run "npm run build" first`);
  }
}
for (const name of readdirSync(join(root, 'packages'))) dropStaleOutputs(join(root, 'packages', name));
mkdirSync(out, { recursive: true });
// Tarballs of an older version left in DIR would be installed alongside the new ones.
for (const old of readdirSync(out).filter((file) => file.endsWith('.tgz'))) rmSync(join(out, old));
const result = spawnSync('npx', ['-y', PNPM, '--recursive', '--filter', './packages/*', 'pack', '--pack-destination', out], { cwd: root, encoding: 'utf8' });
if (result.status !== 0) fail(`pack: pnpm pack failed (exit ${result.status}):\n${result.stderr || result.stdout}`);
for (const file of readdirSync(out).filter((f) => f.endsWith('.tgz')).sort()) console.log(join(out, file));

/**
 * tsc -b never deletes what it built from a source file that is gone (moved, renamed): such outputs would be
 * shipped, their maps pointing at sources the tarball lacks. Nothing imports them, so they go.
 */
function dropStaleOutputs(dir) {
  const dist = join(dir, 'dist');
  for (const entry of readdirSync(dist, { recursive: true, withFileTypes: true })) {
    const stem = /^(.*)\.(?:js|d\.ts)(?:\.map)?$/.exec(entry.name)?.[1];
    if (!entry.isFile() || stem === undefined) continue;
    const source = join(dir, 'src', relative(dist, entry.parentPath), `${stem}.ts`);
    if (!existsSync(source)) rmSync(join(entry.parentPath, entry.name));
  }
}

function fail(message) {
  console.error(message);
  process.exit(1);
}
