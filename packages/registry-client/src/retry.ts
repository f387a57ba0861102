import { CancelledError, RegistryError, RegistryUnreachableError } from '@rxpush/core';

/**
 * How failed requests are retried: for a time (the budget), with exponential backoff and full jitter,
 * Retry-After honoured; optionally also for at most a number of retries.
 */
export interface RetryOptions {
  /**
   * Retries after the first attempt, at most (default: as many as the budget allows, up to 20, so that a registry
   * answering `Retry-After: 0` is not asked hundreds of times); 0 turns retrying off.
   */
  readonly retries?: number;
  /**
   * How long to keep retrying, in ms from the first failure (default 60 000): long enough to wait out a registry
   * that restarts or fails over, as docker push's five attempts 5·n s apart do. A blob's upload and the requests
   * inside it spend one budget together.
   */
  readonly budgetMs?: number;
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

/** {@link RetryOptions} with every default filled in; `retriesGiven` tells whether the count was asked for. */
export type RetryPolicy = Required<RetryOptions> & { readonly retriesGiven: boolean };

/** The most retries a budget allows when no count was asked for. */
const DEFAULT_MAX_RETRIES = 20;

/**
 * Fills in the defaults of {@link RetryOptions}.
 *
 * @example retryPolicy({ retries: 2 }).baseDelayMs // 1000
 */
export function retryPolicy(options: RetryOptions = {}): RetryPolicy {
  return {
    retries: Math.max(0, Math.floor(options.retries ?? DEFAULT_MAX_RETRIES)),
    retriesGiven: options.retries !== undefined,
    budgetMs: Math.max(0, options.budgetMs ?? 60_000),
    baseDelayMs: Math.max(0, options.baseDelayMs ?? 1000),
    maxDelayMs: Math.max(0, options.maxDelayMs ?? 30_000),
    maxRetryAfterMs: Math.max(0, options.maxRetryAfterMs ?? 60_000),
    random: options.random ?? Math.random,
    now: options.now ?? Date.now,
  };
}

/**
 * The time a task keeps retrying for, shared by everything retried on its behalf: a blob's upload attempts
 * and the requests inside each (the confirming HEAD, the session status, the POST). The clock starts at the
 * first failure, so a long upload that goes well does not use it up.
 *
 * @example const budget = new RetryBudget(retryPolicy()); if (budget.fail()) retry()
 */
export class RetryBudget {
  readonly #policy: RetryPolicy;
  #since: number | undefined;

  constructor(policy: RetryPolicy) {
    this.#policy = policy;
  }

  /** Counts a failure, starting the clock at the first; true while there is time left to retry. */
  fail(): boolean {
    const now = this.#policy.now();
    this.#since ??= now;
    return now - this.#since < this.#policy.budgetMs;
  }
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
 * True when a failed registry request is worth another go, as the error says itself (`retryable`): no
 * answer for a reason that can pass (reset, closed socket, timeouts; a refused connection once the
 * registry had answered before), or a 408/429/5xx answer whose retries were not spent already. Never for
 * cancellation, refusals (401/403/400/404), TLS, or anything that is not a registry failure.
 *
 * @example isRetryable(new RegistryError({ method: 'GET', url, status: 503, retryable: true })) // true
 */
export function isRetryable(error: unknown): boolean {
  return (error instanceof RegistryError || error instanceof RegistryUnreachableError) && error.retryable;
}

/** The Retry-After (ms) the registry sent with the answer `error` stands for, if any. */
export function retryAfterOf(error: unknown): number | undefined {
  return error instanceof RegistryError ? error.retryAfterMs : undefined;
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
