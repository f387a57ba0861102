import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import { parseSize } from '../src/parse-size.ts';
import { humanSize } from '../src/progress/human-size.ts';
import { progressText } from '../src/progress/progress-text.ts';

describe('parseSize', () => {
  it('reads plain bytes', () => {
    assert.equal(parseSize('1048576'), 1_048_576);
    assert.equal(parseSize('100B'), 100);
  });

  it('reads decimal units as powers of 1000, in any case', () => {
    assert.equal(parseSize('5MB'), 5_000_000);
    assert.equal(parseSize('5mb'), 5_000_000);
    assert.equal(parseSize('5M'), 5_000_000);
    assert.equal(parseSize('500kB'), 500_000);
    assert.equal(parseSize('1 GB'), 1_000_000_000);
  });

  it('reads binary units as powers of 1024', () => {
    assert.equal(parseSize('512KiB'), 524_288);
    assert.equal(parseSize('8MiB'), 8_388_608);
    assert.equal(parseSize('1gib'), 1_073_741_824);
  });

  it('rounds fractions down to whole bytes', () => {
    assert.equal(parseSize('1.5KiB'), 1536);
    assert.equal(parseSize('0.0015kB'), 1);
  });

  it('rejects what is not a size, naming the option', () => {
    for (const text of ['', 'abc', '5XB', '-1', '5 M B', '1e6']) {
      assert.throws(() => parseSize(text, '--chunk-size'), { code: 'USAGE', message: new RegExp(`^--chunk-size "${text}" is not a size`) });
    }
  });

  it('rejects sizes under one byte', () => {
    assert.throws(() => parseSize('0'), { code: 'USAGE', message: 'size "0" is less than one byte' });
    assert.throws(() => parseSize('0.5'), { code: 'USAGE' });
  });
});

describe('humanSize', () => {
  it('writes bytes as Docker does: decimal units, four significant digits, no space', () => {
    assert.equal(humanSize(0), '0B');
    assert.equal(humanSize(999), '999B');
    assert.equal(humanSize(1000), '1kB');
    assert.equal(humanSize(1536), '1.536kB');
    assert.equal(humanSize(12_345_678), '12.35MB');
    assert.equal(humanSize(45_600_000), '45.6MB');
    assert.equal(humanSize(5_000_000_000), '5GB');
  });

  it('rounds ties to even and keeps 1000 in the lower unit, like Go', () => {
    assert.equal(humanSize(12_125), '12.12kB');
    assert.equal(humanSize(12_135), '12.14kB');
    assert.equal(humanSize(999_999), '1000kB');
    assert.equal(humanSize(999_950), '1000kB');
    assert.equal(humanSize(999_949), '999.9kB');
  });

  it("writes every size and rate as Intl.NumberFormat's four significant digits, ties to even, would", () => {
    // humanSize formats without Intl (building the formatter costs ~10 ms at start-up); this is what it replaces.
    const intl = new Intl.NumberFormat('en-US', { maximumSignificantDigits: 4, roundingMode: 'halfEven', useGrouping: false });
    const UNITS = ['B', 'kB', 'MB', 'GB', 'TB', 'PB', 'EB', 'ZB', 'YB'];
    const expected = (bytes: number) => {
      let size = bytes;
      let unit = 0;
      while (size >= 1000 && unit < UNITS.length - 1) {
        size /= 1000;
        unit += 1;
      }
      return `${intl.format(size)}${UNITS[unit]}`;
    };
    const values: number[] = [];
    for (let bytes = 0; bytes <= 30_000; bytes++) values.push(bytes);
    // Ties and near-ties at every unit, and a deterministic spread of sizes and of rates (bytes per second).
    for (let unit = 1; unit <= 1e24; unit *= 1000) for (const base of [1.0005, 1.0015, 10.005, 10.015, 99.995, 999.95, 999.5, 12.125, 0.5]) values.push(base * unit);
    let seed = 1;
    const random = () => (seed = (seed * 48_271) % 2_147_483_647) / 2_147_483_647;
    for (let i = 0; i < 20_000; i++) values.push(Math.floor(random() * 10 ** (random() * 16)), random() * 10 ** (random() * 12), random());
    for (const bytes of values) assert.equal(humanSize(bytes), expected(bytes), String(bytes));
    assert.equal(humanSize(Number.POSITIVE_INFINITY), expected(Number.POSITIVE_INFINITY));
  });
});

describe('progressText', () => {
  it('draws a 50-wide bar with the bytes sent and the total', () => {
    assert.equal(progressText(1_000_000, 2_000_000), `[${'='.repeat(25)}>${' '.repeat(25)}]      1MB/2MB`);
    assert.equal(progressText(0, 2_000_000), `[>${' '.repeat(50)}]       0B/2MB`);
    assert.equal(progressText(2_000_000, 2_000_000), `[${'='.repeat(50)}>]      2MB/2MB`);
    assert.equal(progressText(12_300_000, 45_600_000), `[=============>${' '.repeat(37)}]   12.3MB/45.6MB`);
  });

  it('shows only the bytes when the total is unknown or exceeded', () => {
    assert.equal(progressText(1_050_000, undefined), '  1.05MB');
    assert.equal(progressText(3_000_000, 2_000_000), `[${'='.repeat(50)}>]      3MB`);
    assert.equal(progressText(0, undefined), '');
  });

  it('leaves the bar out on terminals of 110 columns or fewer', () => {
    assert.equal(progressText(1_000_000, 2_000_000, 110), '     1MB/2MB');
    assert.equal(progressText(1_000_000, 2_000_000, 111), `[${'='.repeat(25)}>${' '.repeat(25)}]      1MB/2MB`);
  });
});
