import assert from 'node:assert/strict';
import { Readable } from 'node:stream';
import { describe, it } from 'node:test';

import type { PushOptions } from '@rxpush/pipeline';
import { of } from 'rxjs';

import { parseArgs } from '../src/parse-args.ts';
import { runPush } from '../src/run-push.ts';
import { manifestPushed, sink } from './events.ts';

const DEST = ['push', 'oci:./image', 'localhost:5000/app:1.0'];

/** Runs `rxpush push …` with a fake push, returning the options it got, the exit status and stderr. */
async function run(extra: string[], stdin = '') {
  const parsed = parseArgs([...DEST, ...extra]);
  const stderr = sink();
  if (parsed.kind !== 'push') return { code: 2, stderr: parsed.kind === 'usage' ? parsed.message : '', options: undefined };
  let options: PushOptions | undefined;
  const code = await runPush(parsed.args, {
    stdout: sink(),
    stderr,
    signal: new AbortController().signal,
    stdin: Readable.from([Buffer.from(stdin)]),
    push: (given) => {
      options = given;
      return of(manifestPushed('1.0'));
    },
  });
  return { code, stderr: stderr.text, options };
}

describe('rxpush push credential and TLS options', () => {
  it('passes --creds USER:PASSWORD on, keeping colons in the password', async () => {
    const { code, options } = await run(['--creds', 'alice:pa:ss']);
    assert.equal(code, 0);
    assert.deepEqual(options?.credentials, { username: 'alice', password: 'pa:ss', source: '--creds' });
  });

  it('reads the password of --username from stdin, dropping one trailing line break', async () => {
    const { options } = await run(['--username', 'bob', '--password-stdin'], 's3cret \r\n');
    assert.deepEqual(options?.credentials, { username: 'bob', password: 's3cret ', source: '--username and --password-stdin' });
    const withCreds = await run(['--creds', 'carol', '--password-stdin'], 'pw\n');
    assert.equal(withCreds.options?.credentials?.password, 'pw');
  });

  it('passes --authfile, --ca-file, --cert-dir and --tls-verify=false on', async () => {
    const { options } = await run(['--authfile', 'auth.json', '--ca-file', 'ca.crt', '--cert-dir', 'certs', '--tls-verify=false']);
    assert.equal(options?.authfile, 'auth.json');
    assert.equal(options?.caFile, 'ca.crt');
    assert.equal(options?.certDir, 'certs');
    assert.equal(options?.tlsVerify, false);
    const defaults = await run([]);
    assert.equal(defaults.options?.tlsVerify, undefined, 'verification stays on by default');
    assert.equal(defaults.options?.credentials, undefined);
  });

  const usage: [string[], string, RegExp][] = [
    [['--creds', 'alice:pw', '--username', 'bob'], '', /either --creds or --username, not both/],
    [['--creds', 'alice'], '', /--creds USER needs the password/],
    [['--creds', ':hunter2'], '', /--creds needs a user name/],
    [['--creds', 'alice:hunter2', '--password-stdin'], 'x', /already has a password/],
    [['--username', 'bob'], '', /--username needs --password-stdin/],
    [['--password-stdin'], 'x', /--password-stdin needs --username/],
    [['--username', 'bob', '--password-stdin'], '', /read an empty password/],
  ];
  for (const [args, stdin, message] of usage) {
    it(`exits 2 on ${args.join(' ')}${stdin === '' ? '' : ' with a password on stdin'}, naming no password`, async () => {
      const { code, stderr, options } = await run(args, stdin);
      assert.equal(code, 2);
      assert.match(stderr, message);
      assert.doesNotMatch(stderr, /hunter2|pw\b/);
      assert.equal(options, undefined, 'no push started');
    });
  }
});
