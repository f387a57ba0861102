import type { Readable } from 'node:stream';

import { UsageError } from '@rxpush/core';

/** No password is this long; a bigger stdin is a mistake (a file piped in by accident). */
const LIMIT = 64 * 1024;

/**
 * Reads a password from a stream to its end (`--password-stdin`), as Docker does: one trailing line
 * break (`\n` or `\r\n`) is dropped, nothing else is trimmed.
 *
 * @throws {UsageError} when stdin is empty or longer than 64 KiB.
 * @example const password = await readPassword(process.stdin)
 */
export async function readPassword(stream: Readable, option = '--password-stdin'): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of stream) {
    const buf = typeof chunk === 'string' ? Buffer.from(chunk) : (chunk as Buffer);
    size += buf.length;
    if (size > LIMIT) throw new UsageError(`${option} read more than 64 KiB from stdin; pipe the password alone`);
    chunks.push(buf);
  }
  const password = Buffer.concat(chunks).toString('utf8').replace(/\r?\n$/, '');
  if (password === '') throw new UsageError(`${option} read an empty password from stdin; pipe the password in, e.g. printf %s "$PASSWORD" | rxpush push …`);
  return password;
}
