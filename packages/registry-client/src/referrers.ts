import { MediaType, parseDigest, type Descriptor, type Digest } from '@rxpush/core';

import { parseJson } from './manifests.js';
import { pull, readAnswer, type Requester } from './requester.js';
import { dump, header } from './send.js';
import type { RequestOptions } from './types.js';
import { checkRepository } from './urls.js';

/** A referrers index is a small document, like a manifest. */
const REFERRERS_LIMIT = 4 * 1024 * 1024;

/** {@link RegistryClient.getReferrers}, over the client's requester. */
export async function getReferrers(r: Requester, repository: string, digest: Digest, opts: RequestOptions = {}): Promise<Descriptor[] | undefined> {
  const repo = checkRepository(repository);
  const checked = parseDigest(digest);
  const res = await r.send({
    method: 'GET',
    path: `/v2/${repo}/referrers/${checked}`,
    headers: { accept: MediaType.ociIndex },
    scopes: [pull(repo)],
    // Registries without the API answer 404 (the reference registry), some 400 or 405.
    ok: [200, 400, 404, 405],
    signal: opts.signal,
    onRetry: opts.onRetry,
  });
  const type = (header(res.headers, 'content-type') ?? '').split(';')[0]?.trim();
  if (res.status !== 200 || type !== MediaType.ociIndex) {
    await dump(res.body);
    return undefined;
  }
  const { bytes, complete } = await readAnswer(r, res, REFERRERS_LIMIT, opts.signal);
  const index = complete ? (parseJson(bytes) as { manifests?: unknown } | undefined) : undefined;
  return Array.isArray(index?.manifests) ? (index.manifests as Descriptor[]) : undefined;
}
