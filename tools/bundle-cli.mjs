#!/usr/bin/env node
// Bundles the built CLI (packages/cli/dist) into packages/cli/bundle/: rxpush.cjs, the chunks it requires on
// demand, and load.cjs, which the bin runs them with. Loading ~500 small modules (rxjs's CommonJS build alone
// is 223 files, undici 110) cost ~0.4 CPU-s and ~30 MB on every run; a few files parse lazily and load in a
// fraction of that. Code splitting keeps what main.ts imports dynamically (the push: rxjs, undici, pino, the
// pipeline) out of the entry file, so `rxpush --help` loads yargs and little else. The chunks are CommonJS so
// that load.cjs can compile them with a V8 code cache (tools/bundle/load-bundle.cjs). The bin uses the bundle
// only while it is newer than every package's last build, so a stale bundle is never run.
import { copyFileSync, existsSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join, sep } from 'node:path';
import { fileURLToPath } from 'node:url';

import { build, transform } from 'esbuild';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const cli = join(root, 'packages', 'cli');
const shims = join(root, 'tools', 'bundle');
// Beside dist, not in it: the chunks read ../package.json (the version) as dist/*.js do.
const outdir = join(cli, 'bundle');

/**
 * Start-up savings no source change can make, as the modules are others':
 * - `undici` is its lean part (tools/bundle/undici-lean.cjs): no fetch, cookies or WebSocket;
 * - `string-width` is one copy, not two (yargs and cliui depend on different majors of the same API),
 *   and it and `cliui` load on first use, i.e. only when help or a usage error is shown;
 * - undici's HTTP/2 client (and with it node:http2) loads only if a connection negotiates h2, which rxpush never asks for;
 * - undici's HTTP/1.1 client compiles its WebAssembly parser with V8's baseline compiler only, with V8's flags
 *   changed for that compile alone (tools/bundle/liftoff-client-h1.cjs says why);
 * - undici reads two values of node:http as it loads, which tools/bundle/undici-http.cjs gives without loading it;
 * - `pino` is evaluated on the first line logged (tools/bundle/lazy-pino.cjs), which a push at the default
 *   level never writes;
 * - yargs's two assertions come from tools/bundle/yargs-assert.cjs, not node:assert (~1.7 ms of `--help`).
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
    let undiciDispatcherDir;
    pluginBuild.onStart(async () => {
      yargsDir = await fromPackage('yargs', cli);
      undiciDispatcherDir = dirname((await real('undici/lib/dispatcher/client.js', join(root, 'packages', 'registry-client'), 'require-call')).path);
    });
    const registryClient = join(root, 'packages', 'registry-client');
    pluginBuild.onResolve({ filter: /^undici$/ }, () => ({ path: join(shims, 'undici-lean.cjs') }));
    pluginBuild.onResolve({ filter: /^undici\/lib\// }, (args) => (args.pluginData?.real ? undefined : real(args.path, registryClient, args.kind)));
    pluginBuild.onResolve({ filter: /^string-width$/ }, (args) => (args.pluginData?.real ? undefined : { path: join(shims, 'lazy-string-width.cjs') }));
    pluginBuild.onResolve({ filter: /^cliui$/ }, (args) => (args.pluginData?.real ? undefined : { path: join(shims, 'lazy-cliui.cjs') }));
    pluginBuild.onResolve({ filter: /^assert$/ }, (args) => (args.importer.startsWith(join(yargsDir, sep)) ? { path: join(shims, 'yargs-assert.cjs') } : undefined));
    // rxjs's exports map gives Node its CommonJS build, whose index requires all 223 modules; its ES2015 build
    // (the same code, "sideEffects": false) lets esbuild keep only the operators rxpush uses.
    pluginBuild.onResolve({ filter: /^rxjs$/ }, async (args) => {
      if (args.pluginData?.real) return undefined;
      const { path } = await real('rxjs', args.resolveDir, args.kind);
      const esm = path.replace(/[/\\]dist[/\\]cjs[/\\]index\.js$/, '/dist/esm/index.js');
      if (esm === path) throw new Error(`rxjs resolved to ${path}, not its dist/cjs/index.js: check tools/bundle-cli.mjs`);
      return { path: esm };
    });
    pluginBuild.onResolve({ filter: /^\.\/client-h2\.js$/ }, (args) =>
      !args.pluginData?.real && args.resolveDir === undiciDispatcherDir ? { path: join(shims, 'lazy-client-h2.cjs') } : undefined,
    );
    pluginBuild.onResolve({ filter: /^\.\/client-h1\.js$/ }, (args) =>
      !args.pluginData?.real && args.resolveDir === undiciDispatcherDir ? { path: join(shims, 'liftoff-client-h1.cjs') } : undefined,
    );
    pluginBuild.onResolve({ filter: /^node:http$/ }, (args) =>
      args.importer.startsWith(join(dirname(undiciDispatcherDir), sep)) ? { path: join(shims, 'undici-http.cjs') } : undefined,
    );
    pluginBuild.onResolve({ filter: /^rxpush-undici:/ }, (args) => real(args.path.slice('rxpush-undici:'.length), undiciDispatcherDir, args.kind));
    const lazyPino = join(shims, 'lazy-pino.cjs');
    pluginBuild.onResolve({ filter: /^pino$/ }, (args) => {
      if (args.pluginData?.real) return undefined;
      return args.importer === lazyPino ? real('pino', cli, args.kind) : { path: lazyPino };
    });
    pluginBuild.onResolve({ filter: /^rxpush-bundle:/ }, (args) => real(args.path.slice('rxpush-bundle:'.length), yargsDir, args.kind));
  },
};

rmSync(outdir, { recursive: true, force: true });
// The single-file bundle of earlier builds.
rmSync(join(cli, 'dist', 'rxpush.mjs'), { force: true });

// esbuild splits only ES modules; its chunks are then made CommonJS (below), named .cjs from the start so
// that they import each other by their final names.
const split = await build({
  entryPoints: { rxpush: join(cli, 'dist', 'main.js') },
  outdir,
  entryNames: '[name]',
  chunkNames: 'chunk-[hash]',
  outExtension: { '.js': '.cjs' },
  bundle: true,
  splitting: true,
  platform: 'node',
  format: 'esm',
  target: 'node20',
  plugins: [startUpPlugin],
  legalComments: 'none',
  logLevel: 'warning',
  write: false,
});

/**
 * Each chunk as a CommonJS module, for tools/bundle/load-bundle.cjs to compile with a V8 code cache (Node 20
 * caches no ES module's code). Imports become require() calls, dynamic ones too, so a chunk still loads only
 * when the code that needs it runs; `import.meta` is the chunk's own URL, as in the ES module it was.
 */
const IMPORT_META = `const __rxpushImportMeta = { url: require('node:url').pathToFileURL(__filename).href, resolve: (specifier) => require('node:url').pathToFileURL(require.resolve(specifier)).href };`;
mkdirSync(outdir, { recursive: true });
for (const file of split.outputFiles) {
  // esbuild heads each module with a `// path` comment (test/tools.test.ts reads them); a transform keeps only
  // legal comments, so they are made legal comments for it.
  const { code } = await transform(file.text.replace(/^\/\/ (\S+)$/gm, '//! $1'), {
    format: 'cjs',
    platform: 'node',
    target: 'node20',
    supported: { 'dynamic-import': false },
    define: { 'import.meta': '__rxpushImportMeta' },
    banner: file.text.includes('import.meta') ? IMPORT_META : '',
    legalComments: 'inline',
    logLevel: 'warning',
  });
  writeFileSync(file.path, code);
}
copyFileSync(join(shims, 'load-bundle.cjs'), join(outdir, 'load.cjs'));
// gzip's libdeflate binding, where it was built (packages/uploader/native/build.mjs): the bundle's chunks look
// for it beside them (packages/uploader/src/compress/libdeflate.ts); without it they gzip with zlib.
const binding = join(root, 'packages', 'uploader', 'native', 'build', 'rxpush-deflate.node');
if (existsSync(binding)) copyFileSync(binding, join(outdir, 'rxpush-deflate.node'));
