import assert from 'node:assert/strict';
import { PassThrough, Readable } from 'node:stream';
import { buffer } from 'node:stream/consumers';
import { setTimeout as delay } from 'node:timers/promises';
import { describe, it, type TestContext } from 'node:test';

import { MediaType, sha256Digest, shortId, type BlobSource, type PushEvent } from '@rxpush/core';
import { RegistryClient } from '@rxpush/registry-client';
import { lastValueFrom, NEVER, Subject, toArray } from 'rxjs';
import { MockAgent } from 'undici';

import { UploadLimiter, uploadBlobs, type UploadBlobsOptions } from '../src/index.ts';

const ORIGIN = 'https://registry.example';
const UPLOADS = '/v2/app/blobs/uploads/';

interface Seen {
  readonly method: string;
  readonly path: string;
  readonly headers: Record<string, string>;
  body: Buffer;
}

type Answer = { status: number; headers?: Record<string, string>; delayMs?: number } | Error;

/**
 * A registry made of MockAgent answers, each used once, in the order given; every request answered is recorded
 * with its body (those answered with a connection error are not: they never reached the registry whole).
 */
function registry(t: TestContext) {
  const agent = new MockAgent();
  agent.disableNetConnect();
  t.after(() => agent.close());
  const seen: Seen[] = [];
  const on = (method: string, path: string, answer: Answer) => {
    const scope = agent.get(ORIGIN).intercept({ method, path: (raw) => { const p = decodeURIComponent(raw); return path.endsWith("*") ? p.startsWith(path.slice(0, -1)) : p === path; } });
    if (answer instanceof Error) {
      scope.replyWithError(answer);
      return;
    }
    const reply = scope.reply((opts) => {
      const req: Seen = { method: opts.method, path: decodeURIComponent(opts.path), headers: { ...(opts.headers as Record<string, string>) }, body: Buffer.alloc(0) };
      seen.push(req);
      // The registry reads the whole body before it answers, as a real one does.
      const read = opts.body instanceof Readable ? buffer(opts.body) : Promise.resolve(Buffer.from((opts.body as string | Buffer | null | undefined) ?? ''));
      return { statusCode: answer.status, data: read.then((bytes) => void (req.body = bytes)).then(() => ''), responseOptions: { headers: answer.headers ?? {} } };
    });
    if (answer.delayMs !== undefined) reply.delay(answer.delayMs);
  };
  const client = new RegistryClient({ registry: 'registry.example', dispatcher: agent, retry: { baseDelayMs: 0 } });
  return { client, on, seen, requests: () => seen.map((s) => `${s.method} ${s.path}`) };
}

/**
 * A 10-byte layer sent in chunks of 4 (which the registry allows) whose second chunk breaks, and whose session the
 * registry then says holds the first chunk: the start of a resumed upload.
 */
function brokenAfterFirstChunk(on: ReturnType<typeof registry>['on']) {
  const sent = layer(Buffer.from('0123456789'));
  on('POST', UPLOADS, { status: 202, headers: { location: `${UPLOADS}u1`, range: '0-0', 'oci-chunk-min-length': '4' } });
  on('PATCH', `${UPLOADS}u1`, { status: 202, headers: { location: `${UPLOADS}u1`, range: '0-3' } });
  on('PATCH', `${UPLOADS}u1`, reset());
  on('GET', `${UPLOADS}u1`, { status: 204, headers: { location: `${UPLOADS}u1`, range: '0-3' } });
  on('HEAD', `/v2/app/blobs/${sent.digest}`, { status: 404 });
  return sent;
}

/** {@link brokenAfterFirstChunk}'s layer as the registry must get it in the end: every byte once, in chunks of 4. */
const THE_LAYER_IN_CHUNKS = [
  ['0-3', '0123'],
  ['4-7', '4567'],
  ['8-9', '89'],
];

/** The Content-Range and bytes of each PATCH the registry answered in a session, in order. */
function chunksSent(seen: readonly Seen[], session: string): string[][] {
  return seen.filter((s) => s.method === 'PATCH' && s.path.startsWith(session)).map((p) => [p.headers['content-range'] ?? '', p.body.toString()]);
}

/** A stored layer whose every open() is recorded (with the signal it was opened with). */
function layer(bytes: Buffer, overrides: Partial<BlobSource> = {}) {
  const opened: AbortSignal[] = [];
  const digest = sha256Digest(bytes);
  const blob: BlobSource = {
    key: digest,
    role: 'layer',
    mediaType: MediaType.ociLayerGzip,
    digest,
    size: bytes.length,
    form: 'stored',
    origin: 'layer.tar.gz',
    open: async (options) => {
      if (options?.signal !== undefined) opened.push(options.signal);
      return Readable.from([bytes]);
    },
    ...overrides,
  };
  return { blob, digest, opened };
}

/**
 * Sequential blobs fed by one stream read once, as docker-daemon's save stream feeds them: it serves the
 * blobs in `order` (indexes of `contents`), one at a time, and at each one waits until that blob is opened.
 * Like the real reader it gives up when nothing is opened for a while (here 2 s, the real one 30 s) while
 * opened blobs wait for data that comes later: the order cannot be served.
 */
function oneStream(contents: Buffer[], order: number[]) {
  const consumers: (PassThrough | undefined)[] = contents.map(() => undefined);
  let wake: (() => void) | undefined;
  let reading: Promise<void> | undefined;
  const serve = async (): Promise<void> => {
    for (const index of order) {
      while (consumers[index] === undefined) {
        const opened = await new Promise<boolean>((resolve) => {
          const timer = setTimeout(() => resolve(false), 2000);
          wake = () => {
            clearTimeout(timer);
            resolve(true);
          };
        });
        if (!opened) {
          const stuck = new Error(`the stream is at blob ${index}, which nobody opens, while others wait`);
          for (const consumer of consumers) consumer?.destroy(stuck);
          return;
        }
      }
      consumers[index]?.end(contents[index]);
    }
  };
  return contents.map((bytes, index) =>
    layer(bytes, {
      sequential: true,
      open: async () => {
        const consumer = new PassThrough();
        consumers[index] = consumer;
        wake?.();
        reading ??= serve();
        return consumer;
      },
    }),
  );
}

/** What a socket closed mid-request looks like to undici: a failure a retry can get past. */
const reset = () => Object.assign(new Error('other side closed'), { code: 'UND_ERR_SOCKET' });

function run(client: RegistryClient, blobs: BlobSource[], options: Partial<UploadBlobsOptions> = {}): Promise<PushEvent[]> {
  const source = new Subject<PushEvent>();
  const done = lastValueFrom(source.pipe(uploadBlobs({ client, repository: 'app', ...options }), toArray()));
  for (const blob of blobs) source.next({ type: 'blob', blob });
  source.complete();
  return done;
}

const types = (events: PushEvent[]) => events.filter((e) => e.type !== 'pushing').map((e) => e.type);

describe('uploadBlobs', () => {
  it('lets other events pass while every upload slot is busy', async (t) => {
    const { client, on } = registry(t);
    const { blob, digest } = layer(Buffer.from('slow layer'));
    on('POST', UPLOADS, { status: 202, headers: { location: `${UPLOADS}u1` } });
    on('PUT', `${UPLOADS}u1?digest=${digest}`, { status: 201, delayMs: 300 });
    const source = new Subject<PushEvent>();
    const events: PushEvent[] = [];
    const done = new Promise<void>((resolve, reject) =>
      source.pipe(uploadBlobs({ client, repository: 'app', concurrency: 1 })).subscribe({ next: (e) => events.push(e), error: reject, complete: resolve }),
    );
    source.next({ type: 'blob', blob });
    source.next({ type: 'blob', blob: layer(Buffer.from('queued layer')).blob });
    const news = { type: 'retrying', attempt: 1, delayMs: 0, reason: 'elsewhere' } as const;
    source.next(news);
    await delay(50);
    assert.ok(events.includes(news), 'the event passed while the only slot was busy');
    assert.equal(events.filter((e) => e.type === 'pushed').length, 0);
    // The queued blob cannot go up (no answers for it); end with the first alone.
    source.error(new Error('enough'));
    await assert.rejects(done, /enough/);
  });

  it('opens the next uploads\' sessions while the first ones send, so a freed slot goes straight to a PUT', async (t) => {
    const { client, on, requests } = registry(t);
    const layers = [1, 2, 3, 4].map((i) => layer(Buffer.from(`layer ${i}`)));
    for (let i = 1; i <= 4; i++) on('POST', UPLOADS, { status: 202, headers: { location: `${UPLOADS}u${i}` } });
    // The MockAgent hands the POST answers out in the order the POSTs come, so any session may go to any layer.
    for (let i = 1; i <= 4; i++) on('PUT', `${UPLOADS}*`, { status: 201, delayMs: 50 });
    const events = await run(client, layers.map((l) => l.blob), { concurrency: 2 });
    assert.equal(events.filter((e) => e.type === 'blob-ready').length, 4);
    const order = requests().map((r) => r.split(' ')[0]);
    assert.deepEqual(order.slice(0, 4), ['POST', 'POST', 'POST', 'POST'], 'every session was opened before the first PUT was answered');
    assert.equal(order.filter((m) => m === 'PUT').length, 4);
  });

  it('reports the retries of a session opened ahead as the upload\'s own', async (t) => {
    const { client, on } = registry(t);
    const { blob, digest } = layer(Buffer.from('a layer whose POST is refused once'));
    on('POST', UPLOADS, { status: 429, headers: { 'retry-after': '0' } });
    on('POST', UPLOADS, { status: 202, headers: { location: `${UPLOADS}u1` } });
    on('PUT', `${UPLOADS}u1?digest=${digest}`, { status: 201 });
    const events = await run(client, [blob], { concurrency: 2 });
    assert.deepEqual(types(events), ['retrying', 'pushed', 'blob-ready']);
    const retrying = events.find((e) => e.type === 'retrying');
    assert.equal(retrying?.type === 'retrying' && retrying.id, shortId(digest));
  });

  it('restarts a broken upload in a fresh session, re-opening the source, and cancels the broken session', async (t) => {
    const { client, on, requests } = registry(t);
    const bytes = Buffer.from('a layer that breaks once');
    const { blob, digest, opened } = layer(bytes);
    on('POST', UPLOADS, { status: 202, headers: { location: `${UPLOADS}u1` } });
    on('PUT', `${UPLOADS}u1?digest=${digest}`, reset());
    on('DELETE', `${UPLOADS}u1`, { status: 204 });
    on('HEAD', `/v2/app/blobs/${digest}`, { status: 404 });
    on('POST', UPLOADS, { status: 202, headers: { location: `${UPLOADS}u2` } });
    on('PUT', `${UPLOADS}u2?digest=${digest}`, { status: 201 });
    const events = await run(client, [blob]);
    assert.deepEqual(types(events), ['retrying', 'pushed', 'blob-ready']);
    const retrying = events.find((e) => e.type === 'retrying');
    assert.equal(retrying?.type === 'retrying' && retrying.id, shortId(digest));
    assert.match(retrying?.type === 'retrying' ? retrying.reason : '', /^PUT https:\/\/registry\.example\/v2\/app\/blobs\/uploads\/u1\?digest=sha256:[0-9a-f]{64} failed: the connection was closed/);
    assert.equal(opened.length, 2, 'the source was opened again for the second attempt');
    await client.close();
    // The cancel of the broken session is not waited for: it may reach the registry after the HEAD.
    assert.deepEqual(requests().sort(), [`DELETE ${UPLOADS}u1`, `HEAD /v2/app/blobs/${digest}`, `POST ${UPLOADS}`, `POST ${UPLOADS}`, `PUT ${UPLOADS}u2?digest=${digest}`].sort());
    assert.equal(requests().at(-1), `PUT ${UPLOADS}u2?digest=${digest}`);
  });

  it('confirms a commit whose answer was lost with a HEAD, and never sends it again', async (t) => {
    const { client, on, requests } = registry(t);
    const bytes = Buffer.from('committed, answer lost');
    const { blob, digest, opened } = layer(bytes);
    on('POST', UPLOADS, { status: 202, headers: { location: `${UPLOADS}u1` } });
    on('PUT', `${UPLOADS}u1?digest=${digest}`, reset());
    on('DELETE', `${UPLOADS}u1`, { status: 404 });
    on('HEAD', `/v2/app/blobs/${digest}`, { status: 200, headers: { 'content-length': String(bytes.length), 'docker-content-digest': digest } });
    const events = await run(client, [blob]);
    assert.deepEqual(types(events), ['retrying', 'pushed', 'blob-ready']);
    const pushed = events.find((e) => e.type === 'pushed');
    assert.deepEqual(pushed?.type === 'pushed' && [pushed.digest, pushed.size], [digest, bytes.length]);
    assert.equal(opened.length, 1, 'the source was not read again');
    await client.close();
    assert.deepEqual(requests().sort(), [`DELETE ${UPLOADS}u1`, `HEAD /v2/app/blobs/${digest}`, `POST ${UPLOADS}`].sort());
  });

  it("resumes a broken chunked upload from the registry's Range, sending only what it lacks", async (t) => {
    const { client, on, seen } = registry(t);
    const { blob, digest, opened } = brokenAfterFirstChunk(on);
    on('PATCH', `${UPLOADS}u1`, { status: 202, headers: { location: `${UPLOADS}u1`, range: '0-7' } });
    on('PATCH', `${UPLOADS}u1`, { status: 202, headers: { location: `${UPLOADS}u1`, range: '0-9' } });
    on('PUT', `${UPLOADS}u1?digest=${digest}`, { status: 201 });
    const events = await run(client, [blob], { chunkSize: 4 });
    assert.deepEqual(types(events), ['retrying', 'pushed', 'blob-ready']);
    assert.deepEqual(chunksSent(seen, `${UPLOADS}u1`), THE_LAYER_IN_CHUNKS);
    assert.equal(seen.filter((s) => s.method === 'POST').length, 1, 'the same session went on');
    assert.equal(opened.length, 2, 'the source was read again from its start, its first bytes skipped');
  });

  it('starts over in a fresh session when the registry accepts the resume of a broken chunk, then cancels the session', async (t) => {
    // The reference registry may answer the GET before it has written the cut chunk's bytes, and then cancel the
    // session on the next PATCH, when its signed offset no longer matches what it holds.
    const { client, on, seen } = registry(t);
    const { blob, digest, opened } = brokenAfterFirstChunk(on);
    on('PATCH', `${UPLOADS}u1`, { status: 404, headers: { 'content-type': 'application/json' } });
    on('DELETE', `${UPLOADS}u1`, { status: 404 });
    on('HEAD', `/v2/app/blobs/${digest}`, { status: 404 });
    on('POST', UPLOADS, { status: 202, headers: { location: `${UPLOADS}u2`, range: '0-0', 'oci-chunk-min-length': '4' } });
    on('PATCH', `${UPLOADS}u2`, { status: 202, headers: { location: `${UPLOADS}u2`, range: '0-3' } });
    on('PATCH', `${UPLOADS}u2`, { status: 202, headers: { location: `${UPLOADS}u2`, range: '0-7' } });
    on('PATCH', `${UPLOADS}u2`, { status: 202, headers: { location: `${UPLOADS}u2`, range: '0-9' } });
    on('PUT', `${UPLOADS}u2?digest=${digest}`, { status: 201 });
    const events = await run(client, [blob], { chunkSize: 4 });
    assert.deepEqual(types(events), ['retrying', 'pushed', 'blob-ready']);
    assert.deepEqual(chunksSent(seen, `${UPLOADS}u2`), THE_LAYER_IN_CHUNKS);
    assert.equal(seen.filter((s) => s.method === 'POST').length, 2, 'a fresh session');
    assert.equal(opened.length, 3, 'the source was read again for the resume and for the fresh session');
  });

  it('aborts the request in flight and DELETEs the session when unsubscribed', async (t) => {
    const { client, on, requests } = registry(t);
    const { blob, digest, opened } = layer(Buffer.from('never answered'));
    on('POST', UPLOADS, { status: 202, headers: { location: `${UPLOADS}u1` } });
    on('PUT', `${UPLOADS}u1?digest=${digest}`, { status: 201, delayMs: 60_000 });
    on('DELETE', `${UPLOADS}u1`, { status: 204 });
    const source = new Subject<PushEvent>();
    const events: PushEvent[] = [];
    const subscription = source.pipe(uploadBlobs({ client, repository: 'app' })).subscribe((e) => events.push(e));
    source.next({ type: 'blob', blob });
    while (opened.length === 0) await delay(5);
    await delay(20);
    subscription.unsubscribe();
    assert.equal(opened[0]?.aborted, true, 'the upload was aborted');
    await client.close();
    assert.deepEqual(requests(), [`POST ${UPLOADS}`, `PUT ${UPLOADS}u1?digest=${digest}`, `DELETE ${UPLOADS}u1`], 'the DELETE follows the aborted PUT');
    assert.equal(events.filter((e) => e.type === 'pushed' || e.type === 'retrying').length, 0);
  });

  it('fails at once, without a second attempt, when the registry refuses the upload', async (t) => {
    const { client, on, requests } = registry(t);
    const { blob, digest, opened } = layer(Buffer.from('refused'));
    on('POST', UPLOADS, { status: 202, headers: { location: `${UPLOADS}u1` } });
    on('PUT', `${UPLOADS}u1?digest=${digest}`, { status: 400, headers: { 'content-type': 'application/json' } });
    on('DELETE', `${UPLOADS}u1`, { status: 204 });
    await assert.rejects(run(client, [blob]), { name: 'RegistryError', status: 400 });
    assert.equal(opened.length, 1);
    await client.close();
    assert.deepEqual(requests(), [`POST ${UPLOADS}`, `PUT ${UPLOADS}u1?digest=${digest}`, `DELETE ${UPLOADS}u1`]);
  });

  it('retries a broken upload of a sequential source, releasing it from the shared stream before opening it again', async (t) => {
    const { client, on } = registry(t);
    const calls: string[] = [];
    const { blob, digest } = layer(Buffer.from('one pass of a docker save stream'), { sequential: true });
    const sequential: BlobSource = {
      ...blob,
      open: async (options) => {
        calls.push('open');
        return blob.open(options);
      },
      release: () => void calls.push('release'),
    };
    on('POST', UPLOADS, { status: 202, headers: { location: `${UPLOADS}u1` } });
    on('PUT', `${UPLOADS}u1?digest=${digest}`, reset());
    on('DELETE', `${UPLOADS}u1`, { status: 204 });
    on('HEAD', `/v2/app/blobs/${digest}`, { status: 404 });
    on('POST', UPLOADS, { status: 202, headers: { location: `${UPLOADS}u2` } });
    on('PUT', `${UPLOADS}u2?digest=${digest}`, { status: 201 });
    const events = await run(client, [sequential]);
    assert.deepEqual(types(events), ['retrying', 'pushed', 'blob-ready']);
    assert.deepEqual(calls, ['open', 'release', 'open']);
    await client.close();
  });

  it("uploads a sequential source's blobs served in another order than they came, though the limiter has fewer slots than blobs", async (t) => {
    const { client, on, seen } = registry(t);
    const contents = [0, 1, 2, 3, 4].map((i) => Buffer.from(`layer ${i} of one save stream`));
    // The stream serves the blobs in another order than the image lists them (docker save: name order).
    const blobs = oneStream(contents, [3, 0, 4, 2, 1]);
    for (const i of contents.keys()) on('POST', UPLOADS, { status: 202, headers: { location: `${UPLOADS}u${i}` } });
    for (const _ of contents) on('PUT', `${UPLOADS}*`, { status: 201 });
    const limiter = new UploadLimiter(2);
    const events = await run(client, blobs.map((b) => b.blob), { limiter, concurrency: 1 });
    assert.deepEqual(new Set(events.flatMap((e) => (e.type === 'pushed' ? [e.digest] : []))), new Set(blobs.map((b) => b.digest)));
    assert.deepEqual(seen.filter((s) => s.method === 'PUT').map((s) => s.body.toString()).sort(), contents.map(String).sort());
    assert.equal(limiter.busy, 0);
  });

  it("uploads a sequential source's blobs while another push holds every slot of the limiter", async (t) => {
    const { client, on } = registry(t);
    const contents = [0, 1, 2].map((i) => Buffer.from(`layer ${i} of another save stream`));
    const blobs = oneStream(contents, [2, 1, 0]);
    for (const i of contents.keys()) on('POST', UPLOADS, { status: 202, headers: { location: `${UPLOADS}u${i}` } });
    for (const _ of contents) on('PUT', `${UPLOADS}*`, { status: 201 });
    const limiter = new UploadLimiter(1);
    // Another push's upload that does not end while this push runs.
    const other = NEVER.pipe(limiter.limit()).subscribe();
    t.after(() => other.unsubscribe());
    const events = await run(client, blobs.map((b) => b.blob), { limiter });
    assert.equal(events.filter((e) => e.type === 'pushed').length, 3);
    assert.equal(limiter.busy, 1, "only the other push's upload held a slot");
  });
});
