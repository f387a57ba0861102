import type { Readable } from 'node:stream';

import { parseDigest, type Digest } from '@rxpush/core';

import { contentLength, pull, type Requester } from './requester.js';
import { dump, header } from './send.js';
import type { BlobInfo, RequestOptions } from './types.js';
import { checkRepository } from './urls.js';

/** {@link RegistryClient.hasBlob}, over the client's requester. */
export async function hasBlob(r: Requester, repository: string, digest: Digest, opts: RequestOptions = {}): Promise<BlobInfo | undefined> {
  const repo = checkRepository(repository);
  const checked = parseDigest(digest);
  const path = `/v2/${repo}/blobs/${checked}`;
  const res = await r.send({ method: 'HEAD', path, scopes: [pull(repo)], ok: [200, 404], followRedirects: true, signal: opts.signal, onRetry: opts.onRetry, budget: opts.budget });
  await dump(res.body);
  if (res.status === 404) return undefined;
  const answered = header(res.headers, 'docker-content-digest');
  if (answered !== undefined && answered !== checked) {
    r.logger.debug({ digest: checked, answered }, 'the registry answered a blob HEAD with another digest; uploading it');
    return undefined;
  }
  const size = contentLength(res) ?? (await rangedSize(r, path, repo, opts));
  if (size === undefined) {
    r.logger.debug({ digest: checked }, 'the registry has the blob but tells no size; uploading it');
    return undefined;
  }
  return { digest: checked, size };
}
/** A blob's size from a one-byte ranged GET, for registries whose HEAD answers lost their Content-Length. */
export async function rangedSize(r: Requester, path: string, repo: string, opts: RequestOptions): Promise<number | undefined> {
  const res = await r.send({
    method: 'GET',
    path,
    headers: { range: 'bytes=0-0' },
    scopes: [pull(repo)],
    ok: [200, 206, 404, 416],
    followRedirects: true,
    signal: opts.signal,
    onRetry: opts.onRetry,
    budget: opts.budget,
  });
  if (res.status === 200) {
    // The whole blob: its length is all that is wanted, not its bytes. undici fails a body destroyed before its
    // end with an AbortError, expected here; an 'error' nobody listens to would end the process.
    res.body.on('error', () => {});
    res.body.destroy();
  } else {
    // One byte, or an error's few: read to the end, so the connection is kept.
    await dump(res.body);
  }
  if (res.status === 206) {
    const total = /\/(\d+)\s*$/.exec(header(res.headers, 'content-range') ?? '')?.[1];
    const size = Number(total);
    return total !== undefined && Number.isSafeInteger(size) ? size : undefined;
  }
  return res.status === 200 ? contentLength(res) : undefined;
}
/** {@link RegistryClient.getBlob}, over the client's requester. */
export async function getBlob(r: Requester, repository: string, digest: Digest, opts: RequestOptions = {}): Promise<Readable> {
  const repo = checkRepository(repository);
  const checked = parseDigest(digest);
  const res = await r.send({
    method: 'GET',
    path: `/v2/${repo}/blobs/${checked}`,
    scopes: [pull(repo)],
    ok: [200],
    followRedirects: true,
    signal: opts.signal,
    onRetry: opts.onRetry,
    budget: opts.budget,
  });
  return res.body;
}
