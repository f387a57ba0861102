#!/usr/bin/env node
// Bundles the built CLI (packages/cli/dist) into packages/cli/bundle/: rxpush.mjs and the chunks
// it imports on demand. Loading ~500 small modules (rxjs's CommonJS build alone is 223 files, undici 110)
// cost ~0.4 CPU-s and ~30 MB on every run; a few files parse lazily and load in a fraction of that.
// Code splitting keeps what main.ts imports dynamically (the push: rxjs, undici, pino, the pipeline) out
// of the entry file, so `rxpush --help` loads yargs and little else. The bin uses the bundle only while it
// is newer than every package's last build, so a stale bundle is never run.
import { rmSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

import { build } from 'esbuild';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const cli = join(root, 'packages', 'cli');
const shims = join(root, 'tools', 'bundle');
// Beside dist, not in it: the chunks read ../package.json (the version) as dist/*.js do.
const outdir = join(cli, 'bundle');

/**
 * Start-up savings no source change can make, as the modules are others':
 * - `undici` is its lean part (tools/bundle/undici-lean.cjs): no fetch, cookies or WebSocket;
 * - `string-width` is one copy, not two (yargs and cliui depend on different majors of the same API),
 *   and it and `cliui` load on first use, i.e. only when help or a usage error is shown.
 */
const startUpPlugin = {
  name: 'rxpush-start-up',
  setup(pluginBuild) {
    const real = async (path, resolveDir, kind) => {
      const result = await pluginBuild.resolve(path, { resolveDir, kind, pluginData: { real: true } });
      if (result.errors.length > 0) throw new Error(`cannot resolve ${path} from ${resolveDir}`);
      return { path: result.path };
    };
    const fromPackage = async (name, dir) => dirname((await real(name, dir, 'import-statement')).path);
    let yargsDir;
    pluginBuild.onStart(async () => {
      yargsDir = await fromPackage('yargs', cli);
    });
    const registryClient = join(root, 'packages', 'registry-client');
    pluginBuild.onResolve({ filter: /^undici$/ }, () => ({ path: join(shims, 'undici-lean.cjs') }));
    pluginBuild.onResolve({ filter: /^undici\/lib\// }, (args) => (args.pluginData?.real ? undefined : real(args.path, registryClient, args.kind)));
    pluginBuild.onResolve({ filter: /^string-width$/ }, (args) => (args.pluginData?.real ? undefined : { path: join(shims, 'lazy-string-width.cjs') }));
    pluginBuild.onResolve({ filter: /^cliui$/ }, (args) => (args.pluginData?.real ? undefined : { path: join(shims, 'lazy-cliui.cjs') }));
    pluginBuild.onResolve({ filter: /^rxpush-bundle:/ }, (args) => real(args.path.slice('rxpush-bundle:'.length), yargsDir, args.kind));
  },
};

rmSync(outdir, { recursive: true, force: true });
// The single-file bundle of earlier builds.
rmSync(join(cli, 'dist', 'rxpush.mjs'), { force: true });

await build({
  entryPoints: { rxpush: join(cli, 'dist', 'main.js') },
  outdir,
  entryNames: '[name]',
  chunkNames: 'chunk-[hash]',
  outExtension: { '.js': '.mjs' },
  bundle: true,
  splitting: true,
  platform: 'node',
  format: 'esm',
  target: 'node20',
  // Some dependencies are CommonJS and call require(); ESM output needs one made for it.
  banner: { js: "import { createRequire as __rxpushRequire } from 'node:module'; const require = __rxpushRequire(import.meta.url);" },
  plugins: [startUpPlugin],
  legalComments: 'none',
  logLevel: 'warning',
});
