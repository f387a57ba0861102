import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import { checkManifestReference, checkRepository, isLoopbackHost, parseRegistry, redactUrl, resolveLocation, withQuery } from '../src/urls.ts';

const digest = `sha256:${'ab'.repeat(32)}`;

describe('urls', () => {
  it('redacts _state and signed query values but keeps the digest readable', () => {
    const url = new URL(`https://user:pw@r.example/v2/app/blobs/uploads/u1?_state=c2VjcmV0&digest=${digest}&X-Amz-Signature=abc`);
    assert.equal(redactUrl(url), `https://r.example/v2/app/blobs/uploads/u1?_state=REDACTED&digest=${digest}&X-Amz-Signature=REDACTED`);
    assert.equal(redactUrl('http://r.example/v2/'), 'http://r.example/v2/');
  });

  it('adds digest= after the query a Location already has', () => {
    const location = new URL('http://r.example/v2/app/blobs/uploads/u1?_state=a%2Bb%3D&x=1');
    const url = withQuery(location, 'digest', digest);
    assert.equal(url.search, `?_state=a%2Bb%3D&x=1&digest=${digest}`);
    assert.equal(url.searchParams.get('_state'), 'a+b=');
    assert.equal(withQuery(new URL('http://r.example/v2/app/blobs/uploads/u1'), 'digest', digest).search, `?digest=${digest}`);
  });

  it('replaces a digest= the Location already has rather than sending two', () => {
    const location = new URL('http://r.example/v2/app/blobs/uploads/u1?digest=&_state=s%2B&%64igest=sha256:00');
    const url = withQuery(location, 'digest', digest);
    assert.equal(url.search, `?_state=s%2B&digest=${digest}`);
    assert.deepEqual(url.searchParams.getAll('digest'), [digest]);
    assert.equal(withQuery(new URL('http://r.example/u?&a=1&&'), 'digest', digest).search, `?a=1&digest=${digest}`);
  });

  it('resolves relative and absolute Locations against the request URL', () => {
    const request = new URL('https://r.example/v2/app/blobs/uploads/');
    assert.equal(resolveLocation('/v2/app/blobs/uploads/u1?_state=s', request).href, 'https://r.example/v2/app/blobs/uploads/u1?_state=s');
    assert.equal(resolveLocation('u2', request).href, 'https://r.example/v2/app/blobs/uploads/u2');
    assert.equal(resolveLocation('https://upload.example/x?y=1', request).href, 'https://upload.example/x?y=1');
  });

  it('knows loopback hosts, and only those', () => {
    for (const host of ['localhost', '127.0.0.1', '127.1.2.3', '[::1]', 'app.localhost']) assert.equal(isLoopbackHost(host), true, host);
    for (const host of ['10.0.0.1', 'registry.example', '127.0.0.1.example', '[::2]', 'localhost.example']) assert.equal(isLoopbackHost(host), false, host);
  });

  it('rejects repository names, references and registries that would change the URL', () => {
    assert.equal(checkRepository('team/app-1'), 'team/app-1');
    for (const bad of ['../app', 'App', 'app/', 'app?x=1', 'a//b', '']) assert.throws(() => checkRepository(bad), { code: 'INVALID_REFERENCE' }, bad);
    assert.equal(checkManifestReference('app', 'v1.0'), 'v1.0');
    assert.equal(checkManifestReference('app', digest), digest);
    assert.throws(() => checkManifestReference('app', '../x'), { code: 'INVALID_REFERENCE' });
    assert.deepEqual(parseRegistry('localhost:5000'), { host: 'localhost:5000', hostname: 'localhost' });
    for (const bad of ['r.example/path', 'user@r.example', 'r.example?x', 'https://r.example']) assert.throws(() => parseRegistry(bad), { code: 'USAGE' }, bad);
  });
});
