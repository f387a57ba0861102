// Types of tools/other-nodes.mjs (plain ESM, so that setup can run it before anything is installed).

/** One major version of Node.js, installed on demand into node_modules/.cache. */
export interface OtherNode {
  readonly major: number;
  /** Where its binary is once installed. */
  readonly path: string;
  /** Its version (`v22.…`) when installed and of the right major, else undefined. */
  installed(): string | undefined;
  /** Installs it unless it is there; returns its version. */
  ensure(): string;
}

export function otherNode(major: number): OtherNode;
export const NODE24: OtherNode;
export const NODE22: OtherNode;
