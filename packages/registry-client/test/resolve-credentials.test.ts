import assert from 'node:assert/strict';
import { chmod, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it, type TestContext } from 'node:test';

import { pidIn, waitGone } from '../../../test/helpers/processes.ts';
import { AuthError, CredentialsError, resolveCredentials } from '../src/index.ts';
import type { ResolveCredentialsOptions } from '../src/index.ts';

const b64 = (text: string) => Buffer.from(text).toString('base64');

/** A temp HOME with a Docker config dir and a bin dir for credential helpers, removed after the test. */
async function home(t: TestContext) {
  const dir = await mkdtemp(join(tmpdir(), 'rxpush-creds-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const dockerDir = join(dir, 'docker');
  const bin = join(dir, 'bin');
  await mkdir(dockerDir);
  await mkdir(bin);
  const helperLog = join(dir, 'helper.log');
  const env = { HOME: dir, DOCKER_CONFIG: dockerDir, PATH: `${bin}:${process.env['PATH'] ?? ''}`, HELPER_LOG: helperLog };
  return {
    dir,
    env,
    config: (json: unknown) => writeFile(join(dockerDir, 'config.json'), typeof json === 'string' ? json : JSON.stringify(json)),
    /** A `docker-credential-NAME` that logs the server URL it was asked for and runs `body` (sh). */
    helper: async (name: string, body: string) => {
      const path = join(bin, `docker-credential-${name}`);
      await writeFile(path, `#!/bin/sh\n[ "$1" = get ] || exit 3\nserver=$(cat)\necho "$server" >> "$HELPER_LOG"\n${body}\n`);
      await chmod(path, 0o755);
    },
    helperCalls: async () => (await readFile(helperLog, 'utf8').catch(() => '')).split('\n').filter(Boolean),
    resolve: (registry: string, extra: Partial<ResolveCredentialsOptions> = {}) => resolveCredentials({ registry, env, ...extra }),
  };
}

describe('resolveCredentials', () => {
  it('is anonymous (undefined) without any config', async (t) => {
    const h = await home(t);
    assert.equal(await h.resolve('registry.example'), undefined);
  });

  it('uses explicit credentials before any file', async (t) => {
    const h = await home(t);
    await h.config({ auths: { 'registry.example': { auth: b64('file:pw') } } });
    const explicit = { username: 'cli', password: 'pw', source: '--creds' };
    assert.deepEqual(await h.resolve('registry.example', { explicit }), explicit);
  });

  it('reads auth as base64 of USER:PASSWORD, keeping colons in the password', async (t) => {
    const h = await home(t);
    await h.config({ auths: { 'registry.example:5000': { auth: b64('alice:pa:ss') } } });
    assert.deepEqual(await h.resolve('registry.example:5000'), { username: 'alice', password: 'pa:ss', source: join(h.env.DOCKER_CONFIG, 'config.json') });
  });

  it('reads username and password fields, and keys written as URLs', async (t) => {
    const h = await home(t);
    await h.config({ auths: { 'https://registry.example/v2/': { username: 'bob', password: 'pw' } } });
    assert.equal((await h.resolve('registry.example'))?.username, 'bob');
  });

  it('reads an identity token, and a registry token', async (t) => {
    const h = await home(t);
    await h.config({ auths: { a: { auth: b64('alice:'), identitytoken: 'refresh-me' }, b: { registrytoken: 'bearer-me' } } });
    // An `auth` with an empty password still names the user; the identity token replaces the password.
    assert.deepEqual({ ...(await h.resolve('a')), source: '' }, { username: 'alice', identityToken: 'refresh-me', source: '' });
    assert.equal((await h.resolve('b'))?.registryToken, 'bearer-me');
  });

  it("maps Docker Hub's names to Docker's https://index.docker.io/v1/ key", async (t) => {
    const h = await home(t);
    await h.config({ auths: { 'https://index.docker.io/v1/': { auth: b64('hubuser:hubpw') } } });
    for (const registry of ['docker.io', 'index.docker.io', 'registry-1.docker.io']) {
      assert.equal((await h.resolve(registry))?.username, 'hubuser', registry);
    }
    assert.equal(await h.resolve('ghcr.io'), undefined);
  });

  it('looks in --authfile first, then falls back to Docker config', async (t) => {
    const h = await home(t);
    const authfile = join(h.dir, 'auth.json');
    await writeFile(authfile, JSON.stringify({ auths: { 'registry.example': { auth: b64('fromauthfile:pw') } } }));
    await h.config({ auths: { 'registry.example': { auth: b64('fromdocker:pw') }, 'other.example': { auth: b64('other:pw') } } });
    assert.deepEqual(await h.resolve('registry.example', { authfile }), { username: 'fromauthfile', password: 'pw', source: authfile });
    assert.equal((await h.resolve('other.example', { authfile }))?.username, 'other');
  });

  it('fails clearly when --authfile does not exist or a config is not JSON', async (t) => {
    const h = await home(t);
    await assert.rejects(h.resolve('r.example', { authfile: join(h.dir, 'nope.json') }), (error: AuthError) => {
      assert.ok(error instanceof AuthError);
      assert.ok(error instanceof CredentialsError);
      assert.equal(error.code, 'CREDENTIALS');
      assert.match(error.message, /^cannot read the credentials file .*nope\.json: it does not exist; check --authfile/);
      return true;
    });
    await h.config('{ "auths": ');
    await assert.rejects(h.resolve('r.example'), /config\.json is not valid JSON .*; fix it, or log in again with docker login/);
    await h.config({ auths: { 'r.example': { auth: '!!not base64!!' } } });
    await assert.rejects(h.resolve('r.example'), /the "auth" for r\.example in .* is not base64 of USER:PASSWORD/);
  });

  it('never quotes a config that is not JSON: the text around the error may be a password', async (t) => {
    const h = await home(t);
    for (const text of ['{"auths":{"r.example":{"password":"hunter2" "username":"me"}}}', '{"auths":{"r.example":{"password":hunter2}}}', '{"password":"hunter2"}}', '{"password":"hunter2\u0001"}']) {
      await h.config(text);
      await assert.rejects(h.resolve('r.example'), (error: AuthError) => {
        assert.match(error.message, /config\.json is not valid JSON \((invalid JSON( at line 1, column \d+)?)\); fix it/);
        assert.doesNotMatch(error.message, /hunter2/);
        return true;
      });
    }
    await h.config('{\n  "auths": {\n    "r.example": {"password": "hunter2",}\n  }\n}');
    await assert.rejects(h.resolve('r.example'), /is not valid JSON \(invalid JSON at line 3, column \d+\)/);
  });

  it('finds ~/.docker/config.json from HOME when DOCKER_CONFIG is not set', async (t) => {
    const h = await home(t);
    await mkdir(join(h.dir, '.docker'));
    await writeFile(join(h.dir, '.docker', 'config.json'), JSON.stringify({ auths: { 'r.example': { auth: b64('homeuser:pw') } } }));
    const { DOCKER_CONFIG: _unused, ...env } = h.env;
    assert.equal((await resolveCredentials({ registry: 'r.example', env }))?.username, 'homeuser');
  });
});

describe("resolveCredentials with the auth.json of skopeo and podman", () => {
  const write = async (file: string, json: unknown) => {
    await mkdir(join(file, '..'), { recursive: true });
    await writeFile(file, JSON.stringify(json));
  };

  it('looks in $XDG_RUNTIME_DIR/containers/auth.json, then ~/.config/containers/auth.json, after Docker\'s config', async (t) => {
    const h = await home(t);
    const runtime = join(h.dir, 'run');
    const env = { ...h.env, XDG_RUNTIME_DIR: runtime };
    await write(join(runtime, 'containers', 'auth.json'), { auths: { 'r.example': { auth: b64('runtime:pw') }, 'both.example': { auth: b64('runtime:pw') } } });
    await write(join(h.dir, '.config', 'containers', 'auth.json'), { auths: { 'r.example': { auth: b64('config:pw') }, 'c.example': { auth: b64('config:pw') } } });
    await h.config({ auths: { 'both.example': { auth: b64('docker:pw') } } });
    assert.deepEqual(await resolveCredentials({ registry: 'r.example', env }), { username: 'runtime', password: 'pw', source: join(runtime, 'containers', 'auth.json') });
    assert.equal((await resolveCredentials({ registry: 'c.example', env }))?.username, 'config');
    assert.equal((await resolveCredentials({ registry: 'both.example', env }))?.username, 'docker', "Docker's config.json comes first");
    // XDG_CONFIG_HOME moves the second file, as it does for podman.
    await write(join(h.dir, 'xdg', 'containers', 'auth.json'), { auths: { 'c.example': { auth: b64('xdg:pw') } } });
    assert.equal((await resolveCredentials({ registry: 'c.example', env: { ...env, XDG_CONFIG_HOME: join(h.dir, 'xdg') } }))?.username, 'xdg');
  });

  it('reads $REGISTRY_AUTH_FILE before Docker\'s config, unless --authfile is given; a missing one is no error', async (t) => {
    const h = await home(t);
    const file = join(h.dir, 'registry-auth.json');
    await write(file, { auths: { 'r.example': { auth: b64('fromenv:pw') } } });
    await h.config({ auths: { 'r.example': { auth: b64('docker:pw') } } });
    assert.equal((await h.resolve('r.example', { env: { ...h.env, REGISTRY_AUTH_FILE: file } }))?.username, 'fromenv');
    const authfile = join(h.dir, 'authfile.json');
    await write(authfile, { auths: {} });
    assert.equal((await h.resolve('r.example', { env: { ...h.env, REGISTRY_AUTH_FILE: file }, authfile }))?.username, 'docker');
    assert.equal((await h.resolve('r.example', { env: { ...h.env, REGISTRY_AUTH_FILE: join(h.dir, 'none.json') } }))?.username, 'docker');
    await writeFile(file, '{"auths":');
    await assert.rejects(h.resolve('r.example', { env: { ...h.env, REGISTRY_AUTH_FILE: file } }), /registry-auth\.json is not valid JSON \(.*\); fix it, or log in again with podman login or skopeo login$/);
  });

  it("passes over auth.json's entries for one namespace of a registry, and keeps its credential helpers", async (t) => {
    const h = await home(t);
    const file = join(h.dir, '.config', 'containers', 'auth.json');
    await write(file, { auths: { 'quay.example/team': { auth: b64('team:pw') } } });
    assert.equal(await h.resolve('quay.example'), undefined);
    await write(file, { auths: { 'quay.example/team': { auth: b64('team:pw') }, 'quay.example': { auth: b64('all:pw') } } });
    assert.equal((await h.resolve('quay.example'))?.username, 'all');
    await h.helper('pass', 'echo \'{"Username":"helped","Secret":"s"}\'');
    await write(file, { credHelpers: { 'quay.example': 'pass' } });
    assert.equal((await h.resolve('quay.example'))?.username, 'helped');
  });
});

describe('resolveCredentials with credential helpers', () => {
  it('runs the credHelpers entry for the registry with the server URL on stdin', async (t) => {
    const h = await home(t);
    await h.helper('test', `printf '{"ServerURL":"%s","Username":"helper-user","Secret":"helper-secret"}' "$server"`);
    await h.config({ credHelpers: { 'registry.example:5000': 'test' }, credsStore: 'absent', auths: { 'registry.example:5000': {} } });
    assert.deepEqual(await h.resolve('registry.example:5000'), { username: 'helper-user', password: 'helper-secret', source: 'credential helper docker-credential-test' });
    assert.deepEqual(await h.helperCalls(), ['registry.example:5000']);
  });

  it("runs credsStore for other registries, asking for Docker Hub by Docker's server URL", async (t) => {
    const h = await home(t);
    await h.helper('store', `printf '{"Username":"<token>","Secret":"identity"}'`);
    await h.config({ credsStore: 'store' });
    assert.deepEqual(await h.resolve('docker.io'), { identityToken: 'identity', source: 'credential helper docker-credential-store' });
    assert.deepEqual(await h.helperCalls(), ['https://index.docker.io/v1/']);
  });

  it('falls back to auths when the helper has nothing for the registry', async (t) => {
    const h = await home(t);
    await h.helper('empty', 'echo "credentials not found in native keychain"; exit 1');
    await h.config({ credsStore: 'empty', auths: { 'r.example': { auth: b64('fallback:pw') } } });
    assert.equal((await h.resolve('r.example'))?.username, 'fallback');
    assert.equal(await h.resolve('q.example'), undefined);
  });

  it('fails clearly when the helper is not installed, fails, or answers garbage', async (t) => {
    const h = await home(t);
    await h.config({ credHelpers: { 'r.example': 'missing' } });
    await assert.rejects(h.resolve('r.example'), /^CredentialsError: the credential helper docker-credential-missing that .*config\.json names is not installed \(not on PATH\); install it, or remove it/);
    await h.helper('broken', 'echo "gpg: decryption failed" >&2; exit 2');
    await h.config({ credHelpers: { 'r.example': 'broken' } });
    await assert.rejects(h.resolve('r.example'), /docker-credential-broken failed \(exit status 2\): gpg: decryption failed; run "docker-credential-broken get" by hand/);
    // A helper that printed its answer and then failed: the answer (with its secret) is not shown.
    await h.helper('printed', 'echo \'{"ServerURL":"r.example","Username":"u","Secret":"hunter2-secret"}\'; echo "keychain locked" >&2; exit 1');
    await h.config({ credHelpers: { 'r.example': 'printed' } });
    await assert.rejects(h.resolve('r.example'), (error: Error) => {
      assert.match(error.message, /docker-credential-printed failed \(exit status 1\): keychain locked; run/);
      assert.doesNotMatch(error.message, /hunter2/);
      return true;
    });
    await h.helper('only-json', 'echo \'{"Username":"u","Secret":"hunter2-secret"}\'; exit 1');
    await h.config({ credHelpers: { 'r.example': 'only-json' } });
    await assert.rejects(h.resolve('r.example'), /docker-credential-only-json failed \(exit status 1\): no message, only JSON; run/);
    await h.helper('garbage', 'echo not json');
    await h.config({ credHelpers: { 'r.example': 'garbage' } });
    await assert.rejects(h.resolve('r.example'), /answered something that is not \{"Username","Secret"\} JSON/);
    await h.config({ credHelpers: { 'r.example': '../../bin/sh' } });
    await assert.rejects(h.resolve('r.example'), /not a valid helper name/);
  });

  it('kills a helper that does not answer in time', async (t) => {
    const h = await home(t);
    await h.helper('slow', 'sleep 5');
    await h.config({ credHelpers: { 'r.example': 'slow' } });
    await assert.rejects(h.resolve('r.example', { helperTimeoutMs: 200 }), /did not answer within 0\.2 s/);
  });

  /** A helper that hangs in a child of its own, and writes down both process ids. */
  const hangingHelper = async (h: Awaited<ReturnType<typeof home>>) => {
    await h.helper('hang', 'sleep 300 &\necho "$!" > "$HELPER_LOG.child"\necho "$$" > "$HELPER_LOG.pid"\nwait');
    await h.config({ credHelpers: { 'r.example': 'hang' } });
    return { pids: async () => [await pidIn(join(h.dir, 'helper.log.pid')), await pidIn(join(h.dir, 'helper.log.child'))] };
  };

  it('kills a helper that hangs, and the children it started, when it is cancelled', async (t) => {
    const h = await home(t);
    const { pids } = await hangingHelper(h);
    const controller = new AbortController();
    const resolving = h.resolve('r.example', { signal: controller.signal });
    const [helper, child] = await pids();
    controller.abort();
    await assert.rejects(resolving, { name: 'CancelledError', message: 'cancelled while the credential helper docker-credential-hang was running' });
    await waitGone(helper!);
    await waitGone(child!);
  });

  it('kills the children of a helper that timed out too', async (t) => {
    const h = await home(t);
    const { pids } = await hangingHelper(h);
    const resolving = h.resolve('r.example', { helperTimeoutMs: 300 });
    const [, child] = await pids();
    await assert.rejects(resolving, /did not answer within 0\.3 s/);
    await waitGone(child!);
  });
});
