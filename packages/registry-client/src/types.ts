import type { Readable } from 'node:stream';

import type { Digest, Logger, RawManifest, RetryingEvent } from '@rxpush/core';
import type { Dispatcher } from 'undici';

import type { RetryBudget, RetryOptions } from './retry.js';

/**
 * The authentication seam. The client asks it for an Authorization header value for a set of scopes
 * (e.g. `repository:app:push,pull`), first with no challenge (cached credentials), then again with the
 * registry's WWW-Authenticate challenge after a 401. Implementations come with the auth issue.
 */
export interface Authenticator {
  authorize(request: {
    readonly registry: string;
    /** The origin the registry's API is served at (`https://host:port`), once the scheme is settled: where credentials belong. */
    readonly origin?: string;
    readonly scopes: readonly string[];
    /** The WWW-Authenticate header of a 401, when the registry sent one. */
    readonly challenge?: string;
    /** The Authorization value the registry just answered 401 to, so it is not offered again. */
    readonly rejected?: string;
    readonly signal?: AbortSignal;
  }): Promise<string | undefined>;
}

export interface RegistryClientOptions {
  /** host[:port] of the registry, as in an image reference. */
  readonly registry: string;
  /** Always use plain HTTP (`--plain-http`). Without it, HTTPS, or HTTP for a loopback registry that answers in plain HTTP. */
  readonly plainHttp?: boolean;
  /** The undici dispatcher to send requests with (TLS options, MockAgent in tests). */
  readonly dispatcher?: Dispatcher;
  /** `close()` closes `dispatcher` too (default: only a dispatcher the client made itself is closed). */
  readonly closeDispatcher?: boolean;
  readonly auth?: Authenticator;
  readonly logger?: Logger;
  readonly userAgent?: string;
  /** Called before each retry of any request (logging, metrics); operators pass a per-request `onRetry` instead. */
  readonly onRetry?: (event: RetryingEvent) => void;
  /** How long to wait for a response's headers once the request is sent (or while it stalls being sent), in ms (default 25 000). */
  readonly headersTimeout?: number;
  /** How long a response body may stall between chunks, in ms (default 25 000). */
  readonly bodyTimeout?: number;
  /**
   * How long connecting (TCP and TLS) may take, in ms (default 10 000); applies to the dispatcher the client makes
   * itself, and names the timeout in messages when the dispatcher is given.
   */
  readonly connectTimeout?: number;
  /** How failed requests are retried (default: for 60 s from the first failure, backoff from 1 s with full jitter up to 30 s, Retry-After capped at 60 s; a blob's upload and the requests inside it share one budget). */
  readonly retry?: RetryOptions;
}

/** Options every request takes. */
export interface RequestOptions {
  readonly signal?: AbortSignal;
  /**
   * Told before each retry of this request (besides the client's `onRetry`), so the operator that made the
   * request can put a `retrying` event into its own stream: a hand-built pipeline sees retries too.
   */
  readonly onRetry?: (event: RetryingEvent) => void;
  /**
   * The retry budget this request spends from (`client.retryBudget()`): what an operator retrying a whole task
   * (a blob's upload) shares with the requests inside it, so that together they retry for the budget's time
   * and not each for its own. Without it, the request has a budget of its own.
   */
  readonly budget?: RetryBudget | undefined;
}

/** An open upload session: where to send the next request and how many bytes the registry holds. */
export interface UploadSession {
  /** The absolute URL of the session (Location resolved against the request URL). */
  readonly location: URL;
  /** Bytes the registry has received so far (from its Range header; 0 for a new session). */
  readonly offset: number;
  /** OCI-Chunk-Min-Length, when the registry sets one. */
  readonly minChunkLength?: number;
  /**
   * The repository the session uploads to, for auth scopes. Sessions from RegistryClient carry it;
   * without it the client reads it from the `/v2/<name>/blobs/uploads/` path of `location`.
   */
  readonly repository?: string;
  /** The request whose answer gave this session, and its status: what messages about the session's offset name. */
  readonly answer?: { readonly method: string; readonly status: number };
}

/** What starting an upload gave: a mounted blob, or a session to send bytes to. */
export type UploadStart = { readonly kind: 'mounted'; readonly digest: Digest } | ({ readonly kind: 'session' } & UploadSession);

/** The registry's answer to a blob HEAD when it has the blob. */
export interface BlobInfo {
  readonly digest: Digest;
  readonly size: number;
}

/**
 * The body of a blob request: a stream or pieces (with their length, when known, for Content-Length; else the
 * body is sent chunked), or bytes.
 *
 * `pieces` are written to the connection one at a time, in order, and the next one is asked for only once the
 * connection has taken this one: undici (client-h1.js `writeIterable`) pulls the next piece after `socket.write()`
 * returned true or the socket drained, and a write of a piece of at least the socket's high-water mark (16 KiB on
 * Node 20, 64 KiB from Node 22 on) returns false, so 'drain' (every byte handed to the kernel, or encrypted, over
 * TLS) comes first. A producer of pieces of at least 64 KiB may therefore reuse a piece's memory once it is asked
 * for the piece after it; a smaller piece may still be queued at that point. Without a length, the pieces go
 * chunked (each after its chunk header, which changes none of this). The producer owns what it reads from: the
 * request never closes it.
 */
export type Body =
  | { readonly stream: Readable; readonly length?: number }
  | { readonly pieces: AsyncIterable<Uint8Array>; readonly length?: number }
  | Uint8Array;

export type { RawManifest };
