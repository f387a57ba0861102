import assert from 'node:assert/strict';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it, type TestContext } from 'node:test';

import type { Logger } from '@rxpush/core';
import { createAuthenticator, RegistryClient } from '@rxpush/registry-client';

import { makeOciLayout, type OciLayoutFixture } from '../tools/fixtures.ts';
import { startRegistry, type RunningRegistry } from '../tools/registry.ts';
import { homeIn, runCli, type CliResult } from './helpers/run-cli.ts';
import { skopeoInspectRaw } from './helpers/skopeo.ts';
import { startTokenServer, type RunningTokenServer, type TokenServerOptions } from './helpers/token-server.ts';
import { assertOneLineError } from './helpers/assert-cli.ts';
import { pushAll } from './helpers/push-events.ts';

const USERS = { alice: 'correct-horse-battery' };
const alice = { username: 'alice', password: USERS.alice };

/** One line on stderr, exit 1, and the password nowhere in the output. */
function assertOneLineErrorWithoutPassword(result: CliResult, pattern: RegExp): void {
  assertOneLineError(result, pattern);
  assert.ok(!result.stderr.includes(USERS.alice) && !result.stdout.includes(USERS.alice), 'the password was printed');
}
/** A token service and a registry that trusts it, both stopped after the test. */
async function tokenRegistry(t: TestContext | undefined, options: TokenServerOptions & { registryTls?: boolean } = {}) {
  const { registryTls, ...tokenOptions } = options;
  const tokens = await startTokenServer({ users: USERS, ...tokenOptions });
  const registry = await startRegistry({ token: tokens.registryConfig, ...(registryTls && { tls: true }) });
  t?.after(async () => {
    await registry.stop();
    await tokens.close();
  });
  return { tokens, registry };
}

/** Token requests as `METHOD scope scope…`, in order. */
const asked = (tokens: RunningTokenServer) => tokens.requests.map((r) => `${r.method} ${r.scopes.join(' ')}`);

describe('pushing through token auth to the reference registry', () => {
  let work: string;
  let layout: OciLayoutFixture;
  let home: string;
  /** Environment for CLI runs: no ~/.docker of the machine, no shared cache. */
  let env: Record<string, string>;
  let shared: { tokens: RunningTokenServer; registry: RunningRegistry };

  before(async () => {
    work = await mkdtemp(join(tmpdir(), 'rxpush-auth-token-'));
    home = join(work, 'home');
    await mkdir(join(home, '.docker'), { recursive: true });
    env = { HOME: home, DOCKER_CONFIG: join(home, '.docker'), RXPUSH_CACHE_DIR: join(work, 'cli-cache') };
    layout = await makeOciLayout(join(work, 'layout'), {
      images: [{ tags: ['latest'], layers: [{ files: 2, fileSize: 50_000, seed: 'token-base' }, { files: 1, fileSize: 10_000, seed: 'token-app' }] }],
    });
    shared = await tokenRegistry(undefined);
  });
  after(async () => {
    await shared?.registry.stop();
    await shared?.tokens.close();
    await rm(work, { recursive: true, force: true });
  });

  /** Whether `repository:tag` is in the shared registry (asked with alice's token). */
  async function manifestOf(registry: RunningRegistry, repository: string, tag: string) {
    const client = new RegistryClient({ registry: registry.host, auth: createAuthenticator({ registry: registry.host, credentials: { ...alice, source: 'test' } }) });
    try {
      return await client.hasManifest(repository, tag);
    } finally {
      await client.close();
    }
  }

  it('pushes with push,pull on the repository, one token request per scope set, and skopeo reads it back', async () => {
    const { tokens, registry } = shared;
    const before = tokens.requests.length;
    const events = await pushAll({ source: `oci:${layout.dir}:latest`, destination: `${registry.host}/token/app:1.0`, credentials: alice });
    assert.equal(events.at(-1)?.type, 'manifest-pushed');
    const requests = tokens.requests.slice(before);
    assert.deepEqual(
      requests.map((r) => `${r.method} ${r.scopes.join(' ')}`),
      ['GET repository:token/app:pull', 'GET repository:token/app:pull,push'],
      'three blobs and a manifest, yet one token per scope set',
    );
    for (const r of requests) {
      assert.equal(r.user, 'alice');
      assert.equal(r.service, 'rxpush-registry');
      assert.equal(r.account, 'alice');
    }
    const raw = await skopeoInspectRaw(`${registry.host}/token/app:1.0`, { creds: `alice:${USERS.alice}` });
    assert.equal(raw.json.layers.length, 2);
  });

  it('asks pull on the mount source when it mounts blobs from another repository', async () => {
    const { tokens, registry } = shared;
    const cacheDir = join(work, 'mount-cache');
    await pushAll({ source: `oci:${layout.dir}:latest`, destination: `${registry.host}/token/source:1`, credentials: alice, cacheDir });
    const before = tokens.requests.length;
    const events = await pushAll({ source: `oci:${layout.dir}:latest`, destination: `${registry.host}/token/target:1`, credentials: alice, cacheDir });
    assert.ok(events.some((e) => e.type === 'mounted' && e.from === 'token/source'), 'blobs were mounted');
    const scopes = tokens.requests.slice(before).map((r) => r.scopes.join(' '));
    assert.ok(scopes.includes('repository:token/source:pull repository:token/target:pull,push'), `scopes asked: ${scopes.join(' | ')}`);
    assert.equal(new Set(scopes).size, scopes.length, `a scope set was asked twice: ${scopes.join(' | ')}`);
  });

  it('replaces a token the registry rejects as expired once, and the push lands', async (t) => {
    let handedOut = 0;
    // The first push token is already expired (beyond the registry's 60 s leeway), though the answer says 300 s.
    const { tokens, registry } = await tokenRegistry(t, { expired: (r) => r.scopes.some((s) => s.endsWith(':pull,push')) && handedOut++ === 0 });
    const events = await pushAll({ source: `oci:${layout.dir}:latest`, destination: `${registry.host}/token/refresh:1`, credentials: alice });
    assert.equal(events.at(-1)?.type, 'manifest-pushed');
    assert.deepEqual(asked(tokens), ['GET repository:token/refresh:pull', 'GET repository:token/refresh:pull,push', 'GET repository:token/refresh:pull,push']);
  });

  it('fails with one clear error, not a loop, when every token is rejected, and tags nothing', async (t) => {
    const { tokens, registry } = await tokenRegistry(t, { expired: (r) => r.scopes.some((s) => s.endsWith(':pull,push')) });
    await assert.rejects(pushAll({ source: `oci:${layout.dir}:latest`, destination: `${registry.host}/token/rejected:1`, credentials: alice }), (error: Error & { code?: string }) => {
      assert.equal(error.code, 'UNAUTHORIZED');
      assert.match(error.message, /^POST http:\/\/127\.0\.0\.1:\d+\/v2\/token\/rejected\/blobs\/uploads\/ → 401 UNAUTHORIZED/);
      return true;
    });
    const pushTokens = tokens.requests.filter((r) => r.scopes.includes('repository:token/rejected:pull,push'));
    assert.equal(pushTokens.length, 2, 'the rejected token is replaced once, never again');
    assert.equal(await manifestOf(registry, 'token/rejected', '1'), undefined);
  });

  it('logs no password and no token at debug level', async () => {
    const { tokens, registry } = shared;
    const lines: string[] = [];
    const logger: Logger = {
      debug: (obj, msg) => void lines.push(JSON.stringify({ level: 'debug', ...obj, msg }, errors)),
      info: (obj, msg) => void lines.push(JSON.stringify({ level: 'info', ...obj, msg }, errors)),
      warn: (obj, msg) => void lines.push(JSON.stringify({ level: 'warn', ...obj, msg }, errors)),
      error: (obj, msg) => void lines.push(JSON.stringify({ level: 'error', ...obj, msg }, errors)),
      child: (bindings) => {
        const parent = logger;
        const bind = (level: 'debug' | 'info' | 'warn' | 'error') => (obj: object, msg?: string) => parent[level]({ ...bindings, ...obj }, msg);
        return { debug: bind('debug'), info: bind('info'), warn: bind('warn'), error: bind('error'), child: parent.child };
      },
    };
    await pushAll({ source: `oci:${layout.dir}:latest`, destination: `${registry.host}/token/logged:1`, credentials: alice, logger });
    await assert.rejects(pushAll({ source: `oci:${layout.dir}:latest`, destination: `${registry.host}/token/logged:2`, credentials: { username: 'alice', password: 'wrong-password' }, logger }));
    const text = lines.join('\n');
    assert.match(text, /token fetched/);
    assert.match(text, /"credentials":"the credentials option"/);
    for (const secret of [USERS.alice, 'wrong-password', Buffer.from(`alice:${USERS.alice}`).toString('base64'), ...tokens.issued]) {
      assert.ok(!text.includes(secret), `a secret was logged: ${secret.slice(0, 12)}…`);
    }
  });

  it('says the token service refused the credentials, with the CLI exiting 1 and nothing pushed', async () => {
    const { registry } = shared;
    const args = ['push', `oci:${layout.dir}:latest`, `${registry.host}/token/wrong:1`, '--creds', 'alice:not-her-password'];
    const result = await runCli(args, { env });
    assertOneLineErrorWithoutPassword(result, /GET http:\/\/127\.0\.0\.1:\d+\/token → 401 incorrect username or password; the token service refused the credentials; check the credentials \(from --creds\): --creds, --authfile or docker login$/);
    assert.ok(!result.stderr.includes('not-her-password'));
    assert.equal(await manifestOf(registry, 'token/wrong', '1'), undefined);
    // Every log line and the stack trace at trace level: still no password.
    const traced = await runCli([...args, '--log-level', 'trace'], { env });
    assert.equal(traced.code, 1);
    assert.match(traced.stderr, /"msg":"token request failed"/);
    assert.ok(!`${traced.stdout}${traced.stderr}`.includes('not-her-password'), 'the password was logged');
  });

  it('says credentials are needed when an anonymous token may only pull', async () => {
    const { registry } = shared;
    const result = await runCli(['push', `oci:${layout.dir}:latest`, `${registry.host}/token/anonymous:1`], { env });
    assertOneLineErrorWithoutPassword(result, /127\.0\.0\.1:\d+ wants credentials for repository:token\/anonymous:pull,push: an anonymous token does not allow it; pass credentials with --creds USER:PASS, --authfile PATH or docker login$/);
  });

  it('says a token service nobody answers at is the one the registry names, not the registry', async (t) => {
    // The registry sends clients to a realm where nothing listens (a proxy's internal address, a service that is down).
    const registry = await startRegistry({ token: { ...shared.tokens.registryConfig, realm: 'http://127.0.0.1:1/token' } });
    t.after(() => registry.stop());
    const result = await runCli(['push', `oci:${layout.dir}:latest`, `${registry.host}/token/no-service:1`, '--creds', `alice:${USERS.alice}`], { env });
    assertOneLineErrorWithoutPassword(
      result,
      new RegExp(`^rxpush: GET http://127\\.0\\.0\\.1:1/token failed: connection refused; it is the token service that ${registry.host.replaceAll('.', '\\.')} names in its WWW-Authenticate \\(its auth realm\\): is it running, and is that address reachable from here\\?$`),
    );
  });

  it('reads an identity token from config.json and trades it by OAuth2 POST', async (t) => {
    const { tokens, registry } = await tokenRegistry(t, { refreshTokens: { 'identity-of-alice': 'alice' } });
    const dockerDir = join(work, 'identity-docker');
    await mkdir(dockerDir, { recursive: true });
    await writeFile(join(dockerDir, 'config.json'), JSON.stringify({ auths: { [registry.host]: { auth: Buffer.from('alice:').toString('base64'), identitytoken: 'identity-of-alice' } } }));
    const result = await runCli(['push', `oci:${layout.dir}:latest`, `${registry.host}/token/oauth:1`], { env: { ...env, DOCKER_CONFIG: dockerDir } });
    assert.equal(result.code, 0, result.stderr);
    assert.ok(tokens.requests.length > 0);
    for (const r of tokens.requests) {
      assert.equal(r.method, 'POST');
      assert.equal(r.grant, 'refresh_token');
      assert.equal(r.user, 'alice');
    }
  });

  it('asks a token service that fails for a moment again, as it asks the registry, and pushes', async (t) => {
    // The first two token requests fail (busy, then down), as a token service behind a load balancer may.
    let failures = 0;
    const respond: NonNullable<TokenServerOptions['respond']> = () => {
      failures += 1;
      if (failures === 1) return { status: 429, body: '', headers: { 'retry-after': '0' } };
      if (failures === 2) return { status: 503, body: 'upstream unavailable' };
      return undefined;
    };
    const { tokens, registry } = await tokenRegistry(t, { respond });
    const result = await runCli(['push', `oci:${layout.dir}:latest`, `${registry.host}/token/flaky:1`, '--creds', `alice:${USERS.alice}`, '--progress', 'plain'], { env });
    assert.equal(result.code, 0, result.stderr);
    assert.ok(failures > 2, 'the token service was asked again');
    assert.ok(tokens.requests.some((r) => r.user === 'alice'));
    assert.ok(await manifestOf(registry, 'token/flaky', '1'));
    // Without retries the first failure is the push's, in one line that says what the 429 means.
    failures = 0;
    const once = await runCli(['push', `oci:${layout.dir}:latest`, `${registry.host}/token/flaky:2`, '--creds', `alice:${USERS.alice}`, '--retries', '0'], { env: { ...env, RXPUSH_CACHE_DIR: join(work, 'cache-flaky') } });
    assertOneLineErrorWithoutPassword(once, /GET http:\/\/127\.0\.0\.1:\d+\/token → 429; the token service is limiting how often it is asked; try again later$/);
  });

  const garbage: [string, NonNullable<TokenServerOptions['respond']>, RegExp][] = [
    ['garbage', () => ({ status: 200, body: '<html>login here</html>', headers: { 'content-type': 'text/html' } }), /GET http:\/\/127\.0\.0\.1:\d+\/token → 200 with a body that is not a JSON token answer \(starts "<html>login here<\/html>"\); is the realm right\?$/],
    ['a huge body', () => ({ status: 200, body: Buffer.alloc(3 * 1024 * 1024, 0x7b) }), /→ 200 with a body (of 3145728 bytes|over 1 MiB), too large for a token answer.*; is the realm right\?$/],
    ['JSON without a token', () => ({ status: 200, body: '{"expires_in":60}' }), /→ 200 without a usable token .*; the token service is misconfigured$/],
    // A token service that echoes the password it was sent: rxpush hides it, wherever it comes from.
    ['a 401 that echoes the password', () => ({ status: 401, body: JSON.stringify({ details: `incorrect password ${USERS.alice} for alice` }) }), /→ 401 incorrect password \*\*\* for alice; the token service refused the credentials/],
  ];
  for (const [what, respond, message] of garbage) {
    it(`fails with one line when the realm answers ${what}`, async (t) => {
      const { registry } = await tokenRegistry(t, { respond });
      const result = await runCli(['push', `oci:${layout.dir}:latest`, `${registry.host}/token/garbage:1`, '--creds', `alice:${USERS.alice}`], { env });
      assertOneLineErrorWithoutPassword(result, message);
    });
  }
});

describe('token auth with TLS, and credentials that must stay home', () => {
  let work: string;
  let layout: OciLayoutFixture;
  let env: Record<string, string>;

  before(async () => {
    work = await mkdtemp(join(tmpdir(), 'rxpush-auth-tls-token-'));
    env = homeIn(work);
    layout = await makeOciLayout(join(work, 'layout'), { images: [{ tags: ['latest'], layers: [{ files: 1, fileSize: 20_000, seed: 'tls-token' }] }] });
  });
  after(() => rm(work, { recursive: true, force: true }));

  it('pushes over HTTPS with an HTTPS realm on the same host, trusting both CAs from --ca-file', async (t) => {
    const { tokens, registry } = await tokenRegistry(t, { tls: true, registryTls: true });
    const caFile = join(work, 'both-cas.pem');
    await writeFile(caFile, `${await readFile(registry.caFile ?? '', 'utf8')}\n${await readFile(tokens.caFile ?? '', 'utf8')}`);
    const result = await runCli(['push', `oci:${layout.dir}:latest`, `${registry.host}/secure/app:1`, '--creds', `alice:${USERS.alice}`, '--ca-file', caFile], { env });
    assert.equal(result.code, 0, result.stderr);
    assert.ok(tokens.requests.every((r) => r.user === 'alice'));
  });

  it('refuses to send credentials to a plain-HTTP realm on another loopback address (127.0.0.2) of an HTTPS registry', async (t) => {
    const { tokens, registry } = await tokenRegistry(t, { host: '127.0.0.2', registryTls: true });
    const result = await runCli(['push', `oci:${layout.dir}:latest`, `${registry.host}/secure/leak:1`, '--creds', `alice:${USERS.alice}`, '--ca-file', registry.caFile ?? ''], { env });
    assertOneLineErrorWithoutPassword(
      result,
      /rxpush will not send credentials \(from --creds\) to the token realm http:\/\/127\.0\.0\.2:\d+\/token that 127\.0\.0\.1:\d+ names: it is plain HTTP while the registry uses HTTPS, so the credentials would cross the network unencrypted; fix the registry's token realm \(auth\.token\.realm\)$/,
    );
    assert.deepEqual(tokens.requests, [], 'the realm saw no request at all');
  });

  it('refuses to send credentials to an HTTPS realm at an internal address of another host', async (t) => {
    const { tokens, registry } = await tokenRegistry(t, { host: '127.0.0.2', tls: true, registryTls: true });
    const caFile = join(work, 'cas-2.pem');
    await writeFile(caFile, `${await readFile(registry.caFile ?? '', 'utf8')}\n${await readFile(tokens.caFile ?? '', 'utf8')}`);
    const result = await runCli(['push', `oci:${layout.dir}:latest`, `${registry.host}/secure/internal:1`, '--creds', `alice:${USERS.alice}`, '--ca-file', caFile], { env });
    assertOneLineErrorWithoutPassword(result, /to the token realm https:\/\/127\.0\.0\.2:\d+\/token that 127\.0\.0\.1:\d+ names: it is an internal address \(127\.0\.0\.2\) on another host than the registry \(127\.0\.0\.1\)/);
    assert.deepEqual(tokens.requests, []);
  });
});

describe('a push whose token service answers anything lands or fails in one line, with no secret shown', () => {
  // One token service and registry; each case changes what the service answers in its place.
  const TOKEN = 'opaque-token-value-4711';
  let answer: NonNullable<TokenServerOptions['respond']> = () => undefined;
  let work: string;
  let layout: OciLayoutFixture;
  let shared: { tokens: RunningTokenServer; registry: RunningRegistry };
  before(async () => {
    work = await mkdtemp(join(tmpdir(), 'rxpush-token-answers-'));
    layout = await makeOciLayout(join(work, 'layout'), { images: [{ tags: ['latest'], layers: [{ files: 1, fileSize: 5_000, seed: 'token-answers' }] }] });
    shared = await tokenRegistry(undefined, { respond: (request) => answer(request) });
  });
  after(async () => {
    await shared?.registry.stop();
    await shared?.tokens.close();
    await rm(work, { recursive: true, force: true });
  });

  const json = (status: number, body: unknown, headers: Record<string, string> = {}) => ({ status, body: typeof body === 'string' ? body : JSON.stringify(body), headers: { 'content-type': 'application/json', ...headers } });
  const ANSWERS: Record<string, () => { status: number; body: string; headers?: Record<string, string> }> = {
    'a bare 400': () => json(400, ''),
    'an OAuth2 error': () => json(400, { error: 'invalid_request', error_description: 'bad scope' }),
    'a 401 with no challenge': () => json(401, ''),
    'a 403': () => json(403, { errors: [{ code: 'DENIED', message: 'requested access to the resource is denied' }] }),
    "Go's 404 page": () => ({ status: 404, body: '404 page not found', headers: { 'content-type': 'text/plain' } }),
    'a 500 HTML page': () => ({ status: 500, body: '<html>oops</html>', headers: { 'content-type': 'text/html' } }),
    'a token that is a number': () => json(200, { token: 123 }),
    'a token the registry refuses': () => json(200, { token: TOKEN }),
    'a token with an escape sequence': () => json(200, { token: `\u001b]0;pwned\u0007${TOKEN}` }),
    'a token with a line break': () => json(200, { token: `${TOKEN}\r\nX-Evil: 1` }),
    'a token of 900 kB': () => json(200, { token: 'a'.repeat(900_000) }),
    'JSON null': () => json(200, 'null'),
    'a bare token': () => ({ status: 200, body: TOKEN }),
    'a token answer cut off': () => json(200, `{"token":"${TOKEN}`),
    'an empty 200': () => ({ status: 200, body: '' }),
    'a redirect to another host': () => ({ status: 302, body: '', headers: { location: 'http://127.0.0.2:1/token' } }),
    'a redirect to itself': () => ({ status: 302, body: '', headers: { location: '/token' } }),
  };
  let n = 0;
  for (const [what, respond] of Object.entries(ANSWERS)) {
    it(`when it answers ${what}`, async () => {
      answer = respond;
      const repository = `answers/c${(n += 1)}`;
      const args = ['push', `oci:${layout.dir}:latest`, `${shared.registry.host}/${repository}:1`, '--creds', `alice:${USERS.alice}`, '--retries', '1', '--timeout', '5s'];
      const env = homeIn(join(work, `home-${n}`));
      const result = await runCli(args, { env });
      // At trace level too, nothing of the password or the token is shown, nor a raw control character.
      const traced = await runCli([...args, '--log-level', 'trace'], { env });
      answer = () => undefined;
      const output = result.stdout + result.stderr + traced.stdout + traced.stderr;
      assert.ok(!output.includes(USERS.alice) && !output.includes(TOKEN), `a secret was shown:\n${output}`);
      assert.doesNotMatch(output, /[\u0000-\u0008\u000b-\u001f]/);
      assert.equal(result.code, 1, result.stderr);
      assertOneLineErrorWithoutPassword(result, /^rxpush: \S/);
      assert.doesNotMatch(result.stderr, /TypeError|Cannot read|undefined|\[object|Error:/);
    });
  }
});

/** JSON.stringify replacer that keeps what an Error says (message, stack, cause) instead of `{}`. */
function errors(_key: string, value: unknown): unknown {
  return value instanceof Error ? { name: value.name, message: value.message, stack: value.stack, cause: value.cause } : value;
}
