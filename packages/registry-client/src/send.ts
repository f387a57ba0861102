import type { IncomingHttpHeaders } from 'node:http';
import type { Readable } from 'node:stream';

import { InvalidResponseError, TimeoutError, type Logger, type RetryingEvent } from '@rxpush/core';
import type { Dispatcher } from 'undici';

import { hideSecrets } from './auth/credentials.js';
import { ERROR_BODY_LIMIT, parseErrorBody, registryError, retriesSpent, transportError } from './errors.js';
import { isRetryable, isRetryableStatus, parseRetryAfter, RetryBudget, retryAfterOf, retryDelay, retryPolicy, retryReason, sleep, type RetryPolicy } from './retry.js';
import { DEFAULT_TIMEOUTS, stalledOut, type Timeouts } from './timeouts.js';
import type { Authenticator, Body } from './types.js';
import { redactUrl, refuseDowngrade, resolveLocation } from './urls.js';

/** What every request of one client shares. */
export interface SendContext {
  readonly dispatcher: Dispatcher;
  /** The registry as the user named it, for the authenticator. */
  readonly registry: string;
  /** The origin of the registry's API: the only origin that ever receives the Authorization header. */
  readonly origin: string;
  readonly auth: Authenticator | undefined;
  readonly logger: Logger;
  readonly userAgent: string;
  readonly headersTimeout: number;
  readonly bodyTimeout: number;
  /** The dispatcher's connect timeout, for messages (default {@link DEFAULT_TIMEOUTS}). */
  readonly connectTimeout?: number;
  /** How requests are retried; without it, they are not. */
  readonly retry?: RetryPolicy;
  /** Told before each retry's wait. */
  readonly onRetry?: ((event: RetryingEvent) => void) | undefined;
  /**
   * Shared by the client's requests: `answered` turns true once the registry has answered anything, after
   * which a refused connection is a registry restarting mid-push (retried), not a wrong address (reported at once).
   * `headsClose` turns true once an answer could not be parsed: HEADs close their connection from then on.
   */
  readonly state?: { answered: boolean; headsClose?: boolean };
}

export interface SendRequest {
  readonly method: Dispatcher.HttpMethod;
  readonly url: URL;
  readonly headers?: Readonly<Record<string, string>>;
  /** A stream body is owned by the request from here on: sent once, destroyed if the request fails. */
  readonly body?: Body;
  /** The auth scopes the request needs; without them the authenticator is not asked. */
  readonly scopes?: readonly string[];
  /** Statuses handed back to the caller; any other answer throws a RegistryError built from its body. */
  readonly ok: readonly number[];
  /** Follow redirects (blob GET/HEAD: registries redirect to storage). Credentials never leave the registry's origin. */
  readonly followRedirects?: boolean;
  readonly signal?: AbortSignal | undefined;
  /** Told before each retry's wait, after the context's `onRetry`. */
  readonly onRetry?: ((event: RetryingEvent) => void) | undefined;
  /** Overrides the policy's number of retries (0 for a best-effort request such as cancelling a session). */
  readonly retries?: number;
  /** The budget this request's retries spend from, shared with the task it is part of; default one of its own. */
  readonly budget?: RetryBudget | undefined;
}

export interface SendResponse {
  readonly status: number;
  readonly headers: IncomingHttpHeaders;
  /** Must be consumed or dumped by the caller. */
  readonly body: Readable;
  /** The URL that answered (after redirects), to resolve Location and Link against. */
  readonly url: URL;
}

const REDIRECTS = new Set([301, 302, 303, 307, 308]);
/** As browsers and Go's net/http stop: enough for registry → CDN → storage, and a loop ends. */
const MAX_REDIRECTS = 10;

/**
 * Sends one registry request: adds auth (retrying once after a 401 when the body can be sent again),
 * follows redirects when asked, maps failures to rxpush errors, and logs it.
 *
 * Retries with backoff (full jitter, Retry-After honoured and capped) on connection failures and
 * timeouts and on 408/429/5xx answers, calling `ctx.onRetry` before each wait. Only requests whose body
 * can be sent again are retried here (none, or bytes); a stream body is consumed by its first attempt,
 * so its failure goes to the caller, which knows how to re-open the source (the uploader). Refusals
 * (401 after the auth refresh, 403, 400 *_INVALID, 404) fail at once.
 */
export async function send(ctx: SendContext, req: SendRequest): Promise<SendResponse> {
  const policy = ctx.retry ?? NO_RETRY;
  const retries = canResend(req.body) ? (req.retries ?? policy.retries) : 0;
  let authorization: string | undefined;
  let reauthorized = false;
  let timeouts = 0;
  const budget = req.budget ?? new RetryBudget(policy);
  try {
    for (let attempt = 1; ; attempt++) {
      let url = req.url;
      let from: URL | undefined;
      let redirects = 0;
      let failure: Error;
      try {
        // Asked before every attempt, inside the retries: a token service that fails for a while (5xx, 429, a reset)
        // is retried as the registry is. Tokens may have expired or been refreshed meanwhile; else the cache answers.
        authorization = await authorize(ctx, req, undefined);
        for (;;) {
          refuseDowngrade(ctx.origin, { method: req.method, url, from });
          const res = await dispatch(ctx, req, url, authorization);
          if (ctx.state !== undefined) ctx.state.answered = true;
          const status = res.statusCode;
          const location = header(res.headers, 'location');
          if (req.followRedirects === true && REDIRECTS.has(status) && location !== undefined) {
            await dump(res.body);
            if (redirects >= MAX_REDIRECTS) {
              throw new InvalidResponseError({
                method: req.method,
                url: redactUrl(req.url),
                status,
                problem: `after ${MAX_REDIRECTS} redirects (the last from ${redactUrl(url)}): the registry or its storage redirects in a loop; check their configuration`,
              });
            }
            from = url;
            url = resolveLocation(location, url, { method: req.method, status });
            redirects += 1;
            continue;
          }
          if (req.ok.includes(status)) return { status, headers: res.headers, body: res.body, url };

          const shown = { method: req.method, url: redactUrl(url) };
          const bytes = await readBody(res.body, ERROR_BODY_LIMIT).then(
            (r) => r.bytes,
            () => Buffer.alloc(0), // an error body cut short still leaves the status to report
          );
          const errorBody = parseErrorBody(withoutSecret(bytes, authorization), header(res.headers, 'content-type'));
          const challenge = status === 401 ? header(res.headers, 'www-authenticate') : undefined;
          let tokenRefreshed = false;
          if (status === 401 && !reauthorized && ctx.auth !== undefined && req.scopes !== undefined && url.origin === ctx.origin) {
            reauthorized = true;
            const next = await authorize(ctx, req, challenge, authorization);
            if (next !== undefined && canResend(req.body)) {
              authorization = next;
              continue;
            }
            // A stream body cannot be sent again from here: the caller re-opens its source and sends it with the new token.
            tokenRefreshed = next !== undefined;
          }
          const retryAfterMs = isRetryableStatus(status) ? parseRetryAfter(header(res.headers, 'retry-after'), policy.now()) : undefined;
          failure = registryError(shown, status, errorBody, {
            authenticated: authorization !== undefined,
            retryAfterMs,
            challengeError: challenge === undefined ? undefined : /\berror="?([a-z_]+)/i.exec(challenge)?.[1],
            tokenRefreshed,
          });
          break;
        }
      } catch (error) {
        failure = error instanceof Error ? error : new Error(String(error));
      }
      // A registry that stops answering is given one more try, not every retry: waits must stay bounded.
      if (isTimeout(failure)) timeouts += 1;
      const spent = !budget.fail();
      if (attempt > retries || spent || stalledOut(timeouts, policy) || req.signal?.aborted === true || !isRetryable(failure)) {
        // A stream body could not be retried here: its failure stays retryable, for the uploader that re-opens the source.
        throw canResend(req.body) && isRetryable(failure) ? retriesSpent(failure, attempt) : failure;
      }
      const delayMs = retryDelay(attempt, policy, retryAfterOf(failure));
      const reason = retryReason(failure);
      ctx.logger.debug({ method: req.method, url: redactUrl(url), attempt, delayMs, reason }, 'retrying');
      const event: RetryingEvent = { type: 'retrying', attempt, delayMs, reason };
      ctx.onRetry?.(event);
      req.onRetry?.(event);
      await sleep(delayMs, req.signal);
    }
  } catch (error) {
    // A stream that was not sent in full cannot be reused; release what it holds (file handles).
    if (req.body !== undefined && 'stream' in req.body && !req.body.stream.destroyed) req.body.stream.destroy();
    throw error;
  }
}

const NO_RETRY: RetryPolicy = retryPolicy({ retries: 0 });

/**
 * An error body without the credentials the request carried, before anything of it is quoted (and cut): a registry
 * (or a proxy) may echo the Authorization it was sent, or the password in it. The bearer token, the Basic value and
 * its password become `***`, and so do a proxy's credentials (hideAlways), with or without an Authorization.
 */
function withoutSecret(body: Buffer, authorization: string | undefined): Buffer {
  if (body.length === 0) return body;
  const secrets: string[] = [];
  if (authorization !== undefined) {
    const value = authorization.slice(authorization.indexOf(' ') + 1);
    secrets.push(value);
    if (/^basic /i.test(authorization)) {
      const decoded = Buffer.from(value, 'base64').toString('utf8');
      secrets.push(decoded.slice(decoded.indexOf(':') + 1));
    }
  }
  const text = body.toString('utf8');
  const hidden = hideSecrets(text, secrets);
  return hidden === text ? body : Buffer.from(hidden);
}

async function authorize(ctx: SendContext, req: SendRequest, challenge: string | undefined, rejected?: string): Promise<string | undefined> {
  if (ctx.auth === undefined || req.scopes === undefined) return undefined;
  return ctx.auth.authorize({
    registry: ctx.registry,
    origin: ctx.origin,
    scopes: req.scopes,
    ...(challenge !== undefined && { challenge }),
    ...(rejected !== undefined && { rejected }),
    ...(req.signal !== undefined && { signal: req.signal }),
  });
}

async function dispatch(ctx: SendContext, req: SendRequest, url: URL, authorization: string | undefined): Promise<Dispatcher.ResponseData> {
  const headers: Record<string, string> = { 'user-agent': ctx.userAgent, ...req.headers };
  if (authorization !== undefined && url.origin === ctx.origin) headers['authorization'] = authorization;
  let body: Uint8Array | Readable | AsyncIterable<Uint8Array> | undefined;
  if (req.body instanceof Uint8Array) {
    body = req.body;
  } else if (req.body !== undefined) {
    body = 'stream' in req.body ? req.body.stream : req.body.pieces;
    if (req.body.length !== undefined) headers['content-length'] = String(req.body.length);
  }
  const shown = redactUrl(url);
  const started = Date.now();
  try {
    const res = await ctx.dispatcher.request({
      origin: url.origin,
      path: `${url.pathname}${url.search}`,
      method: req.method,
      headers,
      // undici sends async iterables (client-h1.js writeIterable), though its types name streams and bytes only.
      body: (body ?? null) as Readable | Uint8Array | null,
      signal: req.signal ?? null,
      headersTimeout: ctx.headersTimeout,
      bodyTimeout: ctx.bodyTimeout,
      // undici closes the connection after every HEAD (and asks the server to, with Connection: close), in
      // case a broken server sends a body anyway; a push HEADs every blob, so that is a new connection (a TLS
      // handshake, remotely) per blob. Registries do not send one: keep the connection, unless this registry
      // has sent an answer that did not parse, which is what such a body would look like.
      ...(req.method === 'HEAD' && ctx.state?.headsClose !== true && { reset: false }),
    });
    ctx.logger.debug({ method: req.method, url: shown, status: res.statusCode, ms: Date.now() - started }, 'request');
    return res;
  } catch (error) {
    const bodyError = req.body !== undefined && 'stream' in req.body ? req.body.stream.errored : undefined;
    if (ctx.state !== undefined && isParserError(error)) ctx.state.headsClose = true;
    // Once the registry has answered anything, a refused connection is a registry restarting mid-push, not a wrong address.
    const refusedIsTransient = ctx.state?.answered === true;
    const mapped = transportError(error, { method: req.method, url: shown, signal: req.signal, bodyError, refusedIsTransient, timeouts: timeoutsOf(ctx) });
    ctx.logger.debug({ method: req.method, url: shown, err: mapped }, 'request failed');
    throw mapped;
  }
}

/** undici's HTTPParserError: the bytes on the connection were not an HTTP answer. */
function isParserError(error: unknown): boolean {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === 'string' && code.startsWith('HPE_');
}

/** A request that got no answer in time: a stall, retried once, not as often as an outage. */
export function isTimeout(error: unknown): boolean {
  return error instanceof TimeoutError;
}

function timeoutsOf(ctx: SendContext): Timeouts {
  return { connect: ctx.connectTimeout ?? DEFAULT_TIMEOUTS.connect, headers: ctx.headersTimeout, body: ctx.bodyTimeout };
}

function canResend(body: Body | undefined): boolean {
  return body === undefined || body instanceof Uint8Array;
}

/** One header's value (the first, when repeated). */
export function header(headers: IncomingHttpHeaders, name: string): string | undefined {
  const value = headers[name];
  return Array.isArray(value) ? value[0] : value;
}

/**
 * Discards a response body so the connection can be reused (undici needs every body consumed), and returns once
 * undici may reuse it: undici puts a kept-alive connection back a full event-loop turn after its answer (to see
 * whether the server closes it), and a request sent before that, say the next HEAD of a burst, gets a new
 * connection (a TLS handshake): 41 HEADs eight at a time opened 16 connections instead of 8.
 */
export async function dump(body: Readable): Promise<void> {
  const withDump = body as Readable & { dump?: (opts?: { limit?: number }) => Promise<void> };
  try {
    if (typeof withDump.dump === 'function') await withDump.dump();
    else body.resume();
  } catch {
    // A body that fails while being discarded has nothing we need.
  }
  // Immediates run in the order they were set: undici's, set as the answer ended, runs before this one.
  await new Promise<void>((resolve) => setImmediate(resolve));
}

/** Reads a body up to `limit` bytes; past that it stops reading (destroying the stream) and says so. */
export async function readBody(body: Readable, limit: number): Promise<{ bytes: Buffer; complete: boolean }> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of body) {
    const buf = chunk as Buffer;
    if (size + buf.length > limit) {
      chunks.push(buf.subarray(0, limit - size));
      return { bytes: Buffer.concat(chunks), complete: false };
    }
    chunks.push(buf);
    size += buf.length;
  }
  return { bytes: Buffer.concat(chunks, size), complete: true };
}
