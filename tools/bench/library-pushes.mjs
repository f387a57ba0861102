#!/usr/bin/env node
// Case (h) of the benchmark: COUNT pushes of one OCI layout, all at once in this one process, through the
// library's push() (as a service pushing for many users would), each to its own repository
// REPOSITORY-N:TAG of one registry. Plain node, no tsx: what is measured is rxpush's own memory.
//
// node tools/bench/library-pushes.mjs LAYOUT HOST REPOSITORY TAG COUNT CACHE_DIR
import { lastValueFrom, merge } from 'rxjs';

import { push } from '../../packages/pipeline/dist/index.js';

const [layout, host, repository, tag, count, cacheDir] = process.argv.slice(2);
if (cacheDir === undefined) {
  console.error('usage: node tools/bench/library-pushes.mjs LAYOUT HOST REPOSITORY TAG COUNT CACHE_DIR');
  process.exit(2);
}
const pushes = Array.from({ length: Number(count) }, (_, i) =>
  push({ source: `oci:${layout}:${tag}`, destination: `${host}/${repository}-${i}:${tag}`, plainHttp: true, cacheDir }),
);
await lastValueFrom(merge(...pushes), { defaultValue: undefined });
