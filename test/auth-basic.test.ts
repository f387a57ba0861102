import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { chmod, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { before, describe, it } from 'node:test';

import { createAuthenticator, createDispatcher, RegistryClient } from '@rxpush/registry-client';

import { makeOciLayout } from '../tools/fixtures.ts';
import { startRegistry } from '../tools/registry.ts';
import { startFaultProxy } from './helpers/fault-proxy.ts';
import { useRegistry } from './helpers/registry-suite.ts';
import { homeIn, runCli, startCli } from './helpers/run-cli.ts';
import { skopeoInspectRaw } from './helpers/skopeo.ts';
import { assertOneLineError } from './helpers/assert-cli.ts';

const PASSWORD = 'basic-s3cret-pw';
const b64 = (text: string) => Buffer.from(text).toString('base64');

describe('credentials for a TLS registry with htpasswd (the CLI)', () => {
  const suite = useRegistry('auth-basic', {
    registry: { tls: true, htpasswd: { bob: PASSWORD } },
    images: [{ tags: ['latest'], layers: [{ files: 2, fileSize: 40_000, seed: 'basic-base' }, { files: 1, fileSize: 8_000, seed: 'basic-app' }] }],
  });
  let caFile: string;
  /** Environment for CLI runs: its own HOME, Docker config dir and cache, so nothing of this machine is read. */
  let env: Record<string, string>;
  let tag = 0;

  before(async () => {
    await mkdir(join(suite.work, 'docker'));
    env = homeIn(suite.work);
    caFile = suite.registry.caFile ?? '';
  });

  /** `rxpush push` of the layout to a fresh tag of basic/app; returns the result and the reference. */
  async function pushWith(args: string[], options: { env?: Record<string, string>; input?: string } = {}) {
    const ref = `${suite.registry.host}/basic/app:t${++tag}`;
    const result = await runCli(['push', `oci:${suite.layout.dir}:latest`, ref, ...args], { env: { ...env, ...options.env }, ...(options.input !== undefined && { input: options.input }) });
    return { result, ref, tag: `t${tag}` };
  }

  /** The manifest under `tag`, asked with bob's credentials, or undefined. */
  async function stored(tagName: string) {
    const dispatcher = createDispatcher({ registry: suite.registry.host, caFile });
    const client = new RegistryClient({
      registry: suite.registry.host,
      dispatcher,
      auth: createAuthenticator({ registry: suite.registry.host, dispatcher, credentials: { username: 'bob', password: PASSWORD, source: 'test' } }),
    });
    try {
      return await client.hasManifest('basic/app', tagName);
    } finally {
      await client.close();
      await dispatcher.close();
    }
  }

  it('pushes with --creds and --ca-file, and skopeo reads it back', async () => {
    const { result, ref, tag: pushed } = await pushWith(['--creds', `bob:${PASSWORD}`, '--ca-file', caFile]);
    assert.equal(result.code, 0, result.stderr);
    assert.match(result.stdout, new RegExp(`${pushed}: digest: sha256:[0-9a-f]{64}`));
    const raw = await skopeoInspectRaw(ref, { creds: `bob:${PASSWORD}` });
    assert.equal(raw.json.layers.length, 2);
  });

  it('pushes with --username and the password on stdin', async () => {
    const { result, tag: pushed } = await pushWith(['--username', 'bob', '--password-stdin', '--ca-file', caFile], { input: `${PASSWORD}\n` });
    assert.equal(result.code, 0, result.stderr);
    assert.ok(await stored(pushed));
  });

  it('fails with exit 1 and one line on a wrong password, and pushes nothing', async () => {
    const { result, tag: pushed } = await pushWith(['--creds', 'bob:wrong-password', '--ca-file', caFile]);
    assertOneLineError(result, /^rxpush: HEAD https:\/\/127\.0\.0\.1:\d+\/v2\/basic\/app\/blobs\/sha256:[0-9a-f]{64} → 401( UNAUTHORIZED[^;]*)?; the registry refused the credentials; check them \(--creds, --authfile or docker login\)$/);
    assert.ok(!result.stderr.includes('wrong-password'));
    assert.equal(await stored(pushed), undefined);
  });

  it('says credentials are wanted when there are none', async () => {
    const { result } = await pushWith(['--ca-file', caFile]);
    assertOneLineError(result, /→ 401( UNAUTHORIZED[^;]*)?; the registry wants credentials; pass --creds USER:PASS, --authfile PATH or docker login$/);
  });

  it("takes the credentials from Docker's config.json", async () => {
    const dir = join(suite.work, 'config-auths');
    await mkdir(dir, { recursive: true });
    await writeFile(join(dir, 'config.json'), JSON.stringify({ auths: { [`https://${suite.registry.host}`]: { auth: b64(`bob:${PASSWORD}`) } } }));
    const { result, tag: pushed } = await pushWith(['--ca-file', caFile], { env: { DOCKER_CONFIG: dir } });
    assert.equal(result.code, 0, result.stderr);
    assert.ok(await stored(pushed));
  });

  it('takes the credentials from --authfile, and says so when they are refused', async () => {
    const authfile = join(suite.work, 'auth.json');
    await writeFile(authfile, JSON.stringify({ auths: { [suite.registry.host]: { username: 'bob', password: PASSWORD } } }));
    const { result } = await pushWith(['--authfile', authfile, '--ca-file', caFile]);
    assert.equal(result.code, 0, result.stderr);
    const missing = await pushWith(['--authfile', join(suite.work, 'missing.json'), '--ca-file', caFile]);
    assertOneLineError(missing.result, /cannot read the credentials file .*missing\.json: it does not exist; check --authfile/);
  });

  it('takes the credentials skopeo login wrote, as skopeo and podman do', async () => {
    const runtime = join(suite.work, 'run-login');
    await mkdir(runtime, { recursive: true });
    // skopeo's own login, as a user runs it: it writes $XDG_RUNTIME_DIR/containers/auth.json.
    await new Promise<void>((resolve, reject) => {
      execFile('/usr/bin/skopeo', ['login', '--tls-verify=false', '--username', 'bob', '--password-stdin', suite.registry.host], { env: { ...process.env, XDG_RUNTIME_DIR: runtime } }, (error, _stdout, stderr) =>
        error === null ? resolve() : reject(new Error(`skopeo login failed: ${stderr}`)),
      ).stdin?.end(PASSWORD);
    });
    const { result, tag: pushed } = await pushWith(['--ca-file', caFile], { env: { XDG_RUNTIME_DIR: runtime } });
    assert.equal(result.code, 0, result.stderr);
    assert.ok(await stored(pushed));
    // The same file named by REGISTRY_AUTH_FILE, as podman and skopeo read it.
    const named = await pushWith(['--ca-file', caFile], { env: { REGISTRY_AUTH_FILE: join(runtime, 'containers', 'auth.json') } });
    assert.equal(named.result.code, 0, named.result.stderr);
    const anonymous = await pushWith(['--ca-file', caFile]);
    assert.equal(anonymous.result.code, 1, 'without the file, the push is anonymous and refused');
  });

  it('runs the credential helper config.json names, with the registry on stdin', async () => {
    const bin = join(suite.work, 'bin');
    const dir = join(suite.work, 'config-helper');
    await mkdir(bin, { recursive: true });
    await mkdir(dir, { recursive: true });
    const asked = join(suite.work, 'helper-asked');
    const helper = join(bin, 'docker-credential-test');
    await writeFile(
      helper,
      `#!/bin/sh\nserver=$(cat)\necho "$1 $server" >> "${asked}"\n` +
        `[ "$server" = "${suite.registry.host}" ] || { echo "credentials not found in native keychain"; exit 1; }\n` +
        `printf '{"ServerURL":"%s","Username":"bob","Secret":"${PASSWORD}"}' "$server"\n`,
    );
    await chmod(helper, 0o755);
    await writeFile(join(dir, 'config.json'), JSON.stringify({ credHelpers: { [suite.registry.host]: 'test' } }));
    const { result, tag: pushed } = await pushWith(['--ca-file', caFile], { env: { DOCKER_CONFIG: dir, PATH: `${bin}:${process.env['PATH'] ?? ''}` } });
    assert.equal(result.code, 0, result.stderr);
    assert.ok(await stored(pushed));
    assert.deepEqual((await readFile(asked, 'utf8')).trim().split('\n'), [`get ${suite.registry.host}`], 'the helper is run once, with get and the registry');
  });

  it('prints no password at any log level and keeps it off the process title', async (t) => {
    const big = await makeOciLayout(join(suite.work, 'big'), { images: [{ tags: ['latest'], layers: [{ files: 4, fileSize: 4_000_000, seed: 'title' }] }] });
    const args = ['push', `oci:${big.dir}:latest`, `${suite.registry.host}/basic/title:1`, '--creds', `bob:${PASSWORD}`, '--ca-file', caFile, '--log-level', 'trace', '--progress', 'plain'];
    const cli = startCli(t, args, { env });
    let cmdline: string | undefined;
    cli.child.stdout.on('data', () => {
      // Once progress shows, the push is under way: read the command line as `ps` would.
      cmdline ??= readCmdline(cli.child.pid);
    });
    const { code, stdout, stderr } = await cli.result;
    const output = stderr + stdout;
    assert.equal(code, 0, output);
    assert.ok(cmdline !== undefined, 'the command line was read during the push');
    assert.ok(!cmdline.includes(PASSWORD), `the password is visible in /proc: ${cmdline}`);
    assert.match(cmdline, /^rxpush push/);
    assert.match(output, /"level":20/, 'debug lines were logged');
    assert.ok(!output.includes(PASSWORD) && !output.includes(b64(`bob:${PASSWORD}`)), 'the password was printed');
  });
});

describe('credentials and Location headers that point elsewhere', () => {
  it('sends no Authorization to an upload Location on another origin', async (t) => {
    const work = await mkdtemp(join(tmpdir(), 'rxpush-location-'));
    t.after(() => rm(work, { recursive: true, force: true }));
    const registry = await startRegistry({ htpasswd: { bob: PASSWORD } });
    t.after(() => registry.stop());
    const front = await startFaultProxy({ target: registry.host });
    t.after(() => front.close());
    const elsewhere = await startFaultProxy({ target: registry.host });
    t.after(() => elsewhere.close());
    // The registry (through `front`) opens an upload session on another origin.
    front.addFault({
      method: 'POST',
      path: /\/blobs\/uploads\//,
      fault: { kind: 'status', status: 202, headers: { location: `${elsewhere.url}/v2/loc/app/blobs/uploads/elsewhere`, range: '0-0' }, body: '' },
    });
    const layout = await makeOciLayout(join(work, 'layout'), { images: [{ tags: ['latest'], layers: [{ files: 1, fileSize: 5_000, seed: 'loc' }] }] });
    const result = await runCli(['push', `oci:${layout.dir}:latest`, `${front.host}/loc/app:1`, '--creds', `bob:${PASSWORD}`], {
      env: homeIn(work),
    });
    assert.equal(result.code, 1, result.stderr);
    assert.ok(front.requests.some((r) => r.headers.authorization !== undefined), 'the registry itself got the credentials');
    assert.ok(elsewhere.requests.length > 0, 'the client followed the Location');
    for (const r of elsewhere.requests) assert.equal(r.headers.authorization, undefined, `${r.method} ${r.url} carried credentials`);
  });
});

function readCmdline(pid: number | undefined): string | undefined {
  try {
    // Synchronously: the answer matters for the moment progress is seen.
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').replace(/\0+/g, ' ').trim();
  } catch {
    return undefined;
  }
}
