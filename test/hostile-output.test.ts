import assert from 'node:assert/strict';
import { chmod, mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, it } from 'node:test';

import { startRegistry } from '../tools/registry.ts';
import { assertOneLineError } from './helpers/assert-cli.ts';
import { pidIn, waitGone } from './helpers/processes.ts';
import { useRegistry } from './helpers/registry-suite.ts';
import { runCli, startCli } from './helpers/run-cli.ts';

/** No raw control character (C0 but newline, DEL, C1) in what rxpush printed. */
const RAW_CONTROL = /[\u0000-\u0009\u000b-\u001f\u007f-\u009f]/;

describe('what reaches the terminal from hostile files and registries', () => {
  const suite = useRegistry('hostile-output', { images: [{ tags: ['latest'], layers: [{ files: 2, fileSize: 50_000, seed: 'hostile-output' }] }] });

  it('escapes the control characters a crafted index.json puts in a ref name', async () => {
    const indexFile = join(suite.layout.dir, 'index.json');
    const original = await readFile(indexFile, 'utf8');
    const index = JSON.parse(original) as { manifests: { annotations?: Record<string, string> }[] };
    index.manifests[0]!.annotations = { 'org.opencontainers.image.ref.name': '\u001b]0;pwned\u0007\u001b[2J\u009b31m' };
    await writeFile(indexFile, JSON.stringify(index));
    try {
      const result = await runCli(['push', `oci:${suite.layout.dir}:latest`, `${suite.registry.host}/hostile/ref:1`]);
      assertOneLineError(result, /no image named "latest"/, 1);
      assert.doesNotMatch(result.stderr, RAW_CONTROL);
      assert.ok(result.stderr.includes('\\x1b]0;pwned\\x07\\x1b[2J\\x9b31m'), result.stderr);
    } finally {
      await writeFile(indexFile, original);
    }
  });

  it('never quotes a credentials file that is not JSON', async (t) => {
    const guarded = await startRegistry({ tls: true, htpasswd: { bob: 'hunter2' } });
    t.after(() => guarded.stop());
    const authfile = join(suite.work, 'auth.json');
    await writeFile(authfile, `{"auths":{"${guarded.host}":{"auth":"Ym9iOmh1bnRlcjI=" "password":"hunter2\u001b[0m"}}}`);
    const result = await runCli(['push', `oci:${suite.layout.dir}:latest`, `${guarded.host}/hostile/authfile:1`, '--authfile', authfile, '--ca-file', guarded.caFile ?? '']);
    assertOneLineError(result, /auth\.json is not valid JSON \(invalid JSON at line 1, column \d+\); fix it/, 1);
    assert.doesNotMatch(result.stderr, /hunter2|Ym9iOmh1bnRlcjI/);
  });

  it('exits 130 at once on Ctrl-C while a credential helper hangs, and kills the helper and its children', async (t) => {
    const guarded = await startRegistry({ tls: true, htpasswd: { bob: 'hunter2' } });
    t.after(() => guarded.stop());
    const dir = join(suite.work, 'hanging-helper');
    await mkdir(join(dir, 'bin'), { recursive: true });
    await writeFile(join(dir, 'config.json'), JSON.stringify({ credHelpers: { [guarded.host]: 'hang' } }));
    const helper = join(dir, 'bin', 'docker-credential-hang');
    await writeFile(helper, `#!/bin/sh\nsleep 300 &\necho "$!" > "${dir}/child.pid"\necho "$$" > "${dir}/helper.pid"\nwait\n`);
    await chmod(helper, 0o755);

    const cli = startCli(t, ['push', `oci:${suite.layout.dir}:latest`, `${guarded.host}/hostile/helper:1`, '--ca-file', guarded.caFile ?? ''], {
      env: { DOCKER_CONFIG: dir, PATH: `${join(dir, 'bin')}:${process.env['PATH'] ?? ''}` },
    });
    const pids = [await pidIn(join(dir, 'helper.pid')), await pidIn(join(dir, 'child.pid'))];
    cli.child.kill('SIGINT');
    const { code, stderr } = await cli.result;
    // Exit 130, not the helper's timeout (60 s, exit 1): rxpush did not wait for it.
    assert.equal(code, 130);
    assert.equal(stderr, 'rxpush: push cancelled\n');
    for (const pid of pids) await waitGone(pid);
  });

  it('pushes on, without a stack trace, when its reader closes stdout (rxpush … | head -1)', async (t) => {
    const cli = startCli(t, ['push', `oci:${suite.layout.dir}:latest`, `${suite.registry.host}/hostile/head:1`, '--progress', 'plain']);
    let firstLine = '';
    // What head -1 does: read a line, then close the pipe while rxpush still has lines to write.
    cli.child.stdout.once('data', (chunk: Buffer) => {
      firstLine = chunk.toString('utf8').split('\n')[0] ?? '';
      cli.child.stdout.destroy();
    });
    const result = await cli.result;
    assert.equal(firstLine, `The push refers to repository [${suite.registry.host}/hostile/head]`);
    // Nothing on stderr but the push's summary line: no stack trace, no EPIPE.
    assert.match(result.stderr, /^1 layer pushed, 0 mounted, 0 skipped: [^\n]+\n$/);
    assert.equal(result.code, 0);
    const pushed = await suite.client.hasManifest('hostile/head', '1');
    assert.equal(pushed?.digest, suite.layout.images[0]!.manifestDigest);
  });
});
