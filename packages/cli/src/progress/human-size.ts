const UNITS = ['B', 'kB', 'MB', 'GB', 'TB', 'PB', 'EB', 'ZB', 'YB'] as const;

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
  return `${fourDigits(size)}${UNITS[unit]}`;
}

/**
 * Go's %.4g: four significant digits, no trailing zeros, ties to even, as
 * `Intl.NumberFormat('en-US', { maximumSignificantDigits: 4, roundingMode: 'halfEven', useGrouping: false })` writes
 * it. Done by hand because building that formatter costs ~10 ms of CPU (ICU's locale data), a twentieth of a
 * whole second push, which prints one size. Like ICU, it rounds the shortest decimal that reads back as `value`.
 */
function fourDigits(value: number): string {
  if (value === 0) return '0';
  if (!(value > 0 && Number.isFinite(value))) return intlFourDigits().format(value);
  // toExponential() without digits writes that shortest decimal: "1.2345e+1".
  const [mantissa = '', exponent = '0'] = value.toExponential().split('e');
  const digits = mantissa.replace('.', '');
  let point = Number(exponent) + 1;
  let kept = Number(digits.slice(0, 4).padEnd(4, '0'));
  const rest = digits.slice(4);
  // The shortest decimal has no trailing zeros: a rest of exactly "5" is a tie.
  if (rest > '5' || (rest === '5' && kept % 2 === 1)) kept += 1;
  if (kept === 10_000) {
    kept = 1000;
    point += 1;
  }
  const shown = String(kept).replace(/0+$/, '');
  if (point <= 0) return `0.${'0'.repeat(-point)}${shown}`;
  if (point >= shown.length) return shown + '0'.repeat(point - shown.length);
  return `${shown.slice(0, point)}.${shown.slice(point)}`;
}

let intl: Intl.NumberFormat | undefined;
function intlFourDigits(): Intl.NumberFormat {
  intl ??= new Intl.NumberFormat('en-US', { maximumSignificantDigits: 4, roundingMode: 'halfEven', useGrouping: false });
  return intl;
}
