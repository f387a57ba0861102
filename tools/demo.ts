/**
 * `npm run demo`: builds a small sample image, starts a local registry, pushes the
 * image with the rxpush CLI (live progress), and reads it back with skopeo.
 */
import { spawn, execFile, type ChildProcess } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { makeOciLayout } from './fixtures.ts';
import { startRegistry, type RunningRegistry } from './registry.ts';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const CLI = join(root, 'packages', 'cli', 'bin', 'rxpush.js');
const tty = Boolean(process.stdout.isTTY);

let registry: RunningRegistry | undefined;
let workDir: string | undefined;
let cli: ChildProcess | undefined;
let interrupted = false;

function step(n: number, title: string): void {
  const text = `[${n}/4] ${title}`;
  console.log(tty ? `\n\x1b[1m${text}\x1b[0m` : `\n${text}`);
}

async function cleanup(): Promise<void> {
  if (cli && cli.exitCode === null) cli.kill('SIGTERM');
  await registry?.stop();
  if (workDir) await rm(workDir, { recursive: true, force: true });
}

function runCli(args: string[]): Promise<number> {
  console.log(`$ rxpush ${args.join(' ')}`);
  return new Promise((ok, fail) => {
    cli = spawn(process.execPath, [CLI, ...args], { stdio: 'inherit', cwd: root });
    cli.on('error', fail);
    cli.on('exit', (code, signal) => ok(code ?? (signal ? 130 : 1)));
  });
}

function skopeoInspect(ref: string): Promise<string> {
  return new Promise((ok, fail) => {
    execFile('skopeo', ['inspect', '--tls-verify=false', `docker://${ref}`], (err, stdout, stderr) => {
      if (err) fail(new Error(`skopeo inspect docker://${ref} failed: ${stderr.trim() || err.message}`));
      else ok(stdout);
    });
  });
}

async function main(): Promise<number> {
  workDir = await mkdtemp(join(tmpdir(), 'rxpush-demo-'));
  const layout = join(workDir, 'image');

  step(1, 'Generating a sample image (3 layers, about 6 MB) as an OCI layout');
  const { images } = await makeOciLayout(layout, {
    images: [
      {
        tags: ['latest'],
        layers: [
          { files: 4, fileSize: 512 * 1024, seed: 'demo-base' },
          { files: 3, fileSize: 1024 * 1024, seed: 'demo-runtime' },
          { files: 2, fileSize: 512 * 1024, seed: 'demo-app' },
        ],
      },
    ],
  });
  const image = images[0];
  if (!image) throw new Error('the fixture generator returned no image');
  const total = image.layerSizes.reduce((a, b) => a + b, 0) + image.configSize;
  console.log(`  ${layout}  (${image.layerDigests.length} layers, ${(total / 1e6).toFixed(1)} MB, manifest ${image.manifestDigest})`);

  step(2, 'Starting a local registry (docker-registry, plain HTTP on loopback)');
  registry = await startRegistry();
  console.log(`  ${registry.url}`);

  const dest = `${registry.host}/demo/hello:latest`;
  const digestFile = join(workDir, 'digest');
  step(3, `Pushing oci:${layout}:latest to ${dest} with rxpush`);
  const code = await runCli([
    'push',
    `oci:${layout}:latest`,
    dest,
    '--plain-http',
    '--progress',
    tty ? 'tty' : 'plain',
    '--digestfile',
    digestFile,
  ]);
  if (code !== 0) {
    if (interrupted) return 130;
    console.error(`\ndemo: rxpush exited with status ${code}; see its message above`);
    return 1;
  }
  const pushed = (await readFile(digestFile, 'utf8')).trim();
  console.log(`  pushed digest: ${pushed}`);

  step(4, `Reading ${dest} back with skopeo (an independent client)`);
  const inspected = await skopeoInspect(dest);
  console.log(inspected.trimEnd());
  const digest = (JSON.parse(inspected) as { Digest?: string }).Digest;
  if (digest !== pushed) {
    console.error(`\ndemo: the registry holds ${digest}, but rxpush reported ${pushed}`);
    return 1;
  }
  console.log(`\nOK: ${dest} is in the registry with digest ${digest}`);
  return 0;
}

process.once('SIGINT', () => {
  interrupted = true;
  console.error('\ndemo: interrupted, stopping the registry');
  cleanup().finally(() => process.exit(130));
});

main()
  .then(
    (code) => code,
    (err: unknown) => {
      console.error(`\ndemo: ${err instanceof Error ? err.message : String(err)}`);
      return 1;
    },
  )
  .then(async (code) => {
    await cleanup();
    process.exitCode = code;
  });
