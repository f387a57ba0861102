import { createHash } from 'node:crypto';
import type { Readable } from 'node:stream';

import { BlobNotVerifiedError, DigestMismatchError, InvalidResponseError, isDigest, MediaType, parseDigest, silentLogger, splitDigest, UnsupportedError } from '@rxpush/core';
import type { Digest, Logger, RawManifest, RetryingEvent } from '@rxpush/core';
import { Agent } from 'undici';
import type { Dispatcher } from 'undici';

import { isRetryable, retryAfterOf, retryDelay, retryPolicy, retryReason, type RetryPolicy } from './retry.js';
import { resolveBaseUrl } from './scheme.js';
import { dump, header, readBody, send } from './send.js';
import type { SendContext, SendRequest, SendResponse } from './send.js';
import type { BlobInfo, Body, RegistryClientOptions, RequestOptions, UploadSession, UploadStart } from './types.js';
import { nextSession, rangeOffset, sessionRepository } from './upload-session.js';
import { checkManifestReference, checkRepository, parseRegistry, redactUrl, resolveLocation, withQuery } from './urls.js';

/** Manifests are small documents; anything larger is refused rather than buffered (the OCI spec suggests 4 MiB). */
const MANIFEST_LIMIT = 4 * 1024 * 1024;
/** One page of a tag list. */
const TAG_PAGE_LIMIT = 4 * 1024 * 1024;
const MAX_TAG_PAGES = 10_000;
/** A session cancel is sent at most this many times, without waiting in between. */
const CANCEL_ATTEMPTS = 3;

const DEFAULT_ACCEPT: readonly string[] = [MediaType.ociManifest, MediaType.ociIndex, MediaType.dockerManifest, MediaType.dockerManifestList];

const pull = (repository: string): string => `repository:${repository}:pull`;
const push = (repository: string): string => `repository:${repository}:push,pull`;

/**
 * A registry v2 / OCI distribution client for one registry: blobs, uploads, manifests and tags over undici.
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
  readonly #headersTimeout: number;
  readonly #bodyTimeout: number;
  readonly #retry: RetryPolicy;
  /** Shared by every request, see SendContext.state. */
  readonly #state: { answered: boolean; headsClose?: boolean } = { answered: false };
  /** Session cancels still in flight: close() lets them finish, so a cancelled push gives its sessions back. */
  readonly #cancelling = new Set<Promise<void>>();
  #context: Promise<SendContext> | undefined;

  constructor(options: RegistryClientOptions) {
    this.#host = parseRegistry(options.registry);
    this.registry = options.registry;
    this.#options = options;
    this.#ownsDispatcher = options.dispatcher === undefined || options.closeDispatcher === true;
    this.#dispatcher = options.dispatcher ?? new Agent({ connect: { timeout: options.connectTimeout ?? 30_000 } });
    this.#logger = (options.logger ?? silentLogger).child({ pkg: 'registry-client' });
    this.#userAgent = options.userAgent ?? 'rxpush';
    this.#headersTimeout = options.headersTimeout ?? 120_000;
    this.#bodyTimeout = options.bodyTimeout ?? 60_000;
    this.#retry = retryPolicy(options.retry);
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
  async hasBlob(repository: string, digest: Digest, opts: RequestOptions = {}): Promise<BlobInfo | undefined> {
    const repo = checkRepository(repository);
    const checked = parseDigest(digest);
    const path = `/v2/${repo}/blobs/${checked}`;
    const res = await this.#send({ method: 'HEAD', path, scopes: [pull(repo)], ok: [200, 404], followRedirects: true, signal: opts.signal, onRetry: opts.onRetry });
    await dump(res.body);
    if (res.status === 404) return undefined;
    const answered = header(res.headers, 'docker-content-digest');
    if (answered !== undefined && answered !== checked) {
      this.#logger.debug({ digest: checked, answered }, 'the registry answered a blob HEAD with another digest; uploading it');
      return undefined;
    }
    const size = contentLength(res) ?? (await this.#rangedSize(path, repo, opts));
    if (size === undefined) {
      this.#logger.debug({ digest: checked }, 'the registry has the blob but tells no size; uploading it');
      return undefined;
    }
    return { digest: checked, size };
  }

  /** A blob's size from a one-byte ranged GET, for registries whose HEAD answers lost their Content-Length. */
  async #rangedSize(path: string, repo: string, opts: RequestOptions): Promise<number | undefined> {
    const res = await this.#send({
      method: 'GET',
      path,
      headers: { range: 'bytes=0-0' },
      scopes: [pull(repo)],
      ok: [200, 206, 404, 416],
      followRedirects: true,
      signal: opts.signal,
      onRetry: opts.onRetry,
    });
    // A 200 is the whole blob: its length is all that is wanted, not its bytes.
    res.body.destroy();
    if (res.status === 206) {
      const total = /\/(\d+)\s*$/.exec(header(res.headers, 'content-range') ?? '')?.[1];
      const size = Number(total);
      return total !== undefined && Number.isSafeInteger(size) ? size : undefined;
    }
    return res.status === 200 ? contentLength(res) : undefined;
  }

  /**
   * Opens an upload session (POST). With `mount`, asks the registry to mount the blob from another
   * repository first: `{ kind: 'mounted' }` when it did (201), a session to upload to when it did not (202).
   */
  async startUpload(repository: string, opts: RequestOptions & { mount?: { digest: Digest; from: string } } = {}): Promise<UploadStart> {
    const repo = checkRepository(repository);
    let url = new URL(`/v2/${repo}/blobs/uploads/`, 'http://placeholder');
    const scopes = [push(repo)];
    if (opts.mount !== undefined) {
      const from = checkRepository(opts.mount.from);
      url = withQuery(withQuery(url, 'mount', parseDigest(opts.mount.digest)), 'from', from);
      scopes.push(pull(from));
    }
    // Bodiless on purpose: a 401 here can be answered and retried, which leaves the authenticator
    // holding push credentials before any stream body is sent.
    const res = await this.#send({
      method: 'POST',
      path: `${url.pathname}${url.search}`,
      headers: { 'content-length': '0' },
      scopes,
      ok: opts.mount !== undefined ? [201, 202] : [202],
      signal: opts.signal,
      onRetry: opts.onRetry,
    });
    await dump(res.body);
    if (res.status === 201 && opts.mount !== undefined) return { kind: 'mounted', digest: opts.mount.digest };
    return { kind: 'session', ...nextSession(res, 'POST', { repository: repo }, rangeOffset(header(res.headers, 'range')) ?? 0) };
  }

  /**
   * Sends one chunk (PATCH), streamed. With `contentRange` and a known length, says where the chunk goes
   * (`Content-Range: start-end`). Returns the session to continue with: the registry's new Location and offset.
   */
  async uploadChunk(session: UploadSession, body: Body, opts: RequestOptions & { contentRange?: boolean } = {}): Promise<UploadSession> {
    const length = bodyLength(body);
    const headers: Record<string, string> = { 'content-type': 'application/octet-stream' };
    if (opts.contentRange === true && length !== undefined && length > 0) {
      headers['content-range'] = `${session.offset}-${session.offset + length - 1}`;
    }
    const repository = sessionRepository(session);
    const res = await this.#send({
      method: 'PATCH',
      url: session.location,
      headers,
      body,
      ...(repository !== undefined && { scopes: [push(repository)] }),
      // The spec says 202; AWS ECR answers 201, and some proxies 204.
      ok: [201, 202, 204],
      signal: opts.signal,
      onRetry: opts.onRetry,
    });
    await dump(res.body);
    const expected = length === undefined ? undefined : session.offset + length;
    const previous = { location: session.location, repository, minChunkLength: session.minChunkLength };
    const offset = rangeOffset(header(res.headers, 'range'), expected) ?? expected;
    const next = nextSession(res, 'PATCH', previous, offset ?? session.offset);
    // Neither a Range nor a known length: only the registry knows how many bytes it holds now.
    return offset === undefined ? this.uploadStatus(next, opts) : next;
  }

  /**
   * Completes an upload (PUT `<location>&digest=`), optionally with the last (or only) bytes streamed in the body.
   * Checks the Docker-Content-Digest the registry answers with, when it sends one.
   *
   * @throws {RegistryError} e.g. `400 DIGEST_INVALID` when the bytes do not hash to `digest`.
   */
  async finishUpload(session: UploadSession, digest: Digest, opts: RequestOptions & { body?: Body } = {}): Promise<BlobInfo> {
    const checked = parseDigest(digest);
    const url = withQuery(session.location, 'digest', checked);
    const length = opts.body === undefined ? 0 : bodyLength(opts.body);
    const headers: Record<string, string> = { 'content-type': 'application/octet-stream' };
    if (opts.body === undefined) headers['content-length'] = '0';
    const repository = sessionRepository(session);
    const res = await this.#send({
      method: 'PUT',
      url,
      headers,
      ...(opts.body !== undefined && { body: opts.body }),
      ...(repository !== undefined && { scopes: [push(repository)] }),
      // The spec says 201; some registries and proxies answer 200 or 204, which is confirmed below.
      ok: [200, 201, 204],
      signal: opts.signal,
      onRetry: opts.onRetry,
    });
    await dump(res.body);
    const answered = header(res.headers, 'docker-content-digest');
    if (answered !== undefined && answered !== checked) {
      throw new DigestMismatchError(checked, answered, redactUrl(url), {
        message: `PUT ${redactUrl(url)} → ${res.status} but the registry stored ${answered}, not ${checked}: the bytes changed on the way; push again`,
      });
    }
    if (length !== undefined && res.status === 201) return { digest: checked, size: session.offset + length };
    // A stream of unknown length (compressed on the fly), or a success other than 201: ask the registry what it stored.
    const stored = repository === undefined ? undefined : await this.hasBlob(repository, checked, opts);
    if (stored === undefined) {
      if (length !== undefined && res.status !== 201 && repository === undefined) return { digest: checked, size: session.offset + length };
      throw new BlobNotVerifiedError(`PUT ${redactUrl(url)} → ${res.status} but the blob ${checked} cannot be found afterwards; push again`);
    }
    if (length !== undefined && stored.size !== session.offset + length) {
      throw new BlobNotVerifiedError(
        `PUT ${redactUrl(url)} → ${res.status} but the registry holds ${stored.size} bytes for ${checked}, not the ${session.offset + length} sent; push again`,
      );
    }
    return stored;
  }

  /**
   * Abandons an upload session (DELETE). Never throws: the registry expires sessions anyway. With `after`,
   * the DELETE waits for that promise to settle (the aborted upload it cleans up after). `close()` waits
   * for cancels in flight.
   */
  cancelUpload(session: UploadSession, opts: RequestOptions & { after?: Promise<unknown> } = {}): Promise<void> {
    const repository = sessionRepository(session);
    const cancel = (async () => {
      await opts.after?.then(
        () => undefined,
        () => undefined,
      );
      for (let attempt = 1; ; attempt++) {
        try {
          const res = await this.#send({
            method: 'DELETE',
            url: session.location,
            ...(repository !== undefined && { scopes: [push(repository)] }),
            ok: [200, 202, 204, 404],
            signal: opts.signal,
            onRetry: opts.onRetry,
            retries: 0,
          });
          await dump(res.body);
          return;
        } catch (error) {
          // undici's Agent closes an origin's pool once its last connection is gone, as happens when every
          // upload was just aborted; a DELETE caught in that fails without reaching the registry. Sent again at
          // once, it gets a fresh pool. No backoff: this is cleanup, and a cancelled push should end promptly.
          if (attempt < CANCEL_ATTEMPTS && opts.signal?.aborted !== true && isRetryable(error)) continue;
          this.#logger.debug({ url: redactUrl(session.location), err: error }, 'cancelling the upload failed');
          return;
        }
      }
    })();
    this.#cancelling.add(cancel);
    void cancel.finally(() => this.#cancelling.delete(cancel));
    return cancel;
  }

  /** Asks the registry how many bytes an upload session holds (GET), to resume from there. */
  async uploadStatus(session: UploadSession, opts: RequestOptions = {}): Promise<UploadSession> {
    const repository = sessionRepository(session);
    const res = await this.#send({
      method: 'GET',
      url: session.location,
      ...(repository !== undefined && { scopes: [push(repository)] }),
      ok: [200, 204],
      signal: opts.signal,
      onRetry: opts.onRetry,
    });
    await dump(res.body);
    const previous = { location: session.location, repository, minChunkLength: session.minChunkLength };
    return nextSession(res, 'GET', previous, rangeOffset(header(res.headers, 'range')) ?? 0);
  }

  /**
   * Stores a manifest byte-exact under a tag or digest (PUT). Returns the digest the registry answers with;
   * for non-schema1 manifests it must be the sha256 of the bytes, and it must be `manifest.digest` when that is
   * given (for schema1, the digest of the payload without its signatures).
   *
   * @throws {DigestMismatchError} naming the request when the registry answers another digest.
   */
  async putManifest(
    repository: string,
    reference: string,
    manifest: { bytes: Uint8Array; mediaType: string; digest?: Digest },
    opts: RequestOptions = {},
  ): Promise<{ digest: Digest | undefined }> {
    const repo = checkRepository(repository);
    const ref = checkManifestReference(repo, reference);
    const res = await this.#send({
      method: 'PUT',
      path: `/v2/${repo}/manifests/${ref}`,
      headers: { 'content-type': manifest.mediaType },
      body: manifest.bytes,
      scopes: [push(repo)],
      // The spec says 201; registries also answer 200 (Artifactory, Quay), 202 or 204, as skopeo and ggcr accept.
      ok: [200, 201, 202, 204],
      signal: opts.signal,
      onRetry: opts.onRetry,
    });
    await dump(res.body);
    const answered = header(res.headers, 'docker-content-digest');
    if (!isDigest(answered)) return { digest: undefined };
    // Schema1 digests cover the payload without its signatures: only the caller's digest of it can be checked.
    const sent = manifest.digest ?? (isSchema1(manifest.mediaType) ? undefined : hashOf(answered, manifest.bytes));
    if (sent !== undefined && answered !== sent) {
      throw new DigestMismatchError(sent, answered, redactUrl(res.url), {
        message: `PUT ${redactUrl(res.url)} → ${res.status} but the registry stored the manifest as ${answered}, not ${sent}: the registry (or a proxy) rewrote it; push to another registry or report it`,
      });
    }
    return { digest: answered };
  }

  /**
   * Fetches a manifest (GET) as bytes, its media type and digest. When `reference` is a digest the bytes are
   * checked against it. Manifests over 4 MiB are refused.
   */
  async getManifest(repository: string, reference: string, opts: RequestOptions & { accept?: readonly string[] } = {}): Promise<RawManifest> {
    const repo = checkRepository(repository);
    const ref = checkManifestReference(repo, reference);
    const res = await this.#send({
      method: 'GET',
      path: `/v2/${repo}/manifests/${ref}`,
      headers: { accept: (opts.accept ?? DEFAULT_ACCEPT).join(', ') },
      scopes: [pull(repo)],
      ok: [200],
      signal: opts.signal,
      onRetry: opts.onRetry,
    });
    const where = `GET ${redactUrl(res.url)}`;
    const declared = Number(header(res.headers, 'content-length'));
    if (declared > MANIFEST_LIMIT) {
      await dump(res.body);
      throw new UnsupportedError(`${where} → ${res.status} with a manifest of ${declared} bytes: rxpush refuses manifests over 4 MiB; ask for a smaller one (a platform's manifest, not the index)`);
    }
    const { bytes, complete } = await readBody(res.body, MANIFEST_LIMIT);
    if (!complete) throw new UnsupportedError(`${where} → ${res.status} with a manifest over 4 MiB: rxpush refuses manifests that large; ask for a smaller one (a platform's manifest, not the index)`);

    const mediaType = manifestMediaType(header(res.headers, 'content-type'), bytes);
    const answered = header(res.headers, 'docker-content-digest');
    let digest: Digest;
    if (isSchema1(mediaType)) {
      // The registry's digest of a signed schema1 manifest is over its payload; trust it, or the reference.
      digest = isDigest(ref) ? ref : isDigest(answered) ? answered : hashOf('sha256:', bytes);
    } else {
      const expected = isDigest(ref) ? ref : isDigest(answered) ? answered : undefined;
      digest = hashOf(expected ?? 'sha256:', bytes);
      if (expected !== undefined && expected !== digest) {
        throw new DigestMismatchError(expected, digest, where.slice(where.indexOf(' ') + 1), {
          message: `${where} → ${res.status} with a manifest whose bytes hash to ${digest}, not ${expected}: the registry or a proxy changed it; fetch it again or check the registry`,
        });
      }
    }
    return { bytes, mediaType, digest };
  }

  /** The digest, media type and size of a manifest when the repository has it, else undefined (HEAD, 404). */
  async hasManifest(
    repository: string,
    reference: string,
    opts: RequestOptions & { accept?: readonly string[] } = {},
  ): Promise<{ digest: Digest; mediaType: string; size: number } | undefined> {
    const repo = checkRepository(repository);
    const ref = checkManifestReference(repo, reference);
    const res = await this.#send({
      method: 'HEAD',
      path: `/v2/${repo}/manifests/${ref}`,
      headers: { accept: (opts.accept ?? DEFAULT_ACCEPT).join(', ') },
      scopes: [pull(repo)],
      ok: [200, 404],
      signal: opts.signal,
      onRetry: opts.onRetry,
    });
    await dump(res.body);
    if (res.status === 404) return undefined;
    const answered = header(res.headers, 'docker-content-digest');
    const contentType = header(res.headers, 'content-type');
    const size = contentLength(res);
    if (isDigest(answered) && contentType !== undefined && size !== undefined) {
      return { digest: answered, mediaType: stripParameters(contentType), size };
    }
    // Some registries (or proxies) leave the digest, type or length off HEAD answers; the manifest itself is small.
    const manifest = await this.getManifest(repo, ref, opts);
    return { digest: manifest.digest, mediaType: manifest.mediaType, size: manifest.bytes.length };
  }

  /**
   * Streams a blob (GET), following redirects to storage without credentials. The caller owns the stream:
   * read it to the end or destroy it.
   */
  async getBlob(repository: string, digest: Digest, opts: RequestOptions = {}): Promise<Readable> {
    const repo = checkRepository(repository);
    const checked = parseDigest(digest);
    const res = await this.#send({
      method: 'GET',
      path: `/v2/${repo}/blobs/${checked}`,
      scopes: [pull(repo)],
      ok: [200],
      followRedirects: true,
      signal: opts.signal,
      onRetry: opts.onRetry,
    });
    return res.body;
  }

  /** Every tag of a repository, following `Link: <…>; rel="next"` pages. */
  async listTags(repository: string, opts: RequestOptions = {}): Promise<string[]> {
    const repo = checkRepository(repository);
    const tags: string[] = [];
    const context = await this.#contextFor(opts.signal);
    let url: URL | undefined = new URL(`/v2/${repo}/tags/list`, context.origin);
    const seen = new Set<string>();
    while (url !== undefined && !seen.has(url.href) && seen.size < MAX_TAG_PAGES) {
      seen.add(url.href);
      const res: SendResponse = await this.#send({ method: 'GET', url, scopes: [pull(repo)], ok: [200], signal: opts.signal, onRetry: opts.onRetry });
      const { bytes, complete } = await readBody(res.body, TAG_PAGE_LIMIT);
      const page = complete ? parseJson(bytes) : undefined;
      const list = (page as { tags?: unknown } | undefined)?.tags;
      if (page === undefined || (list !== null && list !== undefined && !Array.isArray(list))) {
        throw new InvalidResponseError({ method: 'GET', url: redactUrl(res.url), status: res.status, problem: 'with a body that is not a tag list; is this a registry?' });
      }
      for (const tag of list ?? []) if (typeof tag === 'string') tags.push(tag);
      url = nextLink(header(res.headers, 'link'), res);
    }
    return tags;
  }

  /**
   * Whether and when to try again after `error` ended attempt number `attempt` of something the caller retries
   * itself (the uploader's blob uploads, whose stream bodies the client cannot re-send): the `retrying` event to
   * report, with the client's policy applied (the registry's Retry-After, capped, else jittered backoff), or
   * undefined when the failure is final: not retryable (a refusal, TLS, retries already spent on a request
   * inside the client, cancellation) or past the policy's retries.
   *
   * @example
   * source.pipe(catchError((error) => { const retrying = client.retryFor(error, attempt); … }))
   */
  retryFor(error: unknown, attempt: number): RetryingEvent | undefined {
    if (attempt > this.#retry.retries || !isRetryable(error)) return undefined;
    return { type: 'retrying', attempt, delayMs: retryDelay(attempt, this.#retry, retryAfterOf(error)), reason: retryReason(error) };
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
      headersTimeout: this.#headersTimeout,
      signal,
    }).then(
      (base) => ({
        dispatcher: this.#dispatcher,
        registry: this.registry,
        origin: base.origin,
        auth: this.#options.auth,
        logger: this.#logger,
        userAgent: this.#userAgent,
        headersTimeout: this.#headersTimeout,
        bodyTimeout: this.#bodyTimeout,
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

function bodyLength(body: Body): number | undefined {
  return body instanceof Uint8Array ? body.byteLength : body.length;
}

/** The Content-Length of an answer, undefined when it is missing or not a size (proxies and CDNs drop it). */
function contentLength(res: SendResponse): number | undefined {
  const value = header(res.headers, 'content-length');
  const size = Number(value);
  return value !== undefined && value.trim() !== '' && Number.isSafeInteger(size) && size >= 0 ? size : undefined;
}

function isSchema1(mediaType: string): boolean {
  return mediaType === MediaType.dockerSchema1Signed || mediaType === MediaType.dockerSchema1;
}

/** The digest of `bytes` with the algorithm of `like`. */
function hashOf(like: Digest | 'sha256:', bytes: Uint8Array): Digest {
  const algorithm = like === 'sha256:' ? 'sha256' : splitDigest(like).algorithm;
  return `${algorithm}:${createHash(algorithm).update(bytes).digest('hex')}`;
}

function stripParameters(contentType: string): string {
  return contentType.split(';')[0]?.trim() ?? contentType;
}

/** The media type of a fetched manifest: Content-Type, unless it is generic and the document names its own. */
function manifestMediaType(contentType: string | undefined, bytes: Uint8Array): string {
  const declared = contentType === undefined ? '' : stripParameters(contentType);
  if (declared !== '' && declared !== 'application/json' && declared !== 'text/plain' && declared !== 'application/octet-stream') return declared;
  const inline = (parseJson(bytes) as { mediaType?: unknown } | undefined)?.mediaType;
  if (typeof inline === 'string') return inline;
  return declared !== '' ? declared : 'application/json';
}

function parseJson(bytes: Uint8Array): unknown {
  try {
    return JSON.parse(Buffer.from(bytes).toString('utf8')) as unknown;
  } catch {
    return undefined;
  }
}

/** The `rel="next"` target of a Link header, resolved against the page it came with. */
function nextLink(link: string | undefined, res: SendResponse): URL | undefined {
  if (link === undefined) return undefined;
  for (const part of link.split(',')) {
    const match = /^\s*<([^>]*)>\s*;(.*)$/.exec(part);
    if (match !== null && /(?:^|;)\s*rel="?next"?\s*(?:;|$)/i.test(match[2] ?? '')) return resolveLocation(match[1] ?? '', res.url, { method: 'GET', status: res.status, header: 'Link' });
  }
  return undefined;
}
