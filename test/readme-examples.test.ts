/**
 * Every package README opens with an example of ten lines or fewer that runs as it is written. This test takes
 * each one out of its README, type-checks it with the repository's strict compiler options, and runs it in a
 * directory holding the `./image` (also `./layout`) it names, against a fresh reference registry standing in for
 * `localhost:5000`: the only change made to the text.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

import { makeOciLayout } from '../tools/fixtures.ts';
import { startRegistry } from '../tools/registry.ts';
import { CLI_BIN } from './helpers/run-cli.ts';

const run = promisify(execFile);
const root = join(dirname(fileURLToPath(import.meta.url)), '..');
// Inside the repository, so that `@rxpush/*` resolve as they do for a user of the workspace.
const checkDir = join(root, '.tmp', 'readme-examples');

/** What each README's example must print (stdout), besides exiting 0 with nothing on stderr. */
const EXPECTED: Record<string, RegExp> = {
  'blob-checker': /^missing sha256:[0-9a-f]{64}$/m,
  cli: /^1\.0: digest: sha256:[0-9a-f]{64} size: \d+$/m,
  core: /^1\.0 sha256:2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824$/m,
  'graph-reader': /^image \[ 'latest' \]$/m,
  'layer-walker': /^layer sha256:[0-9a-f]{64}$/m,
  'manifest-signer': /^latest sha256:[0-9a-f]{64}$/m,
  pipeline: /^1\.0: sha256:[0-9a-f]{64}\nlatest: sha256:[0-9a-f]{64}$/m,
  'registry-client': /^\{\s+digest: 'sha256:2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824',\s+size: 5\s+\}$/m,
  uploader: /^sha256:[0-9a-f]{64}$/m,
};

/** The first fenced code block of a README, and its language. */
async function firstExample(name: string): Promise<{ lang: string; code: string }> {
  const readme = await readFile(join(root, 'packages', name, 'README.md'), 'utf8');
  const match = /^```(\w+)\n([\s\S]*?)^```$/m.exec(readme);
  assert.ok(match, `packages/${name}/README.md has a code block`);
  return { lang: match[1] ?? '', code: match[2] ?? '' };
}

describe('the example each package README opens with', () => {
  let work: string;

  before(async () => {
    work = await mkdtemp(join(tmpdir(), 'rxpush-readme-examples-'));
    await makeOciLayout(join(work, 'image'), { images: [{ tags: ['latest'], layers: [{ files: 2, fileSize: 10_000, seed: 'readme' }] }] });
    await symlink('image', join(work, 'layout'));
    await rm(checkDir, { recursive: true, force: true });
    await mkdir(checkDir, { recursive: true });
  });
  after(async () => {
    if (work !== undefined) await rm(work, { recursive: true, force: true });
    await rm(checkDir, { recursive: true, force: true });
  });

  it('is ten lines or fewer and type-checks', async () => {
    const files: string[] = [];
    for (const name of Object.keys(EXPECTED)) {
      const { lang, code } = await firstExample(name);
      assert.ok(code.trimEnd().split('\n').length <= 10, `packages/${name}/README.md's example has more than ten lines`);
      if (lang !== 'ts') continue;
      const file = `${name}.ts`;
      await writeFile(join(checkDir, file), code);
      files.push(file);
    }
    const tsconfig = { extends: '../../tsconfig.base.json', compilerOptions: { noEmit: true, composite: false, declaration: false, declarationMap: false, sourceMap: false }, files };
    await writeFile(join(checkDir, 'tsconfig.json'), JSON.stringify(tsconfig));
    const tsc = join(root, 'node_modules', 'typescript', 'bin', 'tsc');
    await run(process.execPath, [tsc, '-p', join(checkDir, 'tsconfig.json')]).catch((error: { stdout?: string }) => assert.fail(`README examples do not type-check:\n${error.stdout ?? String(error)}`));
  });

  for (const [name, expected] of Object.entries(EXPECTED)) {
    it(`runs in packages/${name}/README.md`, async (t) => {
      const registry = await startRegistry();
      t.after(() => registry.stop());
      const { lang, code } = await firstExample(name);
      const text = code.replaceAll('localhost:5000', registry.host);
      const env = { ...process.env, RXPUSH_CACHE_DIR: join(work, `cache-${name}`), NO_COLOR: '1' };
      let output: { stdout: string; stderr: string };
      if (lang === 'sh') {
        // The commands of a shell example; its comments show their output.
        const commands = text.split('\n').filter((line) => line.startsWith('rxpush '));
        assert.ok(commands.length > 0, `packages/${name}/README.md's example runs rxpush`);
        output = { stdout: '', stderr: '' };
        for (const command of commands) {
          const result = await run(process.execPath, [CLI_BIN, ...command.split(' ').slice(1)], { cwd: work, env });
          output.stdout += result.stdout;
        }
      } else {
        const file = join(checkDir, `${name}.run.ts`);
        await writeFile(file, text);
        // tsx by its full URL: the example runs where its image is, outside the repository.
        output = await run(process.execPath, ['--import', import.meta.resolve('tsx'), file], { cwd: work, env });
      }
      assert.match(output.stdout, expected);
      if (lang === 'ts') assert.equal(output.stderr, '');
    });
  }
});
