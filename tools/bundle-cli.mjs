#!/usr/bin/env node
// Bundles the built CLI (packages/cli/dist) into one file, packages/cli/dist/rxpush.mjs.
// Loading ~500 small modules (rxjs's CommonJS build alone is 223 files, undici 110) cost ~0.4 CPU-s
// and ~30 MB on every run; one file parses lazily and loads in a fraction of that. The bin uses the
// bundle only while it is newer than every package's last build, so a stale bundle is never run.
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

import { build } from 'esbuild';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const cli = join(root, 'packages', 'cli');

await build({
  entryPoints: [join(cli, 'dist', 'main.js')],
  outfile: join(cli, 'dist', 'rxpush.mjs'),
  bundle: true,
  platform: 'node',
  format: 'esm',
  target: 'node20',
  // Some dependencies are CommonJS and call require(); ESM output needs one made for it.
  banner: { js: "import { createRequire as __rxpushRequire } from 'node:module'; const require = __rxpushRequire(import.meta.url);" },
  legalComments: 'none',
  logLevel: 'warning',
});
