import type { PushEvent } from '@rxpush/core';

import { digestLine, headerLine, isShown, lineId, referrersLines, signedLines, statusText } from './messages.js';
import type { ProgressRenderer, TextSink } from './renderer.js';

/**
 * Output for logs and pipes: one line per state change of a layer (`<id>: Preparing`, `<id>: Pushing`,
 * `<id>: Pushed`, …), no byte counts, then `<tag>: digest: … size: N` per tag.
 *
 * @example push(options).subscribe(plainRenderer(process.stdout))
 */
export function plainRenderer(out: TextSink): ProgressRenderer {
  const shown = new Map<string, string>();
  return {
    start(repository) {
      out.write(`${headerLine(repository)}\n`);
    },
    next(event: PushEvent) {
      if (event.type === 'manifest-pushed') {
        out.write(`${digestLine(event)}\n`);
        for (const text of referrersLines(event)) out.write(`${text}\n`);
        return;
      }
      if (event.type === 'signed-manifest') {
        for (const text of signedLines(event)) out.write(`${text}\n`);
        return;
      }
      if (!isShown(event)) return;
      const id = lineId(event);
      const status = statusText(event);
      if (shown.get(id) === status) return;
      shown.set(id, status);
      out.write(`${id === '' ? '' : `${id}: `}${status}\n`);
    },
    error() {},
    complete() {},
  };
}
