/**
 * Runs rxpush as `nobody` (uid 65534), for tests of what a user without rights sees. The code runs from
 * a world-readable copy in a fresh temp dir, never from the checkout: the checkout may sit in a directory
 * other users cannot enter (a `mktemp -d` clone, /root/x: 0700), and so may the Node binary (the suite's
 * Node 24 lives in node_modules/.cache). Must be called as root.
 */
import { spawn, spawnSync } from 'node:child_process';
import { chmod, copyFile, link, mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

import { build } from 'esbuild';

const NOBODY = 65534;
const CLI_MAIN = join(dirname(fileURLToPath(import.meta.url)), '..', 'packages', 'cli', 'dist', 'main.js');

/** How a run ended: exit status and what it printed. */
export interface NobodyResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** A world-readable directory with a Node binary nobody may run, and a `home` nobody may write; `remove()` deletes it. */
interface NobodyPlace {
  readonly dir: string;
  readonly node: string;
  readonly home: string;
  remove(): Promise<void>;
}

async function place(): Promise<NobodyPlace> {
  const dir = await mkdtemp(join(tmpdir(), 'rxpush-nobody-'));
  await chmod(dir, 0o755);
  const home = join(dir, 'home');
  await mkdir(home);
  await chmod(home, 0o777);
  let node = process.execPath;
  if (spawnSync(node, ['-e', ''], { uid: NOBODY, gid: NOBODY }).status !== 0) {
    // A hard link costs nothing on the same file system; elsewhere, a copy.
    node = join(dir, 'node');
    await link(process.execPath, node).catch(() => copyFile(process.execPath, node));
    await chmod(node, 0o755);
  }
  return { dir, node, home, remove: () => rm(dir, { recursive: true, force: true }) };
}

/**
 * Bundles ESM `source` (imports resolved from `resolveDir`) into one file, `dist/run.mjs` of the copy, and
 * runs it as nobody with `args`, HOME and RXPUSH_CACHE_DIR in a directory of its own, cwd the temp dir.
 */
export async function runModuleAsNobody(
  source: string,
  resolveDir: string,
  options: { args?: string[]; env?: Record<string, string>; files?: Readonly<Record<string, string>> } = {},
): Promise<NobodyResult> {
  const where = await place();
  try {
    // In dist/, beside any `files` (name in the copy → file to copy), as the code would find them installed.
    const entry = join(where.dir, 'dist', 'run.mjs');
    for (const [name, from] of Object.entries(options.files ?? {})) {
      await copyFile(from, join(where.dir, name));
      await chmod(join(where.dir, name), 0o644);
    }
    await build({
      stdin: { contents: source, resolveDir, loader: 'js' },
      outfile: entry,
      bundle: true,
      platform: 'node',
      format: 'esm',
      target: 'node20',
      // CommonJS dependencies call require(); ESM output needs one made for it.
      banner: { js: "import { createRequire as __nobodyRequire } from 'node:module'; const require = __nobodyRequire(import.meta.url);" },
      logLevel: 'warning',
    });
    await chmod(join(where.dir, 'dist'), 0o755);
    await chmod(entry, 0o644);
    const env = { HOME: where.home, RXPUSH_CACHE_DIR: join(where.home, 'cache'), ...options.env };
    return await run(where.node, [entry, ...(options.args ?? [])], env);
  } finally {
    await where.remove();
  }
}

/** Runs the CLI (`rxpush ARGS…`, as its bin does) as nobody, from a copy of it. */
export function runCliAsNobody(args: string[], env: Record<string, string> = {}): Promise<NobodyResult> {
  const source = `import { main } from ${JSON.stringify(CLI_MAIN)};\nprocess.exitCode = await main(process.argv.slice(2));\n`;
  // The CLI reads its version from ../package.json.
  const files = { 'package.json': join(dirname(CLI_MAIN), '..', 'package.json') };
  return runModuleAsNobody(source, tmpdir(), { args, env: { NO_COLOR: '1', ...env }, files });
}

function run(node: string, args: string[], env: Record<string, string>): Promise<NobodyResult> {
  return new Promise((ok, fail) => {
    const child = spawn(node, args, {
      uid: NOBODY,
      gid: NOBODY,
      cwd: tmpdir(),
      env: { PATH: process.env.PATH ?? '', ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    child.on('error', fail);
    child.on('close', (code, signal) => ok({ code: code ?? (signal ? 128 : 1), stdout, stderr }));
  });
}
