import { createHash } from 'node:crypto';
import { setTimeout as delay } from 'node:timers/promises';

import { CancelledError, RegistryError, type Descriptor, type Logger, type RawManifest } from '@rxpush/core';
import type { RegistryClient, RequestOptions } from '@rxpush/registry-client';

/** Manifest PUTs retried after a refusal that the blobs, checked again, prove wrong. */
export const MANIFEST_PUT_RETRIES = 3;
const RETRY_DELAY_MS = 250;

/**
 * Registry answers to a manifest PUT that concurrency alone can cause: the reference registry verifies a
 * manifest by reading each blob's link file, which another client mounting or committing that blob
 * rewrites in place; caught empty, it reads as an invalid digest (or a missing blob).
 */
const REFUSALS_UNDER_CONCURRENCY = new Set(['DIGEST_INVALID', 'MANIFEST_BLOB_UNKNOWN', 'BLOB_UNKNOWN']);

/** What {@link putManifestRechecked} needs besides the manifest. */
export interface RecheckedPut {
  readonly client: RegistryClient;
  readonly repository: string;
  readonly reference: string;
  /** Every blob the manifest names, as rxpush verified it before the PUT (empty: never retried). */
  readonly blobs: readonly Descriptor[];
  /** The signal, and where retries (the client's and these) are reported. */
  readonly request: RequestOptions;
  readonly logger: Logger;
}

/**
 * PUTs a manifest with `send`; when the registry refuses it in a way concurrency can cause, HEADs every blob it
 * names and, only if all are there with their sizes and the manifest's digest is the sha256 rxpush
 * computes from its bytes, PUTs it again (at most {@link MANIFEST_PUT_RETRIES} times). A refusal the
 * blobs do not disprove is thrown as it came: a real mismatch is never masked.
 */
export async function putManifestRechecked<T>(manifest: RawManifest, put: RecheckedPut, send: () => Promise<T>): Promise<T> {
  const { reference, request } = put;
  for (let attempt = 1; ; attempt++) {
    try {
      return await send();
    } catch (error) {
      if (attempt > MANIFEST_PUT_RETRIES || !refusedUnderConcurrency(error) || !ownDigest(manifest)) throw error;
      const missing = await firstMissing(put);
      if (missing !== undefined) {
        put.logger.debug({ reference, digest: missing }, 'manifest refused and a blob it names is not there: not retried');
        throw error;
      }
      const delayMs = RETRY_DELAY_MS * attempt;
      const reason = error.message;
      put.logger.debug({ reference, attempt, delayMs, reason }, 'manifest refused though every blob is there; retrying');
      request.onRetry?.({ type: 'retrying', attempt, delayMs, reason });
      await delay(delayMs, undefined, request.signal && { signal: request.signal }).catch(() => {
        throw new CancelledError();
      });
    }
  }
}

function refusedUnderConcurrency(error: unknown): error is RegistryError {
  return error instanceof RegistryError && error.method === 'PUT' && error.status === 400 && REFUSALS_UNDER_CONCURRENCY.has(error.registryCode ?? '');
}

/** Only a digest rxpush computed over the very bytes it sends proves the registry's "invalid digest" wrong. */
function ownDigest(manifest: RawManifest): boolean {
  const [algorithm, hex] = manifest.digest.split(':');
  return algorithm === 'sha256' && createHash('sha256').update(manifest.bytes).digest('hex') === hex;
}

/** The first blob the registry does not show in the repository with the size the manifest names. */
async function firstMissing({ client, repository, blobs, request }: RecheckedPut): Promise<string | undefined> {
  if (blobs.length === 0) return '(no blobs known)';
  for (const blob of blobs) {
    // Foreign layers live at their URLs, not in the registry, which does not check them either.
    if (blob.urls !== undefined && blob.urls.length > 0) continue;
    const info = await client.hasBlob(repository, blob.digest, request);
    if (info === undefined || info.size !== blob.size) return blob.digest;
  }
  return undefined;
}
