#!/usr/bin/env node
// Builds build/rxpush-deflate.node, gzipLayer's libdeflate binding, from deflate.c: a C compiler (cc), Node's
// headers (beside the node binary, as Node's own packages install them) and libdeflate's (Debian: libdeflate-dev).
// Without them gzipLayer compresses with zlib (slower: docs/benchmarks.md); so this is not fatal unless --required.
// Plain Node with no dependencies: tools/setup.mjs runs it before anything is built.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, renameSync, rmSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const source = join(here, 'deflate.c');
const output = join(here, 'build', 'rxpush-deflate.node');
const required = process.argv.includes('--required');

const nodeHeaders = [join(dirname(process.execPath), '..', 'include', 'node'), '/usr/include/node', '/usr/local/include/node'].find(
  (dir) => existsSync(join(dir, 'node_api.h')),
);

if (upToDate()) process.exit(0);
if (nodeHeaders === undefined) skip(`Node's headers (node_api.h) are not beside ${process.execPath}`);
const temporary = `${output}.${process.pid}.tmp`;
mkdirSync(dirname(output), { recursive: true });
const cc = process.env.CC ?? 'cc';
const compiled = spawnSync(cc, ['-O2', '-shared', '-fPIC', '-fvisibility=hidden', `-I${nodeHeaders}`, source, '-o', temporary, '-ldeflate'], {
  encoding: 'utf8',
});
if (compiled.error || compiled.status !== 0) {
  rmSync(temporary, { force: true });
  const why = compiled.error ? `${cc} could not run (${compiled.error.code})` : compiled.stderr.trim().split('\n').find((line) => /error/.test(line)) ?? `${cc} failed`;
  skip(`${why}; install a C compiler and libdeflate's headers (Debian: apt-get install gcc libc6-dev libdeflate-dev)`);
}
renameSync(temporary, output);
console.log(`native: built ${output}`);

function upToDate() {
  if (!existsSync(output)) return false;
  const built = statSync(output).mtimeMs;
  return [source, fileURLToPath(import.meta.url)].every((file) => statSync(file).mtimeMs <= built);
}

function skip(why) {
  const message = `native: libdeflate binding not built: ${why}. gzip falls back to zlib (slower).`;
  if (required) {
    console.error(message);
    process.exit(1);
  }
  console.warn(message);
  process.exit(0);
}
