/**
 * The CLI on the Node.js versions people run: it refuses one older than it supports in one line, and
 * on a Node.js with a module compile cache (22.1+) it keeps its compiled code there, while on Node 20
 * it starts just the same without one.
 */
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import module from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';

import { assertOneLineError } from './helpers/assert-cli.ts';
import { runCli } from './helpers/run-cli.ts';

/** Makes the CLI's process report another Node.js version, as an older installation would. */
const pretend = (version: string) => ({ NODE_OPTIONS: `--import=data:text/javascript,Object.defineProperty(process.versions,'node',{value:'${version}'})` });
const hasCompileCache = typeof (module as { enableCompileCache?: unknown }).enableCompileCache === 'function';

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

  it('keeps its compiled code in the module compile cache', { skip: !hasCompileCache && 'this Node.js has no compile cache' }, async (t) => {
    const temp = await mkdtemp(join(tmpdir(), 'rxpush-compile-cache-'));
    t.after(() => rm(temp, { recursive: true, force: true }));
    // Node's default cache directory is node-compile-cache in the OS temp dir, which follows TMPDIR.
    const result = await runCli(['--version'], { env: { TMPDIR: temp } });
    assert.equal(result.code, 0, result.stderr);
    const cache = join(temp, 'node-compile-cache');
    assert.ok(existsSync(cache), 'the cache directory is made');
    assert.ok((await readdir(cache, { recursive: true })).length > 0, 'and holds compiled code');
  });

  it('starts without a compile cache where Node.js has none', { skip: hasCompileCache && 'this Node.js has a compile cache' }, async (t) => {
    const temp = await mkdtemp(join(tmpdir(), 'rxpush-compile-cache-'));
    t.after(() => rm(temp, { recursive: true, force: true }));
    const result = await runCli(['--version'], { env: { TMPDIR: temp } });
    assert.equal(result.code, 0, result.stderr);
    assert.match(result.stdout, /^\d+\.\d+\.\d+/);
    assert.deepEqual(await readdir(temp), []);
  });
});
