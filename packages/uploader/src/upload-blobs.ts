import { isEvent, silentLogger, UnsupportedError, type BlobEvent, type Logger, type PushEvent } from '@rxpush/core';
import type { RegistryClient } from '@rxpush/registry-client';
import { asyncScheduler, connect, filter, merge, mergeMap, type Observable, type OperatorFunction, type SchedulerLike } from 'rxjs';

import { assertCompression } from './compression.js';
import type { SessionStore } from './session-store.js';
import { uploadBlob, type Gate, type UploadContext } from './upload-blob.js';
import { sharedUploadLimiter, UploadLimiter } from './upload-limiter.js';

/** Options of {@link uploadBlobs}. */
export interface UploadBlobsOptions {
  readonly client: RegistryClient;
  readonly repository: string;
  /**
   * Blobs sent at once (default 4: the registry's hashing, not the network, is the bound). From 2 on, a blob of a file
   * whose bytes are all sent waits for the registry's answer (its digest check and commit) without its slot, and the
   * next blob is sent meanwhile: at most twice this many uploads are under way. With 1, one upload at a time, its
   * answer included.
   */
  readonly concurrency?: number;
  /**
   * The limit shared with other uploads of this process (default `sharedUploadLimiter`, 8 slots for all
   * pushes together): an upload needs a slot of it as well as one of `concurrency`. Blobs of a sequential
   * source take neither (they must all be open at once for their stream to flow).
   */
  readonly limiter?: UploadLimiter;
  /** How to compress `uncompressed` layers (default gzip). */
  readonly compression?: 'gzip' | 'zstd' | 'none';
  /** The gzip level of every block, 0–9 (default 1, and 4 for blocks that look like text: see gzipLayer's DEFAULT_COMPRESSION_LEVEL). */
  readonly compressionLevel?: number;
  /**
   * Send blobs in PATCH chunks of this many bytes (with Content-Range) instead of monolithically, for
   * proxies that cap request bodies. Raised to the registry's OCI-Chunk-Min-Length when it sets one; below
   * 64 KiB a UsageError, unless that OCI-Chunk-Min-Length is lower still.
   */
  readonly chunkSize?: number;
  /**
   * Where chunked uploads are kept (`fileSessionStore(cacheDir)`), so a push broken off resumes in the next run:
   * its sessions are then left open rather than cancelled, and layers of 256 MiB or more go up in 64 MiB chunks
   * unless `chunkSize` says otherwise. Without it, broken uploads start over.
   */
  readonly sessions?: SessionStore;
  /** Minimum time between two `pushing` events of one blob, in ms (default 100). */
  readonly progressInterval?: number;
  /** Where the progress throttle and retry waits take their time from (default asyncScheduler; TestScheduler in tests). */
  readonly scheduler?: SchedulerLike;
  readonly logger?: Logger;
}

/**
 * Streams the blobs that reach it as `blob` tasks into the registry, hashing them on the way.
 *
 * Each blob's bytes are opened only now, read in 1 MiB pieces and never held whole. Stored blobs go up
 * monolithically (POST, then PUT with the stream and its length); uncompressed layers are compressed on
 * the fly, hashed before and after compression in the same pass, sent with a streamed PATCH and committed
 * with the digest learnt. With `chunkSize`, PATCH chunks with Content-Range instead.
 *
 * An upload broken by the network or a 408/429/5xx answer is retried with the client's retry policy
 * (`retrying` events carry the blob's short id, as do the retries of requests the client repeats itself):
 * first a HEAD, so a blob whose commit landed but whose answer was lost is not sent again; then a chunked upload resumes from the offset the registry reports, and anything else
 * starts over in a fresh session (the old one is cancelled) with the source opened again. Emits `pushing`
 * (throttled) once a blob's source is open, so a blob its source has not reached yet stays `waiting`, then
 * `retrying`, `pushed` and `blob-ready`; other events pass through. Unsubscribing aborts the
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
  assertCompression(options.compression);
  const level = options.compressionLevel;
  if (level !== undefined && (!Number.isInteger(level) || level < 0 || level > 9)) {
    throw new UnsupportedError(`compression level ${level} is not a whole number from 0 to 9`);
  }
  if (options.chunkSize !== undefined && (!Number.isSafeInteger(options.chunkSize) || options.chunkSize < 1)) {
    throw new UnsupportedError(`chunk size ${options.chunkSize} is not a whole number of bytes above 0`);
  }
  const context: UploadContext = {
    client: options.client,
    repository: options.repository,
    compression: options.compression ?? 'gzip',
    compressionLevel: options.compressionLevel,
    chunkSize: options.chunkSize,
    progressInterval: options.progressInterval ?? 100,
    scheduler: options.scheduler ?? asyncScheduler,
    logger,
    sessions: options.sessions,
  };
  const limiter = options.limiter ?? sharedUploadLimiter;
  const upload = (event: BlobEvent): Observable<PushEvent> => uploadBlob(event.blob, context);
  return connect((events) => {
    // With two or more at once, `concurrency` is a limiter of this subscription's own in front of the shared one (a
    // blob takes its slot here before one of the process, so it never holds a shared slot while it waits for its
    // own), and as many blobs again open their sessions ahead and wait at it: a slot that frees goes straight to the
    // next PUT, not to a POST while the registry and both cores idle (~20 ms per round of uploads). A blob of a file
    // gives both slots back once its bytes are all sent (see `freesSlot` in upload-blob.ts). Concurrency 1 stays one
    // upload, POST and answer included, at a time.
    const own = Number.isSafeInteger(concurrency) && concurrency >= 2 ? new UploadLimiter(concurrency) : undefined;
    const gate: Gate | undefined = own === undefined ? undefined : (work, frees) => work.pipe(limiter.limit(frees), own.limit(frees));
    return merge(
      // Everything else passes at once, never queued behind busy upload slots.
      events.pipe(filter((event) => event.type !== 'blob')),
      // Blobs of a sequential source all start at once, outside `concurrency` and the limiter: their shared
      // stream serves them in its own order (docker save: name order, not the image's) and waits at each
      // member until its blob is open. A slot held back from any of them (by a limit smaller than the image,
      // or by other pushes holding the slots) leaves the stream at a member nobody opens while the open
      // blobs wait for members further on: a deadlock. They cost the limit nothing it guards: the stream
      // feeds one member at a time, and the others wait with empty buffers.
      events.pipe(
        filter(isEvent('blob')),
        filter((event) => event.blob.sequential === true),
        mergeMap(upload),
      ),
      events.pipe(
        filter(isEvent('blob')),
        filter((event) => event.blob.sequential !== true),
        own === undefined
          ? mergeMap((event) => upload(event).pipe(limiter.limit()), concurrency)
          : mergeMap((event) => uploadBlob(event.blob, context, gate), 2 * concurrency),
      ),
    );
  });
}
