import assert from 'node:assert/strict';
import { Readable } from 'node:stream';
import { describe, it } from 'node:test';

import type { PushOptions } from '@rxpush/pipeline';
import { of } from 'rxjs';

import { parseArgs } from '../src/parse-args.ts';
import { runPush } from '../src/run-push.ts';
import { manifestPushed, sink } from './events.ts';

/** Runs `rxpush ARGS…` with a fake push, returning the options it got, the exit status and stderr. */
async function run(argv: string[]) {
  const parsed = parseArgs(argv);
  if (parsed.kind !== 'push' && parsed.kind !== 'copy') return { code: 2, stderr: parsed.kind === 'usage' ? parsed.message : '', options: undefined };
  const stderr = sink();
  let options: PushOptions | undefined;
  const code = await runPush(parsed.args, {
    stdout: sink(),
    stderr,
    signal: new AbortController().signal,
    stdin: Readable.from([]),
    push: (given) => {
      options = given;
      return of(manifestPushed('1'));
    },
  });
  return { code, stderr: stderr.text, options };
}

describe('rxpush copy and the source registry options', () => {
  it('copies from a registry named with or without docker://', async () => {
    for (const source of ['docker://staging.example/app:1', 'staging.example/app:1']) {
      const { code, options, stderr } = await run(['copy', source, 'prod.example/app:1']);
      assert.equal(code, 0, stderr);
      assert.equal(options?.source, 'docker://staging.example/app:1');
      assert.equal(options?.sourceRegistry, undefined);
    }
  });

  it('keeps each registry\'s credentials and TLS settings apart', async () => {
    const { code, options, stderr } = await run([
      'copy', 'staging.example/app:1', 'prod.example/app:1',
      '--creds', 'prod:p:w', '--ca-file', 'prod.crt',
      '--src-creds', 'stage:s:w', '--src-authfile', 'stage.json', '--src-ca-file', 'stage.crt', '--src-tls-verify=false', '--src-plain-http',
      '--platform', 'linux/arm64',
    ]);
    assert.equal(code, 0, stderr);
    assert.deepEqual(options?.credentials, { username: 'prod', password: 'p:w', source: '--creds' });
    assert.equal(options?.caFile, 'prod.crt');
    assert.deepEqual(options?.sourceRegistry, {
      credentials: { username: 'stage', password: 's:w', source: '--src-creds' },
      authfile: 'stage.json',
      tlsVerify: false,
      caFile: 'stage.crt',
      plainHttp: true,
    });
    assert.equal(options?.platform, 'linux/arm64');
  });

  it('takes the source registry options for rxpush push of a docker:// source too', async () => {
    const { options } = await run(['push', 'docker://staging.example/app:1', 'prod.example/app:1', '--src-creds', 'stage:pw']);
    assert.deepEqual(options?.sourceRegistry, { credentials: { username: 'stage', password: 'pw', source: '--src-creds' } });
  });

  it('exits 2 for source registry options without a docker:// source, --platform of a source without indexes, a local source to copy, or --src-creds without a password', async () => {
    const cases: [string[], string][] = [
      [['push', 'oci:./image', 'prod.example/app:1', '--src-creds', 'a:b'], "rxpush: the --src-* options are for a docker:// source; oci:./image is not in a registry; see 'rxpush push --help'\n"],
      [
        ['push', 'docker-archive:./a.tar', 'prod.example/app:1', '--platform', 'linux/amd64'],
        "rxpush: --platform picks one image of a multi-platform index, which only docker://, oci: and oci-archive: sources hold; docker-archive:./a.tar is not one; see 'rxpush push --help'\n",
      ],
      [['copy', 'docker-archive:./a.tar', 'prod.example/app:1'], "rxpush: rxpush copy reads from a registry (SOURCE is [docker://]REGISTRY/REPO[:TAG]); push docker-archive:./a.tar with rxpush push; see 'rxpush copy --help'\n"],
      [['copy', 'staging.example/app:1', 'prod.example/app:1', '--src-creds', 'stage'], "rxpush: --src-creds needs USER:PASSWORD (the password cannot come from stdin: --password-stdin is the destination's); see 'rxpush copy --help'\n"],
    ];
    for (const [argv, expected] of cases) {
      const result = await run(argv);
      assert.equal(result.code, 2, argv.join(' '));
      assert.equal(result.stderr, expected);
    }
  });
});
