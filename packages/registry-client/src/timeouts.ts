/**
 * How long rxpush waits for a registry, in ms. Chosen so that a registry that accepts connections and
 * never answers fails a push within a minute: each wait fires within 25 s, and a request that hit a
 * timeout gets one more attempt, not the four an outage gets (a stall is not healed by asking again).
 */
export interface Timeouts {
  /** Connecting, TCP and TLS (default 10 000). */
  readonly connect: number;
  /** The answer's headers, once the request is sent (default 25 000). */
  readonly headers: number;
  /** Silence between two chunks of an answer's body (default 25 000). */
  readonly body: number;
}

/** The defaults of {@link Timeouts}. */
export const DEFAULT_TIMEOUTS: Timeouts = { connect: 10_000, headers: 25_000, body: 25_000 };

/** Timeouts a request may hit before it gives up, unless a number of retries was asked for: the first, and one retry. */
export const TIMEOUTS_PER_REQUEST = 2;

/**
 * Whether a request (or a blob's upload) that timed out `timeouts` times should stop: after two, when the retries
 * are bounded by time only (the default). A number of retries the user asked for is honoured for stalls too.
 */
export function stalledOut(timeouts: number, policy: { readonly retriesGiven: boolean }): boolean {
  return timeouts >= TIMEOUTS_PER_REQUEST && !policy.retriesGiven;
}

/** `25 s`, `300 ms`: a timeout as a message shows it. */
export function showDuration(ms: number): string {
  return ms >= 1000 && ms % 1000 === 0 ? `${ms / 1000} s` : ms >= 1000 ? `${(ms / 1000).toFixed(1)} s` : `${ms} ms`;
}
