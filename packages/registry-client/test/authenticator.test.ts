import assert from 'node:assert/strict';
import { describe, it, type TestContext } from 'node:test';

import { DeniedError, InvalidResponseError, PushError, RegistryError, UnauthorizedError, type Logger } from '@rxpush/core';
import { MockAgent } from 'undici';

import { AuthError, ChallengeParseError, InsufficientScopeError, TokenRealmError, createAuthenticator } from '../src/index.ts';
import type { AuthenticatorOptions, Credentials } from '../src/index.ts';

const REGISTRY = 'https://registry.example';
const AUTH = 'https://auth.example';
const CHALLENGE = `Bearer realm="${AUTH}/token",service="registry.example"`;
const alice: Credentials = { username: 'alice', password: 'pa55w0rd!', source: '--creds' };
const basicAlice = `Basic ${Buffer.from('alice:pa55w0rd!').toString('base64')}`;

interface Seen {
  method: string;
  url: URL;
  headers: Record<string, string>;
  body: string;
}
type Reply = { status: number; body?: string | Buffer; headers?: Record<string, string> };

/** An authenticator for registry.example whose token requests go to a MockAgent, and a clock the test moves. */
function setup(t: TestContext, options: Partial<AuthenticatorOptions> = {}) {
  const agent = new MockAgent();
  agent.disableNetConnect();
  t.after(() => agent.close());
  const seen: Seen[] = [];
  const lines: { level: string; obj: object; msg?: string | undefined }[] = [];
  const logger: Logger = {
    debug: (obj, msg) => void lines.push({ level: 'debug', obj, msg }),
    info: (obj, msg) => void lines.push({ level: 'info', obj, msg }),
    warn: (obj, msg) => void lines.push({ level: 'warn', obj, msg }),
    error: (obj, msg) => void lines.push({ level: 'error', obj, msg }),
    child: () => logger,
  };
  const clock = { now: Date.parse('2024-05-01T12:00:00Z') };
  const auth = createAuthenticator({ registry: 'registry.example', dispatcher: agent, logger, now: () => clock.now, ...options });
  /** Answers requests to `path` on `origin` (persistently), recording what was sent. */
  const on = (method: string, origin: string, path: string, reply: (req: Seen) => Reply) => {
    agent
      .get(origin)
      .intercept({ method, path: (p) => p === path || p.startsWith(`${path}?`) })
      .reply((opts) => {
        const req = {
          method: opts.method,
          url: new URL(opts.path, origin),
          headers: { ...(opts.headers as Record<string, string>) },
          body: typeof opts.body === 'string' ? opts.body : opts.body === undefined || opts.body === null ? '' : Buffer.from(opts.body as Uint8Array).toString('utf8'),
        };
        seen.push(req);
        const answer = reply(req);
        return { statusCode: answer.status, data: answer.body ?? '', responseOptions: { headers: answer.headers ?? {} } };
      })
      .persist();
  };
  const ask = (scopes: string[], extra: { challenge?: string; rejected?: string; origin?: string } = {}) =>
    auth.authorize({ registry: 'registry.example', origin: REGISTRY, scopes, ...extra });
  return { auth, agent, seen, on, ask, clock, lines };
}

let issued = 0;
const tokenAnswer = (extra: object = {}): Reply => ({ status: 200, body: JSON.stringify({ token: `tok-${++issued}`, ...extra }), headers: { 'content-type': 'application/json' } });

describe('createAuthenticator: Bearer tokens', () => {
  it('asks for nothing before the registry has challenged, and reads no credentials', async (t) => {
    let loads = 0;
    const { ask, seen } = setup(t, { credentials: async () => (loads++, alice) });
    assert.equal(await ask(['repository:app:pull']), undefined);
    assert.equal(seen.length, 0);
    assert.equal(loads, 0);
  });

  it('gets a token with service, every scope and Basic credentials, and answers Bearer', async (t) => {
    const { ask, on, seen } = setup(t, { credentials: alice });
    on('GET', AUTH, '/token', () => ({ status: 200, body: JSON.stringify({ token: 'the-token', expires_in: 300 }) }));
    const header = await ask(['repository:app:push,pull', 'repository:base/os:pull'], { challenge: CHALLENGE });
    assert.equal(header, 'Bearer the-token');
    assert.equal(seen.length, 1);
    const { url, headers } = seen[0]!;
    assert.equal(url.searchParams.get('service'), 'registry.example');
    assert.deepEqual(url.searchParams.getAll('scope'), ['repository:app:pull,push', 'repository:base/os:pull']);
    assert.equal(url.searchParams.get('account'), 'alice');
    assert.equal(headers['authorization'], basicAlice);
  });

  it('asks anonymously when there are no credentials, and takes access_token', async (t) => {
    const { ask, on, seen } = setup(t);
    on('GET', AUTH, '/token', () => ({ status: 200, body: JSON.stringify({ access_token: 'anon' }) }));
    assert.equal(await ask(['repository:app:pull'], { challenge: CHALLENGE }), 'Bearer anon');
    assert.equal(seen[0]?.headers['authorization'], undefined);
    assert.equal(seen[0]?.url.searchParams.get('account'), null);
  });

  it("adds the scope the registry's challenge names to the ones asked for", async (t) => {
    const { ask, on, seen } = setup(t);
    on('GET', AUTH, '/token', () => tokenAnswer());
    await ask(['repository:app:pull'], { challenge: `${CHALLENGE},scope="repository:app:push,pull repository:other:pull"` });
    assert.deepEqual(seen[0]?.url.searchParams.getAll('scope'), ['repository:app:pull,push', 'repository:other:pull']);
  });

  it('reuses a token per scope set until it expires, and for scopes it covers', async (t) => {
    const { ask, on, seen, clock } = setup(t, { credentials: alice });
    on('GET', AUTH, '/token', () => tokenAnswer({ expires_in: 300 }));
    const first = await ask(['repository:app:push,pull'], { challenge: CHALLENGE });
    // The same set in another form, and a subset: no new request.
    assert.equal(await ask(['repository:app:pull,push']), first);
    assert.equal(await ask(['repository:app:pull']), first);
    assert.equal(seen.length, 1);
    // Another scope set: a token of its own, fetched before the request (the realm is known now).
    const mount = await ask(['repository:app:push,pull', 'repository:base:pull']);
    assert.notEqual(mount, first);
    assert.equal(seen.length, 2);
    clock.now += 299_000;
    assert.notEqual(await ask(['repository:app:pull,push']), first, 'a token about to expire is renewed');
    assert.equal(seen.length, 3);
  });

  it('assumes 60 seconds when expires_in is missing, counted from issued_at', async (t) => {
    const { ask, on, seen, clock } = setup(t);
    // Issued 20 s before our clock: 40 s left, renewed 4 s before that.
    on('GET', AUTH, '/token', () => tokenAnswer({ issued_at: new Date(clock.now - 20_000).toISOString() }));
    const first = await ask(['repository:app:pull'], { challenge: CHALLENGE });
    clock.now += 35_000;
    assert.equal(await ask(['repository:app:pull']), first);
    clock.now += 2_000;
    assert.notEqual(await ask(['repository:app:pull']), first);
    assert.equal(seen.length, 2);
  });

  it('ignores an issued_at from a clock far off, so tokens neither look expired nor live forever', async (t) => {
    const { ask, on, seen, clock } = setup(t);
    on('GET', AUTH, '/token', () => tokenAnswer({ expires_in: 60, issued_at: '2001-01-01T00:00:00Z' }));
    const first = await ask(['repository:app:pull'], { challenge: CHALLENGE });
    clock.now += 30_000;
    assert.equal(await ask(['repository:app:pull']), first);
    assert.equal(seen.length, 1);
  });

  it('replaces a rejected token once (invalid_token), and concurrent requests share the new one', async (t) => {
    const { ask, on, seen } = setup(t, { credentials: alice });
    on('GET', AUTH, '/token', () => tokenAnswer({ expires_in: 300 }));
    const stale = await ask(['repository:app:pull'], { challenge: CHALLENGE });
    if (stale === undefined) throw new Error('no token');
    const expired = `${CHALLENGE},error="invalid_token"`;
    const [a, b] = await Promise.all([
      ask(['repository:app:pull'], { challenge: expired, rejected: stale }),
      ask(['repository:app:pull'], { challenge: expired, rejected: stale }),
    ]);
    assert.notEqual(a, stale);
    assert.equal(a, b);
    // A request that failed with the old token after the refresh gets the new one without another fetch.
    assert.equal(await ask(['repository:app:pull'], { challenge: expired, rejected: stale }), a);
    assert.equal(seen.length, 2);
  });

  it('gives up (undefined) when a fresh token is rejected again, rather than loop', async (t) => {
    const { ask, on, seen } = setup(t);
    on('GET', AUTH, '/token', () => ({ status: 200, body: JSON.stringify({ token: 'always-the-same' }) }));
    const first = await ask(['repository:app:pull'], { challenge: CHALLENGE });
    assert.equal(first, 'Bearer always-the-same');
    assert.equal(await ask(['repository:app:pull'], { challenge: `${CHALLENGE},error="invalid_token"`, rejected: first }), undefined);
    assert.equal(seen.length, 2);
  });

  it('replaces a rejected token once, even when a request that started with the replacement reports it rejected', async (t) => {
    // The interleaving behind a flaky e2e run: A and B send with the first token, A's 401 gets a second
    // token, C (started after it landed) sends with the second and gets a 401 too, then B's 401 comes in.
    const { ask, on, seen } = setup(t, { credentials: alice });
    on('GET', AUTH, '/token', () => tokenAnswer({ expires_in: 300 }));
    const expired = `${CHALLENGE},error="invalid_token"`;
    const first = await ask(['repository:app:pull,push'], { challenge: CHALLENGE });
    if (first === undefined) throw new Error('no token');
    const second = await ask(['repository:app:pull,push'], { challenge: expired, rejected: first });
    if (second === undefined) throw new Error('no replacement');
    assert.notEqual(second, first);
    assert.equal(await ask(['repository:app:pull,push']), second, 'C starts with the replacement');
    assert.equal(await ask(['repository:app:pull,push'], { challenge: expired, rejected: second }), undefined, 'C: the replacement is not replaced');
    assert.equal(await ask(['repository:app:pull,push'], { challenge: expired, rejected: first }), second, 'B: the replacement, without a fetch');
    assert.equal(seen.length, 2);
  });

  it('marks the shared token a replacement when any concurrent caller reported a rejection', async (t) => {
    const { ask, on, seen } = setup(t, { credentials: alice });
    on('GET', AUTH, '/token', () => tokenAnswer({ expires_in: 300 }));
    const expired = `${CHALLENGE},error="invalid_token"`;
    const first = await ask(['repository:app:pull,push'], { challenge: CHALLENGE });
    if (first === undefined) throw new Error('no token');
    // Both report the first token at once and share one token request: what they get is a replacement.
    const [a, b] = await Promise.all([
      ask(['repository:app:pull,push'], { challenge: expired, rejected: first }),
      ask(['repository:app:pull,push'], { challenge: expired, rejected: first }),
    ]);
    if (a === undefined) throw new Error('no replacement');
    assert.equal(a, b);
    assert.equal(await ask(['repository:app:pull,push'], { challenge: expired, rejected: a }), undefined);
    assert.equal(seen.length, 2);
  });

  it('replaces a replacement that was later renewed and then rejected: the renewal is a token like the first', async (t) => {
    const { ask, on, seen, clock } = setup(t, { credentials: alice });
    on('GET', AUTH, '/token', () => tokenAnswer({ expires_in: 300 }));
    const expired = `${CHALLENGE},error="invalid_token"`;
    const first = await ask(['repository:app:pull'], { challenge: CHALLENGE });
    if (first === undefined) throw new Error('no token');
    const second = await ask(['repository:app:pull'], { challenge: expired, rejected: first });
    clock.now += 301_000;
    const renewed = await ask(['repository:app:pull']);
    if (renewed === undefined) throw new Error('no renewal');
    assert.notEqual(renewed, second);
    const replaced = await ask(['repository:app:pull'], { challenge: expired, rejected: renewed });
    assert.ok(replaced !== undefined && replaced !== renewed);
    assert.equal(seen.length, 4);
  });

  it('says credentials are needed when an anonymous token for exactly these scopes is short (insufficient_scope)', async (t) => {
    const { ask, on, seen } = setup(t);
    on('GET', AUTH, '/token', () => tokenAnswer());
    const anon = await ask(['repository:app:push,pull'], { challenge: CHALLENGE });
    if (anon === undefined) throw new Error('no token');
    await assert.rejects(ask(['repository:app:push,pull'], { challenge: `${CHALLENGE},error="insufficient_scope"`, rejected: anon }), (error: AuthError) => {
      assert.ok(error instanceof InsufficientScopeError && error.anonymous, String(error));
      assert.equal(error.code, 'INSUFFICIENT_SCOPE');
      assert.equal(error.message, 'registry.example wants credentials for repository:app:pull,push: an anonymous token does not allow it; pass credentials with --creds USER:PASS, --authfile PATH or docker login');
      return true;
    });
    assert.equal(seen.length, 1, 'the same grant is not asked for again');
  });

  it('says the account lacks the access when its token is short, naming the user but no secret', async (t) => {
    const { ask, on } = setup(t, { credentials: alice });
    on('GET', AUTH, '/token', () => tokenAnswer());
    const token = await ask(['repository:app:push,pull'], { challenge: CHALLENGE });
    if (token === undefined) throw new Error('no token');
    await assert.rejects(ask(['repository:app:push,pull'], { challenge: `${CHALLENGE},error="insufficient_scope"`, rejected: token }), (error: AuthError) => {
      assert.ok(error instanceof InsufficientScopeError && !error.anonymous, String(error));
      assert.equal(error.code, 'INSUFFICIENT_SCOPE');
      assert.match(error.message, /^the token service https:\/\/auth\.example\/token did not grant repository:app:pull,push to alice \(from --creds\) \(insufficient_scope\); check that the account may do this/);
      assert.doesNotMatch(error.message, /pa55w0rd/);
      return true;
    });
  });

  it('asks for a token of its own when a covering token was short', async (t) => {
    const { ask, on, seen } = setup(t, { credentials: alice });
    on('GET', AUTH, '/token', () => tokenAnswer({ expires_in: 300 }));
    const wide = await ask(['repository:app:push,pull', 'repository:base:pull'], { challenge: CHALLENGE });
    assert.equal(await ask(['repository:app:pull']), wide);
    if (wide === undefined) throw new Error('no token');
    const own = await ask(['repository:app:pull'], { challenge: `${CHALLENGE},error="insufficient_scope"`, rejected: wide });
    assert.notEqual(own, wide);
    assert.deepEqual(seen[1]?.url.searchParams.getAll('scope'), ['repository:app:pull']);
  });

  it('shares one token request between concurrent callers', async (t) => {
    const { ask, on, seen } = setup(t);
    on('GET', AUTH, '/token', () => tokenAnswer());
    const answers = await Promise.all([1, 2, 3, 4].map(() => ask(['repository:app:pull'], { challenge: CHALLENGE })));
    assert.equal(new Set(answers).size, 1);
    assert.equal(seen.length, 1);
  });

  it('loads lazy credentials once, when the registry first asks', async (t) => {
    let loads = 0;
    const { ask, on } = setup(t, { credentials: async () => (loads++, alice) });
    on('GET', AUTH, '/token', () => tokenAnswer());
    await ask(['repository:app:pull'], { challenge: CHALLENGE });
    await ask(['repository:other:pull']);
    assert.equal(loads, 1);
  });

  it('uses a registrytoken from config.json as the bearer token itself', async (t) => {
    const { ask, seen } = setup(t, { credentials: { registryToken: 'rt', source: 'config.json' } });
    assert.equal(await ask(['repository:app:pull'], { challenge: CHALLENGE }), 'Bearer rt');
    assert.equal(seen.length, 0);
  });
});

describe('createAuthenticator: OAuth2', () => {
  it('posts a refresh_token grant with an identity token, and uses the rotated refresh token next', async (t) => {
    const { ask, on, seen } = setup(t, { credentials: { username: 'alice', identityToken: 'id-token-1', source: 'config.json' } });
    let round = 0;
    on('POST', AUTH, '/token', () => {
      round += 1;
      return { status: 200, body: JSON.stringify({ access_token: `oauth-${round}`, refresh_token: `id-token-${round + 1}`, expires_in: 300 }) };
    });
    assert.equal(await ask(['repository:app:push,pull'], { challenge: CHALLENGE }), 'Bearer oauth-1');
    assert.equal(await ask(['repository:other:pull']), 'Bearer oauth-2');
    const first = new URLSearchParams(seen[0]!.body);
    assert.equal(seen[0]!.headers['content-type'], 'application/x-www-form-urlencoded');
    assert.equal(seen[0]!.headers['authorization'], undefined);
    assert.deepEqual(Object.fromEntries(first), {
      grant_type: 'refresh_token',
      refresh_token: 'id-token-1',
      service: 'registry.example',
      client_id: 'rxpush',
      scope: 'repository:app:pull,push',
    });
    assert.equal(new URLSearchParams(seen[1]!.body).get('refresh_token'), 'id-token-2');
  });

  it('posts a password grant with forceOAuth', async (t) => {
    const { ask, on, seen } = setup(t, { credentials: alice, forceOAuth: true });
    on('POST', AUTH, '/token', () => ({ status: 200, body: JSON.stringify({ access_token: 'pw' }) }));
    assert.equal(await ask(['repository:app:pull'], { challenge: CHALLENGE }), 'Bearer pw');
    const form = new URLSearchParams(seen[0]!.body);
    assert.equal(form.get('grant_type'), 'password');
    assert.equal(form.get('username'), 'alice');
    assert.equal(form.get('password'), 'pa55w0rd!');
    assert.equal(form.get('access_type'), 'offline');
  });

  it('never re-posts the form to where a redirect points', async (t) => {
    const { ask, on, seen } = setup(t, { credentials: { identityToken: 'id', source: 'config.json' } });
    on('POST', AUTH, '/token', () => ({ status: 307, headers: { location: 'https://elsewhere.example/token' } }));
    await assert.rejects(ask(['repository:app:pull'], { challenge: CHALLENGE }), /redirect; rxpush does not re-send an OAuth2 form/);
    assert.equal(seen.length, 1);
  });
});

describe('createAuthenticator: Basic', () => {
  it('answers a Basic challenge with the credentials, and not again once they were refused', async (t) => {
    const { ask, seen } = setup(t, { credentials: alice });
    const challenge = 'Basic realm="registry"';
    assert.equal(await ask(['repository:app:pull'], { challenge }), basicAlice);
    assert.equal(await ask(['repository:app:push,pull']), basicAlice, 'sent up front once the registry asked for Basic');
    assert.equal(await ask(['repository:app:pull'], { challenge, rejected: basicAlice }), undefined);
    assert.equal(seen.length, 0);
  });

  it('answers nothing to a Basic challenge without credentials', async (t) => {
    const { ask } = setup(t);
    assert.equal(await ask(['repository:app:pull'], { challenge: 'Basic realm="r"' }), undefined);
  });

  it('prefers Bearer when the registry offers both', async (t) => {
    const { ask, on } = setup(t, { credentials: alice });
    on('GET', AUTH, '/token', () => ({ status: 200, body: '{"token":"b"}' }));
    assert.equal(await ask(['repository:app:pull'], { challenge: `Basic realm="r", ${CHALLENGE}` }), 'Bearer b');
  });

  it('answers nothing to schemes it does not speak', async (t) => {
    const { ask } = setup(t, { credentials: alice });
    assert.equal(await ask(['repository:app:pull'], { challenge: 'Negotiate abc==' }), undefined);
  });

  it('fails with a ChallengeParseError on a malformed challenge', async (t) => {
    const { ask } = setup(t, { credentials: alice });
    await assert.rejects(ask(['repository:app:pull'], { challenge: 'Bearer realm="unterminated' }), ChallengeParseError);
  });
});

describe('createAuthenticator: what the token service may answer', () => {
  // A token service's answers are what the registry's would be: the request, its status and what to do.
  const cases: [string, Reply, RegExp, string, Function][] = [
    ['refuses the credentials (401)', { status: 401, body: '{"details":"incorrect username or password"}' }, /^GET https:\/\/auth\.example\/token → 401 incorrect username or password; the token service refused the credentials; check the credentials \(from --creds\): --creds, --authfile or docker login$/, 'UNAUTHORIZED', UnauthorizedError],
    ['echoes the password it was sent (401)', { status: 401, body: '{"details":"incorrect password pa55w0rd! for alice"}' }, /→ 401 incorrect password \*\*\* for alice; the token service refused the credentials/, 'UNAUTHORIZED', UnauthorizedError],
    ['denies access (403)', { status: 403, body: '' }, /→ 403; the credentials may not have this access \(repository:app:pull\)/, 'DENIED', DeniedError],
    ['fails (503)', { status: 503, body: 'down' }, /→ 503; the token service failed; try again later/, 'REGISTRY_ERROR', RegistryError],
    ['is limiting requests (429)', { status: 429, body: '' }, /→ 429; the token service is limiting how often it is asked; try again later$/, 'REGISTRY_ERROR', RegistryError],
    ['answers HTML', { status: 200, body: '<html><body>Login</body></html>' }, /→ 200 with a body that is not a JSON token answer \(starts "<html><body>Login<\/body><\/html>"\); is the realm right\?/, 'INVALID_RESPONSE', InvalidResponseError],
    ['answers a login page that echoes the password', { status: 200, body: '<html>no user alice with pa55w0rd!</html>' }, /\(starts "<html>no user alice with \*\*\*<\/html>"\)/, 'INVALID_RESPONSE', InvalidResponseError],
    ['answers an empty body', { status: 200, body: '' }, /not a JSON token answer \(empty\)/, 'INVALID_RESPONSE', InvalidResponseError],
    // What is not markup may be a token (cut off, or bare): it is described, never quoted.
    ['breaks off its answer in the token', { status: 200, body: '{"token":"opaque-secret-tok' }, /not a JSON token answer \(invalid JSON at line 1, column 28\); is the realm right\?$/, 'INVALID_RESPONSE', InvalidResponseError],
    ['answers a bare token', { status: 200, body: 'opaque-secret-token' }, /not a JSON token answer \(invalid JSON\); is the realm right\?$/, 'INVALID_RESPONSE', InvalidResponseError],
    ['answers a JSON string', { status: 200, body: '"opaque-secret-token"' }, /not a JSON token answer \(a JSON string\)/, 'INVALID_RESPONSE', InvalidResponseError],
    ['answers JSON without a token', { status: 200, body: '{"expires_in":60}' }, /without a usable token/, 'INVALID_RESPONSE', InvalidResponseError],
    ['answers a token with spaces in it', { status: 200, body: '{"token":"a b"}' }, /without a usable token/, 'INVALID_RESPONSE', InvalidResponseError],
    ['announces a body over 1 MiB', { status: 200, body: '{}', headers: { 'content-length': String(5 * 1024 * 1024) } }, /a body of 5242880 bytes, too large for a token answer/, 'INVALID_RESPONSE', InvalidResponseError],
    ['sends a body over 1 MiB', { status: 200, body: Buffer.alloc(1024 * 1024 + 10, 0x20) }, /a body over 1 MiB/, 'INVALID_RESPONSE', InvalidResponseError],
  ];
  for (const [what, reply, message, code, kind] of cases) {
    it(`fails with one clear line when the token service ${what}`, async (t) => {
      const { ask, on } = setup(t, { credentials: alice });
      on('GET', AUTH, '/token', () => reply);
      await assert.rejects(ask(['repository:app:pull'], { challenge: CHALLENGE }), (error: unknown) => {
        assert.ok(error instanceof PushError && error instanceof kind, String(error));
        assert.ok(!(error instanceof AuthError), 'a token service that answers is no local auth failure');
        assert.equal(error.code, code);
        assert.match(error.message, message);
        assert.doesNotMatch(error.message, /\n|pa55w0rd|scope=|account=|opaque-secret/);
        // A token service that is down or busy is asked again, as the registry would be; a refusal is final.
        if (error instanceof RegistryError) assert.equal(error.retryable, reply.status >= 500 || reply.status === 429, what);
        return true;
      });
    });
  }

  it('says credentials are wanted when an anonymous token request gets 401', async (t) => {
    const { ask, on } = setup(t);
    on('GET', AUTH, '/token', () => ({ status: 401 }));
    await assert.rejects(ask(['repository:app:push,pull'], { challenge: CHALLENGE }), /the token service wants credentials; pass credentials with --creds USER:PASS, --authfile PATH or docker login/);
  });

  it('says a token service that cannot be reached is the one the registry names, not the registry', async (t) => {
    const { ask, agent } = setup(t, { credentials: alice });
    agent
      .get(AUTH)
      .intercept({ method: 'GET', path: (p) => p.startsWith('/token') })
      .replyWithError(Object.assign(new Error('getaddrinfo ENOTFOUND auth.example'), { code: 'ENOTFOUND' }));
    await assert.rejects(ask(['repository:app:pull'], { challenge: CHALLENGE }), (error: unknown) => {
      assert.ok(error instanceof PushError, String(error));
      assert.equal(error.code, 'REGISTRY_UNREACHABLE');
      assert.equal(
        error.message,
        'GET https://auth.example/token failed: host auth.example not found; it is the token service that registry.example names in its WWW-Authenticate (its auth realm): is it running, and is that address reachable from here?',
      );
      return true;
    });
  });

  it('refuses a challenge without a realm', async (t) => {
    const { ask } = setup(t, { credentials: alice });
    await assert.rejects(ask(['repository:app:pull'], { challenge: 'Bearer service="x"' }), /names no realm/);
  });
});

describe('createAuthenticator: credentials stay with the registry', () => {
  it('refuses to send credentials to a plain-HTTP realm of an HTTPS registry, without a request', async (t) => {
    const { ask, seen } = setup(t, { credentials: alice });
    await assert.rejects(ask(['repository:app:pull'], { challenge: 'Bearer realm="http://auth.example/token"' }), (error: AuthError) => {
      assert.ok(error instanceof TokenRealmError, String(error));
      assert.equal(error.code, 'TOKEN_REALM');
      assert.match(error.message, /^rxpush will not send credentials \(from --creds\) to the token realm http:\/\/auth\.example\/token that registry\.example names: it is plain HTTP while the registry uses HTTPS/);
      return true;
    });
    assert.equal(seen.length, 0);
  });

  it('still gets an anonymous token from a plain-HTTP realm', async (t) => {
    const { ask, on } = setup(t);
    on('GET', 'http://auth.example', '/token', () => ({ status: 200, body: '{"token":"anon"}' }));
    assert.equal(await ask(['repository:app:pull'], { challenge: 'Bearer realm="http://auth.example/token"' }), 'Bearer anon');
  });

  it('allows a plain-HTTP realm for a plain-HTTP registry', async (t) => {
    const { ask, on } = setup(t, { credentials: alice });
    on('GET', 'http://127.0.0.1:5001', '/token', () => ({ status: 200, body: '{"token":"local"}' }));
    assert.equal(await ask(['repository:app:pull'], { challenge: 'Bearer realm="http://127.0.0.1:5001/token"', origin: 'http://127.0.0.1:5000' }), 'Bearer local');
  });

  for (const realm of ['https://10.1.2.3/token', 'https://127.0.0.2:5001/token', 'https://169.254.169.254/latest', 'https://[::1]:8443/token', 'https://[fd00::1]/t', 'https://localhost/t']) {
    it(`refuses to send credentials to the internal address ${new URL(realm).host} on another host`, async (t) => {
      const { ask, seen } = setup(t, { credentials: alice });
      await assert.rejects(ask(['repository:app:pull'], { challenge: `Bearer realm="${realm}"` }), /it is an internal address .* on another host than the registry/);
      assert.equal(seen.length, 0);
    });
  }

  it('sends credentials to an internal address when it is the registry host itself', async (t) => {
    const { ask, on } = setup(t, { credentials: alice });
    on('GET', 'https://127.0.0.1:5001', '/token', () => ({ status: 200, body: '{"token":"same-host"}' }));
    assert.equal(await ask(['repository:app:pull'], { challenge: 'Bearer realm="https://127.0.0.1:5001/token"', origin: 'https://127.0.0.1:5000' }), 'Bearer same-host');
  });

  it('follows a redirect on the realm origin with credentials, and refuses one to another host', async (t) => {
    const { ask, on, seen } = setup(t, { credentials: alice });
    on('GET', AUTH, '/token', () => ({ status: 302, headers: { location: '/v2/token' } }));
    on('GET', AUTH, '/v2/token', () => ({ status: 200, body: '{"token":"moved"}' }));
    assert.equal(await ask(['repository:app:pull'], { challenge: CHALLENGE }), 'Bearer moved');
    assert.equal(seen[1]?.headers['authorization'], basicAlice);

    const other = setup(t, { credentials: alice });
    other.on('GET', AUTH, '/token', () => ({ status: 302, headers: { location: 'https://evil.example/token' } }));
    await assert.rejects(other.ask(['repository:app:pull'], { challenge: CHALLENGE }), /redirects to https:\/\/evil\.example\/token, another host; rxpush does not send credentials/);
    assert.equal(other.seen.length, 1);
  });

  it('follows a redirect to another host when it has no credentials to lose', async (t) => {
    const { ask, on, seen } = setup(t);
    on('GET', AUTH, '/token', () => ({ status: 302, headers: { location: 'https://cdn.example/token?x=1' } }));
    on('GET', 'https://cdn.example', '/token', () => ({ status: 200, body: '{"token":"cdn"}' }));
    assert.equal(await ask(['repository:app:pull'], { challenge: CHALLENGE }), 'Bearer cdn');
    assert.equal(seen[1]?.headers['authorization'], undefined);
  });

  it('answers nothing for a request to another registry, even with a challenge', async (t) => {
    const { auth, seen } = setup(t, { credentials: alice });
    const header = await auth.authorize({ registry: 'evil.example', origin: 'https://evil.example', scopes: ['repository:app:pull'], challenge: 'Basic realm="x"' });
    assert.equal(header, undefined);
    assert.equal(seen.length, 0);
  });

  it("treats Docker Hub's names as one registry", async (t) => {
    const { auth } = setup(t, { registry: 'docker.io', credentials: alice });
    const header = await auth.authorize({ registry: 'index.docker.io', origin: 'https://registry-1.docker.io', scopes: ['repository:library/app:pull'], challenge: 'Basic realm="hub"' });
    assert.equal(header, basicAlice);
  });

  it('logs no secret at any level', async (t) => {
    const { ask, on, lines } = setup(t, { credentials: alice });
    on('GET', AUTH, '/token', () => ({ status: 200, body: JSON.stringify({ token: 'SECRET-TOKEN-VALUE', refresh_token: 'SECRET-REFRESH' }) }));
    await ask(['repository:app:pull'], { challenge: CHALLENGE });
    const failing = setup(t, { credentials: alice });
    failing.on('GET', AUTH, '/token', () => ({ status: 401 }));
    await assert.rejects(failing.ask(['repository:app:pull'], { challenge: CHALLENGE }));
    const logged = JSON.stringify([...lines, ...failing.lines], (_key, value: unknown) => (value instanceof Error ? { message: value.message, stack: value.stack } : value));
    assert.ok(lines.length > 0 && failing.lines.length > 0, 'something was logged');
    for (const secret of ['pa55w0rd', 'SECRET-TOKEN-VALUE', 'SECRET-REFRESH', basicAlice.slice(6)]) assert.ok(!logged.includes(secret), `${secret} was logged: ${logged}`);
  });
});
