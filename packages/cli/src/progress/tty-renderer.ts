import type { PushEvent } from '@rxpush/core';

import { digestLine, headerLine, isShown, lineId, referrersLines, signedLines, statusText } from './messages.js';
import { progressText } from './progress-text.js';
import type { ProgressRenderer, TextSink } from './renderer.js';

export interface TtyRendererOptions {
  /** The terminal width; at 110 columns or fewer the bar is left out, as Docker does. Default (and for 0) 200. */
  readonly columns?: number;
  /** The least time between two redraws of byte counts; state changes are drawn at once. Default 100 ms. */
  readonly intervalMs?: number;
}

interface Line {
  /** The terminal row it is on, counted from the first row of the current block. */
  readonly row: number;
  status: string;
  text: string;
  /** The text changed but has not been drawn yet (throttled byte counts). */
  dirty: boolean;
}

/**
 * Docker's terminal display: one line per layer (`<id>: Preparing`, `<id>: Pushing [==>  ] 1MB/2MB`,
 * `<id>: Pushed`, …), redrawn in place with ANSI cursor movement, then `<tag>: digest: … size: N`.
 * The cursor always rests at the start of the line below the block, so a line `up` lines above is
 * rewritten with: cursor up `up`, erase the line, the text, cursor down `up`, carriage return. Log lines written
 * to the same terminal meanwhile (`logged`) go below it, and the rows they take are counted in `up`.
 *
 * @example push(options).subscribe(ttyRenderer(process.stdout, { columns: process.stdout.columns }))
 */
export function ttyRenderer(out: TextSink, options: TtyRendererOptions = {}): ProgressRenderer {
  // A pseudo-terminal nobody sized (script(1), some CI runners) says 0 columns.
  const columns = options.columns !== undefined && options.columns > 0 ? options.columns : 200;
  const intervalMs = options.intervalMs ?? 100;
  let lines = new Map<string, Line>();
  /** Rows written since the block began: its own lines, and the log lines below them. */
  let rows = 0;
  let timer: ReturnType<typeof setTimeout> | undefined;
  let lastFlush = -Infinity;
  /** The `waiting` line, while it is the last line written: `start` or `error` takes it back. */
  let notice = false;
  const takeBackNotice = (): void => {
    if (notice) out.write('\x1b[1A\x1b[2K');
    notice = false;
  };

  const draw = (line: Line): void => {
    line.dirty = false;
    const up = rows - line.row;
    out.write(`\x1b[${up}A\x1b[2K${line.text}\x1b[${up}B\r`);
  };

  const flush = (): void => {
    clearTimeout(timer);
    timer = undefined;
    lastFlush = Date.now();
    for (const line of lines.values()) if (line.dirty) draw(line);
  };

  const show = (id: string, status: string, progress: string): void => {
    const text = `${id === '' ? '' : `${id}: `}${status}${progress === '' ? '' : ` ${progress}`}`;
    const line = lines.get(id);
    if (line === undefined) {
      lines.set(id, { row: rows, status, text, dirty: false });
      rows += 1;
      out.write(`${text}\n`);
      return;
    }
    if (line.text === text) return;
    const changed = line.status !== status;
    line.status = status;
    line.text = text;
    if (changed) return draw(line);
    // Only byte counts moved: many blobs at once would otherwise redraw the terminal thousands of times a second.
    line.dirty = true;
    if (timer !== undefined) return;
    const wait = lastFlush + intervalMs - Date.now();
    if (wait <= 0) flush();
    else timer = setTimeout(flush, wait);
  };

  return {
    start(repository) {
      takeBackNotice();
      out.write(`${headerLine(repository)}\n`);
    },
    waiting(text: string) {
      if (notice) return;
      // One row, so that one cursor-up takes it back.
      out.write(`${text.length < columns ? text : `${text.slice(0, columns - 2)}…`}\n`);
      notice = true;
    },
    next(event: PushEvent) {
      if (event.type === 'manifest-pushed') {
        flush();
        out.write(`${digestLine(event)}\n`);
        for (const text of referrersLines(event)) out.write(`${text}\n`);
        // Like Docker, a line without an id ends the block: what follows (the next tag's image) starts a new one.
        lines = new Map();
        rows = 0;
        return;
      }
      if (event.type === 'signed-manifest') {
        flush();
        for (const text of signedLines(event)) out.write(`${text}\n`);
        return;
      }
      if (!isShown(event)) return;
      const progress = event.type === 'pushing' ? progressText(event.current, event.total, columns) : '';
      show(lineId(event), statusText(event), progress);
    },
    logged(text: string) {
      // Below the waiting line now: it stays, rather than erase a log line in its place.
      notice = false;
      rows += rowsOf(text, columns);
    },
    error() {
      takeBackNotice();
      flush();
    },
    complete() {
      flush();
    },
  };
}

/**
 * The terminal rows `text` takes, its lines wrapped at `columns`. A character is taken as one column: log lines
 * are escaped to printable ASCII but for letters of other scripts, which a wide one could make a row short.
 */
function rowsOf(text: string, columns: number): number {
  let count = 0;
  for (const line of text.split('\n').slice(0, text.endsWith('\n') ? -1 : undefined)) count += Math.max(1, Math.ceil(line.length / columns));
  return count;
}
