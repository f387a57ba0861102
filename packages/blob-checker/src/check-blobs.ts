import type { BlobEvent, BlobProgress, BlobSource, Digest, Logger, PushEvent } from '@rxpush/core';
import { blobDescriptor, fromAbortable, gzipLayerMediaType, isEvent, shortId, silentLogger } from '@rxpush/core';
import type { BlobInfo, RegistryClient, RequestOptions } from '@rxpush/registry-client';
import { connect, defer, filter, from, merge, mergeMap, of, toArray, type Observable, type OperatorFunction } from 'rxjs';

import type { DigestCache } from './digest-cache.js';
import { MountClaims } from './mount-claims.js';

/** What each request of one blob's check carries: its signal, and where its retries are reported. */
type Request = RequestOptions & { readonly signal: AbortSignal };

/** Options of {@link checkBlobs}. */
export interface CheckBlobsOptions {
  /** The client of the destination registry. */
  readonly client: RegistryClient;
  /** The destination repository (e.g. `team/app`). */
  readonly repository: string;
  /** Blobs checked at once (default 8: HEADs are small). */
  readonly concurrency?: number;
  /** The persistent cache: compressed forms of diff IDs and where blobs are; without it only known digests are checked. */
  readonly cache?: DigestCache;
  /** How the uploader compresses uncompressed layers, so that only forms it would make count (default gzip). */
  readonly compression?: 'gzip' | 'zstd' | 'none';
  /**
   * Write nothing (`--dry-run`): instead of asking for a mount (a POST), HEAD the blob in the mount source
   * and report it as `mounted` with `dryRun: true` when it is there.
   */
  readonly dryRun?: boolean;
  readonly logger?: Logger;
}

/** A digest the blob may already be in a registry under, with what a manifest must say about it. */
interface Candidate {
  readonly digest: Digest;
  readonly size?: number;
  readonly mediaType: string;
  /** Repositories on the destination registry believed to hold it (mount sources). */
  readonly mountFrom: readonly string[];
}

const MAX_MOUNT_TRIES = 3;

/**
 * Skips blobs the destination registry already has, or can mount from another repository.
 *
 * For each `blob` task it works out the digests the blob may be under (its own; for an uncompressed
 * layer, the compressed forms the cache or the source's hints know for its diff ID), HEADs each once per
 * push, and else tries a cross-repository mount from repositories known to hold it on the same registry.
 * A mount never goes to a repository that already holds the blob: just before it the blob is HEADed
 * again, and pushes sharing a cache directory take turns per blob and repository, so of pushes started
 * together only the first mounts and the others find the blob there. A blob found becomes `exists` ("Layer already exists") or `mounted` ("Mounted from …"), then
 * `blob-ready`, and the source is told it will not be read (`release()`). Any other blob goes on as
 * `waiting` and its unchanged `blob` task, in the order the tasks came. Foreign (non-distributable)
 * layers are never checked or uploaded. Other events pass through. With `dryRun` it sends HEADs only.
 *
 * Fails with the registry client's typed errors (unreachable, unauthorized, …); a cache that cannot
 * be read is ignored.
 *
 * @example
 * source$.pipe(walkLayers(), checkBlobs({ client, repository: 'app' }), uploadBlobs({ client, repository: 'app' }))
 */
export function checkBlobs(options: CheckBlobsOptions): OperatorFunction<PushEvent, PushEvent> {
  const { concurrency = 8 } = options;
  const logger = (options.logger ?? silentLogger).child({ pkg: 'blob-checker' });

  return (source) =>
    defer(() => {
      // Pushes sharing a cache take turns at mounting one blob into one repository (see MountClaims).
      const claims = options.cache && !options.dryRun ? new MountClaims(options.cache.dir, { logger }) : undefined;
      // One answer per digest for the whole push, even when several images or tags name the blob.
      const answers = new Map<Digest, Promise<BlobInfo | undefined>>();
      const hasBlob = (digest: Digest, request: Request): Promise<BlobInfo | undefined> => {
        let answer = answers.get(digest);
        if (!answer) {
          // Retries of a HEAD several blobs share are reported by the blob that asked first.
          answer = options.client.hasBlob(options.repository, digest, request);
          answers.set(digest, answer);
        }
        return answer;
      };

      // HEADs run side by side, but answers leave in arrival order: a sequential source (a tar stream
      // read once) must see its blobs opened in the order it offers them, or it would wait forever.
      const held = new Map<number, PushEvent[]>();
      let next = 0;
      const inOrder = (index: number, events: PushEvent[]): PushEvent[] => {
        held.set(index, events);
        const out: PushEvent[] = [];
        for (let ready = held.get(next); ready !== undefined; ready = held.get(next)) {
          held.delete(next++);
          out.push(...ready);
        }
        return out;
      };
      return source.pipe(
        mergeMap(
          (event, index) =>
            (event.type === 'blob' ? check(event, options, hasBlob, claims, logger) : of(event)).pipe(
              // Retries are news now; only the answers wait their turn.
              connect((events) =>
                merge(
                  events.pipe(filter(isEvent('retrying'))),
                  events.pipe(
                    filter((e) => e.type !== 'retrying'),
                    toArray(),
                    mergeMap((answers) => inOrder(index, answers)),
                  ),
                ),
              ),
            ),
          concurrency,
        ),
      );
    });
}

function check(
  event: BlobEvent,
  options: CheckBlobsOptions,
  hasBlob: (digest: Digest, request: Request) => Promise<BlobInfo | undefined>,
  claims: MountClaims | undefined,
  logger: Logger,
): Observable<PushEvent> {
  const { blob } = event;
  const progress: BlobProgress = { id: shortId(blob.key), key: blob.key, role: blob.role };
  const ready = (digest: Digest, size: number, mediaType: string): PushEvent => ({
    type: 'blob-ready',
    key: blob.key,
    descriptor: blobDescriptor(blob, digest, size, mediaType),
    ...(blob.diffId !== undefined && { diffId: blob.diffId }),
  });

  if (isForeign(blob) && blob.digest !== undefined && blob.size !== undefined) {
    logger.debug({ digest: blob.digest }, 'foreign layer: not checked or uploaded');
    blob.release?.();
    return of(ready(blob.digest, blob.size, blob.mediaType));
  }

  return fromAbortable(async (signal, emit): Promise<PushEvent[]> => {
    const request: Request = { signal, onRetry: (retrying) => emit([{ ...retrying, id: progress.id }]) };
    const candidates = await candidatesOf(blob, options, logger);
    for (const candidate of candidates) {
      const info = await hasBlob(candidate.digest, request);
      // A size that disagrees means the stored blob is not ours: try the next, or upload ours.
      if (info && (candidate.size === undefined || info.size === candidate.size)) {
        logger.debug({ digest: candidate.digest, size: info.size }, 'blob exists');
        blob.release?.();
        return [{ type: 'exists', ...progress, digest: candidate.digest }, ready(candidate.digest, info.size, candidate.mediaType)];
      }
    }
    for (const candidate of candidates) {
      if (candidate.mountFrom.length === 0) continue;
      const target = { registry: options.client.registry, repository: options.repository, digest: candidate.digest };
      // Looked at again, not taken from the answers: another push may have mounted it meanwhile, and
      // mounting a blob the repository holds rewrites its link under manifests being verified.
      const there = async (): Promise<PushEvent[] | undefined> => {
        if (options.dryRun) return undefined;
        const info = await options.client.hasBlob(options.repository, candidate.digest, request);
        if (!info || (candidate.size !== undefined && info.size !== candidate.size)) return undefined;
        logger.debug({ digest: candidate.digest }, 'blob arrived while checking; not mounted');
        return [{ type: 'exists', ...progress, digest: candidate.digest }, ready(candidate.digest, info.size, candidate.mediaType)];
      };
      const mountIt = async (): Promise<PushEvent[] | undefined> => {
        const arrived = await there();
        if (arrived) return arrived;
        for (const from of candidate.mountFrom.slice(0, MAX_MOUNT_TRIES)) {
          const size = options.dryRun ? await mountable(options, candidate, from, request) : await mount(options, candidate, from, request, logger);
          if (size === undefined) continue;
          return [
            { type: 'mounted', ...progress, digest: candidate.digest, from, ...(options.dryRun && { dryRun: true as const }) },
            ready(candidate.digest, size, candidate.mediaType),
          ];
        }
        return undefined;
      };
      const found = await (claims ? claims.hold(target, request.signal, mountIt, there) : mountIt());
      if (found === undefined) continue;
      blob.release?.();
      return found;
    }
    return [{ type: 'waiting', ...progress }, event];
  }).pipe(mergeMap((events) => from(events)));
}

/** The digests a blob may already be stored under, best first. */
async function candidatesOf(blob: BlobSource, options: CheckBlobsOptions, logger: Logger): Promise<Candidate[]> {
  const { cache, client, repository } = options;
  const mountSources = async (digest: Digest): Promise<string[]> => {
    const known = cache ? await cache.locations(digest).catch(() => []) : [];
    const hinted = (blob.hints ?? []).filter((hint) => hint.digest === digest);
    return [
      ...new Set(
        [...known, ...hinted]
          .filter((place) => place.registry === client.registry && place.repository !== undefined && place.repository !== repository)
          .map((place) => place.repository as string),
      ),
    ];
  };

  const forms: Array<Omit<Candidate, 'mountFrom'>> = [];
  if (blob.form === 'stored' && blob.digest !== undefined) {
    forms.push({ digest: blob.digest, ...(blob.size !== undefined && { size: blob.size }), mediaType: blob.mediaType });
  } else if (blob.diffId !== undefined && options.compression === 'none') {
    forms.push({ digest: blob.diffId, ...(blob.size !== undefined && { size: blob.size }), mediaType: blob.mediaType });
  } else if (blob.diffId !== undefined && (options.compression ?? 'gzip') === 'gzip') {
    const gzipType = gzipLayerMediaType(blob.mediaType);
    const cached = cache ? await cache.compressedForms(blob.diffId).catch(() => []) : [];
    for (const form of cached) if (form.mediaType.endsWith('gzip')) forms.push({ digest: form.digest, size: form.size, mediaType: gzipType });
    // Docker's distribution metadata records gzip layers; its hints carry no size.
    for (const hint of blob.hints ?? []) if (!forms.some((f) => f.digest === hint.digest)) forms.push({ digest: hint.digest, mediaType: gzipType });
    if (forms.length > 0) logger.debug({ diffId: blob.diffId, digests: forms.map((f) => f.digest) }, 'known compressed forms');
  } else if (blob.diffId !== undefined && options.compression === 'zstd') {
    const cached = cache ? await cache.compressedForms(blob.diffId).catch(() => []) : [];
    for (const form of cached) if (form.mediaType.endsWith('+zstd')) forms.push({ digest: form.digest, size: form.size, mediaType: form.mediaType });
  }
  return Promise.all(forms.map(async (form) => ({ ...form, mountFrom: await mountSources(form.digest) })));
}

/** Asks the registry to mount a blob from another repository; the blob's size once verified by HEAD, else undefined. */
async function mount(options: CheckBlobsOptions, candidate: Candidate, from: string, request: Request, logger: Logger): Promise<number | undefined> {
  const { client, repository } = options;
  try {
    const start = await client.startUpload(repository, { mount: { digest: candidate.digest, from }, ...request });
    if (start.kind === 'session') {
      // The registry would not mount (it does not have it there, or refuses): it opened an upload instead.
      await client.cancelUpload(start, { signal: request.signal });
      return undefined;
    }
  } catch (error) {
    logger.debug({ err: error, digest: candidate.digest, from }, 'mount failed; the blob will be uploaded');
    return undefined;
  }
  // A mount counts only once the registry shows the blob in the destination, with the size we expect.
  const info = await client.hasBlob(repository, candidate.digest, request);
  if (info === undefined || (candidate.size !== undefined && info.size !== candidate.size)) return undefined;
  logger.debug({ digest: candidate.digest, from }, 'blob mounted');
  return info.size;
}

/** A dry run's stand-in for {@link mount}: the blob's size when the mount source holds it as expected. */
async function mountable(options: CheckBlobsOptions, candidate: Candidate, from: string, request: Request): Promise<number | undefined> {
  const info = await options.client.hasBlob(from, candidate.digest, request).catch(() => undefined);
  if (info === undefined || (candidate.size !== undefined && info.size !== candidate.size)) return undefined;
  return info.size;
}

/** Foreign layers (Windows base layers and the like) live at their `urls`, never in the registry. */
function isForeign(blob: BlobSource): boolean {
  return blob.mediaType.includes('foreign') || blob.mediaType.includes('nondistributable');
}
