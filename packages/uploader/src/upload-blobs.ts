import assert from 'node:assert/strict';
import type { Readable } from 'node:stream';

import {
  blobDescriptor,
  CancelledError,
  shortId,
  silentLogger,
  InvalidSourceError,
  UnsupportedError,
  type BlobEvent,
  type BlobProgress,
  type Digest,
  type Logger,
  type PushEvent,
  type RetryingEvent,
} from '@rxpush/core';
import { isRetryable, retryAfterOf, retryDelay, retryPolicy, retryReason, sleep } from '@rxpush/registry-client';
import type { RegistryClient, RetryOptions, RetryPolicy, UploadSession } from '@rxpush/registry-client';
import { mergeMap, Observable, of, type OperatorFunction } from 'rxjs';

import { mediaTypeFor, sendBlob, type Sent } from './send-blob.js';

/** Options of {@link uploadBlobs}. */
export interface UploadBlobsOptions {
  readonly client: RegistryClient;
  readonly repository: string;
  /** Blobs uploaded at once (default 4: the registry's hashing, not the network, is the bound). */
  readonly concurrency?: number;
  /** How to compress `uncompressed` layers (default gzip). */
  readonly compression?: 'gzip' | 'zstd' | 'none';
  /**
   * Send blobs in PATCH chunks of this many bytes (with Content-Range) instead of monolithically, for
   * proxies that cap request bodies. Raised to the registry's OCI-Chunk-Min-Length when it sets one.
   */
  readonly chunkSize?: number;
  /** How a broken upload is retried (default: 4 retries, backoff from 1 s with full jitter). */
  readonly retry?: RetryOptions;
  /** Minimum time between two `pushing` events of one blob, in ms (default 100). */
  readonly progressInterval?: number;
  readonly logger?: Logger;
}

/** A cancelled push gives its sessions back, but does not wait on a registry that stopped answering. */
const CANCEL_TIMEOUT_MS = 10_000;

/**
 * Streams the blobs that reach it as `blob` tasks into the registry, hashing them on the way.
 *
 * Each blob's bytes are opened only now, read in 1 MiB pieces and never held whole. Stored blobs go up
 * monolithically (POST, then PUT with the stream and its length); uncompressed layers are compressed on
 * the fly, hashed before and after compression in the same pass, sent with a streamed PATCH and committed
 * with the digest learnt. With `chunkSize`, PATCH chunks with Content-Range instead.
 *
 * An upload broken by the network or a 408/429/5xx answer is retried with backoff (`retrying` events
 * carry the blob's short id): first a HEAD, so a blob whose commit landed but whose answer was lost is
 * not sent again; then a chunked upload resumes from the offset the registry reports, and anything else
 * starts over in a fresh session (the old one is cancelled) with the source opened again. Emits `pushing`
 * (throttled), `retrying`, `pushed` and `blob-ready`; other events pass through. Unsubscribing aborts the
 * requests in flight and cancels the open sessions.
 *
 * Fails with `DigestMismatchError` when a blob's bytes do not match its digest or diff ID (nothing is
 * committed), `InvalidSourceError` when a source that must be read again for a retry cannot be, and the
 * registry client's typed errors once the retries are spent or the registry refuses.
 *
 * @example
 * source$.pipe(walkLayers(), checkBlobs({ client, repository }), uploadBlobs({ client, repository, concurrency: 4 }))
 */
export function uploadBlobs(options: UploadBlobsOptions): OperatorFunction<PushEvent, PushEvent> {
  const { concurrency = 4 } = options;
  const logger = (options.logger ?? silentLogger).child({ pkg: 'uploader' });
  if (options.compression === 'zstd') {
    throw new UnsupportedError('zstd compression is not available on this Node.js; use --compression gzip or none');
  }
  if (options.chunkSize !== undefined && (!Number.isSafeInteger(options.chunkSize) || options.chunkSize < 1)) {
    throw new UnsupportedError(`chunk size ${options.chunkSize} is not a whole number of bytes above 0`);
  }
  const policy = retryPolicy(options.retry);
  const start = (event: PushEvent): Observable<PushEvent> => (event.type === 'blob' ? upload(event, options, policy, logger) : of(event));
  return (source) =>
    source.pipe(
      // Blobs of a sequential source all start at once: its shared stream serves them in its own order,
      // and waits only on blobs that are open (the data flows one member at a time anyway).
      mergeMap((event) => (event.type === 'blob' && event.blob.sequential === true ? start(event) : of(event))),
      mergeMap(start, concurrency),
    );
}

function upload(event: BlobEvent, options: UploadBlobsOptions, policy: RetryPolicy, logger: Logger): Observable<PushEvent> {
  return new Observable<PushEvent>((subscriber) => {
    const controller = new AbortController();
    const { signal } = controller;
    const { blob } = event;
    const { client } = options;
    const progress: BlobProgress = { id: shortId(blob.key), key: blob.key, role: blob.role };
    // Requests the client retries itself report their retries into this blob's stream.
    const request = { signal, onRetry: (retrying: RetryingEvent) => subscriber.next({ ...retrying, id: progress.id }) };
    const interval = options.progressInterval ?? 100;
    let lastReport = 0;
    const onBytes = (current: number, total: number | undefined): void => {
      const now = Date.now();
      if (now - lastReport < interval) return;
      lastReport = now;
      subscriber.next({ type: 'pushing', ...progress, current, ...(total !== undefined && { total }) });
    };
    const compress = blob.form === 'uncompressed' && options.compression !== 'none';
    const chunked = options.chunkSize !== undefined;
    /** The open session, if any: cancelled on unsubscribe or error, resumed (chunked) after a break. */
    let session: UploadSession | undefined;
    /** The digests as pushed, once known: up front for stored blobs, after one full read when compressing. */
    let known: { digest: Digest; diffId?: Digest } | undefined = compress ? undefined : storedDigest(blob);
    const drop = (after?: Promise<unknown>): void => {
      if (session !== undefined) {
        void client.cancelUpload(session, { signal: AbortSignal.timeout(CANCEL_TIMEOUT_MS), ...(after !== undefined && { after }) });
      }
      session = undefined;
    };

    const open = (attempt: number, previous: unknown) => async (): Promise<Readable> => {
      try {
        return await blob.open({ signal });
      } catch (error) {
        if (attempt === 1 || signal.aborted) throw error;
        const why = error instanceof Error ? error.message : String(error);
        throw new InvalidSourceError(
          blob.origin,
          `the upload of ${blob.origin} broke (${retryReason(previous)}) and its source cannot be read a second time to retry (${why}); push again`,
          { cause: error },
        );
      }
    };

    const run = async (): Promise<Sent> => {
      let previous: unknown;
      for (let attempt = 1; ; attempt++) {
        if (attempt > 1 && known !== undefined) {
          // A commit whose answer was lost, or a blob another push just sent: never send it again.
          const info = await client.hasBlob(options.repository, known.digest, request);
          if (info !== undefined) {
            logger.debug({ digest: known.digest, attempt }, 'blob found in the registry after a broken upload');
            drop();
            return { digest: info.digest, size: info.size, mediaType: mediaTypeFor(blob, compress), ...(known.diffId !== undefined && { diffId: known.diffId }) };
          }
        }
        try {
          if (session === undefined) {
            const start = await client.startUpload(options.repository, request);
            // The client answers `mounted` only to a mount request, and none is made here.
            assert(start.kind === 'session', `the registry mounted ${blob.key} though no mount was asked for`);
            session = start;
          }
          subscriber.next({ type: 'pushing', ...progress, current: 0, ...(blob.size !== undefined && { total: blob.size }) });
          const sent = await sendBlob({
            blob,
            client,
            session,
            signal,
            compress,
            chunkSize: options.chunkSize,
            open: open(attempt, previous),
            onBytes,
            onSession: (next) => void (session = next),
            onDigests: (digests) => void (known = digests),
          });
          session = undefined;
          return sent;
        } catch (error) {
          if (signal.aborted) throw new CancelledError();
          if (attempt > policy.retries || !isRetryable(error)) throw error;
          previous = error;
          const delayMs = retryDelay(attempt, policy, retryAfterOf(error));
          const reason = retryReason(error);
          logger.debug({ key: blob.key, attempt, delayMs, reason }, 'upload broke; retrying');
          subscriber.next({ type: 'retrying', id: progress.id, attempt, delayMs, reason });
          await sleep(delayMs, signal);
          await resumeOrDrop();
        }
      }
    };

    /**
     * A chunked upload goes on where the registry says it is, if the session still answers. The
     * reference registry cancels a session whose PATCH broke part-way, so there this ends in a fresh one.
     */
    const resumeOrDrop = async (): Promise<void> => {
      if (!chunked || session === undefined) {
        drop();
        return;
      }
      try {
        session = await client.uploadStatus(session, request);
        logger.debug({ key: blob.key, offset: session.offset }, 'resuming the upload');
      } catch (error) {
        if (signal.aborted) throw error;
        drop();
      }
    };

    const done = run().then(
      (result) => {
        logger.debug({ digest: result.digest, size: result.size }, 'blob pushed');
        subscriber.next({ type: 'pushed', ...progress, digest: result.digest, size: result.size });
        subscriber.next({
          type: 'blob-ready',
          key: blob.key,
          descriptor: blobDescriptor(blob, result.digest, result.size, result.mediaType),
          ...(result.diffId !== undefined && { diffId: result.diffId }),
        });
        subscriber.complete();
      },
      (error: unknown) => subscriber.error(error),
    );

    return () => {
      controller.abort();
      // A session left open holds registry storage until it expires: give it back, once the aborted request is over.
      drop(done);
    };
  });
}

/** The digest a stored blob is pushed under, when the source knows it. */
function storedDigest(blob: BlobEvent['blob']): { digest: Digest } | undefined {
  const digest = blob.digest ?? blob.diffId;
  return digest === undefined ? undefined : { digest };
}
