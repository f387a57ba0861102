import { BlobNotVerifiedError, DigestMismatchError, RegistryError, isDigest, parseDigest, type Digest } from '@rxpush/core';

import { hasBlob } from './blobs.js';
import { bodyLength, pull, push, type Requester } from './requester.js';
import { isRetryable } from './retry.js';
import { dump, header } from './send.js';
import type { BlobInfo, Body, RequestOptions, UploadSession, UploadStart } from './types.js';
import { nextSession, rangeOffset, sessionRepository } from './upload-session.js';
import { checkRepository, redactUrl, withQuery } from './urls.js';

/** A session cancel is sent at most this many times, without waiting in between. */
const CANCEL_ATTEMPTS = 3;

/** {@link RegistryClient.startUpload}, over the client's requester. */
export async function startUpload(r: Requester, repository: string, opts: RequestOptions & { mount?: { digest: Digest; from: string } } = {}): Promise<UploadStart> {
  const repo = checkRepository(repository);
  let url = new URL(`/v2/${repo}/blobs/uploads/`, 'http://placeholder');
  const scopes = [push(repo)];
  if (opts.mount !== undefined) {
    const from = checkRepository(opts.mount.from);
    url = withQuery(withQuery(url, 'mount', parseDigest(opts.mount.digest)), 'from', from);
    scopes.push(pull(from));
  }
  // Bodiless on purpose: a 401 here can be answered and retried, which leaves the authenticator
  // holding push credentials before any stream body is sent.
  const res = await r.send({
    method: 'POST',
    path: `${url.pathname}${url.search}`,
    headers: { 'content-length': '0' },
    scopes,
    ok: opts.mount !== undefined ? [201, 202] : [202],
    signal: opts.signal,
    onRetry: opts.onRetry,
    budget: opts.budget,
  });
  await dump(res.body);
  if (res.status === 201 && opts.mount !== undefined) return { kind: 'mounted', digest: opts.mount.digest };
  return { kind: 'session', ...nextSession(res, 'POST', { repository: repo }, rangeOffset(header(res.headers, 'range')) ?? 0) };
}
/** {@link RegistryClient.uploadChunk}, over the client's requester. */
export async function uploadChunk(r: Requester, session: UploadSession, body: Body, opts: RequestOptions & { contentRange?: boolean } = {}): Promise<UploadSession> {
  const length = bodyLength(body);
  const headers: Record<string, string> = { 'content-type': 'application/octet-stream' };
  if (opts.contentRange === true && length !== undefined && length > 0) {
    headers['content-range'] = `${session.offset}-${session.offset + length - 1}`;
  }
  const repository = sessionRepository(session);
  const res = await r.send({
    method: 'PATCH',
    url: session.location,
    headers,
    body,
    ...(repository !== undefined && { scopes: [push(repository)] }),
    // The spec says 202; AWS ECR answers 201, and some proxies 204.
    ok: [201, 202, 204],
    signal: opts.signal,
    onRetry: opts.onRetry,
    budget: opts.budget,
  });
  await dump(res.body);
  const expected = length === undefined ? undefined : session.offset + length;
  const previous = { location: session.location, repository, minChunkLength: session.minChunkLength };
  const offset = rangeOffset(header(res.headers, 'range'), expected) ?? expected;
  const next = nextSession(res, 'PATCH', previous, offset ?? session.offset);
  // Neither a Range nor a known length: only the registry knows how many bytes it holds now.
  return offset === undefined ? uploadStatus(r, next, opts) : next;
}
/** {@link RegistryClient.finishUpload}, over the client's requester. */
export async function finishUpload(r: Requester, session: UploadSession, digest: Digest, opts: RequestOptions & { body?: Body } = {}): Promise<BlobInfo> {
  const checked = parseDigest(digest);
  const url = withQuery(session.location, 'digest', checked);
  const length = opts.body === undefined ? 0 : bodyLength(opts.body);
  const headers: Record<string, string> = { 'content-type': 'application/octet-stream' };
  if (opts.body === undefined) headers['content-length'] = '0';
  const repository = sessionRepository(session);
  let resent = false;
  let lost: RegistryError | undefined;
  const res = await r
    .send({
      method: 'PUT',
      url,
      headers,
      ...(opts.body !== undefined && { body: opts.body }),
      ...(repository !== undefined && { scopes: [push(repository)] }),
      // The spec says 201; some registries and proxies answer 200 or 204, which is confirmed below.
      ok: [200, 201, 204],
      signal: opts.signal,
      onRetry: (retrying) => {
        resent = true;
        opts.onRetry?.(retrying);
      },
      budget: opts.budget,
    })
    .catch((error: unknown) => {
      // A commit sent again after its answer was lost finds the session gone (404) when the first one landed, or,
      // when it comes while the reference registry is still removing the finished session, a session with no
      // bytes (400 DIGEST_INVALID): a HEAD says whether the blob is there, rather than failing a push the registry
      // has completed.
      const landed = error instanceof RegistryError && (error.status === 404 || (error.status === 400 && error.registryCode === 'DIGEST_INVALID'));
      if (!resent || repository === undefined || !landed) throw error;
      lost = error;
      return undefined;
    });
  if (res !== undefined) {
    await dump(res.body);
    const answered = header(res.headers, 'docker-content-digest');
    if (isDigest(answered) && answered !== checked) {
      throw new DigestMismatchError(checked, answered, redactUrl(url), {
        message: `PUT ${redactUrl(url)} → ${res.status} but the registry stored ${answered}, not ${checked}: the bytes changed on the way; push again`,
      });
    }
    // A digest header that is not a digest says nothing: the HEAD below does.
    if (length !== undefined && res.status === 201 && (answered === undefined || answered === checked)) return { digest: checked, size: session.offset + length };
  }
  const status = res?.status ?? 404;
  // A stream of unknown length (compressed on the fly), or a success other than 201: ask the registry what it stored.
  const stored = repository === undefined ? undefined : await hasBlob(r, repository, checked, opts);
  if (stored === undefined) {
    if (lost !== undefined) throw lost;
    if (length !== undefined && status !== 201 && repository === undefined) return { digest: checked, size: session.offset + length };
    throw new BlobNotVerifiedError(`PUT ${redactUrl(url)} → ${status} but the blob ${checked} cannot be found afterwards; push again`);
  }
  if (length !== undefined && stored.size !== session.offset + length) {
    throw new BlobNotVerifiedError(
      `PUT ${redactUrl(url)} → ${status} but the registry holds ${stored.size} bytes for ${checked}, not the ${session.offset + length} sent; push again`,
    );
  }
  return stored;
}
/** {@link RegistryClient.cancelUpload}, over the client's requester. */
export function cancelUpload(r: Requester, session: UploadSession, opts: RequestOptions & { after?: Promise<unknown> } = {}): Promise<void> {
  const repository = sessionRepository(session);
  const cancel = (async () => {
    await opts.after?.then(
      () => undefined,
      () => undefined,
    );
    for (let attempt = 1; ; attempt++) {
      try {
        const res = await r.send({
          method: 'DELETE',
          url: session.location,
          ...(repository !== undefined && { scopes: [push(repository)] }),
          ok: [200, 202, 204, 404],
          signal: opts.signal,
          onRetry: opts.onRetry,
          budget: opts.budget,
          retries: 0,
        });
        await dump(res.body);
        return;
      } catch (error) {
        // undici's Agent closes an origin's pool once its last connection is gone, as happens when every
        // upload was just aborted; a DELETE caught in that fails without reaching the registry. Sent again at
        // once, it gets a fresh pool. No backoff: this is cleanup, and a cancelled push should end promptly.
        if (attempt < CANCEL_ATTEMPTS && opts.signal?.aborted !== true && isRetryable(error)) continue;
        r.logger.debug({ url: redactUrl(session.location), err: error }, 'cancelling the upload failed');
        return;
      }
    }
  })();
  r.cancelling.add(cancel);
  void cancel.finally(() => r.cancelling.delete(cancel));
  return cancel;
}
/** {@link RegistryClient.uploadStatus}, over the client's requester. */
export async function uploadStatus(r: Requester, session: UploadSession, opts: RequestOptions = {}): Promise<UploadSession> {
  const repository = sessionRepository(session);
  const res = await r.send({
    method: 'GET',
    url: session.location,
    ...(repository !== undefined && { scopes: [push(repository)] }),
    ok: [200, 204],
    signal: opts.signal,
    onRetry: opts.onRetry,
    budget: opts.budget,
  });
  await dump(res.body);
  const previous = { location: session.location, repository, minChunkLength: session.minChunkLength };
  return nextSession(res, 'GET', previous, rangeOffset(header(res.headers, 'range')) ?? 0);
}
