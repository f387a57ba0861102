import { silentLogger, type Logger, type PushEvent } from '@rxpush/core';
import { concatMap, from, of, type OperatorFunction } from 'rxjs';

import type { DigestCache } from './digest-cache.js';

/** Options of {@link rememberBlobs}. */
export interface RememberBlobsOptions {
  readonly cache: DigestCache;
  /** host[:port] of the destination registry, as the client names it. */
  readonly registry: string;
  readonly repository: string;
  readonly logger?: Logger;
}

/**
 * Writes what a push learnt into the digest cache: for every `blob-ready`, that the destination
 * repository holds the blob and, for a layer compressed on the way, which compressed digest its diff ID
 * became. Place it after the uploader. Every event passes through unchanged, after its write.
 *
 * Never fails: a cache that cannot be written is logged at warn and skipped.
 *
 * @example
 * source$.pipe(checkBlobs(dest), uploadBlobs(dest), rememberBlobs({ cache, registry: 'localhost:5000', repository: 'app' }))
 */
export function rememberBlobs(options: RememberBlobsOptions): OperatorFunction<PushEvent, PushEvent> {
  const { cache, registry, repository } = options;
  const logger = (options.logger ?? silentLogger).child({ pkg: 'blob-checker' });
  return concatMap((event) => {
    if (event.type !== 'blob-ready') return of(event);
    const { digest, size, mediaType } = event.descriptor;
    const writes = [cache.addLocation(digest, { registry, repository })];
    if (event.diffId !== undefined && event.diffId !== digest) writes.push(cache.addCompressedForm(event.diffId, { digest, size, mediaType }));
    return from(
      Promise.all(writes).then(
        () => event,
        (error: unknown) => {
          logger.warn({ err: error, dir: cache.dir }, 'digest cache not written');
          return event;
        },
      ),
    );
  });
}
