import type { Readable } from 'node:stream';

import { sha256Digest, silentLogger } from '@rxpush/core';
import type { Descriptor, Digest, Logger, RawManifest, RetryingEvent } from '@rxpush/core';
import { Agent } from 'undici';
import type { Dispatcher } from 'undici';

import { getBlob, hasBlob } from './blobs.js';
import { getManifest, hasManifest, putManifest } from './manifests.js';
import { getReferrers, listReferrer, referrerOf, type ReferrersTagState } from './referrers.js';
import type { Requester } from './requester.js';
import { isRetryable, RetryBudget, retryAfterOf, retryDelay, retryPolicy, retryReason, type RetryPolicy } from './retry.js';
import { resolveBaseUrl } from './scheme.js';
import { DEFAULT_TIMEOUTS, stalledOut, type Timeouts } from './timeouts.js';
import { dump, send } from './send.js';
import type { SendContext, SendRequest, SendResponse } from './send.js';
import { listTags } from './tags.js';
import type { BlobInfo, Body, RegistryClientOptions, RequestOptions, UploadSession, UploadStart } from './types.js';
import { cancelUpload, finishUpload, startUpload, uploadChunk, uploadStatus } from './uploads.js';
import { parseRegistry } from './urls.js';

/**
 * A registry v2 / OCI distribution client for one registry: blobs, uploads, manifests and tags over undici
 * (each concern in its own module: blobs.ts, uploads.ts, manifests.ts, tags.ts; this class holds what they share).
 *
 * Requests use HTTPS unless `plainHttp` is set, or the registry is on loopback and answers in plain HTTP.
 * Failures are rxpush errors: `RegistryError` (an error answer, named by request), `RegistryUnreachableError`
 * (no answer; code `TLS` or `TIMEOUT` when that is why), `CancelledError` (the signal fired).
 *
 * @example
 * const client = new RegistryClient({ registry: 'localhost:5000' });
 * const start = await client.startUpload('app');
 * if (start.kind === 'session') await client.finishUpload(start, digest, { body: { stream, length } });
 * await client.close();
 */
export class RegistryClient {
  /** host[:port], as given. */
  readonly registry: string;
  readonly #host: { host: string; hostname: string };
  readonly #options: RegistryClientOptions;
  readonly #dispatcher: Dispatcher;
  readonly #ownsDispatcher: boolean;
  readonly #logger: Logger;
  readonly #userAgent: string;
  readonly #timeouts: Timeouts;
  readonly #retry: RetryPolicy;
  /** Shared by every request, see SendContext.state. */
  readonly #state: { answered: boolean; headsClose?: boolean } = { answered: false };
  /** Session cancels still in flight: close() lets them finish, so a cancelled push gives its sessions back. */
  readonly #cancelling = new Set<Promise<void>>();
  /** The referrers tags this client updates (referrers.ts): one update of a tag at a time, each referrer listed once. */
  readonly #referrersTags: ReferrersTagState = { queues: new Map(), listed: new Set() };
  #context: Promise<SendContext> | undefined;
  /** What the concerns (blobs.ts, uploads.ts, manifests.ts, tags.ts) send their requests through. */
  readonly #requester: Requester;

  constructor(options: RegistryClientOptions) {
    this.#host = parseRegistry(options.registry);
    this.registry = options.registry;
    this.#options = options;
    this.#ownsDispatcher = options.dispatcher === undefined || options.closeDispatcher === true;
    this.#timeouts = {
      connect: options.connectTimeout ?? DEFAULT_TIMEOUTS.connect,
      headers: options.headersTimeout ?? DEFAULT_TIMEOUTS.headers,
      body: options.bodyTimeout ?? DEFAULT_TIMEOUTS.body,
    };
    this.#dispatcher = options.dispatcher ?? new Agent({ connect: { timeout: this.#timeouts.connect } });
    this.#logger = (options.logger ?? silentLogger).child({ pkg: 'registry-client' });
    this.#userAgent = options.userAgent ?? 'rxpush';
    this.#retry = retryPolicy(options.retry);
    this.#requester = {
      send: (req) => this.#send(req),
      origin: async (signal) => (await this.#contextFor(signal)).origin,
      logger: this.#logger,
      cancelling: this.#cancelling,
      timeouts: this.#timeouts,
    };
  }

  /**
   * Checks that a registry answers at `/v2/` (200, or 401 before credentials), settling the scheme.
   *
   * @throws {RegistryUnreachableError} when nothing answers; {RegistryError} for any other status.
   */
  async ping(opts: RequestOptions = {}): Promise<void> {
    const res = await this.#send({ method: 'GET', path: '/v2/', ok: [200, 401], signal: opts.signal });
    await dump(res.body);
  }

  /**
   * The blob's digest and size when the repository has it, else undefined (HEAD, 404).
   *
   * Proxies and CDNs drop the Content-Length of HEAD answers: then the size is asked with a one-byte ranged
   * GET (`Content-Range: bytes 0-0/SIZE`), and when that does not tell either, the blob counts as missing,
   * so it is uploaded again rather than the push failing. An answer naming another digest counts as missing too.
   */
  hasBlob(repository: string, digest: Digest, opts: RequestOptions = {}): Promise<BlobInfo | undefined> {
    return hasBlob(this.#requester, repository, digest, opts);
  }

  /**
   * Opens an upload session (POST). With `mount`, asks the registry to mount the blob from another
   * repository first: `{ kind: 'mounted' }` when it did (201), a session to upload to when it did not (202).
   */
  startUpload(repository: string, opts: RequestOptions & { mount?: { digest: Digest; from: string } } = {}): Promise<UploadStart> {
    return startUpload(this.#requester, repository, opts);
  }

  /**
   * Sends one chunk (PATCH), streamed. With `contentRange` and a known length, says where the chunk goes
   * (`Content-Range: start-end`). Returns the session to continue with: the registry's new Location and offset.
   */
  uploadChunk(session: UploadSession, body: Body, opts: RequestOptions & { contentRange?: boolean } = {}): Promise<UploadSession> {
    return uploadChunk(this.#requester, session, body, opts);
  }

  /**
   * Completes an upload (PUT `<location>&digest=`), optionally with the last (or only) bytes streamed in the body.
   * Checks the Docker-Content-Digest the registry answers with, when it sends one.
   *
   * @throws {RegistryError} e.g. `400 DIGEST_INVALID` when the bytes do not hash to `digest`.
   */
  finishUpload(session: UploadSession, digest: Digest, opts: RequestOptions & { body?: Body } = {}): Promise<BlobInfo> {
    return finishUpload(this.#requester, session, digest, opts);
  }

  /**
   * Abandons an upload session (DELETE). Never throws: the registry expires sessions anyway. With `after`,
   * the DELETE waits for that promise to settle (the aborted upload it cleans up after). `close()` waits
   * for cancels in flight.
   */
  cancelUpload(session: UploadSession, opts: RequestOptions & { after?: Promise<unknown> } = {}): Promise<void> {
    return cancelUpload(this.#requester, session, opts);
  }

  /** Asks the registry how many bytes an upload session holds (GET), to resume from there. */
  uploadStatus(session: UploadSession, opts: RequestOptions = {}): Promise<UploadSession> {
    return uploadStatus(this.#requester, session, opts);
  }

  /**
   * Stores a manifest byte-exact under a tag or digest (PUT). Returns the digest the registry answers with;
   * for non-schema1 manifests it must be the sha256 of the bytes, and it must be `manifest.digest` when that is
   * given (for schema1, the digest of the payload without its signatures). `retries` overrides the retry policy.
   *
   * An OCI manifest or index with a `subject` that the registry does not file as a referrer (no `OCI-Subject`
   * in its answer: it has no referrers API) is listed in the subject's referrers tag (`sha256-<hex>`), as the
   * distribution spec asks of clients; `referrersTag` names that tag.
   *
   * @throws {DigestMismatchError} naming the request when the registry answers another digest.
   */
  async putManifest(
    repository: string,
    reference: string,
    manifest: { bytes: Uint8Array; mediaType: string; digest?: Digest },
    opts: RequestOptions & { retries?: number } = {},
  ): Promise<{ digest: Digest | undefined; referrersTag?: string }> {
    const { digest, subject } = await putManifest(this.#requester, repository, reference, manifest, opts);
    const referrer = subject === undefined ? referrerOf(manifest, digest ?? manifest.digest ?? sha256Digest(manifest.bytes)) : undefined;
    if (referrer === undefined) return { digest };
    return { digest, referrersTag: await listReferrer(this.#requester, repository, referrer, this.#referrersTags, opts) };
  }

  /**
   * Fetches a manifest (GET) as bytes, its media type and digest. When `reference` is a digest the bytes are
   * checked against it. Manifests over 4 MiB are refused.
   */
  getManifest(repository: string, reference: string, opts: RequestOptions & { accept?: readonly string[] } = {}): Promise<RawManifest> {
    return getManifest(this.#requester, repository, reference, opts);
  }

  /** The digest, media type and size of a manifest when the repository has it, else undefined (HEAD, 404). */
  hasManifest(
    repository: string,
    reference: string,
    opts: RequestOptions & { accept?: readonly string[] } = {},
  ): Promise<{ digest: Digest; mediaType: string; size: number } | undefined> {
    return hasManifest(this.#requester, repository, reference, opts);
  }

  /**
   * Streams a blob (GET), following redirects to storage without credentials. The caller owns the stream:
   * read it to the end or destroy it.
   */
  getBlob(repository: string, digest: Digest, opts: RequestOptions = {}): Promise<Readable> {
    return getBlob(this.#requester, repository, digest, opts);
  }

  /**
   * The OCI 1.1 referrers of a manifest (GET `/v2/<name>/referrers/<digest>`): the index's descriptors, or
   * `undefined` when the registry does not keep referrers (404, or an answer that is not an OCI index), so the
   * caller falls back to the tag scheme.
   */
  getReferrers(repository: string, digest: Digest, opts: RequestOptions = {}): Promise<Descriptor[] | undefined> {
    return getReferrers(this.#requester, repository, digest, opts);
  }

  /** Every tag of a repository, following `Link: <…>; rel="next"` pages. */
  listTags(repository: string, opts: RequestOptions = {}): Promise<string[]> {
    return listTags(this.#requester, repository, opts);
  }

  /**
   * Whether and when to try again after `error` ended attempt number `attempt` of something the caller retries
   * itself (the uploader's blob uploads, whose stream bodies the client cannot re-send): the `retrying` event to
   * report, with the client's policy applied (the registry's Retry-After, capped, else jittered backoff), or
   * undefined when the failure is final: not retryable (a refusal, TLS, retries already spent on a request
   * inside the client, cancellation) or past the policy's retries. `timeouts` counts the attempts that timed
   * out so far, this one included: a registry that stops answering gets one more try, not every retry.
   *
   * @example
   * source.pipe(catchError((error) => { const retrying = client.retryFor(error, attempt); … }))
   */
  retryFor(error: unknown, attempt: number, history: { readonly timeouts?: number; readonly budget?: RetryBudget } = {}): RetryingEvent | undefined {
    if (!isRetryable(error)) return undefined;
    // Counted only for retryable failures: a refusal must not start the clock of a budget shared with other requests.
    const spent = history.budget !== undefined && !history.budget.fail();
    if (spent || attempt > this.#retry.retries || stalledOut(history.timeouts ?? 0, this.#retry)) return undefined;
    return { type: 'retrying', attempt, delayMs: retryDelay(attempt, this.#retry, retryAfterOf(error)), reason: retryReason(error) };
  }

  /**
   * A retry budget with this client's policy, for a task the caller retries itself: pass it to `retryFor` and
   * as `budget` to every request made on the task's behalf, and all of them together retry for the policy's
   * `budgetMs` (default 60 s) from the task's first failure.
   */
  retryBudget(): RetryBudget {
    return new RetryBudget(this.#retry);
  }

  /** Closes the connections of the dispatcher this client created (or was told to close); an injected dispatcher is left open. */
  async close(): Promise<void> {
    await Promise.all(this.#cancelling);
    if (this.#ownsDispatcher) await this.#dispatcher.close();
  }

  /** The shared request context, once the scheme is settled. A failed detection is not remembered. */
  #contextFor(signal: AbortSignal | undefined): Promise<SendContext> {
    this.#context ??= resolveBaseUrl({
      ...this.#host,
      plainHttp: this.#options.plainHttp === true,
      logger: this.#logger,
      timeouts: this.#timeouts,
      signal,
    }).then(
      (base) => ({
        dispatcher: this.#dispatcher,
        registry: this.registry,
        origin: base.origin,
        auth: this.#options.auth,
        logger: this.#logger,
        userAgent: this.#userAgent,
        headersTimeout: this.#timeouts.headers,
        bodyTimeout: this.#timeouts.body,
        connectTimeout: this.#timeouts.connect,
        retry: this.#retry,
        onRetry: this.#options.onRetry,
        state: this.#state,
      }),
      (error: unknown) => {
        this.#context = undefined;
        throw error;
      },
    );
    return this.#context;
  }

  async #send(req: Omit<SendRequest, 'url'> & ({ path: string } | { url: URL })): Promise<SendResponse> {
    const context = await this.#contextFor(req.signal);
    const url = 'url' in req ? req.url : new URL(req.path, context.origin);
    return send(context, { ...req, url });
  }
}








