import { pipeline as pipeStreams, type Readable } from 'node:stream';
import { createGzip } from 'node:zlib';

import {
  blobDescriptor,
  isPushError,
  MediaType,
  PushError,
  shortId,
  silentLogger,
  SourceError,
  UnsupportedError,
  type BlobEvent,
  type BlobProgress,
  type BlobSource,
  type Digest,
  type Logger,
  type PushEvent,
} from '@rxpush/core';
import type { RegistryClient, UploadSession } from '@rxpush/registry-client';
import { mergeMap, Observable, of, type OperatorFunction } from 'rxjs';

import { HashingStream } from './hashing-stream.js';

/** Options of {@link uploadBlobs}. */
export interface UploadBlobsOptions {
  readonly client: RegistryClient;
  readonly repository: string;
  /** Blobs uploaded at once (default 4: the registry's hashing, not the network, is the bound). */
  readonly concurrency?: number;
  /** How to compress `uncompressed` layers (default gzip). */
  readonly compression?: 'gzip' | 'zstd' | 'none';
  /** Minimum time between two `pushing` events of one blob, in ms (default 100). */
  readonly progressInterval?: number;
  readonly logger?: Logger;
}

const ONE_MIB = 1024 * 1024;

/**
 * Streams the blobs that reach it as `blob` tasks into the registry, hashing them on the way.
 *
 * Each blob's bytes are opened only now, read once in 1 MiB pieces and never held whole. Stored blobs
 * go up monolithically (POST, then PUT with the stream and its length); uncompressed layers are
 * compressed on the fly, hashed before and after compression in the same pass, sent with a streamed
 * PATCH and committed with the digest learnt. Emits `pushing` (throttled), `pushed` and `blob-ready`;
 * other events pass through. Unsubscribing aborts the requests in flight and cancels their sessions.
 *
 * Fails with `DigestMismatchError` when a blob's bytes do not match its digest or diff ID (nothing is
 * committed), and with the registry client's typed errors.
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
  return (source) =>
    source.pipe(mergeMap((event) => (event.type === 'blob' ? upload(event, options, logger) : of(event)), concurrency));
}

function upload(event: BlobEvent, options: UploadBlobsOptions, logger: Logger): Observable<PushEvent> {
  return new Observable<PushEvent>((subscriber) => {
    const controller = new AbortController();
    const { blob } = event;
    const progress: BlobProgress = { id: shortId(blob.key), key: blob.key, role: blob.role };
    const interval = options.progressInterval ?? 100;
    let lastReport = 0;
    const onBytes = (current: number, total: number | undefined): void => {
      const now = Date.now();
      if (now - lastReport < interval) return;
      lastReport = now;
      subscriber.next({ type: 'pushing', ...progress, current, ...(total !== undefined && { total }) });
    };
    let session: UploadSession | undefined;

    const run = async (): Promise<void> => {
      const { signal } = controller;
      const start = await options.client.startUpload(options.repository, { signal });
      if (start.kind === 'mounted') throw new PushError('REGISTRY_ERROR', `the registry mounted ${blob.key} though no mount was asked for`);
      session = start;
      subscriber.next({ type: 'pushing', ...progress, current: 0, ...(blob.size !== undefined && { total: blob.size }) });
      const compress = blob.form === 'uncompressed' && options.compression !== 'none';
      const result = compress
        ? await sendCompressed(blob, session, options.client, signal, onBytes)
        : await sendStored(blob, session, options.client, signal, onBytes);
      session = undefined;
      logger.debug({ digest: result.digest, size: result.size }, 'blob pushed');
      subscriber.next({ type: 'pushed', ...progress, digest: result.digest, size: result.size });
      subscriber.next({
        type: 'blob-ready',
        key: blob.key,
        descriptor: blobDescriptor(blob, result.digest, result.size, result.mediaType),
        ...(result.diffId !== undefined && { diffId: result.diffId }),
      });
      subscriber.complete();
    };

    run().catch((error: unknown) => subscriber.error(error));

    return () => {
      controller.abort();
      // A session left open holds registry storage until it expires: give it back.
      if (session) void options.client.cancelUpload(session);
    };
  });
}

interface Sent {
  readonly digest: Digest;
  readonly size: number;
  readonly mediaType: string;
  readonly diffId?: Digest;
}

/** POST, then one PUT carrying the whole stream with its length: the fastest shape against the registry. */
async function sendStored(
  blob: BlobSource,
  session: UploadSession,
  client: RegistryClient,
  signal: AbortSignal,
  onBytes: (current: number, total: number | undefined) => void,
): Promise<Sent> {
  const digest = blob.digest ?? blob.diffId;
  if (digest === undefined || blob.size === undefined) {
    // Without a digest up front the bytes must be streamed first and committed after (like compression).
    return sendStreamed(blob, session, client, signal, onBytes, undefined);
  }
  const total = blob.size;
  const hasher = new HashingStream({ expected: digest, expectedSize: total, origin: blob.origin, onBytes: (n) => onBytes(n, total) });
  const feed = connect(await blob.open({ signal }), [hasher]);
  try {
    const info = await client.finishUpload(session, digest, { body: { stream: hasher, length: total }, signal });
    return { digest: info.digest, size: info.size, mediaType: blob.mediaType };
  } catch (error) {
    throw feed.failure(blob) ?? error;
  }
}

/** Compresses on the fly; the compressed digest is known only at the end, so PATCH streams and PUT commits. */
async function sendCompressed(
  blob: BlobSource,
  session: UploadSession,
  client: RegistryClient,
  signal: AbortSignal,
  onBytes: (current: number, total: number | undefined) => void,
): Promise<Sent> {
  return sendStreamed(blob, session, client, signal, onBytes, createGzip({ chunkSize: ONE_MIB }));
}

async function sendStreamed(
  blob: BlobSource,
  session: UploadSession,
  client: RegistryClient,
  signal: AbortSignal,
  onBytes: (current: number, total: number | undefined) => void,
  compressor: NodeJS.ReadWriteStream | undefined,
): Promise<Sent> {
  // Progress counts what is read from the source, whose size the source may know; the compressed size it cannot.
  const read = new HashingStream({
    ...(blob.diffId !== undefined && { expected: blob.diffId }),
    origin: blob.origin,
    onBytes: (n) => onBytes(n, blob.size),
  });
  const sent = compressor ? new HashingStream({ origin: blob.origin }) : read;
  const feed = connect(await blob.open({ signal }), compressor ? [read, compressor, sent] : [read]);
  let next: UploadSession;
  try {
    next = await client.uploadChunk(session, { stream: sent }, { signal });
  } catch (error) {
    throw feed.failure(blob) ?? error;
  }
  // The bytes are all with the registry now; commit only if they were what the source claims.
  const failure = feed.failure(blob);
  if (failure) throw failure;
  const digest = sent.digest;
  if (digest === undefined) throw new Error(`the stream of ${blob.origin} ended without a digest`);
  const info = await client.finishUpload(next, digest, { signal });
  return {
    digest: info.digest,
    size: info.size,
    mediaType: compressor ? gzipMediaType(blob) : blob.mediaType,
    ...(read.digest !== undefined && { diffId: read.digest }),
  };
}

function gzipMediaType(blob: BlobSource): string {
  if (blob.role === 'config') return blob.mediaType;
  return blob.mediaType.startsWith('application/vnd.docker.') ? MediaType.dockerLayerGzip : MediaType.ociLayerGzip;
}

/**
 * Pipes a source through its stages and remembers why the flow broke, so that a request error caused
 * by the source (a read error, a digest mismatch) is reported as the source's fault, naming the file.
 */
function connect(input: Readable, stages: readonly NodeJS.ReadWriteStream[]): { failure(blob: BlobSource): PushError | undefined } {
  let broken: Error | undefined;
  pipeStreams([input, ...stages] as unknown as [Readable, NodeJS.WritableStream], (error) => {
    if (error) broken = error;
  });
  return {
    failure(blob) {
      const mismatch = stages.find((stage): stage is HashingStream => stage instanceof HashingStream && stage.failure !== undefined);
      if (mismatch) return mismatch.failure;
      if (broken === undefined || broken.name === 'AbortError') return undefined;
      if (isPushError(broken)) return broken;
      return new SourceError('INVALID_SOURCE', blob.origin, `cannot read ${blob.origin}: ${broken.message}`, { cause: broken });
    },
  };
}
