import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import { InvalidResponseError, PushError, RegistryError } from '@rxpush/core';

import { isCertificateError, isPlainHttpAnswer, parseErrorBody, registryError, retriesSpent, transportError } from '../src/errors.ts';

const json = (value: unknown): Uint8Array => Buffer.from(JSON.stringify(value));

describe('errors', () => {
  it('reads the first entry of a registry error body', () => {
    const body = json({ errors: [{ code: 'DIGEST_INVALID', message: 'provided digest did not match uploaded content', detail: { Digest: 'x' } }, { code: 'OTHER' }] });
    assert.deepEqual(parseErrorBody(body, 'application/json'), { code: 'DIGEST_INVALID', message: 'provided digest did not match uploaded content' });
    const withDigest = json({ errors: [{ code: 'MANIFEST_BLOB_UNKNOWN', message: 'blob unknown to registry', detail: 'sha256:abc' }] });
    assert.deepEqual(parseErrorBody(withDigest, 'application/json'), { code: 'MANIFEST_BLOB_UNKNOWN', message: 'blob unknown to registry (sha256:abc)' });
  });

  it('tolerates garbage, HTML, truncated JSON and odd shapes', () => {
    assert.deepEqual(parseErrorBody(Buffer.from('<html><body>502 Bad Gateway</body></html>'), 'text/html'), {});
    assert.deepEqual(parseErrorBody(Buffer.from('{"errors":[{"code":"BLOB_UNKN'), 'application/json'), {});
    assert.deepEqual(parseErrorBody(json({ errors: 'nope' }), 'application/json'), {});
    assert.deepEqual(parseErrorBody(json({ errors: [null] }), 'application/json'), {});
    assert.deepEqual(parseErrorBody(json(null), 'application/json'), {});
    assert.deepEqual(parseErrorBody(json({ errors: [{ code: 'bad code\n', message: 42 }] }), 'application/json'), {});
    assert.deepEqual(parseErrorBody(Buffer.from('upload too large\nsecond line'), 'text/plain; charset=utf-8'), { message: 'upload too large second line' });
    assert.deepEqual(parseErrorBody(new Uint8Array(0), undefined), {});
    const long = parseErrorBody(json({ errors: [{ code: 'X', message: 'm'.repeat(1000) }] }), 'application/json');
    assert.equal(long.message?.length, 201);
  });

  it('names the request like ky, with the registry code and message', () => {
    const error = registryError(
      { method: 'PUT', url: 'http://127.0.0.1:5000/v2/app/blobs/uploads/u1?_state=REDACTED&digest=sha256:ab' },
      400,
      { code: 'DIGEST_INVALID', message: 'provided digest did not match uploaded content' },
      { authenticated: false },
    );
    assert.equal(error.message, 'PUT http://127.0.0.1:5000/v2/app/blobs/uploads/u1?_state=REDACTED&digest=sha256:ab → 400 DIGEST_INVALID: provided digest did not match uploaded content');
    assert.equal(error.code, 'REGISTRY_ERROR');
    const denied = registryError({ method: 'HEAD', url: 'https://r.example/v2/app/blobs/sha256:ab' }, 401, {}, { authenticated: false });
    assert.equal(denied.code, 'UNAUTHORIZED');
    assert.match(denied.message, /^HEAD https:\/\/r\.example\/v2\/app\/blobs\/sha256:ab → 401; the registry wants credentials; pass --creds/);
    // Go's text for a route the registry lacks repeats the status, which is said once.
    const noRoute = registryError({ method: 'PUT', url: 'http://127.0.0.1:5000/v2/app/x' }, 404, { message: '404 page not found' }, { authenticated: false });
    assert.equal(noRoute.message, 'PUT http://127.0.0.1:5000/v2/app/x → 404 page not found');
  });

  it('says what a registry that answers a push 405 may be, the hint after the registry\'s sentence without its full stop', () => {
    const url = 'http://127.0.0.1:5000/v2/app/blobs/uploads/';
    const mirror = registryError({ method: 'POST', url }, 405, { code: 'UNSUPPORTED', message: 'The operation is unsupported.' }, { authenticated: false });
    assert.equal(mirror.message, `POST ${url} → 405 UNSUPPORTED: The operation is unsupported; the registry does not take this request here: it may be read-only or a pull-through cache (a mirror); push to a registry that accepts pushes`);
    const readOnly = registryError({ method: 'POST', url }, 405, { message: 'Method not allowed' }, { authenticated: false });
    assert.match(readOnly.message, /→ 405 Method not allowed; the registry does not take this request here/);
    // Without a hint the registry's words stay as they were.
    const teapot = registryError({ method: 'GET', url }, 418, { message: 'I am a teapot.' }, { authenticated: false });
    assert.equal(teapot.message, `GET ${url} → 418 I am a teapot.`);
  });

  it('says an error answer with neither code nor message gives no reason, and where to look; a bare 404 or HEAD answer is left as it is', () => {
    const url = 'http://127.0.0.1:5000/v2/app/manifests/1.0';
    for (const status of [400, 409, 422]) {
      assert.equal(
        registryError({ method: 'PUT', url }, status, {}, { authenticated: false }).message,
        `PUT ${url} → ${status}; the registry refused the request without saying why (no error code or message); its log says more`,
      );
    }
    assert.equal(registryError({ method: 'GET', url }, 404, {}, { authenticated: false }).message, `GET ${url} → 404`);
    assert.equal(registryError({ method: 'HEAD', url }, 400, {}, { authenticated: false }).message, `HEAD ${url} → 400`);
    assert.equal(registryError({ method: 'PUT', url }, 409, { code: 'DENIED_CONFLICT' }, { authenticated: false }).message, `PUT ${url} → 409 DENIED_CONFLICT`);
  });

  it('gives a hint that fits the request: chunk sizes for uploads, read-only registries for writes', () => {
    const hint = (method: string, path: string, status: number): string => {
      const error = registryError({ method, url: `http://127.0.0.1:5000/v2/app/${path}` }, status, {}, { authenticated: false });
      return error.message.split(`→ ${status}; `)[1] ?? '(none)';
    };
    assert.equal(hint('PATCH', 'blobs/uploads/u1', 413), 'the registry refuses a body this large; try a smaller --chunk-size');
    assert.equal(hint('PUT', 'manifests/1.0', 413), 'the registry (or a proxy in front of it) refuses a body this large');
    assert.equal(hint('HEAD', `blobs/sha256:${'a'.repeat(64)}`, 413), '(none)');
    assert.equal(hint('PUT', 'blobs/uploads/u1?digest=x', 416), 'the registry holds other bytes of the upload than rxpush sent; push again, which starts the upload over');
    assert.equal(hint('HEAD', `blobs/sha256:${'a'.repeat(64)}`, 416), '(none)');
    assert.match(hint('PUT', 'manifests/1.0', 405), /^the registry does not take this request here: it may be read-only/);
    const notTheApi = /^the distribution API gives no such answer here; is something other than the registry/;
    assert.match(hint('HEAD', 'manifests/1', 405), notTheApi);
    for (const status of [200, 204, 301, 304]) assert.match(hint('POST', 'blobs/uploads/', status), notTheApi);
    assert.equal(hint('HEAD', `blobs/sha256:${'a'.repeat(64)}`, 400), '(none)');
  });

  it('tells a plain-HTTP answer from a certificate problem', () => {
    const wrongVersion = Object.assign(new Error('ssl3_get_record:wrong version number'), { code: 'ERR_SSL_WRONG_VERSION_NUMBER' });
    const selfSigned = Object.assign(new Error('self-signed certificate'), { code: 'DEPTH_ZERO_SELF_SIGNED_CERT' });
    assert.equal(isPlainHttpAnswer(wrongVersion), true);
    assert.equal(isPlainHttpAnswer(new Error('error:0A0000C6:SSL routines::packet length too long')), true);
    assert.equal(isPlainHttpAnswer(selfSigned), false);
    assert.equal(isCertificateError(selfSigned), true);
    assert.equal(isCertificateError(wrongVersion), false);
  });

  it('turns transport failures into typed errors that say what to do', () => {
    const url = 'https://r.example/v2/';
    const refused = transportError(Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' }), { method: 'GET', url });
    assert.equal(refused.message, 'GET https://r.example/v2/ failed: connection refused; is the registry running and the address right?');
    const cert = transportError(Object.assign(new Error('self-signed certificate'), { code: 'DEPTH_ZERO_SELF_SIGNED_CERT' }), { method: 'GET', url });
    assert.equal((cert as { code?: string }).code, 'TLS');
    assert.match(cert.message, /--ca-file PATH.*--tls-verify=false/);
    // A name the certificate does not hold, or a certificate out of its dates: --ca-file would not help.
    const altname = transportError(
      Object.assign(new Error("Hostname/IP does not match certificate's altnames: IP: 127.0.0.2 is not in the cert's list: 127.0.0.1"), { code: 'ERR_TLS_CERT_ALTNAME_INVALID' }),
      { method: 'GET', url },
    );
    assert.equal((altname as { code?: string }).code, 'TLS');
    assert.equal(
      altname.message,
      `GET ${url} failed: the TLS certificate is for other names (Hostname/IP does not match certificate's altnames: IP: 127.0.0.2 is not in the cert's list: 127.0.0.1); use the registry's name as its certificate gives it, or --tls-verify=false if you trust the network`,
    );
    const expired = transportError(Object.assign(new Error('certificate has expired'), { code: 'CERT_HAS_EXPIRED' }), { method: 'GET', url });
    assert.equal(expired.message, `GET ${url} failed: the registry's TLS certificate has expired (CERT_HAS_EXPIRED); check this machine's clock, have the certificate renewed, or pass --tls-verify=false if you trust the network`);
    assert.match(transportError(Object.assign(new Error('certificate is not yet valid'), { code: 'CERT_NOT_YET_VALID' }), { method: 'GET', url }).message, /certificate is not valid yet \(CERT_NOT_YET_VALID\); check this machine's clock/);
    // A registry's alert for a client certificate it wants, as OpenSSL 3.0 (Node 20) and 3.5 (Node 24) name it.
    for (const code of ['ERR_SSL_SSLV3_ALERT_BAD_CERTIFICATE', 'ERR_SSL_SSL/TLS_ALERT_BAD_CERTIFICATE', 'ERR_SSL_TLSV13_ALERT_CERTIFICATE_REQUIRED']) {
      const alert = transportError(Object.assign(new Error('alert'), { code }), { method: 'GET', url });
      assert.equal((alert as { code?: string }).code, 'TLS', code);
      assert.equal(alert.message, `GET ${url} failed: the registry wants a client certificate it trusts and closed the connection (${code}); put one as NAME.cert and NAME.key (PEM) in --cert-dir DIR or /etc/docker/certs.d/r.example, or check the one there`);
    }
    const timeout = transportError(Object.assign(new Error('Headers Timeout Error'), { code: 'UND_ERR_HEADERS_TIMEOUT' }), { method: 'GET', url });
    assert.equal((timeout as { code?: string }).code, 'TIMEOUT');
    const controller = new AbortController();
    controller.abort();
    assert.equal((transportError(new Error('aborted'), { method: 'GET', url, signal: controller.signal }) as { code?: string }).code, 'CANCELLED');
    const fromBody = new Error('the layer file vanished');
    assert.equal(transportError(new Error('other'), { method: 'PUT', url, bodyError: fromBody }), fromBody);
  });

  it('blames the connection, not the body, when undici destroyed the body because the connection broke', () => {
    const url = 'https://r.example/v2/app/blobs/uploads/1';
    const reset = Object.assign(new Error('read ECONNRESET'), { code: 'ECONNRESET' });
    const error = transportError(reset, { method: 'PUT', url, bodyError: reset });
    assert.equal((error as { code?: string }).code, 'REGISTRY_UNREACHABLE');
    assert.equal(error.message, `PUT ${url} failed: the connection was closed before the registry answered; try again`);
    const closed = Object.assign(new Error('other side closed'), { code: 'UND_ERR_SOCKET' });
    const spent = retriesSpent(transportError(closed, { method: 'PUT', url, bodyError: closed }), 3);
    assert.match(spent.message, /try again \(gave up after 3 attempts\)$/);
    assert.deepEqual([(spent as { retryable?: boolean }).retryable, (spent as { attempts?: number }).attempts], [false, 3]);
  });

  it('names the request, not a bare connect error, when the connection for a streamed body is refused', () => {
    const url = 'http://127.0.0.1:5000/v2/app/blobs/uploads/1';
    const refused = Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:5000'), { code: 'ECONNREFUSED' });
    const error = transportError(refused, { method: 'PATCH', url, bodyError: refused });
    assert.equal((error as { code?: string }).code, 'REGISTRY_UNREACHABLE');
    assert.match(error.message, /^PATCH http:\/\/127\.0\.0\.1:5000\/v2\/app\/blobs\/uploads\/1 failed: connection refused/);
  });
});

describe('auth error classes', () => {
  it('fix their code, carry its brand, and are recognised by instanceof across two installed copies', async () => {
    const here = await import('../src/index.ts');
    // The same modules loaded a second time, as a second copy in node_modules would be.
    const other = (await import(`../src/auth/auth-error.ts?copy=${Date.now()}`)) as typeof import('../src/auth/auth-error.ts');
    const otherParse = (await import(`../src/auth/parse-challenges.ts?copy=${Date.now()}`)) as typeof import('../src/auth/parse-challenges.ts');
    assert.notEqual(other.CredentialsError, here.CredentialsError);
    let challengeError: unknown;
    try {
      otherParse.parseChallenges('Bearer realm="unterminated');
    } catch (error) {
      challengeError = error;
    }
    const made: [unknown, Function, string][] = [
      [new other.CredentialsError('x'), here.CredentialsError, 'CREDENTIALS'],
      [new other.TokenRealmError('x'), here.TokenRealmError, 'TOKEN_REALM'],
      [new other.InsufficientScopeError('x', { scopes: ['repository:app:pull'], anonymous: true }), here.InsufficientScopeError, 'INSUFFICIENT_SCOPE'],
      [challengeError, here.ChallengeParseError, 'INVALID_CHALLENGE'],
    ];
    for (const [error, own, code] of made) {
      assert.ok(error instanceof own, `${String(error)} is a ${own.name} here too`);
      assert.equal((error as { code: string }).code, code);
      assert.equal((error as Record<symbol, unknown>)[Symbol.for(`rxpush.error.${code}`)], true);
      assert.ok(error instanceof PushError);
      assert.equal(error instanceof here.AuthError, code !== 'INVALID_CHALLENGE');
      // None passes for a registry's answer: they have no method, URL or status.
      assert.ok(!(error instanceof RegistryError) && !(error instanceof InvalidResponseError));
      for (const [, otherClass] of made) if (otherClass !== own) assert.ok(!(error instanceof otherClass), `${String(error)} is not a ${otherClass.name}`);
    }
  });
});
