import { formatReference, type PushEvent } from '@rxpush/core';

import type { ProgressRenderer, TextSink } from './renderer.js';

/**
 * `--quiet`, like `docker push --quiet`: no progress, only the reference of each pushed tag
 * (`REGISTRY/REPO:TAG`, or `REGISTRY/REPO@DIGEST` for a push by digest).
 *
 * @example push(options).subscribe(quietRenderer(process.stdout))
 */
export function quietRenderer(out: TextSink): ProgressRenderer {
  return {
    start() {},
    next(event: PushEvent) {
      if (event.type !== 'manifest-pushed') return;
      const { registry, repository, tag, digest } = event;
      out.write(`${formatReference(tag !== undefined ? { registry, repository, tag } : { registry, repository, digest })}\n`);
    },
    error() {},
    complete() {},
  };
}
