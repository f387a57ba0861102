import { humanSize } from './human-size.js';

/** Docker leaves the bar out when the terminal is this wide or narrower, so lines do not wrap. */
const MIN_COLUMNS_FOR_BAR = 111;

/**
 * The progress part of a `Pushing` line, as Docker's `JSONProgress.String()` makes it:
 * a 50-wide bar and `current/total` in Docker's units, or only the bytes when the total is unknown.
 *
 * @param columns the terminal width; Docker's default when it cannot tell is 200.
 * @example progressText(1_000_000, 2_000_000) // '[=========================>                         ]      1MB/2MB'
 */
export function progressText(current: number, total: number | undefined, columns = 200): string {
  if (total === undefined || total <= 0) return current > 0 ? humanSize(current).padStart(8) : '';
  const filled = Math.min(50, Math.trunc(Math.trunc((current / total) * 100) / 2));
  const bar = columns >= MIN_COLUMNS_FOR_BAR ? `[${'='.repeat(filled)}>${' '.repeat(50 - filled)}] ` : '';
  // A current beyond the total (a wrong size hint) shows the bytes alone, as Docker does.
  const numbers = current > total ? humanSize(current).padStart(8) : `${humanSize(current).padStart(8)}/${humanSize(total)}`;
  return bar + numbers;
}
