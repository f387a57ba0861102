import { isPushError, RegistryUnreachableError, sha256Digest, type Digest } from '@rxpush/core';
import { readBody, type RegistryClient, type RequestOptions } from '@rxpush/registry-client';

/**
 * Makes sure a small blob rxpush made itself (a signature payload, a signature config, Docker's empty tar) is
 * in the repository: HEAD first, then one monolithic upload of the bytes.
 */
export async function putSmallBlob(client: RegistryClient, repository: string, bytes: Uint8Array, opts: RequestOptions = {}): Promise<Digest> {
  const digest = sha256Digest(bytes);
  if ((await client.hasBlob(repository, digest, opts)) !== undefined) return digest;
  const start = await client.startUpload(repository, opts);
  if (start.kind === 'session') await client.finishUpload(start, digest, { ...opts, body: bytes });
  return digest;
}

/**
 * Reads a small blob (an image config, a signature payload) whole, checking its bytes against its digest;
 * `undefined` when it is larger than `limit` or its bytes do not match.
 */
export async function readSmallBlob(client: RegistryClient, repository: string, digest: Digest, limit: number, opts: RequestOptions = {}): Promise<Uint8Array | undefined> {
  const body = await client.getBlob(repository, digest, opts);
  const { bytes, complete } = await readBody(body, limit).catch((error: unknown) => {
    if (isPushError(error) || (error as Error).name === 'AbortError') throw error;
    // The connection closed part-way: undici's bare "other side closed" would be the whole message.
    throw new RegistryUnreachableError(`${client.registry}/v2/${repository}/blobs/${digest}`, `the registry broke off sending it (${(error as Error).message}); try again`, { method: 'GET', cause: error });
  });
  if (!complete) return undefined;
  return sha256Digest(bytes) === digest ? bytes : undefined;
}
