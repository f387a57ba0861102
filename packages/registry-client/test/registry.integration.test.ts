import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { createServer, type Socket } from 'node:net';
import { Readable } from 'node:stream';
import { buffer } from 'node:stream/consumers';
import { describe, it, type TestContext } from 'node:test';

import { MediaType, sha256Digest } from '@rxpush/core';
import type { Digest, RegistryError } from '@rxpush/core';
import { Agent } from 'undici';

import { startRegistry } from '../../../tools/registry.ts';
import { RegistryClient } from '../src/index.ts';
import type { Authenticator } from '../src/index.ts';

/** Streams `bytes` in small pieces, so the client cannot treat the body as one buffer. */
function streamOf(bytes: Buffer, piece = 1000): Readable {
  return Readable.from(
    (function* () {
      for (let at = 0; at < bytes.length; at += piece) yield bytes.subarray(at, at + piece);
    })(),
  );
}

function digestOf(bytes: Uint8Array): Digest {
  return `sha256:${createHash('sha256').update(bytes).digest('hex')}`;
}

describe('RegistryClient against a real registry', () => {
  it('uploads, mounts, stores manifests and lists tags', async (t) => {
    const registry = await startRegistry();
    t.after(() => registry.stop());
    // No plainHttp: the loopback registry answers TLS in plain HTTP, so the client falls back on its own.
    const client = new RegistryClient({ registry: registry.host });
    t.after(() => client.close());

    await client.ping();

    // Monolithic: POST, then PUT with the whole blob streamed.
    const config = Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: [] } }));
    const configDigest = digestOf(config);
    const layer = randomBytes(300_000);
    const layerDigest = digestOf(layer);
    assert.equal(await client.hasBlob('team/app', layerDigest), undefined);

    const start = await client.startUpload('team/app');
    assert.equal(start.kind, 'session');
    if (start.kind !== 'session') return;
    assert.equal(start.offset, 0);
    const pushed = await client.finishUpload(start, layerDigest, { body: { stream: streamOf(layer), length: layer.length } });
    assert.deepEqual(pushed, { digest: layerDigest, size: layer.length });
    assert.deepEqual(await client.hasBlob('team/app', layerDigest), { digest: layerDigest, size: layer.length });
    assert.deepEqual(await buffer(await client.getBlob('team/app', layerDigest)), layer);

    // Chunked: PATCH twice (with Content-Range), then PUT with no body; the offsets follow the registry's Range.
    const session = await client.startUpload('team/app');
    if (session.kind !== 'session') throw new Error('expected a session');
    const first = await client.uploadChunk(session, { stream: streamOf(config.subarray(0, 40)), length: 40 }, { contentRange: true });
    assert.equal(first.offset, 40);
    assert.notEqual(first.location.href, session.location.href, 'each answer carries a new _state');
    const chunked = await client.uploadChunk(first, config.subarray(40), { contentRange: true });
    assert.equal(chunked.offset, config.length);
    assert.equal((await client.uploadStatus(chunked)).offset, config.length);
    assert.deepEqual(await client.finishUpload(chunked, configDigest), { digest: configDigest, size: config.length });

    // Streams of unknown length go chunked: the PATCH learns its offset from Range, the PUT its size from a HEAD.
    const odd = randomBytes(5000);
    const oddStart = await client.startUpload('team/app');
    if (oddStart.kind !== 'session') throw new Error('expected a session');
    const afterPatch = await client.uploadChunk(oddStart, { stream: streamOf(odd.subarray(0, 3001), 999) });
    assert.equal(afterPatch.offset, 3001);
    const oddPushed = await client.finishUpload(afterPatch, digestOf(odd), { body: { stream: streamOf(odd.subarray(3001), 999) } });
    assert.deepEqual(oddPushed, { digest: digestOf(odd), size: odd.length });

    // Cross-repository mount: the registry links the blob without receiving it again.
    const mounted = await client.startUpload('other/app', { mount: { digest: layerDigest, from: 'team/app' } });
    assert.deepEqual(mounted, { kind: 'mounted', digest: layerDigest });
    assert.deepEqual(await client.hasBlob('other/app', layerDigest), { digest: layerDigest, size: layer.length });
    // A mount of a blob the source does not have falls back to an upload session.
    const missing = digestOf(Buffer.from('nowhere'));
    const fallback = await client.startUpload('other/app', { mount: { digest: missing, from: 'team/app' } });
    assert.equal(fallback.kind, 'session');
    if (fallback.kind === 'session') await client.cancelUpload(fallback);

    // Manifest: PUT byte-exact (odd spacing kept), GET the same bytes back.
    const manifestText = `{
      "schemaVersion": 2,
      "mediaType": "${MediaType.ociManifest}",
      "config": { "mediaType": "${MediaType.ociConfig}", "digest": "${configDigest}", "size": ${config.length} },
      "layers": [ { "mediaType": "${MediaType.ociLayerGzip}", "digest": "${layerDigest}", "size": ${layer.length} } ]
    }\n`;
    const bytes = new TextEncoder().encode(manifestText);
    const put = await client.putManifest('team/app', 'v1', { bytes, mediaType: MediaType.ociManifest });
    assert.equal(put.digest, sha256Digest(bytes));
    await client.putManifest('team/app', 'v2', { bytes, mediaType: MediaType.ociManifest });

    const byTag = await client.getManifest('team/app', 'v1');
    assert.deepEqual(Buffer.from(byTag.bytes), Buffer.from(bytes));
    assert.equal(byTag.mediaType, MediaType.ociManifest);
    assert.equal(byTag.digest, sha256Digest(bytes));
    const byDigest = await client.getManifest('team/app', sha256Digest(bytes));
    assert.deepEqual(Buffer.from(byDigest.bytes), Buffer.from(bytes));
    assert.deepEqual(await client.hasManifest('team/app', 'v1'), { digest: sha256Digest(bytes), mediaType: MediaType.ociManifest, size: bytes.length });
    assert.equal(await client.hasManifest('team/app', 'nope'), undefined);

    assert.deepEqual((await client.listTags('team/app')).sort(), ['v1', 'v2']);
  });

  it('names the request and the registry code when the digest does not match', async (t) => {
    const registry = await startRegistry();
    t.after(() => registry.stop());
    const client = new RegistryClient({ registry: registry.host, plainHttp: true });
    t.after(() => client.close());

    const start = await client.startUpload('app');
    if (start.kind !== 'session') throw new Error('expected a session');
    const wrong = digestOf(Buffer.from('something else'));
    await assert.rejects(
      client.finishUpload(start, wrong, { body: { stream: streamOf(Buffer.from('hello')), length: 5 } }),
      (error: RegistryError) => {
        assert.equal(error.status, 400);
        assert.equal(error.registryCode, 'DIGEST_INVALID');
        assert.match(error.message, /^PUT http:\/\/127\.0\.0\.1:\d+\/v2\/app\/blobs\/uploads\/[\w-]+\?_state=REDACTED&digest=sha256:[0-9a-f]{64} → 400 DIGEST_INVALID: /);
        return true;
      },
    );
    await assert.rejects(client.getManifest('app', 'latest'), (error: RegistryError) => {
      assert.equal(error.status, 404);
      assert.match(error.message, /^GET http:\/\/127\.0\.0\.1:\d+\/v2\/app\/manifests\/latest → 404 (MANIFEST_UNKNOWN|NAME_UNKNOWN)/);
      return true;
    });
  });

  it('authorizes with the authenticator, answering the 401 challenge before any stream is sent', async (t) => {
    const registry = await startRegistry({ htpasswd: { alice: 's3cret' } });
    t.after(() => registry.stop());
    const asked: { scopes: readonly string[]; challenge?: string }[] = [];
    let cached: string | undefined;
    const auth: Authenticator = {
      async authorize(request) {
        asked.push({ scopes: request.scopes, ...(request.challenge !== undefined && { challenge: request.challenge }) });
        if (request.challenge !== undefined) cached = `Basic ${Buffer.from('alice:s3cret').toString('base64')}`;
        return cached;
      },
    };
    const client = new RegistryClient({ registry: registry.host, plainHttp: true, auth });
    t.after(() => client.close());

    const blob = randomBytes(10_000);
    const start = await client.startUpload('app');
    if (start.kind !== 'session') throw new Error('expected a session');
    await client.finishUpload(start, digestOf(blob), { body: { stream: streamOf(blob), length: blob.length } });
    assert.deepEqual(asked[0], { scopes: ['repository:app:push,pull'] });
    assert.match(asked[1]?.challenge ?? '', /^Basic realm="rxpush-test"/);
    assert.equal(asked.length, 3, 'once cached, once after the challenge, once for the PUT');
  });

  it('refuses an untrusted certificate on loopback instead of falling back to HTTP', async (t) => {
    const registry = await startRegistry({ tls: true });
    t.after(() => registry.stop());
    const client = new RegistryClient({ registry: registry.host });
    t.after(() => client.close());
    await assert.rejects(client.ping(), (error: Error & { code: string }) => {
      assert.equal(error.code, 'TLS');
      assert.match(error.message, /certificate.*--ca-file.*--tls-verify=false/);
      return true;
    });

    // With the CA given to the dispatcher (what --ca-file does), the same registry answers over HTTPS.
    const agent = new Agent({ connect: { ca: await readFile(registry.caFile ?? '', 'utf8') } });
    t.after(() => agent.close());
    const trusting = new RegistryClient({ registry: registry.host, dispatcher: agent });
    await trusting.ping();
    await assert.rejects(trusting.listTags('app'), { status: 404, registryCode: 'NAME_UNKNOWN' });
  });

  /** A client of a real registry whose dispatcher counts the connections it opens. */
  async function countingClient(t: TestContext): Promise<{ client: RegistryClient; connections: () => number }> {
    const registry = await startRegistry();
    t.after(() => registry.stop());
    const agent = new Agent();
    t.after(() => agent.close());
    let connections = 0;
    agent.on('connect', () => void (connections += 1));
    return { client: new RegistryClient({ registry: registry.host, plainHttp: true, dispatcher: agent }), connections: () => connections };
  }

  it('keeps its connection across HEADs', async (t) => {
    const { client, connections } = await countingClient(t);
    await client.ping();
    const before = connections();
    for (let i = 0; i < 10; i++) assert.equal(await client.hasBlob('app', digestOf(Buffer.from(`absent ${i}`))), undefined);
    // The ping's connection, put back before each next HEAD.
    assert.equal(connections() - before, 0, `${connections() - before} connections for 10 HEADs`);
  });

  it('keeps a burst of HEADs, eight at a time, to eight connections', async (t) => {
    // undici puts a connection back a loop turn after its answer; the next HEAD of a burst, sent as soon as one
    // is answered, must wait for it rather than open a connection (a TLS handshake) of its own.
    const { client, connections } = await countingClient(t);
    let next = 0;
    const worker = async (): Promise<void> => {
      for (let i = next++; i < 32; i = next++) assert.equal(await client.hasBlob('app', digestOf(Buffer.from(`absent ${i}`))), undefined);
    };
    await Promise.all(Array.from({ length: 8 }, worker));
    assert.ok(connections() <= 8, `${connections()} connections for 32 HEADs, 8 at a time`);
  });

  it('reads every HEAD answer right when a server sends a body after one', async (t) => {
    // A broken server that answers HEAD with a body: the next answer on the connection does not parse.
    let connections = 0;
    const server = createServer((socket: Socket) => {
      connections += 1;
      socket.on('error', () => {});
      socket.on('data', (data) => {
        const head = data.toString('latin1');
        if (head.startsWith('HEAD ')) socket.write('HTTP/1.1 404 Not Found\r\nContent-Length: 9\r\n\r\nnot found');
        else socket.write('HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}');
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    t.after(() => new Promise<void>((resolve) => server.close(() => resolve())));
    const address = server.address();
    if (address === null || typeof address === 'string') throw new Error('no port');
    const agent = new Agent();
    t.after(() => agent.destroy());
    const client = new RegistryClient({ registry: `127.0.0.1:${address.port}`, plainHttp: true, dispatcher: agent, retry: { retries: 2, baseDelayMs: 1 } });
    for (let i = 0; i < 6; i++) assert.equal(await client.hasBlob('app', digestOf(Buffer.from(`absent ${i}`))), undefined);
    // The stray body spoils the connection it came on: it is dropped, never read as the next answer.
    assert.ok(connections >= 6, `${connections} connections`);
  });
});
