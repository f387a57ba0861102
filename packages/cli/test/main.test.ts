import assert from 'node:assert/strict';
import { mkdir, mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';

import { RegistryError, UsageError, type PushEvent } from '@rxpush/core';
import type { PushOptions } from '@rxpush/pipeline';
import { Observable, concat, defer, delay, mergeMap, of, throwError } from 'rxjs';

import { main } from '../src/main.ts';
import { A, MANIFEST_DIGEST, manifestPushed, preparing, pushed, pushing, sink } from './events.ts';
import { fakePush, run } from './run-main.ts';
import { screen } from './screen.ts';

const SUCCESS: Observable<PushEvent> = of(preparing(A), pushing(A, 1_000_000, 2_000_000), pushed(A), manifestPushed('1.0'));

describe('rxpush arguments', () => {
  it('exits 2 with one line naming what is missing when push has no SOURCE and DEST', async () => {
    assert.deepEqual(await run(['push']), { code: 2, stdout: '', stderr: "rxpush: missing SOURCE and DEST; see 'rxpush push --help'\n" });
    assert.equal((await run(['push', 'oci:./image'])).stderr, "rxpush: missing DEST; see 'rxpush push --help'\n");
  });

  it('exits 2 on a concurrency below 1 or not a whole number', async () => {
    for (const value of ['0', '-1', '1.5', 'abc']) {
      const result = await run(['push', 'oci:./image', 'localhost:5000/app', '--concurrency', value]);
      assert.equal(result.code, 2);
      assert.equal(result.stderr, `rxpush: --concurrency must be a whole number of 1 or more, not "${value}"; see 'rxpush push --help'\n`);
    }
  });

  it('exits 2 on an unknown option, an extra argument or an unknown command', async () => {
    assert.deepEqual(await run(['push', 'a', 'localhost:5000/app', '--frobnicate']), {
      code: 2,
      stdout: '',
      stderr: "rxpush: unknown option --frobnicate; see 'rxpush push --help'\n",
    });
    assert.equal((await run(['push', 'a', 'localhost:5000/app', 'extra'])).stderr, `rxpush: unexpected argument "extra"; see 'rxpush push --help'\n`);
    assert.equal((await run(['pull', 'a', 'b'])).stderr, `rxpush: unknown command "pull"; see 'rxpush --help'\n`);
    assert.equal((await run(['copy', 'a', 'localhost:5000/app', '--frobnicate'])).stderr, "rxpush: unknown option --frobnicate; see 'rxpush copy --help'\n");
    assert.equal((await run([])).stderr, "rxpush: missing command; see 'rxpush --help'\n");
    assert.equal((await run(['verify'])).stderr, "rxpush: missing DEST; see 'rxpush verify --help'\n");
    assert.equal((await run(['inspect'])).stderr, "rxpush: missing SOURCE or DEST; see 'rxpush inspect --help'\n");
    assert.equal((await run(['keygen', '--out'])).stderr, "rxpush: --out needs a value; see 'rxpush keygen --help'\n");
    assert.equal((await run(['verify', 'localhost:5000/app', '--output', 'yaml', '--key', 'k'])).stderr, `rxpush: --output must be one of text, json, not "yaml"; see 'rxpush verify --help'\n`);
    assert.equal((await run([])).code, 2);
  });

  it('exits 2 on a bad choice, size or missing value, one line each', async () => {
    const cases: [string[], string][] = [
      [['--format', 'schema3'], '--format must be one of oci, docker, schema1, not "schema3"'],
      [['--format', 'schema1'], '--format schema1 needs --sign-key FILE: Docker schema 1 manifests are signed (rxpush keygen makes a key)'],
      [['--sign-children'], '--sign-children needs --sign-key FILE'],
      [['--sign-key', 'k', '--key-password-stdin', '--username', 'u', '--password-stdin'], '--key-password-stdin and --password-stdin both read stdin; give the key passphrase in RXPUSH_KEY_PASSWORD instead'],
      [['--compression', 'lz4'], '--compression must be one of gzip, zstd, none, not "lz4"'],
      [['--compression-level', '10'], '--compression-level must be a whole number from 0 to 9, not "10"'],
      [['--compression-level', 'fast'], '--compression-level must be a whole number from 0 to 9, not "fast"'],
      [['--compression-level', '1', '--compression', 'none'], '--compression-level is a gzip level and cannot be used with --compression none'],
      [['--progress', 'fancy'], '--progress must be one of auto, tty, plain, json, not "fancy"'],
      [['--log-level', 'loud'], '--log-level must be one of trace, debug, info, warn, error, silent, not "loud"'],
      [['--chunk-size', '5XB'], '--chunk-size "5XB" is not a size: write bytes or a number with a unit, e.g. 5MB or 512KiB'],
      [['--tag', '.bad'], '--tag ".bad" is not a valid tag: letters, digits, _ . - (at most 128), not starting with . or -'],
      [['--tag'], '--tag needs a value'],
      [['--all-tags', '--digestfile', 'd'], '--digestfile names one manifest and cannot be used with --all-tags'],
    ];
    for (const [options, message] of cases) {
      const result = await run(['push', 'oci:./image', 'localhost:5000/app', ...options]);
      assert.deepEqual(result, { code: 2, stdout: '', stderr: `rxpush: ${message}; see 'rxpush push --help'\n` });
    }
  });

  it('prints help and the version and exits 0', async () => {
    const top = await run(['--help']);
    assert.equal(top.code, 0);
    assert.match(top.stdout, /^Usage: rxpush <command> \[options\]/);
    assert.match(top.stdout, /rxpush push <SOURCE> <DEST>/);
    const push = await run(['push', '--help']);
    assert.equal(push.code, 0);
    assert.match(push.stdout, /^Usage: rxpush push SOURCE DEST \[options\]/);
    for (const option of ['--tag', '--all-tags', '--format', '--concurrency', '--chunk-size', '--compression', '--plain-http', '--progress', '--quiet', '--log-level', '--digestfile']) {
      assert.ok(push.stdout.includes(option), `push --help lists ${option}`);
    }
    assert.equal(push.stderr, '');
    assert.deepEqual(await run(['--version']), { code: 0, stdout: '0.1.0\n', stderr: '' });
  });
});

describe('rxpush push', () => {
  it('passes the options to push(), shows plain progress off a terminal and exits 0', async () => {
    const fake = fakePush(SUCCESS);
    const result = await run(
      ['push', 'oci:./image:latest', 'localhost:5000/app:1.0', '--tag', 'v1', '--tag=v2', '--format', 'docker', '--concurrency', '8'].concat(
        ['--chunk-size', '5MB', '--compression', 'zstd', '--plain-http'],
      ),
      { push: fake.push },
    );
    const { stderr, ...output } = result;
    assert.deepEqual(output, {
      code: 0,
      stdout:
        'The push refers to repository [localhost:5000/app]\n' +
        'aaaaaaaaaaaa: Preparing\n' +
        'aaaaaaaaaaaa: Pushing\n' +
        'aaaaaaaaaaaa: Pushed\n' +
        `1.0: digest: ${MANIFEST_DIGEST} size: 528\n`,
    });
    assert.match(stderr, /^1 layer pushed, 0 mounted, 0 skipped: 2MB sent in \d+\.\ds \([\d.]+[kMG]?B\/s\)\n$/, 'only the summary line');
    const [options] = fake.calls;
    assert.ok(options?.logger, 'a logger is passed');
    assert.equal(typeof options.onSessionsKept, 'function', 'the push tells what it kept for resuming');
    const { logger, onSessionsKept, ...rest } = options;
    assert.deepEqual(rest, {
      source: 'oci:./image:latest',
      destination: 'localhost:5000/app:1.0',
      tags: ['v1', 'v2'],
      format: 'docker',
      concurrency: 8,
      chunkSize: 5_000_000,
      compression: 'zstd',
      plainHttp: true,
    });
  });

  it('passes --compression-level on as a number', async () => {
    const fake = fakePush(SUCCESS);
    await run(['push', 'docker-archive:./image.tar', 'localhost:5000/app', '--compression-level', '6'], { push: fake.push });
    assert.equal(fake.calls[0]?.compressionLevel, 6);
  });

  it('passes only what was asked, with a concurrency of 4 by default', async () => {
    const fake = fakePush(SUCCESS);
    await run(['push', 'oci:./image', 'registry.example/team/app', '--all-tags'], { push: fake.push });
    const { logger, onSessionsKept, ...rest } = fake.calls[0]!;
    assert.deepEqual(rest, { source: 'oci:./image', destination: 'registry.example/team/app', concurrency: 4, allTags: true });
  });

  it('draws tty progress when stdout is a terminal', async () => {
    const stdout = sink({ isTTY: true, columns: 80 });
    const code = await main(['push', 'oci:./image', 'localhost:5000/app:1.0'], { stdout, stderr: sink(), signal: new AbortController().signal, push: fakePush(SUCCESS).push });
    assert.equal(code, 0);
    assert.equal(
      stdout.text,
      'The push refers to repository [localhost:5000/app]\n' +
        'aaaaaaaaaaaa: Preparing\n' +
        '\x1b[1A\x1b[2Kaaaaaaaaaaaa: Pushing      1MB/2MB\x1b[1B\r' +
        '\x1b[1A\x1b[2Kaaaaaaaaaaaa: Pushed\x1b[1B\r' +
        `1.0: digest: ${MANIFEST_DIGEST} size: 528\n`,
    );
  });

  it('writes log lines as text on a pipe with --log-format text, and as JSON on a terminal with --log-format json', async () => {
    const warning = (options: PushOptions): Observable<PushEvent> =>
      new Observable<PushEvent>((subscriber) => {
        options.logger?.warn({ dir: '/cache' }, 'digest cache write failed (ENOSPC); going on without it');
        subscriber.next(manifestPushed('1.0'));
        subscriber.complete();
      });
    const logged = async (stderr: ReturnType<typeof sink>, format: string[]) => {
      const code = await main(['push', 'oci:./image', 'localhost:5000/app:1.0', '-q', ...format], { stdout: sink(), stderr, signal: new AbortController().signal, push: warning });
      assert.equal(code, 0, stderr.text);
      return stderr.text.split('\n').filter((line) => line !== '');
    };
    assert.deepEqual(await logged(sink(), ['--log-format', 'text']), ['rxpush: warning: digest cache write failed (ENOSPC); going on without it']);
    const [json] = await logged(sink({ isTTY: true, columns: 80 }), ['--log-format', 'json']);
    const entry = JSON.parse(json ?? '') as { level?: number; dir?: string; msg?: string };
    assert.deepEqual([entry.level, entry.dir, entry.msg], [40, '/cache', 'digest cache write failed (ENOSPC); going on without it']);
    // auto: text on a terminal, JSON elsewhere.
    assert.match((await logged(sink(), []))[0] ?? '', /^\{"level":40,/);
    assert.deepEqual(await logged(sink({ isTTY: true, columns: 80 }), ['--log-format', 'auto']), ['rxpush: warning: digest cache write failed (ENOSPC); going on without it']);
  });

  it('refuses to inspect or verify a registry address alone, and to copy from one, as usage errors', async () => {
    for (const [args, command] of [
      [['inspect', 'localhost:5000'], 'inspect'],
      [['verify', '127.0.0.1:5000', '--key', 'key.pub'], 'verify'],
      [['copy', 'docker://127.0.0.1:5000', 'localhost:5000/app:1'], 'copy'],
    ] as const) {
      const stderr = sink();
      const code = await main([...args], { stdout: sink(), stderr, signal: new AbortController().signal });
      assert.equal(code, 2, stderr.text);
      assert.match(stderr.text, new RegExp(`^rxpush: (reference|source) (docker://)?[\\w.]+:5000 names a registry but no repository \\(Docker's rules read it as docker\\.io/library/[\\w.]+:5000\\); write .*; see 'rxpush ${command} --help'\\n$`));
    }
  });

  it('refuses a --log-format it does not know, as a usage error', async () => {
    const stderr = sink();
    const code = await main(['push', 'oci:./image', 'localhost:5000/app:1.0', '--log-format', 'yaml'], { stdout: sink(), stderr, signal: new AbortController().signal, push: fakePush(of()).push });
    assert.equal(code, 2);
    assert.match(stderr.text, /^rxpush: --log-format /);
  });

  it('puts a warning in the middle of a push below the tty progress, which goes on being drawn in its place', async () => {
    // stdout and stderr on one terminal, as when nothing is redirected.
    const terminal = screen(100);
    const push = (options: PushOptions): Observable<PushEvent> =>
      new Observable<PushEvent>((subscriber) => {
        subscriber.next(preparing(A));
        subscriber.next(pushing(A, 1_000_000, 2_000_000));
        options.logger?.warn({ dir: '/cache' }, 'digest cache write failed (ENOSPC); going on without it');
        subscriber.next(pushed(A));
        subscriber.next(manifestPushed('1.0'));
        subscriber.complete();
      });
    const code = await main(['push', 'oci:./image', 'localhost:5000/app:1.0'], { stdout: terminal, stderr: terminal, signal: new AbortController().signal, push });
    assert.equal(code, 0);
    assert.deepEqual(terminal.lines.slice(0, -1), [
      'The push refers to repository [localhost:5000/app]',
      'aaaaaaaaaaaa: Pushed',
      'rxpush: warning: digest cache write failed (ENOSPC); going on without it',
      `1.0: digest: ${MANIFEST_DIGEST} size: 528`,
    ]);
    assert.match(terminal.lines.at(-1) ?? '', /^1 layer pushed, 0 mounted, 0 skipped: 2MB sent in /);
  });

  it('names the source on a terminal while it takes more than a second to read, and takes the line back once the push starts', async () => {
    // An archive on a pipe is copied before the first event: the display says what rxpush is doing meanwhile.
    const slow = SUCCESS.pipe(delay(1_200));
    const terminal = screen(100);
    const stdout = { isTTY: true, columns: 100, text: '', write(text: string) { this.text += text; return terminal.write(text); } };
    const code = await main(['push', 'docker-archive:/dev/stdin', 'localhost:5000/app:1.0'], { stdout, stderr: sink(), signal: new AbortController().signal, push: fakePush(slow).push });
    assert.equal(code, 0);
    assert.match(stdout.text, /^Reading docker-archive:\/dev\/stdin…\n\x1b\[1A\x1b\[2KThe push refers to repository/);
    assert.deepEqual(terminal.lines, ['The push refers to repository [localhost:5000/app]', 'aaaaaaaaaaaa: Pushed', `1.0: digest: ${MANIFEST_DIGEST} size: 528`]);
    // Output that scripts read never gets it, and a push that starts at once does not either.
    const plain = await run(['push', 'docker-archive:/dev/stdin', 'localhost:5000/app:1.0', '--progress', 'plain'], { push: fakePush(SUCCESS.pipe(delay(1_200))).push });
    assert.doesNotMatch(plain.stdout, /Reading/);
    // A path with control characters in it is shown escaped, not obeyed by the terminal.
    const hostile = sink({ isTTY: true, columns: 80 });
    await main(['push', 'docker-archive:/tmp/\x1b]0;pwned\x07.tar', 'localhost:5000/app:1.0'], { stdout: hostile, stderr: sink(), signal: new AbortController().signal, push: fakePush(SUCCESS.pipe(delay(1_200))).push });
    assert.match(hostile.text, /^Reading docker-archive:\/tmp\/\\x1b\]0;pwned\\x07\.tar…\n/);
    const quick = sink({ isTTY: true, columns: 80 });
    await main(['push', 'oci:./image', 'localhost:5000/app:1.0'], { stdout: quick, stderr: sink(), signal: new AbortController().signal, push: fakePush(SUCCESS).push });
    assert.doesNotMatch(quick.text, /Reading/);
  });

  it('prints only the pushed reference with --quiet, and JSON lines with --progress json', async () => {
    const quiet = await run(['push', 'oci:./image', 'localhost:5000/app:1.0', '--quiet'], { push: fakePush(SUCCESS).push });
    assert.deepEqual(quiet, { code: 0, stdout: 'localhost:5000/app:1.0\n', stderr: '' });
    const json = await run(['push', 'oci:./image', 'localhost:5000/app:1.0', '--progress', 'json'], { push: fakePush(SUCCESS).push });
    assert.equal(json.code, 0);
    const lines = json.stdout.trim().split('\n').map((line) => JSON.parse(line) as Record<string, unknown>);
    assert.deepEqual(lines.at(-1), { progressDetail: {}, aux: { Tag: '1.0', Digest: MANIFEST_DIGEST, Size: 528 } });
    assert.deepEqual(lines[0], { status: 'The push refers to repository [localhost:5000/app]' });
    assert.equal(lines.length, 6, "Docker's header, preparing, pushing, pushed, the digest line and aux");
  });

  it('writes the digest of the pushed manifest to --digestfile, without a newline', async (t) => {
    const dir = await mkdtemp(join(tmpdir(), 'rxpush-cli-'));
    t.after(() => rm(dir, { recursive: true, force: true }));
    const file = join(dir, 'digest');
    const result = await run(['push', 'oci:./image', 'localhost:5000/app:1.0', '--digestfile', file, '-q'], { push: fakePush(SUCCESS).push });
    assert.equal(result.code, 0);
    assert.equal(await readFile(file, 'utf8'), MANIFEST_DIGEST);

    // A place that cannot be written is found before anything is pushed.
    const cases: [string, string][] = [
      [join(dir, 'no-such-dir', 'digest'), 'its directory does not exist'],
      [dir, `it is a directory; name the file to write the digest to, e.g. ${join(dir, 'digest')}`],
      [join(file, 'digest'), 'a part of its path is a file, not a directory'],
    ];
    for (const [path, reason] of cases) {
      const fake = fakePush(SUCCESS);
      const failed = await run(['push', 'oci:./image', 'localhost:5000/app:1.0', '--digestfile', path, '-q'], { push: fake.push });
      assert.equal(failed.code, 1);
      assert.equal(failed.stderr, `rxpush: cannot write --digestfile ${path}: ${reason}; nothing was pushed\n`);
      assert.equal(fake.calls.length, 0, 'no push started');
    }

    // A directory that goes away during the push: the push landed, and the line says so, in words.
    const gone = join(dir, 'gone');
    await mkdir(gone);
    const removing = (): Observable<PushEvent> => defer(async () => rm(gone, { recursive: true })).pipe(mergeMap(() => SUCCESS));
    const late = await run(['push', 'oci:./image', 'localhost:5000/app:1.0', '--digestfile', join(gone, 'digest'), '-q'], { push: removing });
    assert.equal(late.code, 1);
    assert.equal(late.stderr, `rxpush: pushed ${MANIFEST_DIGEST}, but cannot write it to --digestfile ${join(gone, 'digest')}: its directory does not exist\n`);
  });

  it('exits 1 with the error on one line, and the stack only at --log-level debug', async () => {
    const error = new RegistryError({ method: 'PUT', url: 'http://localhost:5000/v2/app/manifests/1.0', status: 400, registryCode: 'MANIFEST_INVALID', detail: 'bad' });
    const events = concat(of(preparing(A)), throwError(() => error));
    const plain = await run(['push', 'oci:./image', 'localhost:5000/app:1.0'], { push: fakePush(events).push });
    assert.equal(plain.code, 1);
    assert.equal(plain.stderr, 'rxpush: PUT http://localhost:5000/v2/app/manifests/1.0 → 400 MANIFEST_INVALID: bad\n');

    const debug = await run(['push', 'oci:./image', 'localhost:5000/app:1.0', '--log-level', 'debug'], { push: fakePush(events).push });
    assert.equal(debug.code, 1);
    const [first, ...rest] = debug.stderr.split('\n');
    assert.equal(first, 'rxpush: PUT http://localhost:5000/v2/app/manifests/1.0 → 400 MANIFEST_INVALID: bad');
    assert.match(rest.join('\n'), /RegistryError: PUT[^\n]*\n\s+at /);

    const json = await run(['push', 'oci:./image', 'localhost:5000/app:1.0', '--progress', 'json'], { push: fakePush(events).push });
    assert.equal(json.stdout.trim().split('\n').at(-1), JSON.stringify({ errorDetail: { message: error.message }, error: error.message }));
  });

  it('exits 2 when push() rejects the options as a usage error', async () => {
    const events = throwError(() => new UsageError('destination has a digest; push to a tag instead'));
    const result = await run(['push', 'oci:./image', 'localhost:5000/app:1.0'], { push: fakePush(events).push });
    assert.equal(result.code, 2);
    assert.equal(result.stderr, "rxpush: destination has a digest; push to a tag instead; see 'rxpush push --help'\n");
  });

  it('exits 1 on a destination that is not an image reference, before pushing', async () => {
    const result = await run(['push', 'oci:./image', 'Local Host/app']);
    assert.equal(result.code, 1);
    assert.match(result.stderr, /^rxpush: invalid image reference "Local Host\/app": it contains white space; [^\n]+\n$/);
  });

  it('unsubscribes when cancelled, says so and exits 130', async () => {
    const interrupt = new AbortController();
    let tornDown = false;
    const endless = new Observable<PushEvent>((subscriber) => {
      subscriber.next(preparing(A));
      setImmediate(() => interrupt.abort());
      return () => {
        tornDown = true;
      };
    });
    const result = await run(['push', 'oci:./image', 'localhost:5000/app:1.0'], { push: fakePush(endless).push, signal: interrupt.signal });
    assert.equal(result.code, 130);
    assert.equal(result.stderr, 'rxpush: push cancelled\n');
    assert.ok(tornDown, 'the subscription is torn down, aborting requests in flight');
  });

  it('logs to stderr at the chosen level, with credentials redacted', async () => {
    const logging = (options: PushOptions) =>
      new Observable<PushEvent>((subscriber) => {
        options.logger?.debug({ headers: { authorization: 'Bearer secret-token' }, password: 'hunter2' }, 'token fetched');
        subscriber.complete();
      });
    const quiet = await run(['push', 'oci:./image', 'localhost:5000/app:1.0', '-q'], { push: logging });
    assert.equal(quiet.stderr, '', 'debug lines are not logged at the default level, warn');

    const debug = await run(['push', 'oci:./image', 'localhost:5000/app:1.0', '-q', '--log-level', 'debug'], { push: logging });
    assert.equal(debug.code, 0);
    const entry = JSON.parse(debug.stderr) as Record<string, unknown>;
    assert.equal(entry['msg'], 'token fetched');
    assert.deepEqual(entry['headers'], { authorization: '[Redacted]' });
    assert.equal(entry['password'], '[Redacted]');
    assert.ok(!debug.stderr.includes('secret-token') && !debug.stderr.includes('hunter2'));
  });
});
