/**
 * The packages as people install them: `tools/pack.mjs` (`npm run pack`) writes the tarballs, plain
 * `npm install` puts them into an empty project outside the repository (third-party dependencies come from
 * the npm registry), and there the pipeline README's example and `npx rxpush` push to the reference registry.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, relative, resolve } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

import { makeOciLayout, type OciLayoutFixture } from '../tools/fixtures.ts';
import { startRegistry, type RunningRegistry } from '../tools/registry.ts';

const run = promisify(execFile);
const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const PACKAGES = ['blob-checker', 'cli', 'core', 'graph-reader', 'layer-walker', 'manifest-signer', 'pipeline', 'registry-client', 'uploader'];

/** The environment without what `npm test`/`pnpm` put there for the repository's own npm. */
function cleanEnv(extra: Record<string, string>): NodeJS.ProcessEnv {
  const env = Object.fromEntries(Object.entries(process.env).filter(([key]) => !/^npm_|^pnpm_/i.test(key)));
  return { ...env, NO_COLOR: '1', ...extra };
}

async function filesUnder(dir: string): Promise<string[]> {
  const entries = await readdir(dir, { recursive: true, withFileTypes: true });
  return entries.filter((entry) => entry.isFile()).map((entry) => join(entry.parentPath, entry.name));
}

describe('the packed packages, installed with npm into an empty project', () => {
  let registry: RunningRegistry;
  let work: string;
  let project: string;
  let layout: OciLayoutFixture;
  let env: NodeJS.ProcessEnv;
  const installed = (name: string): string => join(project, 'node_modules', '@rxpush', name);

  before(async () => {
    work = await mkdtemp(join(tmpdir(), 'rxpush-packages-'));
    assert.ok(relative(root, work).startsWith('..'), 'the project is outside the repository');
    project = join(work, 'project');
    env = cleanEnv({ RXPUSH_CACHE_DIR: join(work, 'cache'), HOME: work, npm_config_cache: join(process.env['HOME'] ?? work, '.npm') });
    const { stdout } = await run(process.execPath, [join(root, 'tools', 'pack.mjs'), join(work, 'tarballs')], { cwd: root });
    const tarballs = stdout.trim().split('\n');
    assert.equal(tarballs.length, PACKAGES.length, stdout);
    await run('mkdir', ['-p', project]);
    await writeFile(join(project, 'package.json'), `${JSON.stringify({ name: 'rxpush-install-check', private: true, type: 'module' }, null, 2)}\n`);
    await run('npm', ['install', '--no-audit', '--no-fund', '--prefer-offline', '--loglevel=error', ...tarballs], { cwd: project, env, timeout: 600_000 });
    registry = await startRegistry();
    layout = await makeOciLayout(join(project, 'image'), {
      images: [{ tags: ['latest'], layers: [{ files: 2, fileSize: 20_000, seed: 'packed' }] }],
    });
  });
  after(async () => {
    await registry?.stop();
    if (work !== undefined) await rm(work, { recursive: true, force: true });
  });

  it('installs every package with real versions, no .tsbuildinfo, and source maps whose sources are there', async () => {
    const { version } = JSON.parse(await readFile(join(root, 'lerna.json'), 'utf8')) as { version: string };
    for (const name of PACKAGES) {
      const manifest = await readFile(join(installed(name), 'package.json'), 'utf8');
      assert.doesNotMatch(manifest, /workspace:/, `@rxpush/${name}'s package.json`);
      const { dependencies = {} } = JSON.parse(manifest) as { dependencies?: Record<string, string> };
      for (const [dependency, range] of Object.entries(dependencies)) if (dependency.startsWith('@rxpush/')) assert.equal(range, version, `${name} → ${dependency}`);
      const files = await filesUnder(installed(name));
      assert.deepEqual(files.filter((file) => file.endsWith('.tsbuildinfo')), [], name);
      const maps = files.filter((file) => file.endsWith('.map'));
      assert.ok(maps.length > 0, `${name} has source maps`);
      for (const map of maps) {
        const { sources } = JSON.parse(await readFile(map, 'utf8')) as { sources: string[] };
        for (const source of sources) assert.ok(existsSync(resolve(dirname(map), source)), `${relative(project, map)} points at ${source}, which is missing`);
      }
    }
  });

  it("runs the pipeline README's example there against a real registry", async () => {
    const readme = await readFile(join(root, 'packages', 'pipeline', 'README.md'), 'utf8');
    const example = /```ts\n([\s\S]*?)```/.exec(readme)?.[1];
    assert.ok(example, 'the README opens with a ts example');
    // The example pushes oci:./image:latest (made above, in the project) to localhost:5000; only the registry differs.
    await writeFile(join(project, 'example.mjs'), example.replaceAll('localhost:5000', registry.host));
    const { stdout } = await run(process.execPath, ['example.mjs'], { cwd: project, env });
    const digest = layout.images[0]!.manifestDigest;
    assert.deepEqual(stdout.trim().split('\n').sort(), [`1.0: ${digest}`, `latest: ${digest}`]);
  });

  it('runs npx rxpush: --help, and a push', async () => {
    const help = await run('npx', ['--no-install', 'rxpush', '--help'], { cwd: project, env });
    assert.match(help.stdout, /^Usage: rxpush <command> \[options\]/);
    const pushed = await run('npx', ['--no-install', 'rxpush', 'push', 'oci:./image:latest', `${registry.host}/packed/cli:1.0`, '-q'], { cwd: project, env });
    assert.equal(pushed.stdout, `${registry.host}/packed/cli:1.0\n`);
  });
});

describe('versions', () => {
  it('are lerna\'s, fixed: every package has the version lerna.json names', async () => {
    const lerna = JSON.parse(await readFile(join(root, 'lerna.json'), 'utf8')) as { version: string };
    assert.match(lerna.version, /^\d+\.\d+\.\d+/, 'a version number, not "independent"');
    for (const name of PACKAGES) {
      const { version } = JSON.parse(await readFile(join(root, 'packages', name, 'package.json'), 'utf8')) as { version: string };
      assert.equal(version, lerna.version, name);
    }
    assert.ok(existsSync(join(root, 'CHANGELOG.md')), 'a CHANGELOG.md at the root');
  });
});
