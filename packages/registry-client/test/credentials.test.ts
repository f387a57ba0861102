import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import { basicAuthorization, hideAlways, hideCredentials, hideSecrets } from '../src/auth/credentials.ts';

describe('basicAuthorization', () => {
  it('is Basic and base64 of USER:PASSWORD', () => {
    assert.equal(basicAuthorization('alice', 'hunter2'), 'Basic YWxpY2U6aHVudGVyMg==');
  });

  it('encodes UTF-8, and keeps a colon in the password (only the first colon splits)', () => {
    assert.equal(basicAuthorization('jürgen', 'pä:ss'), 'Basic asO8cmdlbjpww6Q6c3M=');
  });
});

describe('hideCredentials', () => {
  it('hides the password, the identity token and the registry token, not the username', () => {
    const credentials = { username: 'alice', password: 'hunter2', identityToken: 'refresh-xyz', registryToken: 'bearer-abc', source: '--creds' };
    assert.equal(hideCredentials('alice hunter2 refresh-xyz bearer-abc', credentials), 'alice *** *** ***');
  });

  it('leaves secrets shorter than 4 characters, which would be found inside ordinary words', () => {
    assert.equal(hideCredentials('a bad request', { username: 'u', password: 'bad', source: '--creds' }), 'a bad request');
  });
});

describe('hideAlways', () => {
  it('hides a secret of the process (a proxy password) wherever the credentials of a request are hidden, and with none', () => {
    hideAlways('pr0xy-pw');
    hideAlways('abc'); // too short to hide, as a request's own
    assert.equal(hideSecrets('got pr0xy-pw and abc', []), 'got *** and abc');
    assert.equal(hideCredentials('pr0xy-pw hunter2', { username: 'alice', password: 'hunter2', source: '--creds' }), '*** ***');
  });
});
