import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import { jsonRenderer } from '../src/progress/json-renderer.ts';
import { quietRenderer } from '../src/progress/quiet-renderer.ts';
import { A, B, CONFIG, MANIFEST_DIGEST, exists, manifestPushed, mounted, preparing, pushed, pushing, retrying, sink, waiting } from './events.ts';

describe('jsonRenderer', () => {
  it("writes Docker's jsonmessage objects, one a line, byte for byte as Docker's daemon does", () => {
    const out = sink();
    const renderer = jsonRenderer(out);
    renderer.start('localhost:5000/app');
    for (const event of [preparing(A), preparing(CONFIG, 'config'), waiting(A), exists(B), mounted('eeeeeeeeeeee', 'library/base')]) renderer.next(event);
    for (const event of [pushing(A, 0, 2_000_000), pushing(A, 1_000_000, 2_000_000), pushing(B, 1_050_000), retrying(2000, A), retrying(1000), pushed(A)]) {
      renderer.next(event);
    }
    renderer.next(manifestPushed('1.0'));
    renderer.complete();

    const bar = `[${'='.repeat(25)}\\u003e${' '.repeat(25)}]      1MB/2MB`;
    assert.deepEqual(out.text.split('\n'), [
      '{"status":"The push refers to repository [localhost:5000/app]"}',
      '{"status":"Preparing","progressDetail":{},"id":"aaaaaaaaaaaa"}',
      '{"status":"Waiting","progressDetail":{},"id":"aaaaaaaaaaaa"}',
      '{"status":"Layer already exists","progressDetail":{},"id":"bbbbbbbbbbbb"}',
      '{"status":"Mounted from library/base","progressDetail":{},"id":"eeeeeeeeeeee"}',
      `{"status":"Pushing","progressDetail":{"total":2000000},"progress":"[\\u003e${' '.repeat(50)}]       0B/2MB","id":"aaaaaaaaaaaa"}`,
      `{"status":"Pushing","progressDetail":{"current":1000000,"total":2000000},"progress":"${bar}","id":"aaaaaaaaaaaa"}`,
      '{"status":"Pushing","progressDetail":{"current":1050000},"progress":"  1.05MB","id":"bbbbbbbbbbbb"}',
      '{"status":"Retrying in 2 seconds","progressDetail":{},"id":"aaaaaaaaaaaa"}',
      '{"status":"Retrying in 1 second","progressDetail":{}}',
      '{"status":"Pushed","progressDetail":{},"id":"aaaaaaaaaaaa"}',
      `{"status":"1.0: digest: ${MANIFEST_DIGEST} size: 528"}`,
      `{"progressDetail":{},"aux":{"Tag":"1.0","Digest":"${MANIFEST_DIGEST}","Size":528}}`,
      '',
    ]);
    for (const line of out.text.trim().split('\n')) JSON.parse(line);
  });

  it('writes a failure as an errorDetail object', () => {
    const out = sink();
    jsonRenderer(out).error(new Error('PUT https://r.example/v2/app/manifests/1.0 → 400 MANIFEST_INVALID <bad>'));
    assert.equal(
      out.text,
      '{"errorDetail":{"message":"PUT https://r.example/v2/app/manifests/1.0 → 400 MANIFEST_INVALID \\u003cbad\\u003e"},' +
        '"error":"PUT https://r.example/v2/app/manifests/1.0 → 400 MANIFEST_INVALID \\u003cbad\\u003e"}\n',
    );
  });
});

describe('quietRenderer', () => {
  it('writes only the reference of each pushed tag, or the digest reference without one', () => {
    const out = sink();
    const renderer = quietRenderer(out);
    renderer.start('localhost:5000/app');
    for (const event of [preparing(A), pushing(A, 1, 2), pushed(A), manifestPushed('1.0'), manifestPushed(undefined)]) renderer.next(event);
    renderer.error(new Error('boom'));
    assert.equal(out.text, `localhost:5000/app:1.0\nlocalhost:5000/app@${MANIFEST_DIGEST}\n`);
  });
});
