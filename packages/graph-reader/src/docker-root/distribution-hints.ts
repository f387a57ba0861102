import { join } from 'node:path';

import type { BlobHint, Digest, Logger } from '@rxpush/core';
import { InvalidSourceError, isDigest, isPushError, parseReference, splitDigest } from '@rxpush/core';

import { parseJson } from '../shared/json.js';
import { readMetadataFile } from './metadata-file.js';

/**
 * The compressed digests Docker's distribution metadata knows a layer under, and where:
 * `image/<driver>/distribution/v2metadata-by-diffid/sha256/<diff ID hex>` holds a JSON list of
 * `{ Digest, SourceRepository, HMAC }` written when Docker pushed or pulled the layer
 * (`SourceRepository` is a full name, `docker.io/library/alpine` or `127.0.0.1:5000/app`).
 *
 * The metadata is only a hint (the registry is asked before anything is skipped), so a missing or
 * damaged file yields no hints, with a warning for the latter, rather than failing the push.
 *
 * @example await readDistributionHints('/var/lib/docker/image/overlay2', diffId, logger) // [{ digest, registry: 'docker.io', repository: 'library/alpine' }]
 */
export async function readDistributionHints(driverDir: string, diffId: Digest, logger: Logger): Promise<BlobHint[]> {
  const path = join(driverDir, 'distribution', 'v2metadata-by-diffid', 'sha256', splitDigest(diffId).hex);
  let entries: unknown;
  try {
    const bytes = await readMetadataFile(path, 'distribution metadata', 1024 * 1024);
    if (bytes === undefined) return [];
    entries = parseJson(bytes, (problem) => new InvalidSourceError(path, `${path} ${problem}`));
  } catch (err) {
    // Permission errors are the data root's, and reported by what reads the layer itself.
    if (!isPushError(err)) throw err;
    logger.warn({ path, err }, 'Docker distribution metadata unreadable; pushing without its hints');
    return [];
  }
  if (!Array.isArray(entries)) {
    logger.warn({ path }, 'Docker distribution metadata is not a list; pushing without its hints');
    return [];
  }

  const hints: BlobHint[] = [];
  const seen = new Set<string>();
  for (const entry of entries as unknown[]) {
    const { Digest: digest, SourceRepository: repository } = (entry ?? {}) as Record<string, unknown>;
    if (!isDigest(digest)) continue;
    const hint = { digest, ...where(repository) };
    const key = `${hint.digest} ${hint.registry ?? ''}/${hint.repository ?? ''}`;
    if (seen.has(key)) continue;
    seen.add(key);
    hints.push(hint);
  }
  return hints;
}

function where(sourceRepository: unknown): { registry?: string; repository?: string } {
  if (typeof sourceRepository !== 'string') return {};
  try {
    const { registry, repository, tag, digest } = parseReference(sourceRepository);
    // A repository name, not an image: anything more means the entry is not what Docker writes.
    return tag === undefined && digest === undefined ? { registry, repository } : {};
  } catch {
    return {};
  }
}
