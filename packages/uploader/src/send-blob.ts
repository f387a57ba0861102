import assert from 'node:assert/strict';
import type { FileHandle } from 'node:fs/promises';
import { pipeline as pipeStreams, Readable } from 'node:stream';

import { InvalidResponseError, InvalidSourceError, isPushError, type BlobSource, type Digest, type PushError } from '@rxpush/core';
import type { RegistryClient, RequestOptions, UploadSession } from '@rxpush/registry-client';
import { redactUrl } from '@rxpush/registry-client';

import { ByteReader } from './byte-reader.js';
import { chunkSizeFor } from './chunk-size.js';
import { GzipPieces } from './compress/gzip-pieces.js';
import { compressor, mediaTypeFor, type LayerCompression } from './compression.js';
import { FilePieces } from './file-pieces.js';
import { HashingStream } from './hashing-stream.js';

/**
 * What the uploader knows about one blob's upload, across its attempts: kept in the open, so each attempt
 * starts from what the last one left (a session to resume or cancel, digests to confirm a lost commit by).
 */
export interface UploadState {
  /** The open session: the one to cancel, or to resume from, should the next request break. Undefined once committed. */
  session: UploadSession | undefined;
  /** The digests as pushed, once known: up front for stored blobs, after one full read when compressing. */
  digests: { digest: Digest; diffId?: Digest } | undefined;
}

/** The state of an upload whose session is open: what an attempt at sending starts from. */
export type OpenUpload = UploadState & { session: UploadSession };

/** One attempt at sending a blob's bytes into the open session `state.session`. */
export interface Attempt {
  readonly blob: BlobSource;
  readonly client: RegistryClient;
  /** Updated as the registry answers: each new session, and the digests once the whole stream has been read. */
  readonly state: OpenUpload;
  /** Cancels the requests, and what the client retries inside (reported through `onRetry`). */
  readonly request: RequestOptions & { readonly signal: AbortSignal };
  /** How an `uncompressed` layer is compressed on the way (false: not at all). */
  readonly compress: LayerCompression;
  /** The gzip level (default gzipLayer's). */
  readonly compressionLevel?: number | undefined;
  /** PATCH chunks of this many bytes (raised to the registry's OCI-Chunk-Min-Length); undefined: monolithic. */
  readonly chunkSize: number | undefined;
  /** Opens the source (again, on a retry). */
  readonly open: () => Promise<Readable>;
  /** Opens the source's file, for a source that is one (again, on a retry); see {@link FilePieces}. */
  readonly openFile?: (() => Promise<FileHandle>) | undefined;
  readonly onBytes: (current: number, total: number | undefined) => void;
  /**
   * Told once every byte of the blob is with the connection and only the registry's answer is left (the uploads of
   * files, a stored blob's or a gzipped archive member's; the others do not tell).
   */
  readonly onAllSent?: (() => void) | undefined;
  /**
   * Told of each session a chunk leaves, so it can be kept for resuming in a later run; the next chunk waits for
   * it, so what is kept never lags behind what the registry holds (a stale session is refused by the registry).
   */
  readonly onSession?: ((session: UploadSession) => Promise<void>) | undefined;
}

/** What a blob became in the registry. */
export interface Sent {
  readonly digest: Digest;
  readonly size: number;
  readonly mediaType: string;
  readonly diffId?: Digest;
}

/**
 * Sends a blob's bytes, hashing them on the way, and commits them (PUT with the digest).
 *
 * - Stored blobs with known digest and size, monolithic: one PUT carrying the stream and its length; for a blob
 *   that is a file of its own (`openFile`), the file read into two reused buffers instead ({@link FilePieces}).
 * - A layer gzipped on the way from a file (an archive's member), with libdeflate: one PATCH of {@link GzipPieces}
 *   (the file read into reused buffers, the same bytes the stream would make), then PUT.
 * - Otherwise monolithic (compressed on the fly, or digest unknown): one streamed PATCH, then PUT.
 * - Chunked: PATCHes of `chunkSize` bytes with Content-Length and Content-Range. A chunk of a blob of
 *   known size streams straight from the source; when the size is unknown (gzip output) a chunk is
 *   gathered first, as its length must be announced: never more than one chunk in memory.
 *
 * Resuming (chunked, `session.offset` > 0): the source is re-opened and read, and hashed, from its
 * start, but the first `offset` bytes are not sent again. Hashing from the start keeps one simple,
 * always-correct rule (the digest covers exactly the bytes read, whatever offset the registry names)
 * at the cost of re-reading what the registry already holds, which is local I/O; keeping hash states
 * per chunk boundary would only help when the registry's offset falls on one, and still needs the skip.
 * Gzip and zstd are deterministic for the same input, so a re-compressed layer yields the same bytes; if it did
 * not, the registry's digest check on PUT would refuse the commit rather than store a corrupt blob.
 */
export async function sendBlob(attempt: Attempt): Promise<Sent> {
  const { blob } = attempt;
  const digest = attempt.compress ? undefined : (blob.digest ?? blob.diffId);
  const total = attempt.compress ? undefined : blob.size;
  const onBytes = (n: number): void => attempt.onBytes(n, blob.size);
  if (attempt.chunkSize === undefined && digest !== undefined && total !== undefined && attempt.openFile !== undefined) {
    return sendFile(attempt, attempt.openFile, digest, total);
  }
  if (attempt.chunkSize === undefined && attempt.compress === 'gzip' && blob.size !== undefined && attempt.openFile !== undefined && GzipPieces.available) {
    return sendGzipFile(attempt, attempt.openFile, blob.size);
  }

  // `read` sees the source's bytes (diff ID, progress), `sent` what goes to the registry (digest).
  const readExpected = attempt.compress ? blob.diffId : digest;
  const read = new HashingStream({
    ...(readExpected !== undefined && { expected: readExpected }),
    ...(total !== undefined && { expectedSize: total }),
    origin: blob.origin,
    remedy: blob.remedy,
    onBytes,
  });
  const sent = attempt.compress ? new HashingStream({ origin: blob.origin }) : read;
  const input = await attempt.open();
  const feed = connect(input, attempt.compress ? [read, compressor(attempt.compress, attempt.compressionLevel), sent] : [read]);
  const mediaType = mediaTypeFor(blob, attempt.compress);
  const learnt = (): { digest: Digest; diffId?: Digest } => {
    const { digest: sentDigest } = sent;
    // The hashing stage has flushed by now: every byte was read before the commit is sent.
    assert(sentDigest !== undefined, `the stream of ${blob.origin} ended without a digest`);
    const digests = { digest: sentDigest, ...(read.digest !== undefined && { diffId: read.digest }) };
    attempt.state.digests = digests;
    return digests;
  };

  const { state, request } = attempt;
  try {
    if (attempt.chunkSize !== undefined) {
      await sendChunks(attempt, new ByteReader(sent, blob.origin), total, attempt.chunkSize);
    } else if (digest !== undefined && total !== undefined) {
      // The fastest shape against the registry: POST, then one PUT carrying the whole stream.
      const info = await attempt.client.finishUpload(state.session, digest, { body: { stream: sent, length: total }, ...request });
      return { digest: info.digest, size: info.size, mediaType };
    } else {
      // The digest is known only at the end: PATCH streams, PUT commits.
      state.session = await attempt.client.uploadChunk(state.session, { stream: sent }, request);
    }
    // The bytes are all with the registry now; commit only if they were what the source claims.
    const failure = feed.failure(blob);
    if (failure) throw failure;
    const digests = learnt();
    const info = await attempt.client.finishUpload(state.session, digests.digest, request);
    return { digest: info.digest, size: info.size, mediaType, ...(digests.diffId !== undefined && { diffId: digests.diffId }) };
  } catch (error) {
    sent.destroy();
    throw feed.failure(blob) ?? error;
  }
}

/**
 * The most common upload, a stored blob of a file (an OCI layout's layer), monolithic: one PUT whose body is the
 * file read into two reused buffers ({@link FilePieces}), hashed on the way, its digest checked before the last
 * piece goes out. No stream stages: a piece goes from the file to the socket.
 */
async function sendFile(attempt: Attempt, openFile: () => Promise<FileHandle>, digest: Digest, size: number): Promise<Sent> {
  const { blob } = attempt;
  const handle = await openFile();
  const pieces = new FilePieces(handle, {
    size,
    offset: blob.fileOffset ?? 0,
    expected: digest,
    origin: blob.origin,
    remedy: blob.remedy,
    onBytes: (n) => attempt.onBytes(n, size),
    ...(attempt.onAllSent !== undefined && { onAllSent: attempt.onAllSent }),
  });
  try {
    const info = await attempt.client.finishUpload(attempt.state.session, digest, { body: { pieces, length: size }, ...attempt.request });
    return { digest: info.digest, size: info.size, mediaType: mediaTypeFor(blob, attempt.compress) };
  } catch (error) {
    // A request broken by its body (a read error, a file that is not the blob) reports the body's failure, naming the file.
    throw pieces.failure ?? error;
  } finally {
    // A request can end before undici has finished with its body (an early answer, an abort): no read after the close.
    await pieces.stop();
    await handle.close();
  }
}

async function sendChunks(attempt: Attempt, reader: ByteReader, total: number | undefined, asked: number): Promise<void> {
  const { state } = attempt;
  let session = state.session;
  const chunkSize = chunkSizeFor(asked, session.minChunkLength);
  // Already with the registry (a resumed upload): read and hashed again, not sent again.
  await reader.skip(session.offset, { method: session.answer?.method ?? 'GET', url: redactUrl(session.location), status: session.answer?.status ?? 204 });
  for (;;) {
    const offset = session.offset;
    let body: { stream: Readable; length: number };
    if (total !== undefined) {
      const length = Math.min(chunkSize, total - offset);
      if (length <= 0) break;
      body = { stream: reader.take(length), length };
    } else {
      const bytes = await reader.gather(chunkSize);
      if (bytes.length === 0) break;
      // A stream body, not bytes: a broken chunk is resumed from the registry's offset by the uploader, never re-sent blindly.
      body = { stream: Readable.from([bytes], { objectMode: false }), length: bytes.length };
    }
    session = await attempt.client.uploadChunk(session, body, { contentRange: true, ...attempt.request });
    state.session = session;
    await attempt.onSession?.(session);
    if (session.offset !== offset + body.length) {
      throw new InvalidResponseError({
        method: 'PATCH',
        url: redactUrl(session.location),
        status: session.answer?.status ?? 202,
        problem: `with a Range of ${session.offset} bytes after a chunk that should end at ${offset + body.length}: the registry lost or kept other bytes; push again`,
      });
    }
  }
  await reader.end();
}

/**
 * A layer that is a file or a range of one (a docker-archive's member), gzipped on the way with libdeflate, monolithic:
 * one PATCH whose body is {@link GzipPieces} (read into reused buffers, no stream stages; chunked, as the length is
 * known only at the end), then the PUT that commits it under the digest the pieces computed. The same bytes as the
 * stream path makes of the layer.
 */
async function sendGzipFile(attempt: Attempt, openFile: () => Promise<FileHandle>, size: number): Promise<Sent> {
  const { blob, state, request } = attempt;
  const handle = await openFile();
  const pieces = new GzipPieces(handle, {
    size,
    offset: blob.fileOffset ?? 0,
    ...(blob.diffId !== undefined && { expected: blob.diffId }),
    origin: blob.origin,
    remedy: blob.remedy,
    ...(attempt.compressionLevel !== undefined && { level: attempt.compressionLevel }),
    onBytes: (n) => attempt.onBytes(n, size),
    ...(attempt.onAllSent !== undefined && { onAllSent: attempt.onAllSent }),
  });
  try {
    state.session = await attempt.client.uploadChunk(state.session, { pieces }, request);
    // The bytes are all with the registry now; commit only if they were what the source claims.
    if (pieces.failure) throw pieces.failure;
    const { digest, diffId } = pieces;
    assert(digest !== undefined && diffId !== undefined, `the pieces of ${blob.origin} ended without a digest`);
    state.digests = { digest, diffId };
    const info = await attempt.client.finishUpload(state.session, digest, request);
    return { digest: info.digest, size: info.size, mediaType: mediaTypeFor(blob, attempt.compress), diffId };
  } catch (error) {
    throw pieces.failure ?? error;
  } finally {
    // A request can end before undici has finished with its body (an early answer, an abort): no read after the close.
    await pieces.stop();
    await handle.close();
  }
}

/**
 * Pipes a source through its stages and remembers where the flow broke first, so that a request error caused
 * by the source (a read error, a digest mismatch) is reported as the source's fault, naming the file.
 * A break that started at the last stage came from its consumer, the request: undici destroys the body, with
 * no error, when the registry answers before the body's end (an early answer, even after every byte arrived:
 * the source's end-of-file read can lag behind the answer) or with the connection's error when it fails. That
 * is no fault of the source, and the request's own outcome says what happened. The pipeline then tears the
 * source down with "Premature close", so the break is told by which stream went first, not by error codes.
 */
function connect(input: Readable, stages: readonly NodeJS.ReadWriteStream[]): { failure(blob: BlobSource): PushError | undefined } {
  const streams = [input, ...stages] as unknown as Readable[];
  let first: { index: number; error: Error | undefined } | undefined;
  streams.forEach((stream, index) => {
    // Registered before the pipeline's own listeners: a stream's break is seen before the pipeline spreads it.
    stream.on('error', (error: Error) => void (first ??= { index, error }));
    // Closed before its end without an error: destroyed from outside (for the last stage, by the request).
    stream.on('close', () => void (stream.readableEnded || (first ??= { index, error: undefined })));
  });
  pipeStreams(streams as unknown as [Readable, NodeJS.WritableStream], () => {});
  return {
    failure(blob) {
      const mismatch = stages.find((stage): stage is HashingStream => stage instanceof HashingStream && stage.failure !== undefined);
      if (mismatch) return mismatch.failure;
      if (first === undefined || first.index === streams.length - 1 || first.error?.name === 'AbortError') return undefined;
      if (isPushError(first.error)) return first.error;
      const why = first.error?.message ?? 'it closed before its end';
      return new InvalidSourceError(blob.origin, `cannot read ${blob.origin}: ${why}`, { ...(first.error !== undefined && { cause: first.error }) });
    },
  };
}
