import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import { ttyRenderer } from '../src/progress/tty-renderer.ts';
import { screen } from './screen.ts';
import { A, B, CONFIG, MANIFEST_DIGEST, exists, manifestPushed, mounted, preparing, pushed, pushing, retrying, sink, waiting } from './events.ts';

/** What rewriting the line `up` lines above the cursor writes. */
const redraw = (up: number, text: string) => `\x1b[${up}A\x1b[2K${text}\x1b[${up}B\r`;
const HALF = `[${'='.repeat(25)}>${' '.repeat(25)}]      1MB/2MB`;

describe('ttyRenderer', () => {
  it('writes a line per layer, then rewrites each in place with cursor movement', (t) => {
    t.mock.timers.enable({ apis: ['setTimeout', 'Date'] });
    const out = sink();
    const renderer = ttyRenderer(out);
    renderer.start('localhost:5000/app');
    for (const event of [preparing(A), preparing(B), waiting(A), waiting(B), pushing(A, 0, 2_000_000), exists(B), pushing(A, 1_000_000, 2_000_000), pushed(A)]) {
      renderer.next(event);
    }
    renderer.next(manifestPushed('1.0'));
    renderer.complete();

    assert.equal(
      out.text,
      'The push refers to repository [localhost:5000/app]\n' +
        'aaaaaaaaaaaa: Preparing\n' +
        'bbbbbbbbbbbb: Preparing\n' +
        redraw(2, 'aaaaaaaaaaaa: Waiting') +
        redraw(1, 'bbbbbbbbbbbb: Waiting') +
        redraw(2, `aaaaaaaaaaaa: Pushing [>${' '.repeat(50)}]       0B/2MB`) +
        redraw(1, 'bbbbbbbbbbbb: Layer already exists') +
        redraw(2, `aaaaaaaaaaaa: Pushing ${HALF}`) +
        redraw(2, 'aaaaaaaaaaaa: Pushed') +
        `1.0: digest: ${MANIFEST_DIGEST} size: 528\n`,
    );
  });

  it('does not show config blobs', () => {
    const out = sink();
    const renderer = ttyRenderer(out);
    for (const event of [preparing(CONFIG, 'config'), pushing(CONFIG, 10, 20, 'config'), pushed(CONFIG, 'config'), exists(CONFIG, 'config')]) renderer.next(event);
    renderer.complete();
    assert.equal(out.text, '');
  });

  it('redraws byte counts at most every 100 ms, but state changes at once', (t) => {
    t.mock.timers.enable({ apis: ['setTimeout', 'Date'] });
    const out = sink();
    const renderer = ttyRenderer(out);
    renderer.next(pushing(A, 0, 2_000_000));
    renderer.next(pushing(A, 500_000, 2_000_000));
    const drawn = out.text;
    t.mock.timers.tick(10);
    renderer.next(pushing(A, 900_000, 2_000_000));
    t.mock.timers.tick(40);
    renderer.next(pushing(A, 1_000_000, 2_000_000));
    assert.equal(out.text, drawn, 'nothing is drawn within 100 ms of the last redraw');

    t.mock.timers.tick(50);
    assert.equal(out.text, drawn + redraw(1, `aaaaaaaaaaaa: Pushing ${HALF}`), 'the latest count is drawn when the 100 ms are up');

    renderer.next(pushing(A, 1_500_000, 2_000_000));
    renderer.next(pushed(A));
    renderer.complete();
    assert.ok(out.text.endsWith(redraw(1, 'aaaaaaaaaaaa: Pushed')));
    assert.ok(!out.text.includes('1.5MB'), 'a count overtaken by a state change is never drawn');
  });

  it('draws a pending count when the push ends before the timer fires', (t) => {
    t.mock.timers.enable({ apis: ['setTimeout', 'Date'] });
    const out = sink();
    const renderer = ttyRenderer(out);
    renderer.next(pushing(A, 0, 2_000_000));
    renderer.next(pushing(A, 500_000, 2_000_000));
    renderer.next(pushing(A, 1_000_000, 2_000_000));
    renderer.error(new Error('boom'));
    assert.ok(out.text.endsWith(redraw(1, `aaaaaaaaaaaa: Pushing ${HALF}`)));
    const after = out.text;
    t.mock.timers.tick(1000);
    assert.equal(out.text, after, 'no timer is left behind');
  });

  it('shows only the bytes while the total is unknown, and no bar on a narrow terminal', () => {
    const out = sink();
    const renderer = ttyRenderer(out, { columns: 80 });
    renderer.next(pushing(A, 1_050_000));
    renderer.next(pushing(B, 1_000_000, 2_000_000));
    renderer.complete();
    assert.equal(out.text, 'aaaaaaaaaaaa: Pushing   1.05MB\n' + 'bbbbbbbbbbbb: Pushing      1MB/2MB\n');
  });

  it("shows mounts and retries in the blob's line, and a retry of no blob on a line of its own", () => {
    const out = sink();
    const renderer = ttyRenderer(out);
    renderer.next(preparing(A));
    renderer.next(mounted(B, 'library/base'));
    renderer.next(retrying(5000, A));
    renderer.next(retrying(1000));
    renderer.next(retrying(2000));
    renderer.complete();
    assert.equal(
      out.text,
      'aaaaaaaaaaaa: Preparing\n' +
        'bbbbbbbbbbbb: Mounted from library/base\n' +
        redraw(2, 'aaaaaaaaaaaa: Retrying in 5 seconds') +
        'Retrying in 1 second\n' +
        redraw(1, 'Retrying in 2 seconds'),
    );
  });

  it('starts a new block of lines after each digest line, as Docker does between tags', () => {
    const out = sink();
    const renderer = ttyRenderer(out);
    renderer.next(preparing(A));
    renderer.next(manifestPushed('v1'));
    renderer.next(preparing(A));
    renderer.next(pushed(A));
    renderer.next(manifestPushed(undefined));
    renderer.complete();
    assert.equal(
      out.text,
      'aaaaaaaaaaaa: Preparing\n' +
        `v1: digest: ${MANIFEST_DIGEST} size: 528\n` +
        'aaaaaaaaaaaa: Preparing\n' +
        redraw(1, 'aaaaaaaaaaaa: Pushed') +
        `digest: ${MANIFEST_DIGEST} size: 528\n`,
    );
  });

  it('keeps redrawing each layer in its place after log lines went below the display', () => {
    const C = 'eeeeeeeeeeee';
    const terminal = screen(100);
    const renderer = ttyRenderer(terminal, { columns: 100, intervalMs: 0 });
    const log = (text: string): void => {
      terminal.write(text);
      renderer.logged?.(text);
    };
    renderer.start('localhost:5000/app');
    for (const event of [preparing(A), preparing(B), waiting(A), waiting(B)]) renderer.next(event);
    log('rxpush: warning: digest cache write failed (ENOSPC: no space left on device, write); going on without it, every blob is checked\n');
    renderer.next(pushing(A, 1_000_000, 2_000_000));
    renderer.next(preparing(C));
    log('rxpush: warning: short\n');
    for (const event of [pushed(A), exists(B), pushed(C)]) renderer.next(event);
    renderer.next(manifestPushed('1.0'));
    renderer.complete();

    assert.deepEqual(terminal.lines, [
      'The push refers to repository [localhost:5000/app]',
      'aaaaaaaaaaaa: Pushed',
      'bbbbbbbbbbbb: Layer already exists',
      // 123 characters wrap onto a second row of the 100: both rows are counted.
      'rxpush: warning: digest cache write failed (ENOSPC: no space left on device, write); going on withou',
      't it, every blob is checked',
      'eeeeeeeeeeee: Pushed',
      'rxpush: warning: short',
      `1.0: digest: ${MANIFEST_DIGEST} size: 528`,
    ]);
  });

  it('takes back the waiting line when the push starts, or fails, unless a log line went below it', () => {
    const started = screen(100);
    const renderer = ttyRenderer(started, { columns: 100, intervalMs: 0 });
    renderer.waiting?.('Reading docker-archive:/dev/stdin…');
    renderer.waiting?.('Reading docker-archive:/dev/stdin…');
    renderer.start('localhost:5000/app');
    for (const event of [preparing(A), pushed(A)]) renderer.next(event);
    renderer.next(manifestPushed('1.0'));
    renderer.complete();
    assert.deepEqual(started.lines, ['The push refers to repository [localhost:5000/app]', 'aaaaaaaaaaaa: Pushed', `1.0: digest: ${MANIFEST_DIGEST} size: 528`]);

    const failed = screen(100);
    const failing = ttyRenderer(failed, { columns: 100, intervalMs: 0 });
    failing.waiting?.('Reading docker-archive:/dev/stdin…');
    failing.error(new Error('the archive is damaged'));
    assert.equal(failed.lines.join(''), '', 'the source failed: its one line on stderr, nothing left on stdout');

    const logged = screen(100);
    const beside = ttyRenderer(logged, { columns: 100, intervalMs: 0 });
    beside.waiting?.('Reading docker-archive:/dev/stdin…');
    logged.write('rxpush: warning: something\n');
    beside.logged?.('rxpush: warning: something\n');
    beside.start('localhost:5000/app');
    beside.next(preparing(A));
    beside.next(pushed(A));
    beside.complete();
    assert.deepEqual(logged.lines, ['Reading docker-archive:/dev/stdin…', 'rxpush: warning: something', 'The push refers to repository [localhost:5000/app]', 'aaaaaaaaaaaa: Pushed']);

    // A line wider than the terminal is cut to one row, which one cursor-up takes back.
    const narrow = screen(20);
    const cut = ttyRenderer(narrow, { columns: 20, intervalMs: 0 });
    cut.waiting?.('Reading docker-archive:/a/very/long/path/app.tar…');
    assert.deepEqual(narrow.lines, ['Reading docker-arc…']);
    cut.start('r/app');
    assert.deepEqual(narrow.lines, ['The push refers to r', 'epository [r/app]']);
  });

  it('takes a terminal of 0 columns (a pseudo-terminal nobody sized) as 200 wide', () => {
    const out = sink();
    const renderer = ttyRenderer(out, { columns: 0, intervalMs: 0 });
    renderer.next(preparing(A));
    renderer.logged?.(`rxpush: warning: ${'x'.repeat(150)}\n`);
    renderer.next(pushed(A));
    assert.equal(out.text, 'aaaaaaaaaaaa: Preparing\n' + redraw(2, 'aaaaaaaaaaaa: Pushed'));
  });
});
