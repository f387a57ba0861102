import { createHash } from 'node:crypto';
import { constants } from 'node:fs';

import type { Digest } from '@rxpush/core';
import { DigestMismatchError, splitDigest } from '@rxpush/core';

/**
 * How to open a file for reading that is checked to be a regular file once it is open: O_NONBLOCK makes opening a
 * FIFO return at once (without it the open waits for a writer, forever when there is none); reads of a regular file
 * ignore it.
 */
export const READ_THEN_CHECK = constants.O_RDONLY | constants.O_NONBLOCK;

const GZIP_MAGIC = Buffer.from([0x1f, 0x8b]);

/** Whether `head`, the first bytes of a file or stream, start a gzip stream (RFC 1952's ID1 ID2). */
export function isGzip(head: Uint8Array): boolean {
  return head.length >= GZIP_MAGIC.length && GZIP_MAGIC.equals(head.subarray(0, GZIP_MAGIC.length));
}

/**
 * For a missing `~/…` path: the shell expands `~` only at the start of a word, so `oci:~/image` reaches rxpush
 * as it was typed. Empty for any other path.
 *
 * @example tildeHint('~/image', 'oci:') // " (the shell expands ~ only at the start of a word, not after oci:; write oci:$HOME/image)"
 */
export function tildeHint(path: string, transport: string): string {
  if (path !== '~' && !path.startsWith('~/')) return '';
  return ` (the shell expands ~ only at the start of a word, not after ${transport}; write ${transport}$HOME${path.slice(1)})`;
}

/** Whether `err` is a Node.js system error with this `code` (ENOENT, EACCES, ELOOP…). */
export function isCode(err: unknown, code: string): boolean {
  return typeof err === 'object' && err !== null && (err as { code?: unknown }).code === code;
}

/** Whether `err` says a path does not exist (or a part of it is not a directory). */
export function isNotFound(err: unknown): boolean {
  return isCode(err, 'ENOENT') || isCode(err, 'ENOTDIR');
}

/** Fails with a DigestMismatchError naming `path` when `bytes` (read from it) do not hash to `digest`. */
export function verifyDigest(bytes: Uint8Array, digest: Digest, path: string): void {
  const { algorithm } = splitDigest(digest);
  const actual: Digest = `${algorithm}:${createHash(algorithm).update(bytes).digest('hex')}`;
  if (actual !== digest) throw new DigestMismatchError(digest, actual, path);
}
