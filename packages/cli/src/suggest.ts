/**
 * What the user may have meant by an unknown command or option: a near spelling of a known one, or the name
 * rxpush gives an option of skopeo copy's (people come to rxpush from skopeo).
 */

/** skopeo copy's options that rxpush has under another name. */
const SKOPEO_NAMES: Readonly<Record<string, string>> = {
  'dest-creds': 'creds',
  'dest-username': 'username',
  'dest-authfile': 'authfile',
  'dest-tls-verify': 'tls-verify',
  'dest-cert-dir': 'cert-dir',
  'dest-compress-format': 'compression',
  'dest-compress-level': 'compression-level',
  'retry-times': 'retries',
  'sign-by': 'sign-key',
  'override-arch': 'platform',
  'override-os': 'platform',
  'override-variant': 'platform',
};

/**
 * ` (did you mean --concurrency?)` for `--concurency`, ` (skopeo's name; rxpush's is --tls-verify)` for
 * `--dest-tls-verify`, or '' when nothing known is near. `known` are the command's option names.
 */
export function suggestOption(typed: string, known: readonly string[]): string {
  const skopeo = SKOPEO_NAMES[typed];
  if (skopeo !== undefined && known.includes(skopeo)) return ` (skopeo's name; rxpush's is --${skopeo})`;
  const near = nearest(typed, known);
  return near === undefined ? '' : ` (did you mean --${near}?)`;
}

/** ` (did you mean push?)` for `pus`, or ''. */
export function suggestCommand(typed: string, known: readonly string[]): string {
  const near = nearest(typed, known);
  return near === undefined ? '' : ` (did you mean ${near}?)`;
}

/** The one known word within a typo or two of `typed` (one for words of four letters or fewer), if there is one. */
function nearest(typed: string, known: readonly string[]): string | undefined {
  const limit = typed.length <= 4 ? 1 : 2;
  let best: string | undefined;
  let bestDistance = limit + 1;
  let tie = false;
  for (const word of known) {
    const distance = editDistance(typed, word);
    if (distance < bestDistance) [best, bestDistance, tie] = [word, distance, false];
    else if (distance === bestDistance) tie = true;
  }
  return best !== undefined && !tie ? best : undefined;
}

/** Optimal string alignment distance: insertions, deletions, substitutions and swaps of neighbours each count one. */
function editDistance(a: string, b: string): number {
  const rows = Array.from({ length: a.length + 1 }, (_, i) => Array.from({ length: b.length + 1 }, (_, j) => (i === 0 ? j : j === 0 ? i : 0)));
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      let d = Math.min(rows[i - 1]![j]! + 1, rows[i]![j - 1]! + 1, rows[i - 1]![j - 1]! + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) d = Math.min(d, rows[i - 2]![j - 2]! + 1);
      rows[i]![j] = d;
    }
  }
  return rows[a.length]![b.length]!;
}
