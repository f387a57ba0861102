import { constants } from 'node:fs';
import { open } from 'node:fs/promises';

import type { Digest } from '@rxpush/core';
import { InvalidSourceError, SourceError, isDigest } from '@rxpush/core';

import { READ_THEN_CHECK, isCode, isNotFound } from '../shared/files.js';

/** Configs and layer metadata are small; a bigger file is not one and is not read into memory. */
export const MAX_METADATA_SIZE = 8 * 1024 * 1024;

/**
 * Reads a small file of the data root whole, or undefined when it does not exist. Refuses a symbolic
 * link as the file itself, anything but a regular file, and files over `maxSize`; other file system
 * errors (EACCES …) are thrown as they are, for the caller to explain.
 */
export async function readMetadataFile(path: string, what: string, maxSize = MAX_METADATA_SIZE): Promise<Buffer | undefined> {
  const handle = await open(path, READ_THEN_CHECK | constants.O_NOFOLLOW).catch((err: unknown) => {
    if (isNotFound(err)) return undefined;
    if (isCode(err, 'ELOOP')) throw damaged(path, `(${what}) is a symbolic link; Docker writes a regular file there`);
    throw err;
  });
  if (handle === undefined) return undefined;
  try {
    const stats = await handle.stat();
    if (!stats.isFile()) throw damaged(path, `(${what}) is not a regular file`);
    if (stats.size > maxSize) throw damaged(path, `(${what}) is ${stats.size} bytes, more than the ${maxSize} it may have`);
    return await handle.readFile();
  } finally {
    await handle.close();
  }
}

/** Reads a file that holds one digest (layerdb's `diff`, `parent`): undefined when missing or empty. */
export async function readDigestFile(path: string, what: string): Promise<Digest | undefined> {
  const bytes = await readMetadataFile(path, what, 1024);
  const text = bytes?.toString('utf8').trim();
  if (text === undefined || text === '') return undefined;
  if (!isDigest(text)) throw damaged(path, `(${what}) holds "${text.slice(0, 80)}", not a sha256 digest`);
  return text;
}

/** A SourceError for a file of the data root that is not what Docker writes. */
export function damaged(path: string, problem: string): SourceError {
  return new InvalidSourceError(path, `${path} ${problem}: the Docker data root is damaged; pull or load the image into Docker again`);
}
