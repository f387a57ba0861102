import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import type { PushEvent } from '@rxpush/core';

import { jsonRenderer } from '../src/progress/json-renderer.ts';
import { plainRenderer } from '../src/progress/plain-renderer.ts';
import { ttyRenderer } from '../src/progress/tty-renderer.ts';
import { A, B, CONFIG, MANIFEST_DIGEST, exists, manifestPushed, mounted, preparing, pushed, pushing, retrying, sink, waiting } from './events.ts';

describe('plainRenderer', () => {
  it('writes one line per state change, without byte counts or config blobs', () => {
    const out = sink();
    const renderer = plainRenderer(out);
    renderer.start('localhost:5000/app');
    const events = [
      preparing(A),
      preparing(B),
      preparing(CONFIG, 'config'),
      waiting(A),
      exists(B),
      pushing(A, 0, 2_000_000),
      pushing(A, 1_000_000, 2_000_000),
      retrying(5000, A),
      pushing(A, 0, 2_000_000),
      pushing(A, 2_000_000, 2_000_000),
      pushed(A),
      pushed(CONFIG, 'config'),
      mounted('eeeeeeeeeeee', 'library/base'),
      retrying(1000),
    ];
    for (const event of events) renderer.next(event);
    renderer.next(manifestPushed('1.0'));
    renderer.next(manifestPushed('latest'));
    renderer.complete();

    assert.equal(
      out.text,
      [
        'The push refers to repository [localhost:5000/app]',
        'aaaaaaaaaaaa: Preparing',
        'bbbbbbbbbbbb: Preparing',
        'aaaaaaaaaaaa: Waiting',
        'bbbbbbbbbbbb: Layer already exists',
        'aaaaaaaaaaaa: Pushing',
        'aaaaaaaaaaaa: Retrying in 5 seconds',
        'aaaaaaaaaaaa: Pushing',
        'aaaaaaaaaaaa: Pushed',
        'eeeeeeeeeeee: Mounted from library/base',
        'Retrying in 1 second',
        `1.0: digest: ${MANIFEST_DIGEST} size: 528`,
        `latest: digest: ${MANIFEST_DIGEST} size: 528`,
        '',
      ].join('\n'),
    );
  });

  it('writes nothing of its own when the push fails: the error goes to stderr', () => {
    const out = sink();
    const renderer = plainRenderer(out);
    renderer.next(preparing(A));
    renderer.error(new Error('boom'));
    assert.equal(out.text, 'aaaaaaaaaaaa: Preparing\n');
  });
});

describe('the signed line', () => {
  const signed: PushEvent = {
    type: 'signed-manifest',
    digest: MANIFEST_DIGEST,
    signature: MANIFEST_DIGEST,
    scheme: 'cosign',
    keyId: 'ABCD:EFGH',
    tags: ['1.0', 'latest'],
  };

  it('says TAG: signed with KEYID for every tag, in plain, tty and json output', () => {
    for (const make of [plainRenderer, (out: ReturnType<typeof sink>) => ttyRenderer(out, { columns: 80 })]) {
      const out = sink();
      make(out).next(signed);
      assert.equal(out.text, '1.0: signed with ABCD:EFGH\nlatest: signed with ABCD:EFGH\n');
    }
    const out = sink();
    jsonRenderer(out).next({ ...signed, tags: [] });
    assert.equal(out.text, `${JSON.stringify({ status: `${MANIFEST_DIGEST}: signed with ABCD:EFGH` })}\n`);
  });
});
