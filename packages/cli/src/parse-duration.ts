import { UsageError } from '@rxpush/core';

import { quote } from './quote.js';

const PART = /(\d+(?:\.\d+)?)(ms|s|m|h)/y;
const MS = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 } as const;
/** Node's timers hold at most 2^31 − 1 ms (24.8 days); a longer one fires at once, with a warning on stderr. */
const LONGEST_MS = 2 ** 31 - 1;

/**
 * Parses a duration as Go (and so skopeo and crane) writes it: numbers with units `ms`, `s`, `m`, `h`,
 * one or several (`30s`, `1.5m`, `1m30s`, `500ms`), to whole milliseconds. A bare number is refused: seconds
 * or milliseconds would be a guess.
 *
 * @throws {UsageError} when the text is not a duration, or is shorter than a millisecond or longer than 24 days.
 * @example parseDuration('1m30s', '--timeout') // 90000
 */
export function parseDuration(text: string, what = 'duration'): number {
  const trimmed = text.trim();
  let ms = 0;
  PART.lastIndex = 0;
  while (PART.lastIndex < trimmed.length) {
    const match = PART.exec(trimmed);
    if (!match) break;
    const [, number = '', unit = 's'] = match;
    ms += Number(number) * MS[unit as keyof typeof MS];
  }
  if (trimmed === '' || PART.lastIndex !== trimmed.length) {
    throw new UsageError(`${what} ${quote(text)} is not a duration: write a number with a unit, e.g. 30s, 2m, 1m30s or 500ms`);
  }
  const whole = Math.floor(ms);
  if (whole < 1) throw new UsageError(`${what} ${quote(text)} is shorter than a millisecond`);
  if (whole > LONGEST_MS) throw new UsageError(`${what} ${quote(text)} is longer than the longest wait rxpush can keep, 24 days`);
  return whole;
}
