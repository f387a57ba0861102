import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { Readable } from 'node:stream';
import { describe, it, type TestContext } from 'node:test';

import { CancelledError, RegistryError, RegistryUnreachableError, type RetryingEvent } from '@rxpush/core';
import { MockAgent } from 'undici';
import { registryError, retriesSpent, transportError } from '../src/errors.ts';

import { RegistryClient } from '../src/index.ts';
import { backoffDelay, isRetryable, parseRetryAfter, RetryBudget, retryAfterOf, retryDelay, retryPolicy, sleep } from '../src/retry.ts';
import type { RegistryClientOptions } from '../src/index.ts';

const NOW = Date.parse('2025-01-01T00:00:00Z');
const ORIGIN = 'https://registry.example';
const digest = `sha256:${'ab'.repeat(32)}` as const;

describe('Retry-After', () => {
  it('reads delta-seconds as milliseconds', () => {
    assert.equal(parseRetryAfter('0', NOW), 0);
    assert.equal(parseRetryAfter('1', NOW), 1000);
    assert.equal(parseRetryAfter(' 120 ', NOW), 120_000);
  });

  it('reads an HTTP-date as the time left until then, and a past date as no wait', () => {
    assert.equal(parseRetryAfter('Wed, 01 Jan 2025 00:00:30 GMT', NOW), 30_000);
    assert.equal(parseRetryAfter('Tue, 31 Dec 2024 23:00:00 GMT', NOW), 0);
  });

  it('ignores what is neither (negative, fractional, words, absent)', () => {
    for (const value of ['-1', '1.5', 'soon', '', 'Mon, 99 Foo 2025', undefined]) assert.equal(parseRetryAfter(value, NOW), undefined, String(value));
  });
});

describe('backoff', () => {
  it('doubles its ceiling with each retry up to the maximum, with full jitter below it', () => {
    const top = retryPolicy({ baseDelayMs: 100, maxDelayMs: 1000, random: () => 0.999999 });
    assert.deepEqual([1, 2, 3, 4, 5, 6].map((retry) => backoffDelay(retry, top)), [99, 199, 399, 799, 999, 999]);
    const half = retryPolicy({ baseDelayMs: 100, maxDelayMs: 1000, random: () => 0.5 });
    assert.deepEqual([1, 2, 3].map((retry) => backoffDelay(retry, half)), [50, 100, 200]);
    const none = retryPolicy({ random: () => 0 });
    assert.equal(backoffDelay(3, none), 0);
  });

  it('waits what Retry-After asks, capped, instead of the backoff', () => {
    const policy = retryPolicy({ maxRetryAfterMs: 60_000, random: () => 0.5 });
    assert.equal(retryDelay(1, policy, 5000), 5000);
    assert.equal(retryDelay(1, policy, 3_600_000), 60_000);
    assert.equal(retryDelay(1, policy, undefined), 500);
  });

  it('has defaults: retries for 60 s (20 at most), 1 s base, 30 s ceiling, Retry-After capped at 60 s', () => {
    const { retries, retriesGiven, budgetMs, baseDelayMs, maxDelayMs, maxRetryAfterMs } = retryPolicy();
    assert.deepEqual(
      { retries, retriesGiven, budgetMs, baseDelayMs, maxDelayMs, maxRetryAfterMs },
      { retries: 20, retriesGiven: false, budgetMs: 60_000, baseDelayMs: 1000, maxDelayMs: 30_000, maxRetryAfterMs: 60_000 },
    );
    assert.equal(retryPolicy({ retries: 4 }).retriesGiven, true);
  });

  it('shares one budget of time between a task and its requests, counted from the first failure', () => {
    let now = 1_000;
    const budget = new RetryBudget(retryPolicy({ budgetMs: 60_000, now: () => now }));
    now += 3_600_000; // a long upload that went well does not use the budget up
    assert.equal(budget.fail(), true);
    now += 30_000;
    assert.equal(budget.fail(), true, 'a request inside the task, 30 s on');
    now += 30_000;
    assert.equal(budget.fail(), false, 'a minute after the first failure');
  });

  it('stops sleeping when the signal fires', async () => {
    const controller = new AbortController();
    const slept = sleep(3_600_000, controller.signal);
    controller.abort();
    await assert.rejects(slept, CancelledError);
  });
});

describe('what is worth retrying', () => {
  const answer = (status: number) => registryError({ method: 'PUT', url: `${ORIGIN}/v2/app/manifests/1` }, status, {}, { authenticated: false });
  const noAnswer = (code: string, refusedIsTransient = false) =>
    transportError(Object.assign(new Error(code), { code }), { method: 'PUT', url: ORIGIN, refusedIsTransient });

  it('retries 408, 429 and 5xx answers, and never refusals', () => {
    for (const status of [408, 429, 500, 502, 503, 504]) assert.equal(isRetryable(answer(status)), true, String(status));
    for (const status of [400, 401, 403, 404, 405, 413, 416, 501]) assert.equal(isRetryable(answer(status)), false, String(status));
  });

  it('retries resets, closed sockets and timeouts; a refused connection only once the registry has answered', () => {
    for (const code of ['ECONNRESET', 'EPIPE', 'UND_ERR_SOCKET', 'UND_ERR_CLOSED', 'UND_ERR_HEADERS_TIMEOUT', 'UND_ERR_BODY_TIMEOUT', 'UND_ERR_CONNECT_TIMEOUT']) {
      assert.equal(isRetryable(noAnswer(code)), true, code);
    }
    assert.equal(isRetryable(noAnswer('ECONNREFUSED')), false);
    assert.equal(isRetryable(noAnswer('ECONNREFUSED', true)), true);
    assert.equal(isRetryable(noAnswer('ENOTFOUND')), false);
    assert.equal(isRetryable(noAnswer('DEPTH_ZERO_SELF_SIGNED_CERT')), false);
    assert.equal(isRetryable(retriesSpent(answer(503), 5)), false, 'retries spent lower down are not multiplied');
    assert.equal(isRetryable(new CancelledError()), false);
    assert.equal(isRetryable(new Error('boom')), false);
  });
});

/** A client whose requests go to a MockAgent, retrying without waiting, recording its retry events. */
function setup(t: TestContext, options: Partial<RegistryClientOptions> = {}) {
  const agent = new MockAgent();
  agent.disableNetConnect();
  t.after(() => agent.close());
  const retries: RetryingEvent[] = [];
  const client = new RegistryClient({
    registry: 'registry.example',
    dispatcher: agent,
    retry: { random: () => 0 },
    onRetry: (event) => retries.push(event),
    ...options,
  });
  const pool = agent.get(ORIGIN);
  return { agent, pool, client, retries };
}

describe('RegistryClient retries', () => {
  it('retries a 503 and reports the retry before waiting', async (t) => {
    const { pool, client, retries } = setup(t);
    pool.intercept({ method: 'HEAD', path: `/v2/app/blobs/${digest}` }).reply(503, '');
    pool.intercept({ method: 'HEAD', path: `/v2/app/blobs/${digest}` }).reply(200, '', { headers: { 'content-length': '7' } });
    assert.deepEqual(await client.hasBlob('app', digest), { digest, size: 7 });
    assert.equal(retries.length, 1);
    assert.equal(retries[0]!.attempt, 1);
    assert.equal(retries[0]!.delayMs, 0);
    assert.match(retries[0]!.reason, /^HEAD https:\/\/registry\.example\/v2\/app\/blobs\/sha256:a+b.* → 503/);
    assert.equal(retries[0]!.id, undefined);
  });

  it('waits what Retry-After says, up to its cap', async (t) => {
    const { pool, client, retries } = setup(t, { retry: { maxRetryAfterMs: 0 } });
    pool.intercept({ method: 'PUT', path: '/v2/app/manifests/1' }).reply(429, '', { headers: { 'retry-after': '3600' } });
    pool.intercept({ method: 'PUT', path: '/v2/app/manifests/1' }).reply(201, '', { headers: { 'docker-content-digest': `sha256:${createHash('sha256').update('{}').digest('hex')}` } });
    await client.putManifest('app', '1', { bytes: Buffer.from('{}'), mediaType: 'application/vnd.oci.image.manifest.v1+json' });
    assert.deepEqual(retries.map((r) => r.delayMs), [0]);
  });

  it('retries a reset connection and says how many attempts it made when they are spent', async (t) => {
    const { pool, client, retries } = setup(t, { retry: { retries: 2, random: () => 0 } });
    const reset = () => Object.assign(new Error('read ECONNRESET'), { code: 'ECONNRESET' });
    for (let i = 0; i < 3; i++) pool.intercept({ method: 'GET', path: '/v2/' }).replyWithError(reset());
    await assert.rejects(client.ping(), (error: RegistryUnreachableError) => {
      assert.equal(error.code, 'REGISTRY_UNREACHABLE');
      assert.equal(error.message, `GET ${ORIGIN}/v2/ failed: the connection was closed before the registry answered; try again (gave up after 3 attempts)`);
      return true;
    });
    assert.equal(retries.length, 2);
  });

  it('reports a refused connection at once while the registry has never answered', async (t) => {
    const { pool, client, retries } = setup(t);
    pool.intercept({ method: 'GET', path: '/v2/' }).replyWithError(Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' }));
    await assert.rejects(client.ping(), /connection refused/);
    assert.equal(retries.length, 0);
  });

  it('retries a refused connection once the registry has answered (it restarted mid-push)', async (t) => {
    const { pool, client, retries } = setup(t);
    pool.intercept({ method: 'GET', path: '/v2/' }).reply(200, '');
    pool.intercept({ method: 'GET', path: '/v2/' }).replyWithError(Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' }));
    pool.intercept({ method: 'GET', path: '/v2/' }).reply(200, '');
    await client.ping();
    await client.ping();
    assert.equal(retries.length, 1);
  });

  it('fails at once on DENIED, NAME_INVALID, a 404 and a 401 after the credentials were refreshed', async (t) => {
    let asked = 0;
    const auth = { authorize: async () => `Bearer t${asked++}` };
    const { agent, pool, client, retries } = setup(t, { auth });
    const body = (code: string) => JSON.stringify({ errors: [{ code, message: code.toLowerCase() }] });
    pool.intercept({ method: 'POST', path: '/v2/denied/blobs/uploads/' }).reply(403, body('DENIED'));
    await assert.rejects(client.startUpload('denied'), { code: 'DENIED' });
    pool.intercept({ method: 'PUT', path: '/v2/name/manifests/1' }).reply(400, body('NAME_INVALID'));
    await assert.rejects(client.putManifest('name', '1', { bytes: Buffer.from('{}'), mediaType: 'application/json' }), { registryCode: 'NAME_INVALID' });
    pool.intercept({ method: 'GET', path: '/v2/gone/blobs/uploads/u1' }).reply(404, body('BLOB_UPLOAD_UNKNOWN'));
    await assert.rejects(client.uploadStatus({ location: new URL(`${ORIGIN}/v2/gone/blobs/uploads/u1`), offset: 0 }), { status: 404 });
    const unauthorized = { headers: { 'www-authenticate': 'Bearer realm="https://auth.example/token"' } };
    pool.intercept({ method: 'GET', path: '/v2/app/tags/list' }).reply(401, body('UNAUTHORIZED'), unauthorized).times(2);
    await assert.rejects(client.listTags('app'), { code: 'UNAUTHORIZED' });
    assert.equal(retries.length, 0);
    // Every answer was asked for exactly once: nothing was sent again.
    agent.assertNoPendingInterceptors();
  });

  it('leaves a stream body to its caller, with the Retry-After it was given', async (t) => {
    const { pool, client, retries } = setup(t);
    pool.intercept({ method: 'PATCH', path: '/v2/app/blobs/uploads/u1' }).reply(503, '', { headers: { 'retry-after': '7' } });
    const session = { location: new URL(`${ORIGIN}/v2/app/blobs/uploads/u1`), offset: 0 };
    const error = await client.uploadChunk(session, { stream: Readable.from([Buffer.from('abc')]), length: 3 }).catch((e: unknown) => e);
    assert.ok(error instanceof RegistryError);
    assert.equal(error.status, 503);
    assert.equal(retryAfterOf(error), 7000);
    assert.equal(isRetryable(error), true, 'the uploader may retry it with a fresh stream');
    assert.equal(retries.length, 0);
  });

  it('marks an error whose retries were spent so that callers do not retry it again', async (t) => {
    const { pool, client } = setup(t, { retry: { retries: 1, random: () => 0 } });
    pool.intercept({ method: 'POST', path: '/v2/app/blobs/uploads/' }).reply(500, '').times(2);
    const error = await client.startUpload('app').catch((e: unknown) => e);
    assert.ok(error instanceof RegistryError);
    assert.match(error.message, /\(gave up after 2 attempts\)$/);
    assert.equal(isRetryable(error), false);
  });
});

describe('timeouts', () => {
  it('bound a stalled request to two waits of 25 s, and connecting to 10 s, by default', async () => {
    const { DEFAULT_TIMEOUTS } = await import('../src/index.ts');
    assert.deepEqual(DEFAULT_TIMEOUTS, { connect: 10_000, headers: 25_000, body: 25_000 });
  });
});
