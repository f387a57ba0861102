import { createHash } from 'node:crypto';

import { DigestFormatError } from './errors.js';

/** A content digest as registries use it. Only sha256 is produced; sha512 is accepted when read. */
export type Digest = `sha256:${string}` | `sha512:${string}`;

const DIGEST_PATTERN = /^(sha256:[a-f0-9]{64}|sha512:[a-f0-9]{128})$/;

/** True when `value` is a well-formed digest (`sha256:` and 64 lowercase hex, or sha512 with 128). */
export function isDigest(value: unknown): value is Digest {
  return typeof value === 'string' && DIGEST_PATTERN.test(value);
}

/**
 * Validates a digest before it is used in a path or URL.
 *
 * @throws {DigestFormatError} when `value` is not `sha256:` + 64 hex (or sha512 + 128 hex).
 * @example parseDigest('sha256:' + 'a'.repeat(64))
 */
export function parseDigest(value: unknown, what = 'digest'): Digest {
  if (isDigest(value)) return value;
  throw new DigestFormatError(value, what);
}

/** The algorithm and hex parts of a digest; the hex is safe to use as a file name. */
export function splitDigest(digest: Digest): { algorithm: 'sha256' | 'sha512'; hex: string } {
  const at = digest.indexOf(':');
  return { algorithm: digest.slice(0, at) as 'sha256' | 'sha512', hex: digest.slice(at + 1) };
}

/** Docker's 12-character short id of a digest, as progress lines show it. */
export function shortId(digest: string): string {
  const at = digest.indexOf(':');
  return digest.slice(at + 1, at + 13);
}

/** The sha256 digest of bytes already in memory (manifests, configs: small documents only). */
export function sha256Digest(bytes: Uint8Array | string): Digest {
  return `sha256:${createHash('sha256').update(bytes).digest('hex')}`;
}
