import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { buffer } from 'node:stream/consumers';
import { describe, it } from 'node:test';
import { gunzipSync } from 'node:zlib';

import { MediaType, type BlobSource, type Digest, type PushEvent } from '@rxpush/core';
import type { PushOptions } from '@rxpush/pipeline';
import { RegistryClient } from '@rxpush/registry-client';
import { uploadBlobs } from '@rxpush/uploader';
import { lastValueFrom, of, toArray } from 'rxjs';

import type { RecordedRequest } from './helpers/fault-proxy.ts';
import { runCli } from './helpers/run-cli.ts';
import { skopeoCopyToOci } from './helpers/skopeo.ts';
import { useProxiedRegistry } from './helpers/proxied-registry.ts';
import { ofType, pushAll } from './helpers/push-events.ts';

const CHUNK = 256 * 1024;

/** The upload session a request belongs to (its UUID in the path). */
const sessionOf = (request: RecordedRequest): string | undefined => /\/blobs\/uploads\/([^/?]+)/.exec(request.url)?.[1];

describe('chunked uploads to the reference registry', () => {
  // One layer of ~1 MB of pseudo-random bytes: four chunks of 256 KiB and a bit.
  const env = useProxiedRegistry('chunked', [{ tags: ['latest'], layers: [{ files: 5, fileSize: 200_000, seed: 'chunked' }] }]);

  const pushVia = (repository: string, options: Partial<PushOptions> = {}): Promise<PushEvent[]> =>
    pushAll({ source: `oci:${env.layout.dir}:latest`, destination: `${env.proxy.host}/${repository}:1.0`, chunkSize: CHUNK, concurrency: 1, retry: { baseDelayMs: 5, maxDelayMs: 20 }, ...options });
  const layerSize = () => env.layout.images[0]!.layerSizes[0]!;
  /** The PATCHes of a repository, grouped by session, in order. */
  const patches = (repository: string): RecordedRequest[][] => {
    const bySession = new Map<string, RecordedRequest[]>();
    for (const request of env.proxy.requests) {
      if (request.method !== 'PATCH' || !request.url.includes(`/v2/${repository}/`)) continue;
      const id = sessionOf(request)!;
      bySession.set(id, [...(bySession.get(id) ?? []), request]);
    }
    return [...bySession.values()];
  };
  const ranges = (requests: RecordedRequest[]) => requests.map((r) => r.headers['content-range']);
  const expectedRanges = (from: number, size: number, chunk: number): string[] => {
    const out: string[] = [];
    for (let start = from; start < size; start += chunk) out.push(`${start}-${Math.min(start + chunk, size) - 1}`);
    return out;
  };

  it('sends PATCH chunks with Content-Length and Content-Range, and skopeo reads the image back', async () => {
    const events = await pushVia('chunked/plain');
    const [layerPatches, configPatches] = patches('chunked/plain');
    assert.deepEqual(ranges(layerPatches!), expectedRanges(0, layerSize(), CHUNK));
    for (const patch of layerPatches!) {
      const [start, end] = patch.headers['content-range']!.split('-').map(Number);
      assert.equal(patch.headers['content-length'], String(end! - start! + 1));
      assert.equal(patch.bodyBytes, end! - start! + 1);
    }
    assert.equal(configPatches?.length, 1);
    // The commit carries no bytes: they are all in the chunks.
    const commits = env.proxy.requests.filter((r) => r.method === 'PUT' && r.url.includes('/v2/chunked/plain/blobs/uploads/'));
    assert.deepEqual(commits.map((r) => r.bodyBytes), [0, 0]);
    assert.equal(ofType(events, 'manifest-pushed').length, 1);
    await skopeoCopyToOci(`${env.registry.host}/chunked/plain:1.0`, join(env.work, 'plain-copy'));
  });

  it("raises the chunk size to the registry's OCI-Chunk-Min-Length", async () => {
    env.proxy.addFault({ method: 'POST', path: /chunked\/min\/blobs\/uploads\//, fault: { kind: 'add-headers', headers: { 'oci-chunk-min-length': '400000' } } });
    await pushVia('chunked/min', { chunkSize: 100_000 });
    const [layerPatches] = patches('chunked/min');
    assert.deepEqual(ranges(layerPatches!), expectedRanges(0, layerSize(), 400_000));
  });

  it("resumes a broken chunk from the registry's Range instead of starting over", async () => {
    // The second chunk never reaches the registry: the session stays good, at one chunk.
    env.proxy.addFault({ method: 'PATCH', path: /chunked\/resume\//, nth: 2, fault: { kind: 'reset' } });
    const events = await pushVia('chunked/resume');
    const [layerPatches] = patches('chunked/resume');
    // The first chunk, the broken second one, then the second one again and the rest.
    assert.deepEqual(ranges(layerPatches!), ['0-262143', '262144-524287', ...expectedRanges(CHUNK, layerSize(), CHUNK)]);
    assert.equal(layerPatches![1]!.fault, 'reset');
    // It asked the registry where it stood, and opened no second session for the layer.
    const status = env.proxy.requests.filter((r) => r.method === 'GET' && r.url.includes('/v2/chunked/resume/blobs/uploads/'));
    assert.equal(status.length, 1);
    assert.equal(status[0]!.status, 204);
    assert.equal(env.proxy.requests.filter((r) => r.method === 'POST' && r.url.includes('/v2/chunked/resume/')).length, 2, 'one session per blob');
    assert.equal(ofType(events, 'retrying').length, 1);
    await skopeoCopyToOci(`${env.registry.host}/chunked/resume:1.0`, join(env.work, 'resume-copy'));
  });

  it('starts over in a fresh session when the reference registry cancelled a chunk broken mid-way', async () => {
    env.proxy.addFault({ method: 'PATCH', path: /chunked\/restart\//, nth: 2, fault: { kind: 'reset', afterBytes: 100_000 } });
    const events = await pushVia('chunked/restart');
    const [broken, fresh] = patches('chunked/restart');
    // The chunk that broke, and when the registry answered the status GET before it had written the cut bytes,
    // the resumed chunk it then refused (404 BLOB_UPLOAD_INVALID) as it cancelled the session.
    assert.ok(broken!.length === 2 || broken!.length === 3, `${broken!.length} PATCHes in the broken session`);
    assert.deepEqual(ranges(broken!).slice(0, 2), expectedRanges(0, 2 * CHUNK, CHUNK));
    assert.deepEqual(ranges(fresh!), expectedRanges(0, layerSize(), CHUNK));
    assert.equal(env.proxy.requests.filter((r) => r.method === 'POST' && r.url.includes('/v2/chunked/restart/')).length, 3);
    assert.equal(ofType(events, 'manifest-pushed').length, 1);
    await skopeoCopyToOci(`${env.registry.host}/chunked/restart:1.0`, join(env.work, 'restart-copy'));
  });

  it('chunks a layer compressed on the fly, holding one chunk at a time, and resumes it after a broken chunk', async () => {
    // 1 MB of random bytes as an "uncompressed layer": gzip output of unknown length, gathered chunk by chunk.
    const tar = randomBytes(1_000_000);
    const diffId: Digest = `sha256:${createHash('sha256').update(tar).digest('hex')}`;
    let opened = 0;
    const blob: BlobSource = {
      key: diffId,
      role: 'layer',
      mediaType: MediaType.ociLayer,
      diffId,
      size: tar.length,
      form: 'uncompressed',
      origin: 'memory:layer.tar',
      open: async () => {
        opened += 1;
        return Readable.from([tar.subarray(0, 300_000), tar.subarray(300_000)]);
      },
    };
    env.proxy.addFault({ method: 'PATCH', path: /chunked\/gzip\//, nth: 2, fault: { kind: 'reset' } });
    const client = new RegistryClient({ registry: env.proxy.host, retry: { baseDelayMs: 1 } });
    try {
      const events = await lastValueFrom(
        of<PushEvent>({ type: 'blob', blob }).pipe(
          uploadBlobs({ client, repository: 'chunked/gzip', chunkSize: CHUNK }),
          toArray(),
        ),
      );
      const [ready] = ofType(events, 'blob-ready');
      assert.equal(ready?.diffId, diffId);
      assert.equal(ready?.descriptor.mediaType, MediaType.ociLayerGzip);
      assert.equal(opened, 2, 're-opened once to resume');
      const [layerPatches] = patches('chunked/gzip');
      const size = ready!.descriptor.size;
      assert.deepEqual(ranges(layerPatches!), ['0-262143', '262144-524287', ...expectedRanges(CHUNK, size, CHUNK)]);
      const stored = await buffer(await env.direct.getBlob('chunked/gzip', ready!.descriptor.digest));
      assert.equal(stored.length, size);
      assert.deepEqual(gunzipSync(stored), tar);
    } finally {
      await client.close();
    }
  });

  it('takes --chunk-size on the command line', async () => {
    const cache = await mkdtemp(join(env.work, 'cache-'));
    const result = await runCli(['push', `oci:${env.layout.dir}:latest`, `${env.proxy.host}/chunked/cli:1.0`, '--chunk-size', '256KiB', '--progress', 'plain'], {
      env: { RXPUSH_CACHE_DIR: cache },
    });
    assert.equal(result.code, 0, result.stderr);
    const all = patches('chunked/cli').flat();
    assert.ok(all.length >= 5, `chunked PATCHes, got ${all.length}`);
    assert.ok(all.every((r) => /^\d+-\d+$/.test(r.headers['content-range'] ?? '')));
    await skopeoCopyToOci(`${env.registry.host}/chunked/cli:1.0`, join(env.work, 'cli-copy'));
  });
});
