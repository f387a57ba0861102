import { UsageError } from '@rxpush/core';

import { quote } from './quote.js';

const SIZE = /^(\d+(?:\.\d+)?) ?(?:([kmgt])(i)?)?b?$/i;
const POWER = { k: 1, m: 2, g: 3, t: 4 } as const;

/**
 * Parses a byte size as people write it: plain bytes (`1048576`), decimal units (`5MB`, `5M`, `500kB`)
 * or binary units (`512KiB`, `8MiB`); case does not matter. Fractions round down to whole bytes.
 *
 * @throws {UsageError} when the text is not a size, or is less than one byte.
 * @example parseSize('5MB') // 5000000
 */
export function parseSize(text: string, what = 'size'): number {
  const match = SIZE.exec(text.trim());
  if (!match) throw new UsageError(`${what} ${quote(text)} is not a size: write bytes or a number with a unit, e.g. 5MB or 512KiB`);
  const [, number = '', prefix, binary] = match;
  const power = prefix === undefined ? 0 : POWER[prefix.toLowerCase() as keyof typeof POWER];
  const bytes = Math.floor(Number(number) * (binary === undefined ? 1000 : 1024) ** power);
  if (bytes < 1) throw new UsageError(`${what} ${quote(text)} is less than one byte`);
  if (!Number.isSafeInteger(bytes)) throw new UsageError(`${what} ${quote(text)} is too large`);
  return bytes;
}
