import type { PushEvent } from '@rxpush/core';

import { digestLine, headerLine, isShown, lineId, referrersLines, signedLines, statusText } from './messages.js';
import { progressText } from './progress-text.js';
import type { ProgressRenderer, TextSink } from './renderer.js';

/** Docker's `JSONMessage`, with its fields in Go's order; empty fields are left out as Go's `omitempty` does. */
interface JsonMessage {
  status?: string;
  progressDetail?: { current?: number; total?: number };
  progress?: string;
  id?: string;
  errorDetail?: { message: string };
  error?: string;
  aux?: { Tag: string; Digest: string; Size: number };
}

// Go's encoding/json escapes these for HTML safety; Docker's stream has `\u003e` in every bar, so rxpush's does too.
const GO_ESCAPED = /[<>&\u2028\u2029]/g;

function line(message: JsonMessage): string {
  const json = JSON.stringify(message).replace(GO_ESCAPED, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
  return `${json}\n`;
}

/**
 * Docker's jsonmessage stream, one object a line, so tools that read `docker push`'s API stream read this:
 * `{"status":"Pushing","progressDetail":{"current":N,"total":M},"progress":"[==>  ] …","id":"…"}`, then per tag
 * `{"status":"<tag>: digest: sha256:… size: N"}` and `{"progressDetail":{},"aux":{"Tag":…,"Digest":…,"Size":…}}`;
 * a failure as `{"errorDetail":{"message":"…"},"error":"…"}`.
 *
 * @example push(options).subscribe(jsonRenderer(process.stdout))
 */
export function jsonRenderer(out: TextSink): ProgressRenderer {
  return {
    // Docker's API stream opens with the same header its terminal display shows.
    start(repository) {
      out.write(line({ status: headerLine(repository) }));
    },
    next(event: PushEvent) {
      if (event.type === 'manifest-pushed') {
        out.write(line({ status: digestLine(event) }));
        out.write(line({ progressDetail: {}, aux: { Tag: event.tag ?? '', Digest: event.digest, Size: event.size } }));
        for (const text of referrersLines(event)) out.write(line({ status: text }));
        return;
      }
      if (event.type === 'signed-manifest') {
        for (const text of signedLines(event)) out.write(line({ status: text }));
        return;
      }
      if (!isShown(event)) return;
      const message: JsonMessage = { status: statusText(event), progressDetail: {} };
      if (event.type === 'pushing') {
        message.progressDetail = {
          ...(event.current > 0 && { current: event.current }),
          ...(event.total !== undefined && event.total > 0 && { total: event.total }),
        };
        const progress = progressText(event.current, event.total);
        if (progress !== '') message.progress = progress;
      }
      const id = lineId(event);
      if (id !== '') message.id = id;
      out.write(line(message));
    },
    error(error) {
      out.write(line({ errorDetail: { message: error.message }, error: error.message }));
    },
    complete() {},
  };
}
