import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import type { BlobSource, Digest, ImageRecord, PushEvent } from '@rxpush/core';
import { of, type Observable } from 'rxjs';

import { parseDuration } from '../src/parse-duration.ts';
import { dryRunRenderer } from '../src/progress/dry-run-renderer.ts';
import { dryRunSummaryLine, pushTally, summaryLine } from '../src/progress/push-summary.ts';
import { A, B, CONFIG, exists, manifestPushed, mounted, preparing, pushed, sink, waiting } from './events.ts';
import { fakePush, run } from './run-main.ts';

const digestOf = (id: string): Digest => `sha256:${id.charAt(0).repeat(64)}` as Digest;
function blobTask(id: string, form: 'stored' | 'uncompressed' = 'stored', role: 'layer' | 'config' = 'layer'): PushEvent {
  const blob: BlobSource = {
    key: digestOf(id),
    role,
    mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip',
    digest: digestOf(id),
    size: 2_000_000,
    form,
    origin: id,
    open: () => Promise.reject(new Error('a dry run never opens a blob')),
  };
  return { type: 'blob', blob };
}
function image(tags: string[]): PushEvent {
  const config = (blobTask(CONFIG, 'stored', 'config') as Extract<PushEvent, { type: 'blob' }>).blob;
  const record: ImageRecord = { kind: 'image', source: 'oci:./image', tags, config, layers: { kind: 'list', layers: [] } };
  return { type: 'image', image: record };
}
const dryMounted = (id: string, from: string): PushEvent => ({ ...(mounted(id, from) as Extract<PushEvent, { type: 'mounted' }>), dryRun: true });

/** What push({ dryRun: true }) emits for one layer to upload, one to mount and one the registry has. */
const DRY_RUN: Observable<PushEvent> = of(
  image(['1.0']),
  preparing(A),
  waiting(A),
  blobTask(A),
  preparing(B),
  dryMounted(B, 'team/base'),
  preparing('eeeeeeeeeeee'),
  exists('eeeeeeeeeeee'),
  waiting(CONFIG, 'config'),
  blobTask(CONFIG, 'stored', 'config'),
);

describe('rxpush push --dry-run', () => {
  it('asks push() for a dry run and shows what it would upload, mount and skip', async () => {
    const fake = fakePush(DRY_RUN);
    const result = await run(['push', 'oci:./image', 'localhost:5000/app:1.0', '--dry-run'], { push: fake.push });
    assert.equal(fake.calls[0]?.dryRun, true);
    assert.deepEqual(result, {
      code: 0,
      stdout:
        'The push refers to repository [localhost:5000/app]\n' +
        'aaaaaaaaaaaa: Would push (2MB)\n' +
        'bbbbbbbbbbbb: Would mount from team/base\n' +
        'eeeeeeeeeeee: Layer already exists\n' +
        '1.0: would push the manifest (dry run)\n',
      stderr: 'dry run: 1 layer to push, 1 to mount, 1 skipped; nothing was written\n',
    });
  });

  it('prints the references it would push with --quiet, and jsonmessage lines with --progress json', async () => {
    assert.deepEqual(await run(['push', 'oci:./image', 'localhost:5000/app:1.0', '--dry-run', '-q'], { push: fakePush(DRY_RUN).push }), {
      code: 0,
      stdout: 'localhost:5000/app:1.0\n',
      stderr: '',
    });
    const json = await run(['push', 'oci:./image', 'localhost:5000/app:1.0', '--dry-run', '--progress', 'json'], { push: fakePush(DRY_RUN).push });
    assert.equal(json.stderr, '');
    const lines = json.stdout.trimEnd().split('\n').map((line) => JSON.parse(line) as Record<string, unknown>);
    assert.deepEqual(lines[1], { status: 'Would push (2MB)', progressDetail: {}, id: A });
    assert.deepEqual(lines.at(-1), { status: '1.0: would push the manifest (dry run)' });
    assert.equal(lines.length, 5);
  });

  it('says a layer compressed on upload has its uncompressed size', () => {
    const out = sink();
    const renderer = dryRunRenderer(out);
    renderer.next(blobTask(A, 'uncompressed'));
    assert.equal(out.text, 'aaaaaaaaaaaa: Would push (2MB before compression)\n');
  });

  it('refuses --digestfile, since nothing is pushed', async () => {
    const result = await run(['push', 'oci:./image', 'localhost:5000/app:1.0', '--dry-run', '--digestfile', 'd']);
    assert.deepEqual(result, {
      code: 2,
      stdout: '',
      stderr: "rxpush: --digestfile cannot be used with --dry-run: nothing is pushed, so there is no digest to write; see 'rxpush push --help'\n",
    });
  });
});

describe('the summary line', () => {
  it('counts layers pushed, mounted and skipped, and every byte sent', () => {
    const tally = pushTally(false);
    for (const event of [pushed(A), mounted(B, 'base'), exists('eeeeeeeeeeee'), pushed(CONFIG, 'config'), manifestPushed('1.0')]) tally.next(event);
    assert.deepEqual(tally.counts(), { pushed: 1, mounted: 1, skipped: 1, bytes: 4_000_000 });
  });

  it('names counts, bytes, time and throughput', () => {
    assert.equal(summaryLine({ pushed: 3, mounted: 1, skipped: 2, bytes: 12_345_678 }, 4_200), '3 layers pushed, 1 mounted, 2 skipped: 12.35MB sent in 4.2s (2.939MB/s)');
    assert.equal(summaryLine({ pushed: 0, mounted: 0, skipped: 2, bytes: 0 }, 300), '0 layers pushed, 0 mounted, 2 skipped: 0B sent in 0.3s');
    assert.equal(summaryLine({ pushed: 1, mounted: 0, skipped: 0, bytes: 1_000_000_000 }, 125_000), '1 layer pushed, 0 mounted, 0 skipped: 1GB sent in 2m05s (8MB/s)');
    assert.equal(dryRunSummaryLine({ pushed: 2, mounted: 0, skipped: 1, bytes: 0 }), 'dry run: 2 layers to push, 0 to mount, 1 skipped; nothing was written');
  });

  it('is left out of --quiet and --progress json, which scripts read', async () => {
    const events = of(preparing(A), pushed(A), manifestPushed('1.0'));
    assert.equal((await run(['push', 'oci:./image', 'localhost:5000/app:1.0', '-q'], { push: fakePush(events).push })).stderr, '');
    assert.equal((await run(['push', 'oci:./image', 'localhost:5000/app:1.0', '--progress', 'json'], { push: fakePush(events).push })).stderr, '');
    assert.match((await run(['push', 'oci:./image', 'localhost:5000/app:1.0', '--progress', 'tty'], { push: fakePush(events).push })).stderr, /^1 layer pushed/);
  });
});

describe('--retries and --timeout', () => {
  it('become push()\'s retry and timeouts options', async () => {
    const fake = fakePush(of(manifestPushed('1.0')));
    await run(['push', 'oci:./image', 'localhost:5000/app:1.0', '--retries', '0', '--timeout', '1m30s', '-q'], { push: fake.push });
    assert.deepEqual(fake.calls[0]?.retry, { retries: 0 });
    assert.deepEqual(fake.calls[0]?.timeouts, { connect: 90_000, headers: 90_000, body: 90_000 });
  });

  it('exit 2 on a value that is not a count or a duration', async () => {
    const cases: [string[], string][] = [
      [['--retries', '-1'], '--retries must be a whole number of 0 or more, not "-1"'],
      [['--retries', 'many'], '--retries must be a whole number of 0 or more, not "many"'],
      [['--timeout', '30'], '--timeout "30" is not a duration: write a number with a unit, e.g. 30s, 2m, 1m30s or 500ms'],
      [['--timeout', '0s'], '--timeout "0s" is shorter than a millisecond'],
      [['--timeout'], '--timeout needs a value'],
    ];
    for (const [options, message] of cases) {
      assert.deepEqual(await run(['push', 'oci:./image', 'localhost:5000/app', ...options]), { code: 2, stdout: '', stderr: `rxpush: ${message}; see 'rxpush push --help'\n` });
    }
  });

  it('read durations as Go writes them', () => {
    assert.equal(parseDuration('30s'), 30_000);
    assert.equal(parseDuration('500ms'), 500);
    assert.equal(parseDuration('1.5m'), 90_000);
    assert.equal(parseDuration('1h2m3s'), 3_723_000);
    for (const text of ['', 's', '1x', '1s2', '-1s', '1 s']) assert.throws(() => parseDuration(text, '--timeout'), { code: 'USAGE' });
    // Node's timers hold 24.8 days at most: longer would fire at once, with a TimeoutOverflowWarning on stderr.
    assert.equal(parseDuration('596h'), 2_145_600_000);
    assert.throws(() => parseDuration('597h', '--timeout'), { code: 'USAGE', message: '--timeout "597h" is longer than the longest wait rxpush can keep, 24 days' });
  });

  it('refuses an empty path option before anything is pushed (--digestfile "$UNSET" in a script)', async () => {
    const cases = [
      ['--digestfile=', '--digestfile needs a file to write the digest to'],
      ['--authfile=', '--authfile needs a file'],
      ['--ca-file=', '--ca-file needs a file'],
      ['--cert-dir=', '--cert-dir needs a directory'],
      ['--data-root=', '--data-root needs a directory'],
    ];
    for (const [option, message] of cases) {
      const result = await run(['push', 'oci:./image:latest', 'localhost:5000/app:1', option!]);
      assert.equal(result.code, 2, option);
      assert.equal(result.stderr, `rxpush: ${message}; see 'rxpush push --help'\n`);
    }
    const copy = await run(['copy', 'docker://r.example/app:1', 'localhost:5000/app:1', '--src-authfile=']);
    assert.deepEqual([copy.code, copy.stderr], [2, "rxpush: --src-authfile needs a file; see 'rxpush copy --help'\n"]);
  });
});

describe('rxpush completion and help', () => {
  it('prints a bash completion script, and the words to complete', async () => {
    const script = await run(['completion']);
    assert.equal(script.code, 0);
    assert.match(script.stdout, /^###-begin-rxpush-completions-###$/m);
    assert.match(script.stdout, /rxpush --get-yargs-completions/);
    const commands = await run(['--get-yargs-completions', 'rxpush', '']);
    assert.deepEqual(commands.stdout.trim().split('\n'), ['completion', 'push', 'copy', 'keygen', 'verify', 'inspect']);
    const options = await run(['--get-yargs-completions', 'rxpush', 'push', '--']);
    for (const option of ['--dry-run', '--retries', '--timeout', '--tag']) assert.ok(options.stdout.split('\n').includes(option), option);
  });

  it('shows examples in every command\'s help', async () => {
    const top = await run(['--help']);
    assert.match(top.stdout, /^Examples:\n {2}rxpush /m, 'rxpush --help');
    // Every command the top-level help lists, including those added later.
    const commands = [...(top.stdout.split('Commands:\n')[1] ?? '').matchAll(/^ {2}rxpush (\w+)/gm)].map((match) => match[1] ?? '');
    assert.ok(commands.includes('push') && commands.includes('completion'), top.stdout);
    for (const command of commands) {
      const help = await run([command, '--help']);
      assert.equal(help.code, 0, command);
      assert.match(help.stdout, /^Examples:\n {2}(\S+=\S+ )?rxpush /m, `rxpush ${command} --help`);
    }
    assert.deepEqual(await run(['completion', 'bash']), { code: 2, stdout: '', stderr: `rxpush: unexpected argument "bash"; see 'rxpush --help'\n` });
  });
});
