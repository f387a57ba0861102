/**
 * The CLI on the Node.js versions people run: it refuses one older than it supports in one line, and on
 * every one it keeps its bundle's compiled code in its own cache directory (tools/bundle/load-bundle.cjs).
 */
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { describe, it } from 'node:test';

import { assertOneLineError } from './helpers/assert-cli.ts';
import { runCli } from './helpers/run-cli.ts';

/** Makes the CLI's process report another Node.js version, as an older installation would. */
const pretend = (version: string) => ({ NODE_OPTIONS: `--import=data:text/javascript,Object.defineProperty(process.versions,'node',{value:'${version}'})` });

describe(`the CLI on Node.js ${process.versions.node}`, () => {
  for (const old of ['18.20.4', '20.18.1']) {
    it(`refuses Node.js ${old} in one line naming the version found and the one needed, exit 2`, async () => {
      const result = await runCli(['push', 'oci:./nowhere', '127.0.0.1:1/app:v1'], { env: pretend(old) });
      assertOneLineError(result, new RegExp(`Node\\.js ${old.replaceAll('.', '\\.')} is too old; rxpush needs Node\\.js 20\\.19 or newer`), 2);
      assert.equal(result.stdout, '');
    });
  }

  it('runs on the oldest Node.js it supports', async () => {
    const result = await runCli(['--version'], { env: pretend('20.19.0') });
    assert.equal(result.code, 0, result.stderr);
  });

  it("keeps its bundle's compiled code in rxpush's cache directory, not in Node's compile cache", async (t) => {
    const temp = await mkdtemp(join(tmpdir(), 'rxpush-compile-cache-'));
    t.after(() => rm(temp, { recursive: true, force: true }));
    const cacheDir = join(temp, 'cache');
    const tmp = join(temp, 'tmp');
    await mkdir(tmp);
    // Node's own compile cache (22.1+) would be node-compile-cache in the OS temp dir, which follows TMPDIR.
    const result = await runCli(['--version'], { env: { TMPDIR: tmp, RXPUSH_CACHE_DIR: cacheDir } });
    assert.equal(result.code, 0, result.stderr);
    assert.match(result.stdout, /^\d+\.\d+\.\d+/);
    const cache = join(cacheDir, 'code-cache', `${process.version}-${process.arch}`);
    const files = await readdir(cache, { recursive: true });
    assert.ok(files.some((name) => basename(name) === 'rxpush.cjs.bin'), 'the code cache holds the entry chunk');
    assert.deepEqual(await readdir(tmp), [], 'nothing in the temp dir');
  });
});
