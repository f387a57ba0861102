import type { PushEvent } from '@rxpush/core';
import { Observable, type OperatorFunction } from 'rxjs';

import type { DigestCache } from './digest-cache.js';

/** Options of {@link rememberBlobs}. */
export interface RememberBlobsOptions {
  readonly cache: DigestCache;
  /** host[:port] of the destination registry, as the client names it. */
  readonly registry: string;
  readonly repository: string;
}

/**
 * Records what a push learnt in the digest cache: for every `blob-ready`, that the destination repository
 * holds the blob and, for a layer compressed on the way, which compressed digest its diff ID became.
 * Place it after the uploader. Every event passes through at once, unchanged; the cache is written in one
 * batch when the stream ends (completes, fails or is unsubscribed), and completion waits for that write,
 * which the cache bounds (about a second at most).
 *
 * Never fails: a cache that cannot be written is given up on by the cache itself, with one warning.
 *
 * @example
 * source$.pipe(checkBlobs(dest), uploadBlobs(dest), rememberBlobs({ cache, registry: 'localhost:5000', repository: 'app' }))
 */
export function rememberBlobs(options: RememberBlobsOptions): OperatorFunction<PushEvent, PushEvent> {
  const { cache, registry, repository } = options;
  return (source) =>
    new Observable<PushEvent>((subscriber) => {
      let ended = false;
      const subscription = source.subscribe({
        next(event) {
          if (event.type === 'blob-ready') {
            const { digest, size, mediaType } = event.descriptor;
            cache.addLocation(digest, { registry, repository });
            if (event.diffId !== undefined && event.diffId !== digest) cache.addCompressedForm(event.diffId, { digest, size, mediaType });
          }
          subscriber.next(event);
        },
        error(error: unknown) {
          ended = true;
          void cache.flush().then(() => subscriber.error(error));
        },
        complete() {
          ended = true;
          void cache.flush().then(() => subscriber.complete());
        },
      });
      return () => {
        subscription.unsubscribe();
        // Unsubscribed early (cancelled): what was learnt is still true.
        if (!ended) void cache.flush();
      };
    });
}
