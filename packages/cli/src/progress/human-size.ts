const UNITS = ['B', 'kB', 'MB', 'GB', 'TB', 'PB', 'EB', 'ZB', 'YB'] as const;

// Go's %.4g: four significant digits, no trailing zeros, ties to even.
const FOUR_DIGITS = new Intl.NumberFormat('en-US', { maximumSignificantDigits: 4, roundingMode: 'halfEven', useGrouping: false });

/**
 * A byte count as Docker shows it (go-units `HumanSize`): decimal units, at most four significant digits, no space.
 *
 * @example humanSize(12_345_678) // '12.35MB'
 */
export function humanSize(bytes: number): string {
  let size = bytes;
  let unit = 0;
  while (size >= 1000 && unit < UNITS.length - 1) {
    size /= 1000;
    unit += 1;
  }
  return `${FOUR_DIGITS.format(size)}${UNITS[unit]}`;
}
