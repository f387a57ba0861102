/**
 * Tokens that the registry stops accepting in the middle of an upload (expired, revoked): the uploader
 * gets a fresh one and sends the blob again, once; a registry that refuses the fresh token too gets an error
 * that says the token was refused, never that the user should pass credentials they gave.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, afterEach, before, describe, it } from 'node:test';

import { createAuthenticator, RegistryClient } from '@rxpush/registry-client';
import type { PushError } from '@rxpush/core';

import { makeOciLayout, type OciLayoutFixture } from '../tools/fixtures.ts';
import { startRegistry, type RunningRegistry } from '../tools/registry.ts';
import { assertOneLineError } from './helpers/assert-cli.ts';
import { startFaultProxy, type FaultProxy } from './helpers/fault-proxy.ts';
import { pushAll } from './helpers/push-events.ts';
import { runCli } from './helpers/run-cli.ts';
import { startTokenServer, type RunningTokenServer } from './helpers/token-server.ts';

const USERS = { alice: 'correct-horse-battery' };
const alice = { username: 'alice', password: USERS.alice };

describe('a token refused in the middle of an upload', () => {
  let work: string;
  let layout: OciLayoutFixture;
  let tokens: RunningTokenServer;
  let registry: RunningRegistry;
  let proxy: FaultProxy;
  let direct: RegistryClient;

  before(async () => {
    work = await mkdtemp(join(tmpdir(), 'rxpush-token-refresh-'));
    layout = await makeOciLayout(join(work, 'layout'), { images: [{ tags: ['latest'], layers: [{ files: 3, fileSize: 100_000, seed: 'token-refresh' }] }] });
    tokens = await startTokenServer({ users: USERS });
    registry = await startRegistry({ token: tokens.registryConfig });
    proxy = await startFaultProxy({ target: registry.host });
    direct = new RegistryClient({ registry: registry.host, auth: createAuthenticator({ registry: registry.host, credentials: { ...alice, source: 'test' } }) });
  });
  afterEach(() => proxy?.clearFaults());
  after(async () => {
    await direct?.close();
    await proxy?.close();
    await registry?.stop();
    await tokens?.close();
    await rm(work, { recursive: true, force: true });
  });

  /** The 401 the registry sends for a token it no longer accepts. */
  const invalidToken = (repository: string) => ({
    kind: 'status' as const,
    status: 401,
    headers: { 'www-authenticate': `Bearer realm="${tokens.realm}",service="${tokens.service}",scope="repository:${repository}:pull,push",error="invalid_token"` },
    body: JSON.stringify({ errors: [{ code: 'UNAUTHORIZED', message: 'authentication required' }] }),
  });
  const layer = () => layout.images[0]!.layerDigests[0]!;
  const pushTo = (repository: string, options: { chunkSize?: number } = {}) =>
    pushAll({ source: `oci:${layout.dir}:latest`, destination: `${proxy.host}/${repository}:1.0`, credentials: alice, retry: { baseDelayMs: 5, maxDelayMs: 20 }, concurrency: 1, ...options });

  it('refreshes the token once and sends a monolithic blob again, re-opening its source', async () => {
    const repository = 'refresh/put';
    proxy.addFault({ method: 'PUT', path: new RegExp(`digest=${layer()}`), nth: 1, fault: invalidToken(repository) });
    const before = tokens.requests.length;
    await pushTo(repository);
    const puts = proxy.requests.filter((r) => r.method === 'PUT' && r.url.includes(`digest=${layer()}`));
    assert.deepEqual(puts.map((r) => r.status), [401, 201]);
    assert.notEqual(puts[0]!.headers.authorization, puts[1]!.headers.authorization, 'the second PUT carries a fresh token');
    assert.ok(tokens.requests.length > before);
    assert.equal((await direct.hasManifest(repository, '1.0'))?.digest, layout.images[0]!.manifestDigest);
    assert.equal((await direct.hasBlob(repository, layer() as never))?.size, layout.images[0]!.layerSizes[0]);
  });

  it('refreshes the token once and goes on with a chunked upload', async () => {
    const repository = 'refresh/patch';
    proxy.addFault({ method: 'PATCH', path: new RegExp(`${repository}/blobs/uploads/`), nth: 2, fault: invalidToken(repository) });
    await pushTo(repository, { chunkSize: 64 * 1024 });
    const patches = proxy.requests.filter((r) => r.method === 'PATCH' && r.url.includes(repository));
    assert.equal(patches.filter((r) => r.status === 401).length, 1);
    assert.equal((await direct.hasManifest(repository, '1.0'))?.digest, layout.images[0]!.manifestDigest);
  });

  it('says the token was refused, not the credentials, when the fresh token is refused too; no tag is pushed', async () => {
    const repository = 'refresh/refused';
    proxy.addFault({ method: 'PUT', path: new RegExp(`${repository}/blobs/uploads/`), fault: invalidToken(repository) });
    await assert.rejects(pushTo(repository), (error: PushError) => {
      assert.equal(error.code, 'UNAUTHORIZED');
      assert.match(error.message, /^PUT \S+ → 401 UNAUTHORIZED: authentication required; the registry refused the token \(invalid_token\), also after rxpush fetched a fresh one; /);
      return true;
    });
    assert.equal(proxy.requests.filter((r) => r.method === 'PUT' && r.url.includes(repository)).length, 2, 'sent once more, not again and again');
    assert.equal(await direct.hasManifest(repository, '1.0'), undefined);

    const result = await runCli(['push', `oci:${layout.dir}:latest`, `${proxy.host}/${repository}:1.0`, '--creds', `alice:${USERS.alice}`, '--progress', 'plain'], {
      env: { RXPUSH_CACHE_DIR: join(work, 'cache'), DOCKER_CONFIG: join(work, 'docker') },
    });
    assertOneLineError(result, /the registry refused the token \(invalid_token\)/);
    assert.doesNotMatch(result.stderr, /--creds|--authfile|docker login|pass /, 'no message asks for the credentials that were given');
  });
});
