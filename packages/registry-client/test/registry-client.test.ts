import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { createServer as createHttpServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { buffer } from 'node:stream/consumers';
import { describe, it, type TestContext } from 'node:test';

import { MediaType, sha256Digest } from '@rxpush/core';
import type { Digest, Logger, RegistryError } from '@rxpush/core';
import { Agent, MockAgent } from 'undici';

import { makeCertificates } from '../../../tools/registry.ts';

import { RegistryClient } from '../src/index.ts';
import type { Authenticator, RegistryClientOptions } from '../src/index.ts';

const ORIGIN = 'https://registry.example';
const digest: Digest = `sha256:${'ab'.repeat(32)}`;
const other: Digest = `sha256:${'cd'.repeat(32)}`;

interface Seen {
  method: string;
  path: string;
  headers: Record<string, string>;
}

/** A client for registry.example (HTTPS, not loopback) whose requests go to a MockAgent. */
function setup(t: TestContext, options: Partial<RegistryClientOptions> = {}) {
  const agent = new MockAgent();
  agent.disableNetConnect();
  t.after(() => agent.close());
  const seen: Seen[] = [];
  const lines: object[] = [];
  const logger: Logger = {
    debug: (obj) => void lines.push(obj),
    info() {},
    warn() {},
    error() {},
    child: () => logger,
  };
  const client = new RegistryClient({ registry: 'registry.example', dispatcher: agent, logger, ...options });
  /** Answers one request to `path` (exact, or a prefix ending in `*`), recording what was sent. */
  const on = (
    method: string,
    path: string,
    reply: (req: Seen) => { status: number; body?: string | Buffer; headers?: Record<string, string> },
    origin = ORIGIN,
  ) => {
    agent
      .get(origin)
      .intercept({ method, path: (p) => (path.endsWith('*') ? p.startsWith(path.slice(0, -1)) : p === path) })
      .reply((opts) => {
        const req = { method: opts.method, path: opts.path, headers: { ...(opts.headers as Record<string, string>) } };
        seen.push(req);
        const answer = reply(req);
        return { statusCode: answer.status, data: answer.body ?? '', responseOptions: { headers: answer.headers ?? {} } };
      });
  };
  return { agent, client, seen, on, lines };
}

const errorBody = (code: string, message: string) => JSON.stringify({ errors: [{ code, message, detail: {} }] });

describe('RegistryClient requests', () => {
  it('answers undefined for a blob the registry does not have (HEAD 404)', async (t) => {
    const { client, on, seen } = setup(t);
    on('HEAD', `/v2/team/app/blobs/${digest}`, () => ({ status: 404 }));
    assert.equal(await client.hasBlob('team/app', digest), undefined);
    assert.equal(seen[0]?.method, 'HEAD');
  });

  it('gives the size of a blob the registry has, following a redirect to storage', async (t) => {
    const { client, on } = setup(t);
    on('HEAD', `/v2/app/blobs/${digest}`, () => ({ status: 307, headers: { location: 'https://storage.example/blob?sig=x' } }));
    on('HEAD', '/blob?sig=x', () => ({ status: 200, headers: { 'content-length': '1234' } }), 'https://storage.example');
    assert.deepEqual(await client.hasBlob('app', digest), { digest, size: 1234 });
  });

  it('opens a session at a relative Location, keeping its query', async (t) => {
    const { client, on, seen } = setup(t);
    on('POST', '/v2/app/blobs/uploads/', () => ({
      status: 202,
      headers: { location: '/v2/app/blobs/uploads/u1?_state=secret', range: '0-0', 'oci-chunk-min-length': '5242880' },
    }));
    const start = await client.startUpload('app');
    assert.equal(start.kind, 'session');
    if (start.kind !== 'session') return;
    assert.equal(start.location.href, `${ORIGIN}/v2/app/blobs/uploads/u1?_state=secret`);
    assert.equal(start.offset, 0);
    assert.equal(start.minChunkLength, 5242880);
    assert.equal(seen[0]?.headers['content-length'], '0');
  });

  it('keeps an absolute Location on another host as it is', async (t) => {
    const { client, on } = setup(t);
    on('POST', '/v2/app/blobs/uploads/', () => ({ status: 202, headers: { location: 'https://uploads.example/session/9?_state=s' } }));
    const start = await client.startUpload('app');
    assert.equal(start.kind === 'session' && start.location.href, 'https://uploads.example/session/9?_state=s');
  });

  it('asks to mount with mount= and from=, and reports a 201 as mounted', async (t) => {
    const auth: Authenticator = { authorize: async ({ scopes }) => `Bearer ${scopes.join(' ')}` };
    const { client, on, seen } = setup(t, { auth });
    on('POST', '/v2/app/blobs/uploads/*', () => ({ status: 201, headers: { location: `/v2/app/blobs/${digest}`, 'docker-content-digest': digest } }));
    assert.deepEqual(await client.startUpload('app', { mount: { digest, from: 'base/os' } }), { kind: 'mounted', digest });
    assert.equal(seen[0]?.path, `/v2/app/blobs/uploads/?mount=${digest}&from=base/os`);
    assert.equal(seen[0]?.headers['authorization'], 'Bearer repository:app:push,pull repository:base/os:pull');
  });

  it('sends a chunk with Content-Range and continues at the new Location and Range', async (t) => {
    const { client, on, seen } = setup(t);
    on('PATCH', '/v2/app/blobs/uploads/u1?_state=one', () => ({
      status: 202,
      headers: { location: '/v2/app/blobs/uploads/u1?_state=two', range: '0-109' },
    }));
    const session = { location: new URL(`${ORIGIN}/v2/app/blobs/uploads/u1?_state=one`), offset: 100 };
    const next = await client.uploadChunk(session, { stream: Readable.from([Buffer.alloc(10)]), length: 10 }, { contentRange: true });
    assert.equal(next.location.href, `${ORIGIN}/v2/app/blobs/uploads/u1?_state=two`);
    assert.equal(next.offset, 110);
    assert.equal(next.repository, 'app');
    assert.equal(seen[0]?.headers['content-range'], '100-109');
    assert.equal(seen[0]?.headers['content-length'], '10');
    assert.equal(seen[0]?.headers['content-type'], 'application/octet-stream');
  });

  it('finishes an upload with digest= after _state, and keeps _state out of the error message', async (t) => {
    const { client, on, seen, lines } = setup(t);
    on('PUT', '/v2/app/blobs/uploads/u1*', () => ({
      status: 400,
      headers: { 'content-type': 'application/json' },
      body: errorBody('DIGEST_INVALID', 'provided digest did not match uploaded content'),
    }));
    const session = { location: new URL(`${ORIGIN}/v2/app/blobs/uploads/u1?_state=s3cr3t`), offset: 0 };
    const error = (await client.finishUpload(session, digest, { body: Buffer.from('abc') }).catch((e: unknown) => e)) as RegistryError;
    assert.equal(seen[0]?.path, `/v2/app/blobs/uploads/u1?_state=s3cr3t&digest=${digest}`);
    assert.equal(
      error.message,
      `PUT ${ORIGIN}/v2/app/blobs/uploads/u1?_state=REDACTED&digest=${digest} → 400 DIGEST_INVALID: provided digest did not match uploaded content`,
    );
    assert.equal(error.registryCode, 'DIGEST_INVALID');
    assert.doesNotMatch(JSON.stringify(lines), /s3cr3t/);
  });

  it('refuses a finished upload whose Docker-Content-Digest is another digest', async (t) => {
    const { client, on } = setup(t);
    on('PUT', '/v2/app/blobs/uploads/u1*', () => ({ status: 201, headers: { 'docker-content-digest': other } }));
    const session = { location: new URL(`${ORIGIN}/v2/app/blobs/uploads/u1?_state=s`), offset: 3 };
    await assert.rejects(client.finishUpload(session, digest), { code: 'DIGEST_MISMATCH' });
  });

  it('reports the size of a finished upload from its offset and body', async (t) => {
    const { client, on, seen } = setup(t);
    on('PUT', '/v2/app/blobs/uploads/u1*', () => ({ status: 201, headers: { 'docker-content-digest': digest } }));
    const session = { location: new URL(`${ORIGIN}/v2/app/blobs/uploads/u1`), offset: 3 };
    assert.deepEqual(await client.finishUpload(session, digest, { body: { stream: Readable.from([Buffer.alloc(4)]), length: 4 } }), { digest, size: 7 });
    assert.equal(seen[0]?.headers['content-length'], '4');
  });

  it('confirms with a HEAD a commit whose answer was lost, when the PUT sent again finds its session gone', async (t) => {
    const { client, on, agent } = setup(t, { retry: { baseDelayMs: 0 } });
    const session = { location: new URL(`${ORIGIN}/v2/app/blobs/uploads/u1?_state=s`), offset: 3 };
    const gone = () => ({ status: 404, headers: { 'content-type': 'application/json' }, body: errorBody('BLOB_UPLOAD_UNKNOWN', 'blob upload unknown to registry') });
    const lostAnswer = () =>
      agent
        .get(ORIGIN)
        .intercept({ method: 'PUT', path: (p) => p.startsWith('/v2/app/blobs/uploads/u1') })
        .replyWithError(Object.assign(new Error('other side closed'), { code: 'UND_ERR_SOCKET' }));
    lostAnswer();
    on('PUT', '/v2/app/blobs/uploads/u1*', gone);
    on('HEAD', `/v2/app/blobs/${digest}`, () => ({ status: 200, headers: { 'content-length': '3', 'docker-content-digest': digest } }));
    assert.deepEqual(await client.finishUpload(session, digest), { digest, size: 3 });

    // Not there after all: the registry's own answer is the error.
    lostAnswer();
    on('PUT', '/v2/app/blobs/uploads/u1*', gone);
    on('HEAD', `/v2/app/blobs/${digest}`, () => ({ status: 404 }));
    await assert.rejects(client.finishUpload(session, digest), { name: 'RegistryError', status: 404, message: /BLOB_UPLOAD_UNKNOWN/ });
    // A 404 to a first PUT is not a lost answer: no HEAD is asked.
    on('PUT', '/v2/app/blobs/uploads/u1*', gone);
    await assert.rejects(client.finishUpload(session, digest), { name: 'RegistryError', status: 404 });

    // The reference registry, asked again while it removes the session the first commit finished: a session of
    // no bytes, so the digest does not match (seen in CI, test/docker-daemon.test.ts).
    const empty = () => ({ status: 400, headers: { 'content-type': 'application/json' }, body: errorBody('DIGEST_INVALID', 'provided digest did not match uploaded content') });
    lostAnswer();
    on('PUT', '/v2/app/blobs/uploads/u1*', empty);
    on('HEAD', `/v2/app/blobs/${digest}`, () => ({ status: 200, headers: { 'content-length': '3', 'docker-content-digest': digest } }));
    assert.deepEqual(await client.finishUpload(session, digest), { digest, size: 3 });
    // A DIGEST_INVALID to a first PUT is the source's fault, not a lost answer: no HEAD.
    on('PUT', '/v2/app/blobs/uploads/u1*', empty);
    await assert.rejects(client.finishUpload(session, digest), { name: 'RegistryError', status: 400, message: /DIGEST_INVALID/ });
  });

  it('never throws when cancelling an upload', async (t) => {
    const { client, on } = setup(t);
    on('DELETE', '/v2/app/blobs/uploads/u1', () => ({ status: 500, body: 'boom' }));
    await client.cancelUpload({ location: new URL(`${ORIGIN}/v2/app/blobs/uploads/u1`), offset: 0 });
  });

  it('puts a manifest byte-exact with its media type and returns the registry digest', async (t) => {
    const { client, on, seen, agent } = setup(t);
    const bytes = Buffer.from('{ "schemaVersion": 2,\n  "mediaType": "x" }');
    let body = '';
    agent
      .get(ORIGIN)
      .intercept({ method: 'PUT', path: '/v2/app/manifests/v1', body: (b) => ((body = String(b)), true) })
      .reply((opts) => {
        seen.push({ method: opts.method, path: opts.path, headers: opts.headers as Record<string, string> });
        return { statusCode: 201, data: '', responseOptions: { headers: { 'docker-content-digest': sha256Digest(bytes) } } };
      });
    assert.deepEqual(await client.putManifest('app', 'v1', { bytes, mediaType: MediaType.ociManifest }), { digest: sha256Digest(bytes) });
    assert.equal(body, bytes.toString());
    assert.equal(seen[0]?.headers['content-type'], MediaType.ociManifest);
    on('PUT', '/v2/app/manifests/v2', () => ({ status: 201, headers: { 'docker-content-digest': other } }));
    await assert.rejects(client.putManifest('app', 'v2', { bytes, mediaType: MediaType.ociManifest }), { code: 'DIGEST_MISMATCH' });
  });

  it('asks for a manifest whose PUT was answered without a digest, and fails when the registry does not have it', async (t) => {
    const { client, on, seen } = setup(t);
    const bytes = Buffer.from('{"schemaVersion":2}');
    const stored = { 'docker-content-digest': sha256Digest(bytes), 'content-type': MediaType.ociManifest, 'content-length': String(bytes.length) };
    // Artifactory and Quay answer 200; the manifest is there.
    on('PUT', '/v2/app/manifests/v1', () => ({ status: 200 }));
    on('HEAD', '/v2/app/manifests/v1', () => ({ status: 200, headers: stored }));
    assert.deepEqual(await client.putManifest('app', 'v1', { bytes, mediaType: MediaType.ociManifest }), { digest: undefined });
    assert.equal(seen[1]?.headers['accept'], MediaType.ociManifest);
    // Another push moved the tag on meanwhile: the manifest under its own digest is enough.
    on('PUT', '/v2/app/manifests/v1', () => ({ status: 201 }));
    on('HEAD', '/v2/app/manifests/v1', () => ({ status: 200, headers: { ...stored, 'docker-content-digest': other } }));
    on('HEAD', `/v2/app/manifests/${sha256Digest(bytes)}`, () => ({ status: 200, headers: stored }));
    await client.putManifest('app', 'v1', { bytes, mediaType: MediaType.ociManifest });
    // A 201 made up on the way (a gateway answering in the registry's place).
    on('PUT', '/v2/app/manifests/v1', () => ({ status: 201 }));
    on('HEAD', '/v2/app/manifests/v1', () => ({ status: 404 }));
    await assert.rejects(client.putManifest('app', 'v1', { bytes, mediaType: MediaType.ociManifest }), {
      code: 'INVALID_RESPONSE',
      message: `PUT ${ORIGIN}/v2/app/manifests/v1 → 201 but the registry does not have the manifest afterwards: something between rxpush and the registry answered in its place; check the proxy or gateway in front of it, and push again`,
    });
    on('PUT', '/v2/app/manifests/v1', () => ({ status: 204 }));
    on('HEAD', '/v2/app/manifests/v1', () => ({ status: 200, headers: { ...stored, 'docker-content-digest': other } }));
    on('HEAD', `/v2/app/manifests/${sha256Digest(bytes)}`, () => ({ status: 404 }));
    await assert.rejects(client.putManifest('app', 'v1', { bytes, mediaType: MediaType.ociManifest }), { message: new RegExp(`→ 204 but the registry does not have the manifest afterwards \\(v1 names ${other}\\)`) });
  });

  it('gets a manifest with the default Accept and checks it against a digest reference', async (t) => {
    const { client, on, seen } = setup(t);
    const bytes = Buffer.from('{"schemaVersion":2}');
    on('GET', '/v2/app/manifests/v1', () => ({ status: 200, body: bytes, headers: { 'content-type': MediaType.dockerManifest } }));
    const manifest = await client.getManifest('app', 'v1');
    assert.deepEqual(manifest, { bytes, mediaType: MediaType.dockerManifest, digest: sha256Digest(bytes) });
    assert.equal(seen[0]?.headers['accept'], [MediaType.ociManifest, MediaType.ociIndex, MediaType.dockerManifest, MediaType.dockerManifestList].join(', '));

    on('GET', `/v2/app/manifests/${digest}`, () => ({ status: 200, body: bytes, headers: { 'content-type': MediaType.ociManifest } }));
    await assert.rejects(client.getManifest('app', digest), { code: 'DIGEST_MISMATCH' });
  });

  it('refuses a manifest larger than 4 MiB', async (t) => {
    const { client, on } = setup(t);
    on('GET', '/v2/app/manifests/big', () => ({ status: 200, body: Buffer.alloc(4 * 1024 * 1024 + 1, 32), headers: { 'content-type': MediaType.ociManifest } }));
    await assert.rejects(client.getManifest('app', 'big'), /over 4 MiB/);
  });

  it('follows Link pagination when listing tags', async (t) => {
    const { client, on } = setup(t);
    on('GET', '/v2/app/tags/list', () => ({ status: 200, body: JSON.stringify({ name: 'app', tags: ['a', 'b'] }), headers: { link: '</v2/app/tags/list?last=b&n=2>; rel="next"' } }));
    on('GET', '/v2/app/tags/list?last=b&n=2', () => ({ status: 200, body: JSON.stringify({ name: 'app', tags: ['c'] }) }));
    assert.deepEqual(await client.listTags('app'), ['a', 'b', 'c']);
  });

  it('asks the authenticator again with the challenge after a 401 and retries a bytes body once', async (t) => {
    const calls: (string | undefined)[] = [];
    const auth: Authenticator = {
      async authorize({ challenge }) {
        calls.push(challenge);
        return challenge === undefined ? undefined : 'Bearer fresh';
      },
    };
    const { client, on, seen } = setup(t, { auth });
    const challenge = 'Bearer realm="https://auth.example/token",service="registry.example",scope="repository:app:push,pull"';
    on('PUT', '/v2/app/manifests/v1', () => ({ status: 401, headers: { 'www-authenticate': challenge }, body: errorBody('UNAUTHORIZED', 'authentication required') }));
    on('PUT', '/v2/app/manifests/v1', () => ({ status: 201, headers: { 'docker-content-digest': sha256Digest(Buffer.from('{}')) } }));
    await client.putManifest('app', 'v1', { bytes: Buffer.from('{}'), mediaType: MediaType.ociManifest });
    assert.deepEqual(calls, [undefined, challenge]);
    assert.equal(seen[0]?.headers['authorization'], undefined);
    assert.equal(seen[1]?.headers['authorization'], 'Bearer fresh');
  });

  it('does not re-send a stream body after a 401', async (t) => {
    const auth: Authenticator = { authorize: async () => 'Bearer stale' };
    const { client, on } = setup(t, { auth });
    on('PATCH', '/v2/app/blobs/uploads/u1', () => ({ status: 401, body: errorBody('UNAUTHORIZED', 'authentication required') }));
    const stream = Readable.from([Buffer.alloc(3)]);
    await assert.rejects(
      client.uploadChunk({ location: new URL(`${ORIGIN}/v2/app/blobs/uploads/u1`), offset: 0 }, { stream, length: 3 }),
      (error: RegistryError) => error.code === 'UNAUTHORIZED' && /→ 401 UNAUTHORIZED: authentication required; the registry refused the credentials/.test(error.message),
    );
    assert.equal(stream.destroyed, true);
  });

  it('streams a blob through a redirect without sending credentials to the other host', async (t) => {
    const auth: Authenticator = { authorize: async () => 'Bearer t0ken' };
    const { client, on, seen } = setup(t, { auth });
    on('GET', `/v2/app/blobs/${digest}`, () => ({ status: 307, headers: { location: 'https://cdn.example/b?X-Amz-Signature=sig' } }));
    on('GET', '/b?X-Amz-Signature=sig', () => ({ status: 200, body: 'blob bytes' }), 'https://cdn.example');
    assert.equal((await buffer(await client.getBlob('app', digest))).toString(), 'blob bytes');
    assert.equal(seen[0]?.headers['authorization'], 'Bearer t0ken');
    assert.equal(seen[1]?.headers['authorization'], undefined);
  });

  it('never repeats the credentials a request carried when the error body echoes them', async (t) => {
    const basic = Buffer.from('alice:s3cret-pw').toString('base64');
    const { client, on } = setup(t, { auth: { authorize: async () => `Basic ${basic}` }, retry: { retries: 0 } });
    on('GET', '/v2/app/manifests/v1', () => ({ status: 403, body: `denied for Authorization: Basic ${basic} (password s3cret-pw)`, headers: { 'content-type': 'text/plain' } }));
    await assert.rejects(client.getManifest('app', 'v1'), (error: Error) => {
      assert.match(error.message, /→ 403 denied for Authorization: Basic \*\*\* \(password \*\*\*\)/);
      assert.doesNotMatch(error.message, /s3cret|YWxpY2U/);
      return true;
    });
    const { client: bearer, on: onBearer } = setup(t, { auth: { authorize: async () => 'Bearer t0ken-value' }, retry: { retries: 0 } });
    onBearer('GET', '/v2/app/manifests/v1', () => ({ status: 400, body: 'bad token t0ken-value', headers: { 'content-type': 'text/plain' } }));
    await assert.rejects(bearer.getManifest('app', 'v1'), /→ 400 bad token \*\*\*/);
  });

  it('turns an unreadable error body into a message with the status alone', async (t) => {
    const { client, on } = setup(t, { retry: { retries: 0 } });
    on('GET', '/v2/app/manifests/v1', () => ({ status: 502, body: '<html>Bad Gateway</html>', headers: { 'content-type': 'text/html' } }));
    await assert.rejects(client.getManifest('app', 'v1'), {
      message: `GET ${ORIGIN}/v2/app/manifests/v1 → 502; the registry failed; try again later or check its logs`,
    });
  });

  it('does not fall back to HTTP for a remote host that answers TLS in plain HTTP', async (t) => {
    const { client, agent } = setup(t);
    const error = Object.assign(new Error('ssl3_get_record:wrong version number'), { code: 'ERR_SSL_WRONG_VERSION_NUMBER' });
    agent.get(ORIGIN).intercept({ path: '/v2/', method: 'GET' }).replyWithError(error);
    await assert.rejects(client.ping(), (e: Error & { code: string }) => e.code === 'TLS' && /--plain-http/.test(e.message));
  });

  it('validates digests and repository names before making a request', async (t) => {
    const { client, seen } = setup(t);
    await assert.rejects(client.hasBlob('app', 'sha256:../../x' as Digest), { code: 'INVALID_DIGEST' });
    await assert.rejects(client.getBlob('../etc', digest), { code: 'INVALID_REFERENCE' });
    assert.equal(seen.length, 0);
  });

  it('leaves an injected dispatcher open on close', async (t) => {
    const { client, on } = setup(t);
    await client.close();
    on('GET', '/v2/', () => ({ status: 401 }));
    await client.ping();
  });
});

describe('RegistryClient bodies', () => {
  it('fails clearly when a stream is shorter than its announced length', async (t) => {
    const server = await import('node:http').then(({ createServer }) =>
      createServer((req, res) => {
        req.resume();
        req.on('end', () => res.writeHead(202, { location: '/next', range: '0-9' }).end());
      }),
    );
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    t.after(() => new Promise<void>((resolve) => server.close(() => resolve())));
    const port = (server.address() as { port: number }).port;
    const client = new RegistryClient({ registry: `127.0.0.1:${port}`, plainHttp: true });
    t.after(() => client.close());
    const session = { location: new URL(`http://127.0.0.1:${port}/v2/app/blobs/uploads/u1`), offset: 0 };
    await assert.rejects(client.uploadChunk(session, { stream: Readable.from([Buffer.alloc(5)]), length: 10 }), {
      code: 'INVALID_SOURCE',
      message: `PATCH http://127.0.0.1:${port}/v2/app/blobs/uploads/u1: the body was not as long as its announced length; the blob's recorded size is wrong`,
    });
  });
});

describe('RegistryClient manifest, tag list and referrers bodies', () => {
  it('names the request and the idle timeout it was given when an answer stops coming part-way', async (t) => {
    // The headers and the first bytes come, then nothing: the body is read after the request returned.
    const server = createHttpServer((req, res) => {
      if (req.url === '/v2/') return void res.writeHead(200).end();
      res.writeHead(200, { 'content-type': req.url?.includes('/referrers/') ? MediaType.ociIndex : MediaType.ociManifest, 'content-length': '1000' });
      res.write('{"schemaVersion":');
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    t.after(() => {
      server.closeAllConnections();
      return new Promise<void>((resolve) => server.close(() => resolve()));
    });
    const port = (server.address() as { port: number }).port;
    const client = new RegistryClient({ registry: `127.0.0.1:${port}`, plainHttp: true, bodyTimeout: 300, retry: { retries: 0 } });
    t.after(() => client.close());
    const stalled = (path: string) => (error: Error) => {
      assert.match(error.message, new RegExp(`^GET http://127\\.0\\.0\\.1:${port}/v2/app/${path} failed: the registry's answer stalled for 300 ms \\(the idle timeout\\); check the registry, or allow it more time with --timeout$`));
      return true;
    };
    await assert.rejects(client.getManifest('app', '1.0'), stalled('manifests/1\\.0'));
    await assert.rejects(client.listTags('app'), stalled('tags/list'));
    const digest = `sha256:${'a'.repeat(64)}` as const;
    await assert.rejects(client.getReferrers('app', digest), stalled(`referrers/${digest}`));
  });
});

describe('RegistryClient pieces bodies', () => {
  /**
   * A server that takes its time: it reads nothing for a while, so the connection's buffers fill and undici's writes
   * queue, then reads and hashes the body, answering 201 with the digest of what it got.
   */
  const slowServer = async (t: TestContext, tls = false) => {
    const handler = (req: IncomingMessage, res: ServerResponse) => {
      req.pause();
      const hash = createHash('sha256');
      setTimeout(() => {
        req.on('data', (chunk: Buffer) => hash.update(chunk));
        req.on('end', () => res.writeHead(201, { 'docker-content-digest': `sha256:${hash.digest('hex')}` }).end());
        req.resume();
      }, 300);
    };
    let server: Server;
    let agent: Agent | undefined;
    if (tls) {
      const dir = await mkdtemp(join(tmpdir(), 'rxpush-pieces-tls-'));
      t.after(() => rm(dir, { recursive: true, force: true }));
      const pki = await makeCertificates(dir);
      server = createHttpsServer({ cert: await readFile(pki.certFile), key: await readFile(pki.keyFile) }, handler);
      agent = new Agent({ connect: { ca: pki.ca } });
    } else {
      server = createHttpServer(handler);
    }
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    t.after(() => new Promise<void>((resolve) => server.close(() => resolve())));
    const port = (server.address() as { port: number }).port;
    const client = new RegistryClient({ registry: `127.0.0.1:${port}`, ...(agent === undefined ? { plainHttp: true } : { dispatcher: agent, closeDispatcher: true }) });
    t.after(() => client.close());
    const scheme = tls ? 'https' : 'http';
    return { client, session: { location: new URL(`${scheme}://127.0.0.1:${port}/v2/app/blobs/uploads/u1`), offset: 0 } };
  };

  /** `count` pieces of `size` bytes, all in one buffer that is overwritten with the next piece as soon as it is asked for. */
  const reusing = (count: number, size: number) => {
    const memory = Buffer.alloc(size);
    const expected = createHash('sha256');
    for (let i = 0; i < count; i++) expected.update(Buffer.alloc(size, i % 251));
    const pieces = (async function* () {
      for (let i = 0; i < count; i++) {
        memory.fill(i % 251);
        yield memory;
      }
    })();
    return { body: { pieces, length: count * size }, digest: `sha256:${expected.digest('hex')}` as Digest };
  };

  it('asks for the next piece only once the connection has taken the last one, so a piece may be reused then', async (t) => {
    const { client, session } = await slowServer(t);
    // 24 MiB, far more than loopback buffers hold while the server reads nothing.
    const { body, digest } = reusing(96, 256 * 1024);
    const info = await client.finishUpload(session, digest, { body });
    assert.equal(info.digest, digest);
  });

  it('asks for the next piece only once a TLS connection has taken the last one', async (t) => {
    const { client, session } = await slowServer(t, true);
    const { body, digest } = reusing(96, 256 * 1024);
    const info = await client.finishUpload(session, digest, { body });
    assert.equal(info.digest, digest);
  });

  it('delivers other bytes when pieces below the socket high-water mark are reused, over TCP and TLS (the control: the tests above can fail)', async (t) => {
    for (const tls of [false, true]) {
      const { client, session } = await slowServer(t, tls);
      const { body, digest } = reusing(24 * 1024, 1024);
      // The server stored other bytes than those sent: the reuse was seen.
      await assert.rejects(client.finishUpload(session, digest, { body }), { code: 'DIGEST_MISMATCH' });
    }
  });
});

describe('RegistryClient against answers no registry should send', () => {
  it('names the request when a Location is not a URL, never a bare "Invalid URL"', async (t) => {
    const { client, on } = setup(t);
    on('POST', '/v2/app/blobs/uploads/', () => ({ status: 202, headers: { location: 'http://[::1\u001b]:x/' } }));
    await assert.rejects(client.startUpload('app'), {
      code: 'INVALID_RESPONSE',
      message: `POST ${ORIGIN}/v2/app/blobs/uploads/ → 202 with a Location that is not an http(s) URL ("http://[::1\\x1b]:x/"); the registry (or a proxy in front of it) is broken`,
    });
    on('POST', '/v2/app/blobs/uploads/', () => ({ status: 202, headers: { location: 'file:///etc/passwd' } }));
    await assert.rejects(client.startUpload('app'), { message: /^POST \S+ → 202 with a Location that is not an http\(s\) URL \("file:\/\/\/etc\/passwd"\)/ });
  });

  it('takes an empty Location for none, not for the URL the POST went to', async (t) => {
    const { client, on } = setup(t);
    on('POST', '/v2/app/blobs/uploads/', () => ({ status: 202, headers: { location: '' } }));
    await assert.rejects(client.startUpload('app'), { code: 'INVALID_RESPONSE', message: /^POST \S+ → 202 without a Location header: / });
  });

  it('asks with a HEAD about a committed blob whose Docker-Content-Digest is not a digest, rather than call it changed', async (t) => {
    const { client, on, seen } = setup(t);
    on('PUT', '/v2/app/blobs/uploads/u1*', () => ({ status: 201, headers: { 'docker-content-digest': 'garbage' } }));
    on('HEAD', `/v2/app/blobs/${digest}`, () => ({ status: 200, headers: { 'content-length': '3', 'docker-content-digest': digest } }));
    const session = { location: new URL(`${ORIGIN}/v2/app/blobs/uploads/u1?_state=s`), offset: 0, repository: 'app' };
    assert.deepEqual(await client.finishUpload(session, digest, { body: Buffer.from('abc') }), { digest, size: 3 });
    assert.equal(seen.at(-1)?.method, 'HEAD');
  });

  it('names the request when a tag page links to something that is not a URL', async (t) => {
    const { client, on } = setup(t);
    on('GET', '/v2/app/tags/list', () => ({ status: 200, body: '{"tags":["a"]}', headers: { link: '<http://[oops>; rel="next"' } }));
    await assert.rejects(client.listTags('app'), { message: /^GET https:\/\/registry\.example\/v2\/app\/tags\/list → 200 with a Link that is not an http\(s\) URL/ });
  });

  it('refuses an upload Location that moves an HTTPS registry to plain HTTP, before sending a byte', async (t) => {
    const { client, on, seen } = setup(t);
    on('POST', '/v2/app/blobs/uploads/', () => ({ status: 202, headers: { location: 'http://registry.example/v2/app/blobs/uploads/u1?_state=s' } }));
    const start = await client.startUpload('app');
    assert.equal(start.kind, 'session');
    if (start.kind !== 'session') return;
    await assert.rejects(client.finishUpload(start, digest, { body: Buffer.from('bytes') }), {
      code: 'TLS',
      message:
        "PUT http://registry.example/v2/app/blobs/uploads/u1?_state=REDACTED&digest=" +
        `${digest} refused: the registry (https://registry.example) handed out plain HTTP, which would send the upload and its session in the clear; ` +
        "fix the registry's (or its proxy's) Location and redirects, or pass --plain-http if the registry is meant to serve plain HTTP",
    });
    assert.deepEqual(
      seen.map((s) => s.method),
      ['POST'],
    );
  });

  it('refuses a redirect from HTTPS to plain HTTP', async (t) => {
    const { client, on, seen } = setup(t);
    on('GET', `/v2/app/blobs/${digest}`, () => ({ status: 307, headers: { location: 'http://storage.example/blob' } }));
    await assert.rejects(client.getBlob('app', digest), { message: /^GET http:\/\/storage\.example\/blob refused: a redirect from https:\/\/registry\.example\/v2\/app\/blobs\/sha256:[0-9a-f]{64} points to plain HTTP/ });
    assert.equal(seen.length, 1);
  });

  it('keeps to plain HTTP where it was asked for', async (t) => {
    const { client, on } = setup(t, { plainHttp: true });
    on('POST', '/v2/app/blobs/uploads/', () => ({ status: 202, headers: { location: '/v2/app/blobs/uploads/u1' } }), 'http://registry.example');
    on('PUT', '/v2/app/blobs/uploads/u1*', () => ({ status: 201 }), 'http://registry.example');
    const start = await client.startUpload('app');
    if (start.kind !== 'session') return assert.fail('a session');
    const body = Buffer.from('bytes');
    assert.deepEqual(await client.finishUpload(start, sha256Digest(body), { body }), { digest: sha256Digest(body), size: 5 });
  });

  it('stops after 10 redirects and says so', async (t) => {
    const { client, on, seen } = setup(t);
    for (let i = 0; i < 11; i++) on('HEAD', i === 0 ? `/v2/app/blobs/${digest}` : `/loop/${i}`, () => ({ status: 302, headers: { location: `/loop/${i + 1}` } }));
    await assert.rejects(client.hasBlob('app', digest), {
      code: 'INVALID_RESPONSE',
      message: `HEAD ${ORIGIN}/v2/app/blobs/${digest} → 302 after 10 redirects (the last from ${ORIGIN}/loop/10): the registry or its storage redirects in a loop; check their configuration`,
    });
    assert.equal(seen.length, 11);
  });
});
