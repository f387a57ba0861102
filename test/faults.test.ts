import assert from 'node:assert/strict';
import { createReadStream } from 'node:fs';
import { mkdtemp } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, it } from 'node:test';

import { MediaType, shortId, type BlobSource, type Digest, type PushError, type PushEvent, type RegistryError } from '@rxpush/core';
import { push, type PushOptions } from '@rxpush/pipeline';
import { RegistryClient } from '@rxpush/registry-client';
import { uploadBlobs } from '@rxpush/uploader';
import { lastValueFrom, of, toArray } from 'rxjs';

import { assertOneLineError } from './helpers/assert-cli.ts';
import { runCli } from './helpers/run-cli.ts';
import { skopeoCopyToOci } from './helpers/skopeo.ts';
import { useProxiedRegistry } from './helpers/proxied-registry.ts';
import { ofType, pushAll } from './helpers/push-events.ts';

const MANIFESTS = /\/manifests\//;

describe('pushing through a faulty network to the reference registry', () => {
  // Two layers of ~600 kB of pseudo-random bytes (gzip does not shrink them): big enough to break mid-body.
  const env = useProxiedRegistry('faults', [{ tags: ['latest'], layers: [{ files: 3, fileSize: 200_000, seed: 'faults-base' }, { files: 1, fileSize: 50_000, seed: 'faults-app' }] }]);

  /** Pushes through the proxy with quick retries; no digest cache, so every blob is asked for. */
  const pushVia = (repository: string, options: Partial<PushOptions> = {}): Promise<PushEvent[]> =>
    pushAll({ source: `oci:${env.layout.dir}:latest`, destination: `${env.proxy.host}/${repository}:1.0`, retry: { baseDelayMs: 5, maxDelayMs: 20 }, ...options });
  const seen = (method: string, path: RegExp) => env.proxy.requests.filter((r) => r.method === method && path.test(r.url));
  const image = () => env.layout.images[0]!;

  it('restarts an upload reset mid-body in a fresh session, and skopeo reads the image back whole', async () => {
    const layer = image().layerDigests[0]!;
    env.proxy.addFault({ method: 'PUT', path: new RegExp(`digest=${layer}`), nth: 1, fault: { kind: 'reset', afterBytes: 100_000 } });
    const events = await pushVia('faults/reset');
    const retries = ofType(events, 'retrying');
    assert.equal(retries.length, 1);
    assert.equal(retries[0]!.id, shortId(layer));
    assert.match(retries[0]!.reason, /connection was closed|failed/);
    const puts = seen('PUT', new RegExp(`faults/reset/blobs/uploads/.*digest=${layer}`));
    assert.equal(puts.length, 2, 'the broken PUT and its retry');
    assert.notEqual(puts[0]!.url.split('?')[0], puts[1]!.url.split('?')[0], 'the retry uses a fresh session');
    assert.equal(ofType(events, 'manifest-pushed').length, 1);
    await skopeoCopyToOci(`${env.registry.host}/faults/reset:1.0`, join(env.work, 'reset-copy'));
  });

  it('retries a 503 answer to the manifest PUT and to a blob PUT, then pushes', async () => {
    env.proxy.addFault({ method: 'PUT', path: MANIFESTS, nth: 1, fault: { kind: 'status', status: 503 } });
    env.proxy.addFault({ method: 'PUT', path: new RegExp(`digest=${image().configDigest}`), nth: 1, fault: { kind: 'status', status: 503 } });
    const events = await pushVia('faults/unavailable');
    const retries = ofType(events, 'retrying');
    // The manifest's bytes are re-sent by the client (no blob id); the config's stream by the uploader (its id).
    assert.deepEqual(retries.map((r) => r.id).sort(), [shortId(image().configDigest), undefined].sort());
    for (const retry of retries) assert.match(retry.reason, /503/);
    assert.equal(seen('PUT', /faults\/unavailable\/manifests\//).length, 2);
    assert.equal(ofType(events, 'manifest-pushed').length, 1);
    assert.ok(await env.direct.hasManifest('faults/unavailable', '1.0'));
  });

  it('waits as long as a 429 Retry-After says', async () => {
    env.proxy.addFault({ method: 'POST', path: /faults\/limited\/blobs\/uploads\//, nth: 1, fault: { kind: 'status', status: 429, headers: { 'retry-after': '1' } } });
    const events = await pushVia('faults/limited');
    const retries = ofType(events, 'retrying');
    assert.equal(retries.length, 1);
    assert.equal(retries[0]!.delayMs, 1000);
    assert.equal(retries[0]!.attempt, 1);
    assert.match(retries[0]!.reason, /429/);
    assert.equal(ofType(events, 'manifest-pushed').length, 1);
  });

  it('confirms a blob whose PUT answer was lost with a HEAD, and never sends it again', async () => {
    const layer = image().layerDigests[0]!;
    env.proxy.addFault({ method: 'PUT', path: new RegExp(`digest=${layer}`), nth: 1, fault: { kind: 'lose-response' } });
    const events = await pushVia('faults/lost');
    assert.equal(seen('PUT', new RegExp(`faults/lost/blobs/uploads/.*digest=${layer}`)).length, 1, 'the blob went up once');
    const heads = seen('HEAD', new RegExp(`faults/lost/blobs/${layer}`));
    assert.equal(heads.length, 2, "the checker's HEAD, then the one that confirms the lost commit");
    assert.equal(heads[1]!.status, 200);
    const pushed = ofType(events, 'pushed').find((e) => e.digest === layer);
    assert.equal(pushed?.size, image().layerSizes[0]);
    assert.equal(ofType(events, 'retrying').filter((r) => r.id === shortId(layer)).length, 1);
    await skopeoCopyToOci(`${env.registry.host}/faults/lost:1.0`, join(env.work, 'lost-copy'));
  });

  it('gives up after the last attempt on a persistent 500 and pushes no manifest', async () => {
    env.proxy.addFault({ method: 'PUT', path: /faults\/broken\/blobs\/uploads\//, fault: { kind: 'status', status: 500 } });
    await assert.rejects(pushVia('faults/broken', { retry: { retries: 2, baseDelayMs: 1, maxDelayMs: 2 }, concurrency: 1 }), (error: RegistryError) => {
      assert.equal(error.code, 'REGISTRY_ERROR');
      assert.equal(error.status, 500);
      assert.match(error.message, /^PUT http:\/\/127\.0\.0\.1:\d+\/v2\/faults\/broken\/blobs\/uploads\/.* → 500/);
      return true;
    });
    // Three attempts at the first blob, each in its own session; nothing after it.
    assert.equal(seen('PUT', /faults\/broken\/blobs\/uploads\//).length, 3);
    assert.equal(seen('POST', /faults\/broken\/blobs\/uploads\//).length, 3);
    assert.equal(seen('PUT', /faults\/broken\/manifests\//).length, 0);
    assert.equal(await env.direct.hasManifest('faults/broken', '1.0'), undefined);
  });

  it('says how many attempts a request made when a 500 never ends', async () => {
    env.proxy.addFault({ method: 'PUT', path: /faults\/broken-manifest\/manifests\//, fault: { kind: 'status', status: 500, headers: { 'retry-after': '0' } } });
    await assert.rejects(pushVia('faults/broken-manifest', { retry: { retries: 2 } }), (error: RegistryError) => {
      assert.equal(error.status, 500);
      assert.match(error.message, /→ 500 UNAVAILABLE: injected 500; the registry failed; try again later or check its logs \(gave up after 3 attempts\)$/);
      return true;
    });
    assert.equal(seen('PUT', /faults\/broken-manifest\/manifests\//).length, 3);
    assert.equal(await env.direct.hasManifest('faults/broken-manifest', '1.0'), undefined);
  });

  it('fails at once, without retrying, when the registry says DENIED, NAME_INVALID or DIGEST_INVALID', async () => {
    const answers = [
      { repository: 'faults/denied', method: 'POST', path: /faults\/denied\/blobs\/uploads\//, status: 403, code: 'DENIED' },
      { repository: 'faults/name', method: 'PUT', path: /faults\/name\/manifests\//, status: 400, code: 'NAME_INVALID' },
      { repository: 'faults/digest', method: 'PUT', path: /faults\/digest\/blobs\/uploads\//, status: 400, code: 'DIGEST_INVALID' },
    ];
    for (const answer of answers) {
      const body = JSON.stringify({ errors: [{ code: answer.code, message: 'injected' }] });
      env.proxy.addFault({ method: answer.method, path: answer.path, fault: { kind: 'status', status: answer.status, body } });
      await assert.rejects(
        lastValueFrom(push({ source: `oci:${env.layout.dir}:latest`, destination: `${env.proxy.host}/${answer.repository}:1.0`, cacheDir: false, concurrency: 1 })),
        (error: RegistryError) => {
          assert.equal(error.status, answer.status);
          assert.equal(error.registryCode, answer.code);
          return true;
        },
      );
      assert.equal(seen(answer.method, answer.path).length, 1, `${answer.code} was tried once`);
    }
  });

  it('times out on a registry that stops answering, with a message that says so', async () => {
    env.proxy.addFault({ method: 'HEAD', path: /faults\/stalled\//, fault: { kind: 'stall' } });
    await assert.rejects(
      pushVia('faults/stalled', { timeouts: { headers: 300 }, retry: { retries: 1, baseDelayMs: 1 } }),
      (error: PushError) => {
        assert.equal(error.code, 'TIMEOUT');
        assert.match(error.message, /^HEAD http:\/\/127\.0\.0\.1:\d+\/v2\/faults\/stalled\/blobs\/sha256:[0-9a-f]{64} failed: the registry did not answer within 300 ms \(the answer timeout\); .*\(gave up after 2 attempts\)$/);
        return true;
      },
    );
    assert.equal(seen('PUT', /faults\/stalled\/manifests\//).length, 0);
  });

  it('fails with a clear message when a source that cannot be read twice breaks mid-upload', async () => {
    const layer = image().layerDigests[0]! as Digest;
    let opened = 0;
    const blob: BlobSource = {
      key: layer,
      role: 'layer',
      mediaType: MediaType.ociLayerGzip,
      digest: layer,
      size: image().layerSizes[0]!,
      form: 'stored',
      origin: 'docker-save:layer.tar',
      open: async () => {
        opened += 1;
        if (opened > 1) throw new Error('the docker save stream has moved past this layer');
        return createReadStream(join(env.layout.dir, 'blobs', 'sha256', layer.slice('sha256:'.length)));
      },
    };
    env.proxy.addFault({ method: 'PUT', path: /faults\/once\/blobs\/uploads\//, nth: 1, fault: { kind: 'reset', afterBytes: 50_000 } });
    const client = new RegistryClient({ registry: env.proxy.host, retry: { baseDelayMs: 1 } });
    try {
      const upload = of<PushEvent>({ type: 'blob', blob }).pipe(uploadBlobs({ client, repository: 'faults/once' }), toArray());
      await assert.rejects(lastValueFrom(upload), (error: PushError) => {
        assert.equal(error.code, 'INVALID_SOURCE');
        assert.match(
          error.message,
          /^the upload of docker-save:layer\.tar broke \(PUT .* failed: the connection was closed before the registry answered; try again\) and its source cannot be read a second time to retry \(the docker save stream has moved past this layer\); push again$/,
        );
        return true;
      });
    } finally {
      await client.close();
    }
    assert.equal(opened, 2);
    assert.equal(await env.direct.hasBlob('faults/once', layer), undefined);
  });

  it('exits 1 with one line naming the request when the CLI meets a persistent 500, and pushes no manifest', async () => {
    const cache = await mkdtemp(join(env.work, 'cache-'));
    // Retry-After: 0 keeps the CLI's default backoff out of the test's time.
    env.proxy.addFault({ method: 'PUT', path: /faults\/cli-broken\/manifests\//, fault: { kind: 'status', status: 500, headers: { 'retry-after': '0' } } });
    // --retries 4: by default the CLI would retry for a minute.
    const result = await runCli(['push', `oci:${env.layout.dir}:latest`, `${env.proxy.host}/faults/cli-broken:1.0`, '--progress', 'plain', '--retries', '4'], {
      env: { RXPUSH_CACHE_DIR: cache },
    });
    assertOneLineError(result, /^rxpush: PUT http:\/\/127\.0\.0\.1:\d+\/v2\/faults\/cli-broken\/manifests\/1\.0 → 500 .*\(gave up after 5 attempts\)$/);
    assert.match(result.stdout, /Retrying in 0 seconds/);
    assert.equal(seen('PUT', /faults\/cli-broken\/manifests\//).length, 5);
    assert.equal(await env.direct.hasManifest('faults/cli-broken', '1.0'), undefined);
  });

  it('shows "Retrying in N seconds" in the CLI and still pushes after a reset mid-upload', async () => {
    const cache = await mkdtemp(join(env.work, 'cache-'));
    const layer = image().layerDigests[0]!;
    env.proxy.addFault({ method: 'PUT', path: new RegExp(`faults/cli-reset/.*digest=${layer}`), nth: 1, fault: { kind: 'reset', afterBytes: 50_000 } });
    const result = await runCli(['push', `oci:${env.layout.dir}:latest`, `${env.proxy.host}/faults/cli-reset:1.0`, '--progress', 'plain'], {
      env: { RXPUSH_CACHE_DIR: cache },
    });
    assert.equal(result.code, 0, result.stderr);
    assert.match(result.stdout, new RegExp(`${shortId(layer)}: Retrying in [01] seconds?`));
    assert.match(result.stdout, /1\.0: digest: sha256:[0-9a-f]{64} size: \d+/);
    await skopeoCopyToOci(`${env.registry.host}/faults/cli-reset:1.0`, join(env.work, 'cli-reset-copy'));
  });
});
