import type { Digest } from '@rxpush/core';
import { sha256Digest } from '@rxpush/core';

/**
 * The chain IDs of a list of diff IDs, as Docker names its layer store's directories and computes
 * legacy layer IDs: chainID(0) = diffID(0), chainID(n) = sha256(chainID(n-1) + " " + diffID(n)).
 *
 * @example chainIds([a, b]) // [a, sha256(`${a} ${b}`)]
 */
export function chainIds(diffIds: readonly Digest[]): Digest[] {
  const ids: Digest[] = [];
  for (const diffId of diffIds) {
    const parent = ids.at(-1);
    ids.push(parent === undefined ? diffId : sha256Digest(`${parent} ${diffId}`));
  }
  return ids;
}
