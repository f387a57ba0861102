/**
 * Registries that answer in ways the spec does not say, or should not: other success statuses, headers
 * proxies dropped, Locations and redirects that go where they must not. A fault proxy rewrites the
 * reference registry's real answers; every push must land whole, or fail with one line naming the request.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';

import type { Digest, PushError, PushEvent } from '@rxpush/core';
import type { PushOptions } from '@rxpush/pipeline';

import { fakeEngine } from '../packages/graph-reader/test/fake-engine.ts';
import { makeCertificates } from '../tools/registry.ts';
import { assertOneLineError } from './helpers/assert-cli.ts';
import { startFaultProxy, type FaultProxy } from './helpers/fault-proxy.ts';
import { useProxiedRegistry, type ProxiedRegistry } from './helpers/proxied-registry.ts';
import { ofType, pushAll } from './helpers/push-events.ts';
import { runCli } from './helpers/run-cli.ts';
import { skopeoCopyToOci } from './helpers/skopeo.ts';

const UPLOADS = /\/blobs\/uploads\//;

/** The image is in `repository` under `tag` exactly as in the layout: same manifest, every blob at its size. */
async function assertLanded(env: ProxiedRegistry, repository: string, tag = '1.0'): Promise<void> {
  const image = env.layout.images[0]!;
  assert.equal((await env.direct.hasManifest(repository, tag))?.digest, image.manifestDigest);
  for (const [i, layer] of image.layerDigests.entries()) assert.equal((await env.direct.hasBlob(repository, layer as Digest))?.size, image.layerSizes[i]);
  assert.ok(await env.direct.hasBlob(repository, image.configDigest as Digest));
}

describe('pushing to a registry whose answers are rewritten on the way', () => {
  // A 300 kB and a 50 kB layer of pseudo-random bytes: the first takes several 64 KiB chunks.
  const env = useProxiedRegistry('hostile', [{ tags: ['latest'], layers: [{ files: 3, fileSize: 100_000, seed: 'hostile-base' }, { files: 1, fileSize: 50_000, seed: 'hostile-app' }] }]);

  const pushVia = (repository: string, options: Partial<PushOptions> = {}, proxy: FaultProxy = env.proxy): Promise<PushEvent[]> =>
    pushAll({ source: `oci:${env.layout.dir}:latest`, destination: `${proxy.host}/${repository}:1.0`, retry: { baseDelayMs: 5, maxDelayMs: 20 }, ...options });
  const seen = (method: string, path: RegExp) => env.proxy.requests.filter((r) => r.method === method && path.test(r.url));

  for (const status of [201, 204]) {
    it(`accepts chunk PATCHes answered ${status} (as AWS ECR and proxies answer)`, async () => {
      const repository = `hostile/patch-${status}`;
      env.proxy.addFault({ method: 'PATCH', path: new RegExp(`${repository}/blobs/uploads/`), fault: { kind: 'rewrite', status } });
      await pushVia(repository, { chunkSize: 64 * 1024 });
      const patches = seen('PATCH', new RegExp(`${repository}/blobs/uploads/`));
      assert.ok(patches.length > 4, 'the layers went up in chunks');
      assert.ok(patches.every((p) => p.status === status));
      await assertLanded(env, repository);
    });
  }

  it('refuses a --chunk-size below 64 KiB as a usage error, naming what to use, and pushes nothing', async () => {
    const result = await runCli(['push', `oci:${env.layout.dir}:latest`, `${env.proxy.host}/hostile/tiny-chunks:1.0`, '--chunk-size', '1000']);
    assertOneLineError(result, /^rxpush: --chunk-size 1000 bytes is too small: below 64 KiB, every layer would take thousands of requests; use --chunk-size 64KiB or more/, 2);
    assert.equal(seen('PATCH', /hostile\/tiny-chunks\//).length, 0);
    assert.equal(await env.direct.hasManifest('hostile/tiny-chunks', '1.0'), undefined);
  });

  it('takes chunks below 64 KiB when the registry asks for less with OCI-Chunk-Min-Length', async () => {
    const repository = 'hostile/small-chunks';
    env.proxy.addFault({ method: 'POST', path: new RegExp(`${repository}/blobs/uploads/`), fault: { kind: 'add-headers', headers: { 'oci-chunk-min-length': '16384' } } });
    await pushVia(repository, { chunkSize: 32 * 1024 });
    const patches = seen('PATCH', new RegExp(`${repository}/blobs/uploads/`));
    assert.ok(patches.length > 4, 'the layers went up in chunks');
    assert.ok(patches.every((r) => r.bodyBytes <= 32 * 1024));
    await assertLanded(env, repository);
  });

  for (const status of [200, 204]) {
    it(`accepts a blob commit answered ${status} once a HEAD confirms the blob`, async () => {
      const repository = `hostile/commit-${status}`;
      env.proxy.addFault({ method: 'PUT', path: new RegExp(`${repository}/blobs/uploads/`), fault: { kind: 'rewrite', status } });
      await pushVia(repository);
      const image = env.layout.images[0]!;
      for (const layer of image.layerDigests) {
        const commit = env.proxy.requests.findIndex((r) => r.method === 'PUT' && r.url.includes(`digest=${layer}`));
        assert.ok(commit >= 0);
        assert.ok(
          env.proxy.requests.slice(commit + 1).some((r) => r.method === 'HEAD' && r.url.endsWith(`${repository}/blobs/${layer}`) && r.status === 200),
          'a HEAD after the commit confirmed it',
        );
      }
      await assertLanded(env, repository);
      await skopeoCopyToOci(`${env.registry.host}/${repository}:1.0`, join(env.work, `commit-${status}`));
    });
  }

  it('refuses a blob commit answered 204 when the blob is not there afterwards, and pushes no manifest', async () => {
    const repository = 'hostile/commit-lost';
    // The registry never sees the commit: the proxy answers 204 in its place.
    env.proxy.addFault({ method: 'PUT', path: new RegExp(`${repository}/blobs/uploads/`), fault: { kind: 'status', status: 204, body: '' } });
    await assert.rejects(pushVia(repository, { concurrency: 1 }), (error: PushError) => {
      assert.equal(error.code, 'BLOB_NOT_VERIFIED');
      assert.match(error.message, /^PUT http:\/\/127\.0\.0\.1:\d+\/v2\/hostile\/commit-lost\/blobs\/uploads\/\S+ → 204 but the blob sha256:[0-9a-f]{64} cannot be found afterwards; push again$/);
      return true;
    });
    assert.equal(seen('PUT', /hostile\/commit-lost\/manifests\//).length, 0);
    assert.equal(await env.direct.hasManifest(repository, '1.0'), undefined);
  });

  it('accepts a manifest PUT answered 200', async () => {
    const repository = 'hostile/manifest-200';
    env.proxy.addFault({ method: 'PUT', path: new RegExp(`${repository}/manifests/`), fault: { kind: 'rewrite', status: 200 } });
    const events = await pushVia(repository);
    assert.equal(ofType(events, 'manifest-pushed')[0]?.digest, env.layout.images[0]!.manifestDigest);
    await assertLanded(env, repository);
  });

  it('asks for a manifest whose PUT was answered 200 without its digest, and the push lands', async () => {
    const repository = 'hostile/manifest-no-digest';
    env.proxy.addFault({ method: 'PUT', path: new RegExp(`${repository}/manifests/`), fault: { kind: 'rewrite', status: 200, dropHeaders: ['docker-content-digest'] } });
    const events = await pushVia(repository);
    assert.equal(ofType(events, 'manifest-pushed')[0]?.digest, env.layout.images[0]!.manifestDigest);
    assert.equal(seen('HEAD', new RegExp(`${repository}/manifests/1\\.0$`)).length, 1, 'one HEAD asked for it');
    await assertLanded(env, repository);
  });

  it('fails with one line when a manifest PUT is answered 201 by something in front of the registry, which never got it', async () => {
    const repository = 'hostile/manifest-made-up';
    env.proxy.addFault({ method: 'PUT', path: new RegExp(`${repository}/manifests/`), fault: { kind: 'status', status: 201, body: '' } });
    const result = await runCli(['push', `oci:${env.layout.dir}:latest`, `${env.proxy.host}/${repository}:1.0`, '--progress', 'plain']);
    assertOneLineError(
      result,
      new RegExp(`^rxpush: PUT http://127\\.0\\.0\\.1:\\d+/v2/${repository}/manifests/1\\.0 → 201 but the registry does not have the manifest afterwards: something between rxpush and the registry answered in its place; check the proxy or gateway in front of it, and push again$`),
    );
    assert.equal(await env.direct.hasManifest(repository, '1.0'), undefined);
  });

  it('confirms a blob whose HEAD lost its Content-Length with a ranged GET, and does not send it again', async () => {
    const repository = 'hostile/head-no-length';
    await pushVia(repository);
    const before = env.proxy.requests.length;
    env.proxy.addFault({ method: 'HEAD', path: new RegExp(`${repository}/blobs/`), fault: { kind: 'rewrite', dropHeaders: ['content-length'] } });
    const events = await pushVia(repository);
    const second = env.proxy.requests.slice(before);
    assert.equal(second.filter((r) => r.method === 'POST' || r.method === 'PATCH').length, 0, 'nothing uploaded again');
    assert.ok(second.some((r) => r.method === 'GET' && r.headers.range === 'bytes=0-0' && r.status === 206));
    assert.equal(ofType(events, 'exists').length, env.layout.images[0]!.layerDigests.length + 1, 'every layer and the config');
    await assertLanded(env, repository);
  });

  it('uploads a blob again when neither HEAD nor a ranged GET tell its size, and the push lands', async () => {
    const repository = 'hostile/no-size-at-all';
    await pushVia(repository);
    const before = env.proxy.requests.length;
    env.proxy.addFault({ method: 'HEAD', path: new RegExp(`${repository}/blobs/`), fault: { kind: 'rewrite', dropHeaders: ['content-length'] } });
    env.proxy.addFault({ method: 'GET', path: new RegExp(`${repository}/blobs/sha256`), fault: { kind: 'rewrite', status: 200, dropHeaders: ['content-length', 'content-range'] } });
    await pushVia(repository);
    assert.ok(env.proxy.requests.slice(before).some((r) => r.method === 'PUT' && UPLOADS.test(r.url)), 'the blobs were uploaded anyway');
    await assertLanded(env, repository);
  });

  it('stops following a redirect loop after 10 and says so', async () => {
    const repository = 'hostile/redirect-loop';
    const layer = env.layout.images[0]!.layerDigests[0]!;
    env.proxy.addFault({ method: 'HEAD', path: new RegExp(`${repository}/blobs/${layer}`), fault: { kind: 'redirect', location: `/v2/${repository}/blobs/${layer}` } });
    await assert.rejects(pushVia(repository, { concurrency: 1 }), (error: PushError) => {
      assert.equal(error.code, 'INVALID_RESPONSE');
      assert.match(error.message, /^HEAD http:\/\/127\.0\.0\.1:\d+\/v2\/hostile\/redirect-loop\/blobs\/sha256:[0-9a-f]{64} → 30\d after 10 redirects \(the last from .*\): the registry or its storage redirects in a loop/);
      return true;
    });
    assert.equal(seen('HEAD', new RegExp(`${repository}/blobs/${layer}`)).length, 11);
    assert.equal(await env.direct.hasManifest(repository, '1.0'), undefined);
  });

  it('gives a registry that stops answering one more try, not every retry, and names the timeout', async () => {
    // An outage is retried for a minute; a stall is tried twice. (The defaults are 25 s a wait: within a minute in all.)
    const options = { timeouts: { headers: 300 }, retry: { baseDelayMs: 1 }, concurrency: 1 };
    env.proxy.addFault({ method: 'HEAD', path: /hostile\/stalled-head\//, fault: { kind: 'stall' } });
    await assert.rejects(pushVia('hostile/stalled-head', options), (error: PushError) => {
      assert.equal(error.code, 'TIMEOUT');
      assert.match(error.message, /^HEAD \S+ failed: the registry did not answer within 300 ms \(the answer timeout\); check the registry, or allow it more time with --timeout \(gave up after 2 attempts\)$/);
      return true;
    });
    const heads = seen('HEAD', /hostile\/stalled-head\//);
    assert.equal(heads.length, 2 * new Set(heads.map((r) => r.url)).size, 'each blob HEAD tried twice');

    env.proxy.clearFaults();
    env.proxy.addFault({ method: 'PUT', path: /hostile\/stalled-put\/blobs\/uploads\//, fault: { kind: 'stall' } });
    await assert.rejects(pushVia('hostile/stalled-put', options), (error: PushError) => {
      assert.equal(error.code, 'TIMEOUT');
      assert.match(error.message, /^PUT \S+ failed: the registry did not answer within 300 ms \(the answer timeout\)/);
      return true;
    });
    const puts = seen('PUT', /hostile\/stalled-put\/blobs\/uploads\//);
    assert.equal(puts.length, 2 * new Set(puts.map((r) => /digest=([^&]+)/.exec(r.url)?.[1])).size, 'each stream body sent twice, not five times');
    assert.equal(await env.direct.hasManifest('hostile/stalled-put', '1.0'), undefined);
  });

  it('fails with one line naming the engine and the layer when a Docker Engine stops sending its save stream half-way', async (t) => {
    // A stand-in engine: a real dockerd cannot be made to hang mid-stream.
    const layers = [{ big: randomBytes(512 * 1024).toString('hex') }];
    const whole = await fakeEngine(t, { layers });
    const engine = await fakeEngine(t, { layers, stallAfter: Math.floor(whole.archive.length / 2) });
    const saved = process.env['DOCKER_HOST'];
    process.env['DOCKER_HOST'] = engine.host;
    t.after(() => (saved === undefined ? delete process.env['DOCKER_HOST'] : void (process.env['DOCKER_HOST'] = saved)));
    const repository = 'hostile/engine-stall';
    await assert.rejects(
      pushAll({ source: 'docker-daemon:app:1', destination: `${env.proxy.host}/${repository}:1.0`, timeouts: { engine: 300 } }),
      (error: PushError) => {
        assert.equal(error.code, 'INVALID_SOURCE');
        assert.match(error.message, new RegExp(`^docker-daemon:app:1: the Docker Engine at ${engine.host} sent nothing for 0\\.3 s in the middle of its save stream \\(at layer 1 of 1 `));
        assert.doesNotMatch(error.message, /\n/);
        return true;
      },
    );
    assert.equal(seen('PUT', new RegExp(`${repository}/manifests/`)).length, 0);
    assert.equal(await env.direct.hasManifest(repository, '1.0'), undefined);
  });

  it('waits out a registry that is gone for 20 s in the middle of a push, with the default retries, sending nothing twice', async () => {
    const repository = 'hostile/outage';
    const layer = env.layout.images[0]!.layerDigests[0]!;
    // The default policy: no retry options.
    const pushing = pushAll({ source: `oci:${env.layout.dir}:latest`, destination: `${env.proxy.host}/${repository}:1.0`, concurrency: 1 });
    await env.proxy.waitFor('PUT', new RegExp(`${repository}/blobs/uploads/.*digest=${layer}`));
    await env.proxy.outage(20_000);
    const events = await pushing;
    assert.ok(ofType(events, 'retrying').length > 0, 'the outage was retried');
    assert.equal(ofType(events, 'manifest-pushed')[0]?.digest, env.layout.images[0]!.manifestDigest);
    await assertLanded(env, repository);
    // Each blob was committed once, and never sent again after that.
    const commits = seen('PUT', new RegExp(`${repository}/blobs/uploads/`));
    for (const digest of new Set(commits.map((r) => /digest=([^&]+)/.exec(r.url)?.[1]))) {
      const forBlob = commits.filter((r) => r.url.includes(`digest=${digest}`));
      const landed = forBlob.findIndex((r) => r.status === 201);
      assert.ok(landed >= 0, `${digest} landed`);
      assert.equal(forBlob.length, landed + 1, `${digest} was not sent again once it landed`);
    }
  });

  describe('behind HTTPS', () => {
    let tls: FaultProxy;
    let caFile: string;
    before(async () => {
      const dir = join(env.work, 'certs');
      await mkdir(dir, { recursive: true });
      const certs = await makeCertificates(dir);
      caFile = certs.caFile;
      tls = await startFaultProxy({ target: env.registry.host, tls: { certFile: certs.certFile, keyFile: certs.keyFile } });
    });
    after(() => tls?.close());

    it('pushes through the TLS proxy', async () => {
      await pushVia('hostile/tls', { caFile }, tls);
      await assertLanded(env, 'hostile/tls');
    });

    it('refuses an upload Location that turns HTTPS into plain HTTP, and sends no byte in the clear', async () => {
      const repository = 'hostile/downgrade';
      tls.addFault({ method: 'POST', path: UPLOADS, fault: { kind: 'rewrite', location: (location) => location.replace(/^https:/, 'http:') } });
      await assert.rejects(pushVia(repository, { caFile, concurrency: 1 }, tls), (error: PushError) => {
        assert.equal(error.code, 'TLS');
        assert.match(error.message, /^PUT http:\/\/127\.0\.0\.1:\d+\/v2\/hostile\/downgrade\/blobs\/uploads\/\S+ refused: the registry \(https:\/\/127\.0\.0\.1:\d+\) handed out plain HTTP/);
        return true;
      });
      assert.equal(tls.requests.filter((r) => (r.method === 'PUT' || r.method === 'PATCH') && r.url.includes(repository)).length, 0);
      assert.equal(await env.direct.hasManifest(repository, '1.0'), undefined);
      tls.clearFaults();
    });

    it('refuses a redirect from HTTPS to plain HTTP', async () => {
      const repository = 'hostile/downgrade-redirect';
      tls.addFault({ method: 'HEAD', path: new RegExp(`${repository}/blobs/`), fault: { kind: 'redirect', location: `${env.proxy.url}/v2/${repository}/blobs/x` } });
      await assert.rejects(pushVia(repository, { caFile, concurrency: 1 }, tls), (error: PushError) => {
        assert.equal(error.code, 'TLS');
        assert.match(error.message, /^HEAD http:\/\/127\.0\.0\.1:\d+\/v2\/hostile\/downgrade-redirect\/blobs\/x refused: a redirect from https:\/\/\S+ points to plain HTTP/);
        return true;
      });
      assert.equal(seen('HEAD', /hostile\/downgrade-redirect/).length, 0, 'nothing reached the plain-HTTP side');
      tls.clearFaults();
    });
  });
});
