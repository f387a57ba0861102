import { sha256Digest, type Digest } from '@rxpush/core';
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
  const { bytes, complete } = await readBody(await client.getBlob(repository, digest, opts), limit);
  if (!complete) return undefined;
  return sha256Digest(bytes) === digest ? bytes : undefined;
}
