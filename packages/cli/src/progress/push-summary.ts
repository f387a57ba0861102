import type { PushEvent } from '@rxpush/core';

import { humanSize } from './human-size.js';

/** What a push did to its layers, counted from its events. */
export interface PushCounts {
  /** Layers uploaded (in a dry run: that would be). */
  readonly pushed: number;
  /** Layers mounted from another repository (in a dry run: that could be). */
  readonly mounted: number;
  /** Layers the registry already had. */
  readonly skipped: number;
  /** Bytes of every blob uploaded, config included. */
  readonly bytes: number;
}

/** Counts layers and bytes as the events of one push go by. */
export interface PushTally {
  next(event: PushEvent): void;
  counts(): PushCounts;
}

/**
 * Counts a push's layers: `pushed`, `mounted` and `exists` events, or in a dry run the `blob` tasks that would be
 * uploaded. Config blobs count only towards the bytes, as `docker push` shows only layers.
 *
 * @example const tally = pushTally(false); events.subscribe((e) => tally.next(e)); tally.counts().pushed
 */
export function pushTally(dryRun: boolean): PushTally {
  let pushed = 0;
  let mounted = 0;
  let skipped = 0;
  let bytes = 0;
  return {
    next(event) {
      if (event.type === 'pushed') bytes += event.size;
      const layer = event.type === 'blob' ? event.blob.role === 'layer' : 'role' in event && event.role === 'layer';
      if (!layer) return;
      if (event.type === (dryRun ? 'blob' : 'pushed')) pushed += 1;
      else if (event.type === 'mounted') mounted += 1;
      else if (event.type === 'exists') skipped += 1;
    },
    counts: () => ({ pushed, mounted, skipped, bytes }),
  };
}

/**
 * The line a push ends with on stderr: `3 layers pushed, 1 mounted, 2 skipped: 12.35MB sent in 4.2s (2.94MB/s)`.
 *
 * @example summaryLine({ pushed: 1, mounted: 0, skipped: 2, bytes: 2_000_000 }, 1000) // '1 layer pushed, 0 mounted, 2 skipped: 2MB sent in 1.0s (2MB/s)'
 */
export function summaryLine(counts: PushCounts, elapsedMs: number): string {
  const layers = `${counts.pushed} layer${counts.pushed === 1 ? '' : 's'} pushed, ${counts.mounted} mounted, ${counts.skipped} skipped`;
  const rate = counts.bytes > 0 && elapsedMs > 0 ? ` (${humanSize((counts.bytes * 1000) / elapsedMs)}/s)` : '';
  return `${layers}: ${humanSize(counts.bytes)} sent in ${elapsedText(elapsedMs)}${rate}`;
}

/**
 * The line a dry run ends with on stderr: `dry run: 3 layers to push, 1 to mount, 2 skipped; nothing was written`.
 *
 * @example dryRunSummaryLine({ pushed: 1, mounted: 0, skipped: 2, bytes: 0 }) // 'dry run: 1 layer to push, 0 to mount, 2 skipped; nothing was written'
 */
export function dryRunSummaryLine(counts: PushCounts): string {
  return `dry run: ${counts.pushed} layer${counts.pushed === 1 ? '' : 's'} to push, ${counts.mounted} to mount, ${counts.skipped} skipped; nothing was written`;
}

/** `0.4s`, `12.3s`, `2m05s`. */
function elapsedText(ms: number): string {
  if (ms < 60_000) return `${(ms / 1000).toFixed(1)}s`;
  const seconds = Math.round(ms / 1000);
  return `${Math.floor(seconds / 60)}m${String(seconds % 60).padStart(2, '0')}s`;
}
