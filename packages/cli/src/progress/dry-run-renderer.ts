import { shortId, type BlobSource, type PushEvent } from '@rxpush/core';

import { humanSize } from './human-size.js';
import { headerLine, lineId, statusText } from './messages.js';
import type { ProgressRenderer, TextSink } from './renderer.js';

/** How a dry run is shown: lines as `--progress plain`, jsonmessage objects, or only references (`--quiet`). */
export type DryRunStyle = 'text' | 'json' | 'quiet';

/**
 * Shows what a dry run (`push({ dryRun: true })`) found, one line per layer: `<id>: Would push (12.35MB)`,
 * `<id>: Would mount from REPO`, `<id>: Layer already exists`, then `<tag>: would push the manifest (dry run)`
 * per tag. In `json` style the same texts are jsonmessage `status` values; in `quiet` style only the
 * references that would be pushed are printed.
 *
 * @example push({ ...options, dryRun: true }).subscribe(dryRunRenderer(process.stdout))
 */
export function dryRunRenderer(out: TextSink, style: DryRunStyle = 'text'): ProgressRenderer {
  let repository = '';
  const tags = new Set<string>();
  const write = (id: string, status: string): void => {
    if (style === 'json') out.write(`${JSON.stringify(id === '' ? { status } : { status, progressDetail: {}, id })}\n`);
    else if (style === 'text') out.write(`${id === '' ? '' : `${id}: `}${status}\n`);
  };
  return {
    start(name) {
      repository = name;
      if (style !== 'quiet') write('', headerLine(name));
    },
    next(event: PushEvent) {
      if (event.type === 'blob') {
        if (event.blob.role === 'layer') write(shortId(event.blob.key), `Would push${sizeText(event.blob)}`);
      } else if (event.type === 'image') {
        for (const tag of event.image.tags) tags.add(tag);
      } else if (event.type === 'mounted') {
        if (event.role === 'layer') write(event.id, `Would mount from ${event.from}`);
      } else if ((event.type === 'exists' && event.role === 'layer') || event.type === 'retrying') {
        write(lineId(event), statusText(event));
      }
    },
    error(error) {
      if (style === 'json') out.write(`${JSON.stringify({ errorDetail: { message: error.message }, error: error.message })}\n`);
    },
    // Tags last, as a push ends with its manifests.
    complete() {
      for (const tag of tags) {
        if (style === 'quiet') out.write(`${repository}:${tag}\n`);
        else write('', `${tag}: would push the manifest (dry run)`);
      }
    },
  };
}

function sizeText(blob: BlobSource): string {
  if (blob.size === undefined) return '';
  return blob.form === 'uncompressed' ? ` (${humanSize(blob.size)} before compression)` : ` (${humanSize(blob.size)})`;
}
