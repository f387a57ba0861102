import assert from 'node:assert/strict';
import type { Readable } from 'node:stream';

import {
  blobDescriptor,
  fromAbortable,
  InvalidSourceError,
  RegistryError,
  shortId,
  UnauthorizedError,
  type BlobProgress,
  type BlobSource,
  type Logger,
  type OpenOptions,
  type PushEvent,
  type RetryingEvent,
} from '@rxpush/core';
import { isTimeout, type RegistryClient, type RetryBudget, type UploadSession } from '@rxpush/registry-client';
import { catchError, concat, defer, finalize, ignoreElements, mergeMap, of, throwError, timer, type Observable, type SchedulerLike } from 'rxjs';

import { layerCompressionOf, mediaTypeFor } from './compression.js';
import { sendBlob, type OpenUpload, type Sent, type UploadState } from './send-blob.js';
import type { SessionKey, SessionStore } from './session-store.js';
import { throttleProgress } from './throttle-progress.js';

/** What every blob's upload shares: the operator's options, resolved. */
export interface UploadContext {
  readonly client: RegistryClient;
  readonly repository: string;
  readonly compression: 'gzip' | 'zstd' | 'none';
  readonly compressionLevel?: number | undefined;
  readonly chunkSize: number | undefined;
  readonly progressInterval: number;
  readonly scheduler: SchedulerLike;
  readonly logger: Logger;
  /** Where chunked uploads are kept for the next run to resume; without it, a broken upload's session is cancelled. */
  readonly sessions?: SessionStore | undefined;
}

/** Layers at least this large go up in chunks when a session store is given, so a broken upload can resume. */
export const RESUMABLE_SIZE = 256 * 1024 * 1024;
/** The chunk size of those layers: large enough to cost next to nothing over one monolithic PUT. */
export const RESUMABLE_CHUNK_SIZE = 64 * 1024 * 1024;

/** A cancelled push gives its sessions back, but does not wait on a registry that stopped answering. */
const CANCEL_TIMEOUT_MS = 10_000;

/**
 * What each attempt at an upload waits at before it sends (upload slots): `work` is subscribed to once it may go,
 * and its slot is freed when `work` ends or emits a value `frees` accepts.
 */
export type Gate = <T>(work: Observable<T>, frees: (value: T) => boolean) => Observable<T>;

/**
 * The steps of one attempt, in the attempt's own stream: its events; `bytes-sent` once every byte of the blob is with
 * the connection, when what is left is the registry's answer (its hash check and fsync, ~20–50 ms for 64 MiB on the
 * reference registry), which needs no upload slot: the next blob sends meanwhile; `sent` at the end, with the blob
 * in the registry.
 */
type Step = PushEvent | { readonly type: 'bytes-sent' } | { readonly type: 'sent'; readonly sent: Sent };

const freesSlot = (step: Step): boolean => step.type === 'bytes-sent';

/**
 * Uploads one blob: `pushing` (throttled; from when its source is open, with the total the source knew up front
 * or announced with `onSize` as it reached the bytes), `retrying`, then `pushed` and `blob-ready`.
 *
 * Each attempt is an Observable of its progress that ends with the blob committed; a retryable failure
 * (the client's `retryFor` decides, with its policy) becomes a `retrying` event, a wait on the scheduler,
 * and the next attempt: this is the only retry around a blob upload. The next attempt first resumes a
 * chunked session from the registry's Range (or cancels the session), then asks with HEAD whether a commit
 * whose answer was lost landed after all, and only then sends, re-opening the source. A blob of a sequential
 * source is released from the shared stream before its retry, whose `open()` then reads it from a stream of its own
 * (docker-daemon: a new save stream). Unsubscribing
 * aborts the request in flight and DELETEs the open session once that request is over.
 */
export function uploadBlob(blob: BlobSource, context: UploadContext, gate?: Gate): Observable<PushEvent> {
  return defer(() => {
    const { client, logger, sessions } = context;
    const progress: BlobProgress = { id: shortId(blob.key), key: blob.key, role: blob.role };
    // Large layers go up in chunks when they can be resumed, unless a chunk size was asked for (or chunking is off).
    const large = blob.size !== undefined && blob.size >= RESUMABLE_SIZE;
    const chunkSize = context.chunkSize ?? (sessions !== undefined && large ? RESUMABLE_CHUNK_SIZE : undefined);
    /** Chunked uploads of a source that can be read again are kept for a later run: a sequential stream cannot. */
    const store = chunkSize !== undefined && blob.sequential !== true ? sessions : undefined;
    const sessionKey: SessionKey = { registry: client.registry, repository: context.repository, blob: blob.key, size: blob.size };
    /** The stored session was looked for (only before the first send); and whether this upload goes on from one. */
    let looked = false;
    let resumed = false;
    const compress = layerCompressionOf(blob, context.compression);
    const state: UploadState = { session: undefined, digests: compress ? undefined : storedDigest(blob) };
    /** The attempt's I/O in flight: a session is cancelled only once its aborted request is over. */
    let inflight: Promise<unknown> = Promise.resolve();
    /** Why the last attempt failed, for the message when the source cannot be opened again. */
    let broken: RetryingEvent | undefined;
    /** The size a source tells only once it reaches the bytes (a docker save stream's tar header): the progress total. */
    let announced: number | undefined;
    /** Attempts that timed out: a registry that stops answering is not asked as often as one that fails. */
    let timeouts = 0;
    /** Refusals of a token mid-upload: the client fetched a fresh one; it is sent once more, not again and again. */
    let refusals = 0;
    /** The time this blob keeps retrying for, spent by its attempts and every request inside them alike. */
    const budget = client.retryBudget();

    const drop = (after?: Promise<unknown>): void => {
      if (store !== undefined) void store.forget(sessionKey);
      if (state.session !== undefined) {
        void client.cancelUpload(state.session, { signal: AbortSignal.timeout(CANCEL_TIMEOUT_MS), ...(after !== undefined && { after }) });
      }
      state.session = undefined;
    };

    /**
     * Opens the source, as a stream or (`openFile`) as its file; a source that cannot be read again says so. The
     * retries of a source's own requests (a `docker://` blob's GET) are the blob's, as the registry's are.
     */
    const open = async <T>(request: Request, how: (options: OpenOptions) => Promise<T>): Promise<T> => {
      const { signal } = request;
      try {
        return await how({ signal, onRetry: request.onRetry, onSize: (size) => void (announced = size) });
      } catch (error) {
        if (broken === undefined || signal.aborted) throw error;
        const why = error instanceof Error ? error.message : String(error);
        throw new InvalidSourceError(
          blob.origin,
          `the upload of ${blob.origin} broke (${broken.reason}) and its source cannot be read a second time to retry (${why}); push again`,
          { cause: error },
        );
      }
    };

    type Request = { readonly signal: AbortSignal; readonly budget: RetryBudget; readonly onRetry: (retrying: RetryingEvent) => void };

    /**
     * After a broken attempt: a chunked upload goes on where the registry says it is, if the session still
     * answers (the reference registry cancels a session whose PATCH broke part-way, so there this ends in a
     * fresh one); any other session is cancelled. Then a HEAD: a commit whose answer was lost, or a blob another
     * push just sent, is never sent again.
     */
    const recover = async (request: Request): Promise<Sent | undefined> => {
      if (chunkSize !== undefined && state.session !== undefined) {
        state.session = await client.uploadStatus(state.session, request).catch((error: unknown) => {
          if (request.signal.aborted) throw error;
          drop();
          return undefined;
        });
        if (state.session !== undefined) {
          logger.debug({ key: blob.key, offset: state.session.offset }, 'resuming the upload');
          // The reference registry can answer this GET before it has written the cut chunk's bytes, and then
          // cancel the session on the next PATCH (404 BLOB_UPLOAD_INVALID): refused, it is given up as below.
          resumed = true;
        }
      } else {
        drop();
      }
      if (state.digests === undefined) return undefined;
      const info = await client.hasBlob(context.repository, state.digests.digest, request);
      if (info === undefined) return undefined;
      logger.debug({ digest: info.digest }, 'blob found in the registry after a broken upload');
      drop();
      const { diffId } = state.digests;
      return { digest: info.digest, size: info.size, mediaType: mediaTypeFor(blob, compress), ...(diffId !== undefined && { diffId }) };
    };

    /**
     * The session an earlier run left for this blob, if the registry still holds it (GET → Range) and it is
     * consistent with the source (no more bytes than the blob has). The bytes already sent are read and hashed
     * again from the source when the upload goes on, never taken on trust.
     */
    const stored = async (request: Request): Promise<UploadSession | undefined> => {
      const kept = store === undefined ? undefined : await store.load(sessionKey);
      if (store === undefined || kept === undefined) return undefined;
      const session = await client
        .uploadStatus({ location: new URL(kept.location), offset: 0, repository: context.repository }, request)
        .catch((error: unknown) => {
          if (request.signal.aborted) throw error;
          // Said, not only logged at debug: the user expected a resume. The reference registry (distribution 2.8)
          // ends up here after any kill in the middle of a PATCH: it keeps the cut chunk's bytes, and then cancels a
          // session whose signed `_state` names fewer bytes than it holds, on the first request (this GET included).
          logger.warn(
            { key: blob.key, status: error instanceof RegistryError ? error.status : undefined },
            `cannot resume the upload of ${blob.key} an earlier push left: the registry no longer has its session (a chunk was cut off in the middle, or the session expired); sending it from the start`,
          );
          logger.debug({ key: blob.key, err: error }, 'the upload session an earlier run left is gone');
          return undefined;
        });
      if (session === undefined || session.offset <= 0 || (blob.size !== undefined && session.offset > blob.size)) {
        await store.forget(sessionKey);
        return undefined;
      }
      return session;
    };

    /**
     * With a gate, the session is opened as the upload starts to wait at it, so a slot that frees starts sending at
     * once instead of waiting for a POST while the registry and both cores idle (the curl floor too sends every POST
     * first). Its place at the gate is taken at once, so uploads go in the order they came. A session opened ahead is
     * cancelled as any other if the push is; should the POST fail, `send` makes it again, with its retries: this is
     * only a head start.
     */
    const ahead = new AbortController();
    /** Set when the upload is torn down while its POST ahead is under way: the session it answers with is given back. */
    let cancelled = false;
    let giveUp: NodeJS.Timeout | undefined;
    let opened: Promise<void> | undefined;
    /** Retries of the POST made ahead, told once the upload goes on (its stream is not running before). */
    const heldRetries: RetryingEvent[] = [];
    const openAhead = async (): Promise<void> => {
      try {
        const start = await client.startUpload(context.repository, { signal: ahead.signal, budget, onRetry: (retrying) => void heldRetries.push(retrying) });
        assert(start.kind === 'session', `the registry mounted ${blob.key} though no mount was asked for`);
        if (cancelled) void client.cancelUpload(start, { signal: AbortSignal.timeout(CANCEL_TIMEOUT_MS) });
        else state.session = start;
      } catch (error) {
        if (!cancelled) logger.debug({ key: blob.key, err: error }, 'opening the upload ahead failed; the upload opens it itself');
      } finally {
        opened = undefined;
        clearTimeout(giveUp);
      }
    };

    /** Opens a session unless one is left to resume (from this run or an earlier one), and sends the blob's bytes into it. */
    const send = async (request: Request, emit: (step: Step) => void): Promise<Sent> => {
      await opened;
      for (const retrying of heldRetries.splice(0)) emit({ ...retrying, id: progress.id });
      if (state.session === undefined && !looked) {
        looked = true;
        state.session = await stored(request);
        resumed = state.session !== undefined;
        if (state.session !== undefined) {
          logger.debug({ key: blob.key, offset: state.session.offset }, 'resuming the upload an earlier run left');
          emit({ type: 'pushing', ...progress, current: state.session.offset, ...(blob.size !== undefined && { total: blob.size }), resumedAt: state.session.offset });
        }
      }
      if (state.session === undefined) {
        const start = await client.startUpload(context.repository, request);
        // The client answers `mounted` only to a mount request, and none is made here.
        assert(start.kind === 'session', `the registry mounted ${blob.key} though no mount was asked for`);
        state.session = start;
      }
      const sent = await sendBlob({
        blob,
        client,
        state: state as OpenUpload,
        request,
        compress,
        compressionLevel: context.compressionLevel,
        chunkSize,
        onSession: async (session) => store?.save(sessionKey, { location: session.location.href, offset: session.offset, chunkSize: chunkSize ?? 0 }),
        // Pushing from when the source is open: one that opens when its shared stream reaches the blob
        // (docker save) leaves the blob waiting until then, as docker push shows it.
        open: async () => {
          const input = await open(request, (options) => blob.open(options));
          const total = blob.size ?? announced;
          emit({ type: 'pushing', ...progress, current: 0, ...(total !== undefined && { total }) });
          return input;
        },
        ...(blob.openFile !== undefined && {
          openFile: async () => {
            const handle = await open(request, (options) => blob.openFile!(options));
            emit({ type: 'pushing', ...progress, current: 0, ...(blob.size !== undefined && { total: blob.size }) });
            return handle;
          },
        }),
        onBytes: (current, known) => {
          const total = known ?? announced;
          emit({ type: 'pushing', ...progress, current, ...(total !== undefined && { total }) });
        },
        onAllSent: () => emit({ type: 'bytes-sent' }),
      });
      state.session = undefined;
      if (store !== undefined) await store.forget(sessionKey);
      return sent;
    };

    const attempt = (number: number): Observable<Step> => {
      const io = fromAbortable<Step>((signal, emit) => {
        const request: Request = { signal, budget, onRetry: (retrying) => emit({ ...retrying, id: progress.id }) };
        const running = (async (): Promise<Step> => {
          const sent = (number > 1 ? await recover(request) : undefined) ?? (await send(request, emit));
          return { type: 'sent', sent };
        })();
        inflight = running;
        return running;
      });
      const throttled = io.pipe(throttleProgress(context.progressInterval, context.scheduler));
      // Each attempt takes a slot of its own: a retry's wait holds none, and a retry queues behind the uploads waiting.
      return (gate === undefined ? throttled : gate(throttled, freesSlot)).pipe(
        catchError((error: unknown) => {
          // A session resumed (one an earlier run left, or this one after a broken chunk) that the registry turns out
          // not to accept (gone, or other bytes than the source's: the commit's digest check fails) is given up for a
          // fresh upload, once per resume; attempts still count, so this cannot go on for ever.
          if (resumed && error instanceof RegistryError && [400, 404, 416].includes(error.status)) {
            resumed = false;
            logger.debug({ key: blob.key, err: error }, 'the resumed upload was refused; starting over');
            drop();
            return defer(() => attempt(number + 1));
          }
          if (isTimeout(error)) timeouts += 1;
          if (error instanceof UnauthorizedError) refusals += 1;
          const retrying = refusals > 1 ? undefined : client.retryFor(error, number, { timeouts, budget });
          if (retrying === undefined) return throwError(() => error);
          broken = retrying;
          // The shared stream of a sequential source must not wait at this blob's member for the retry (it feeds the
          // other blobs meanwhile): the retry's open() reads the blob from a stream of its own.
          if (blob.sequential === true) blob.release?.();
          logger.debug({ key: blob.key, attempt: number, delayMs: retrying.delayMs, reason: retrying.reason }, 'upload broke; retrying');
          return concat(
            of({ ...retrying, id: progress.id }),
            timer(retrying.delayMs, context.scheduler).pipe(ignoreElements()),
            defer(() => attempt(number + 1)),
          );
        }),
      );
    };

    // A session kept for a later run is looked for first, behind the gate as before; otherwise the POST goes ahead.
    if (gate !== undefined && store === undefined) opened = openAhead();
    return attempt(1).pipe(
      mergeMap((step): PushEvent[] => {
        if (step.type === 'bytes-sent') return [];
        if (step.type !== 'sent') return [step];
        const { sent } = step;
        logger.debug({ digest: sent.digest, size: sent.size }, 'blob pushed');
        return [
          { type: 'pushed', ...progress, digest: sent.digest, size: sent.size },
          {
            type: 'blob-ready',
            key: blob.key,
            descriptor: blobDescriptor(blob, sent.digest, sent.size, sent.mediaType),
            ...(sent.diffId !== undefined && { diffId: sent.diffId }),
          },
        ];
      }),
      // A session left open holds registry storage until it expires: give it back, once the aborted request is over;
      // unless it is kept for the next run to resume (crash, kill, Ctrl-C, a lost network).
      finalize(() => {
        // A POST still under way for a session opened ahead is let answer, so that its session can be given back
        // (aborted, the registry may have opened it all the same, and its Location is lost); it has no body to
        // send, and it waits no longer than a DELETE would.
        if (opened !== undefined) {
          cancelled = true;
          giveUp = setTimeout(() => ahead.abort(), CANCEL_TIMEOUT_MS).unref();
        }
        if (store !== undefined && state.session !== undefined && state.session.offset > 0) {
          logger.debug({ key: blob.key, offset: state.session.offset }, 'upload session kept for the next push to resume');
          store.release?.(sessionKey);
          return;
        }
        drop(inflight);
      }),
    );
  });
}

/** The digest a stored blob is pushed under, when the source knows it. */
function storedDigest(blob: BlobSource): { digest: NonNullable<BlobSource['digest']> } | undefined {
  const digest = blob.digest ?? blob.diffId;
  return digest === undefined ? undefined : { digest };
}
