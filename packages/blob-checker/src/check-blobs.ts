import type { BlobEvent, BlobSource, Digest, Logger, PushEvent } from '@rxpush/core';
import { blobDescriptor, fromAbortable, shortId, silentLogger } from '@rxpush/core';
import type { BlobInfo, RegistryClient } from '@rxpush/registry-client';
import { defer, from, mergeMap, of, toArray, type Observable, type OperatorFunction } from 'rxjs';

/** Options of {@link checkBlobs}. */
export interface CheckBlobsOptions {
  /** The client of the destination registry. */
  readonly client: RegistryClient;
  /** The destination repository (e.g. `team/app`). */
  readonly repository: string;
  /** HEAD requests in flight at once (default 8: they are small). */
  readonly concurrency?: number;
  readonly logger?: Logger;
}

/**
 * Skips blobs the destination registry already has.
 *
 * For each `blob` task whose digest is known it HEADs the registry once per digest per subscription.
 * A blob the registry has becomes `exists` ("Layer already exists") and `blob-ready`; any other blob goes on
 * as `waiting` and the unchanged `blob` task, for the uploader, in the order the tasks came. Foreign (non-distributable) layers are
 * never checked or uploaded: registries do not hold them. Other events pass through.
 *
 * Fails with the registry client's typed errors (unreachable, unauthorized, …).
 *
 * @example
 * source$.pipe(walkLayers(), checkBlobs({ client, repository: 'app' }), uploadBlobs({ client, repository: 'app' }))
 */
export function checkBlobs(options: CheckBlobsOptions): OperatorFunction<PushEvent, PushEvent> {
  const { client, repository, concurrency = 8 } = options;
  const logger = (options.logger ?? silentLogger).child({ pkg: 'blob-checker' });

  return (source) =>
    defer(() => {
      // One answer per digest for the whole push, even when several images or tags name the blob.
      const answers = new Map<Digest, Promise<BlobInfo | undefined>>();
      const lookUp = (digest: Digest, signal: AbortSignal): Promise<BlobInfo | undefined> => {
        let answer = answers.get(digest);
        if (!answer) {
          answer = client.hasBlob(repository, digest, { signal });
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
            (event.type === 'blob' ? check(event, lookUp, logger) : of(event)).pipe(
              toArray(),
              mergeMap((events) => inOrder(index, events)),
            ),
          concurrency,
        ),
      );
    });
}

function check(
  event: BlobEvent,
  lookUp: (digest: Digest, signal: AbortSignal) => Promise<BlobInfo | undefined>,
  logger: Logger,
): Observable<PushEvent> {
  const { blob } = event;
  const progress = { id: shortId(blob.key), key: blob.key, role: blob.role } as const;

  if (isForeign(blob) && blob.digest !== undefined && blob.size !== undefined) {
    logger.debug({ digest: blob.digest }, 'foreign layer: not checked or uploaded');
    blob.release?.();
    return of({ type: 'blob-ready', key: blob.key, descriptor: blobDescriptor(blob, blob.digest, blob.size) } satisfies PushEvent);
  }
  const digest = blob.digest;
  if (digest === undefined) return from<PushEvent[]>([{ type: 'waiting', ...progress }, event]);

  return fromAbortable((signal) => lookUp(digest, signal)).pipe(
    mergeMap((info): PushEvent[] => {
      // A size the registry disagrees with means the stored blob is not ours: upload ours.
      if (info && (blob.size === undefined || info.size === blob.size)) {
        logger.debug({ digest, size: info.size }, 'blob exists');
        blob.release?.();
        return [
          { type: 'exists', ...progress, digest },
          { type: 'blob-ready', key: blob.key, descriptor: blobDescriptor(blob, digest, info.size) },
        ];
      }
      return [{ type: 'waiting', ...progress }, event];
    }),
  );
}

/** Foreign layers (Windows base layers and the like) live at their `urls`, never in the registry. */
function isForeign(blob: BlobSource): boolean {
  return blob.mediaType.includes('foreign') || blob.mediaType.includes('nondistributable');
}
