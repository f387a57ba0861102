import { CancelledError, RegistryError, RegistryUnreachableError } from '@rxpush/core';

/** How failed requests are retried: bounded attempts, exponential backoff with full jitter, Retry-After honoured. */
export interface RetryOptions {
  /** Retries after the first attempt (default 4, so five attempts in all); 0 turns retrying off. */
  readonly retries?: number;
  /** The backoff ceiling of the first retry in ms (default 1000); it doubles with each retry. */
  readonly baseDelayMs?: number;
  /** The most any backoff ceiling grows to, in ms (default 30 000). */
  readonly maxDelayMs?: number;
  /** Retry-After values above this are cut to it, in ms (default 60 000): a registry must not park a push for an hour. */
  readonly maxRetryAfterMs?: number;
  /** A random number in [0, 1) for the jitter; tests pass a fixed one. Default Math.random. */
  readonly random?: () => number;
  /** The clock HTTP-date Retry-After values are measured against; default Date.now. */
  readonly now?: () => number;
}

/** {@link RetryOptions} with every default filled in. */
export type RetryPolicy = Required<RetryOptions>;

/**
 * Fills in the defaults of {@link RetryOptions}.
 *
 * @example retryPolicy({ retries: 2 }).baseDelayMs // 1000
 */
export function retryPolicy(options: RetryOptions = {}): RetryPolicy {
  return {
    retries: Math.max(0, Math.floor(options.retries ?? 4)),
    baseDelayMs: Math.max(0, options.baseDelayMs ?? 1000),
    maxDelayMs: Math.max(0, options.maxDelayMs ?? 30_000),
    maxRetryAfterMs: Math.max(0, options.maxRetryAfterMs ?? 60_000),
    random: options.random ?? Math.random,
    now: options.now ?? Date.now,
  };
}

/**
 * The wait a `Retry-After` header asks for, in ms: delta-seconds (`120`) or an HTTP-date
 * (`Wed, 21 Oct 2015 07:28:00 GMT`, 0 once it has passed). Undefined when absent or malformed.
 *
 * @example parseRetryAfter('3') // 3000
 */
export function parseRetryAfter(value: string | undefined, now: number = Date.now()): number | undefined {
  if (value === undefined) return undefined;
  const text = value.trim();
  if (/^\d+$/.test(text)) {
    const seconds = Number(text);
    return Number.isSafeInteger(seconds) ? seconds * 1000 : undefined;
  }
  // Date.parse accepts far more than HTTP-dates (e.g. "1"); require the shape of one: a weekday name and a year.
  if (!/^[A-Za-z]{3},? /.test(text) || !/\d{4}/.test(text)) return undefined;
  const at = Date.parse(text);
  return Number.isNaN(at) ? undefined : Math.max(0, at - now);
}

/**
 * The backoff before retry number `retry` (1 for the first retry): "full jitter", a random wait between 0
 * and min(maxDelayMs, baseDelayMs · 2^(retry-1)). Jitter keeps many clients that failed together from
 * coming back together.
 *
 * @example backoffDelay(3, retryPolicy({ random: () => 0.5 })) // 2000
 */
export function backoffDelay(retry: number, policy: RetryPolicy): number {
  const ceiling = Math.min(policy.maxDelayMs, policy.baseDelayMs * 2 ** Math.max(0, retry - 1));
  return Math.floor(policy.random() * ceiling);
}

/**
 * The wait before retry number `retry`: what the registry asked for with Retry-After (capped at
 * maxRetryAfterMs), else the jittered backoff.
 *
 * @example retryDelay(1, retryPolicy(), 5000) // 5000
 */
export function retryDelay(retry: number, policy: RetryPolicy, retryAfterMs?: number): number {
  if (retryAfterMs !== undefined) return Math.min(retryAfterMs, policy.maxRetryAfterMs);
  return backoffDelay(retry, policy);
}

/** Statuses that say "not now" rather than "no": timeouts, rate limits and server failures a retry may get past. */
const RETRYABLE_STATUS = new Set([408, 429, 500, 502, 503, 504]);

/** True for a status worth retrying: 408, 429, 500, 502, 503, 504. Never 4xx refusals (401, 403, 400 *_INVALID, 404). */
export function isRetryableStatus(status: number): boolean {
  return RETRYABLE_STATUS.has(status);
}

/**
 * Transport failures where the request may not have been processed and trying again can work.
 * Name resolution and TLS failures are left out: they do not heal in seconds, and a certificate error
 * must never be "retried away".
 */
const RETRYABLE_CODES = new Set([
  'ECONNRESET',
  'EPIPE',
  'ETIMEDOUT',
  'ECONNABORTED',
  'UND_ERR_SOCKET',
  'UND_ERR_CLOSED',
  'UND_ERR_CONNECT_TIMEOUT',
  'UND_ERR_HEADERS_TIMEOUT',
  'UND_ERR_BODY_TIMEOUT',
]);

function causeCode(error: unknown): string | undefined {
  const cause = (error as { cause?: { code?: unknown } } | null)?.cause;
  return typeof cause?.code === 'string' ? cause.code : undefined;
}

/** Errors whose retries were already spent at the request level; the uploader must not multiply them. */
const spent = new WeakSet<object>();
/** Retry-After (ms) of an error answer that could not be retried where it happened (a stream body). */
const retryAfters = new WeakMap<object, number>();

/** Marks an error as final: the request level already gave up on it after its retries. */
export function markRetriesSpent<E extends Error>(error: E): E {
  spent.add(error);
  return error;
}

/** Remembers what Retry-After an error answer carried, for whoever retries it. */
export function rememberRetryAfter<E extends Error>(error: E, retryAfterMs: number | undefined): E {
  if (retryAfterMs !== undefined) retryAfters.set(error, retryAfterMs);
  return error;
}

/** The Retry-After (ms) the registry sent with the answer `error` stands for, if any. */
export function retryAfterOf(error: unknown): number | undefined {
  return typeof error === 'object' && error !== null ? retryAfters.get(error) : undefined;
}

/**
 * True when a failed registry request is worth another go: no answer for a reason that can pass
 * (reset, closed socket, timeouts; `ECONNREFUSED` only when `refusedIsTransient`, i.e. the registry
 * answered before), or a 408/429/5xx answer. Never for cancellation, refusals (401/403/400/404),
 * TLS, or errors whose retries were already spent lower down.
 *
 * @example isRetryable(new RegistryError({ method: 'GET', url, status: 503 })) // true
 */
export function isRetryable(error: unknown, options: { refusedIsTransient?: boolean } = {}): boolean {
  if (typeof error !== 'object' || error === null || spent.has(error) || error instanceof CancelledError) return false;
  if (error instanceof RegistryError) return isRetryableStatus(error.status);
  if (error instanceof RegistryUnreachableError) {
    if (error.code === 'TLS') return false;
    const code = causeCode(error);
    if (code === 'ECONNREFUSED') return options.refusedIsTransient === true;
    return code !== undefined && RETRYABLE_CODES.has(code);
  }
  return false;
}

/**
 * Waits `ms`, or rejects with CancelledError as soon as `signal` fires (a cancelled push must not sit out a backoff).
 *
 * @example await sleep(retryDelay(1, policy), signal)
 */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted === true) return reject(new CancelledError());
    const onAbort = (): void => {
      clearTimeout(timer);
      reject(new CancelledError());
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

/** A one-line reason for a retry, for `retrying` events: the error's message without its advice. */
export function retryReason(error: unknown): string {
  const message = error instanceof Error ? error.message : String(error);
  const line = message.replace(/\s*\n\s*/g, ' ');
  return line.length > 300 ? `${line.slice(0, 300)}…` : line;
}
