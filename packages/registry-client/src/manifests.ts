import { createHash } from 'node:crypto';

import { DigestMismatchError, InvalidResponseError, isDigest, MediaType, splitDigest, UnsupportedError, type Digest, type RawManifest } from '@rxpush/core';

import { contentLength, pull, push, readAnswer, type Requester } from './requester.js';
import { dump, header } from './send.js';
import type { RequestOptions } from './types.js';
import { checkManifestReference, checkRepository, redactUrl } from './urls.js';

/** Manifests are small documents; anything larger is refused rather than buffered (the OCI spec suggests 4 MiB). */
const MANIFEST_LIMIT = 4 * 1024 * 1024;
const DEFAULT_ACCEPT: readonly string[] = [MediaType.ociManifest, MediaType.ociIndex, MediaType.dockerManifest, MediaType.dockerManifestList];

/** {@link RegistryClient.putManifest}, over the client's requester. */
export async function putManifest(
  r: Requester,
  repository: string,
  reference: string,
  manifest: { bytes: Uint8Array; mediaType: string; digest?: Digest },
  opts: RequestOptions & { retries?: number; ifMatch?: string } = {},
): Promise<{ digest: Digest | undefined; subject: string | undefined }> {
  const repo = checkRepository(repository);
  const ref = checkManifestReference(repo, reference);
  const res = await r.send({
    method: 'PUT',
    path: `/v2/${repo}/manifests/${ref}`,
    // If-Match: only over the document read before (the referrers index); a registry that keeps ETags answers 412 otherwise.
    headers: { 'content-type': manifest.mediaType, ...(opts.ifMatch !== undefined && { 'if-match': opts.ifMatch }) },
    body: manifest.bytes,
    scopes: [push(repo)],
    // The spec says 201; registries also answer 200 (Artifactory, Quay), 202 or 204, as skopeo and ggcr accept.
    ok: [200, 201, 202, 204],
    signal: opts.signal,
    onRetry: opts.onRetry,
    ...(opts.retries !== undefined && { retries: opts.retries }),
    budget: opts.budget,
  });
  await dump(res.body);
  const answered = header(res.headers, 'docker-content-digest');
  // A registry with the referrers API names the subject it filed the manifest under (OCI distribution 1.1).
  const subject = header(res.headers, 'oci-subject');
  // Schema1 digests cover the payload without its signatures: only the caller's digest of it can be checked.
  const sent = manifest.digest ?? (isSchema1(manifest.mediaType) ? undefined : hashOf(isDigest(answered) ? answered : 'sha256:', manifest.bytes));
  if (!isDigest(answered)) {
    await confirmStored(r, repo, ref, { mediaType: manifest.mediaType, digest: sent }, { method: 'PUT', url: redactUrl(res.url), status: res.status }, opts);
    return { digest: undefined, subject };
  }
  if (sent !== undefined && answered !== sent) {
    throw new DigestMismatchError(sent, answered, redactUrl(res.url), {
      message: `PUT ${redactUrl(res.url)} → ${res.status} but the registry stored the manifest as ${answered}, not ${sent}: the registry (or a proxy) rewrote it; push to another registry or report it`,
    });
  }
  return { digest: answered, subject };
}

/**
 * A PUT answered without the digest the registry stored (the spec's 201 carries it): the manifest is asked for, so
 * that an answer made up on the way (a proxy or gateway answering in the registry's place) is not taken for a
 * push. The tag may name another manifest by then (another push to it); the manifest under its own digest is
 * enough.
 */
async function confirmStored(
  r: Requester,
  repo: string,
  ref: string,
  manifest: { mediaType: string; digest: Digest | undefined },
  put: { method: string; url: string; status: number },
  opts: RequestOptions,
): Promise<void> {
  const asked = { ...opts, accept: [manifest.mediaType] };
  const stored = await hasManifest(r, repo, ref, asked);
  if (stored !== undefined) {
    if (manifest.digest === undefined || stored.digest === manifest.digest) return;
    if (ref !== manifest.digest && (await hasManifest(r, repo, manifest.digest, asked)) !== undefined) return;
  }
  throw new InvalidResponseError({
    ...put,
    problem: `but the registry does not have the manifest afterwards${stored === undefined ? '' : ` (${ref} names ${stored.digest})`}: something between rxpush and the registry answered in its place; check the proxy or gateway in front of it, and push again`,
  });
}

/** {@link RegistryClient.getManifest}, over the client's requester. */
export async function getManifest(r: Requester, repository: string, reference: string, opts: RequestOptions & { accept?: readonly string[] } = {}): Promise<RawManifest> {
  return (await fetchManifest(r, repository, reference, opts)).manifest;
}

/** What {@link fetchManifest} advises of a manifest over 4 MiB, unless told otherwise. */
const TOO_LARGE = "ask for a smaller one (a platform's manifest, not the index)";

/**
 * A manifest and the registry's ETag for it (for a conditional PUT over it). `tooLarge` is the advice for one
 * over 4 MiB.
 */
export async function fetchManifest(
  r: Requester,
  repository: string,
  reference: string,
  opts: RequestOptions & { accept?: readonly string[] } = {},
  tooLarge = TOO_LARGE,
): Promise<{ manifest: RawManifest; etag: string | undefined }> {
  const repo = checkRepository(repository);
  const ref = checkManifestReference(repo, reference);
  const res = await r.send({
    method: 'GET',
    path: `/v2/${repo}/manifests/${ref}`,
    headers: { accept: (opts.accept ?? DEFAULT_ACCEPT).join(', ') },
    scopes: [pull(repo)],
    ok: [200],
    signal: opts.signal,
    onRetry: opts.onRetry,
    budget: opts.budget,
  });
  const where = `GET ${redactUrl(res.url)}`;
  const declared = Number(header(res.headers, 'content-length'));
  if (declared > MANIFEST_LIMIT) {
    await dump(res.body);
    throw new UnsupportedError(`${where} → ${res.status} with a manifest of ${declared} bytes: rxpush refuses manifests over 4 MiB; ${tooLarge}`);
  }
  // The answer's body is read after send() returned: a connection lost here is still this request's failure.
  const { bytes, complete } = await readAnswer(r, res, MANIFEST_LIMIT, opts.signal);
  if (!complete) throw new UnsupportedError(`${where} → ${res.status} with a manifest over 4 MiB: rxpush refuses manifests that large; ${tooLarge}`);

  const mediaType = manifestMediaType(header(res.headers, 'content-type'), bytes);
  const answered = header(res.headers, 'docker-content-digest');
  let digest: Digest;
  if (isSchema1(mediaType)) {
    // The registry's digest of a signed schema1 manifest is over its payload; trust it, or the reference.
    digest = isDigest(ref) ? ref : isDigest(answered) ? answered : hashOf('sha256:', bytes);
  } else {
    const expected = isDigest(ref) ? ref : isDigest(answered) ? answered : undefined;
    digest = hashOf(expected ?? 'sha256:', bytes);
    if (expected !== undefined && expected !== digest) {
      throw new DigestMismatchError(expected, digest, where.slice(where.indexOf(' ') + 1), {
        message: `${where} → ${res.status} with a manifest whose bytes hash to ${digest}, not ${expected}: the registry or a proxy changed it; fetch it again or check the registry`,
      });
    }
  }
  return { manifest: { bytes, mediaType, digest }, etag: header(res.headers, 'etag') };
}
/** {@link RegistryClient.hasManifest}, over the client's requester. */
export async function hasManifest(
  r: Requester,
  repository: string,
  reference: string,
  opts: RequestOptions & { accept?: readonly string[] } = {},
): Promise<{ digest: Digest; mediaType: string; size: number } | undefined> {
  const repo = checkRepository(repository);
  const ref = checkManifestReference(repo, reference);
  const res = await r.send({
    method: 'HEAD',
    path: `/v2/${repo}/manifests/${ref}`,
    headers: { accept: (opts.accept ?? DEFAULT_ACCEPT).join(', ') },
    scopes: [pull(repo)],
    ok: [200, 404],
    signal: opts.signal,
    onRetry: opts.onRetry,
    budget: opts.budget,
  });
  await dump(res.body);
  if (res.status === 404) return undefined;
  const answered = header(res.headers, 'docker-content-digest');
  const contentType = header(res.headers, 'content-type');
  const size = contentLength(res);
  if (isDigest(answered) && contentType !== undefined && size !== undefined) {
    return { digest: answered, mediaType: stripParameters(contentType), size };
  }
  // Some registries (or proxies) leave the digest, type or length off HEAD answers; the manifest itself is small.
  const manifest = await getManifest(r, repo, ref, opts);
  return { digest: manifest.digest, mediaType: manifest.mediaType, size: manifest.bytes.length };
}
function isSchema1(mediaType: string): boolean {
  return mediaType === MediaType.dockerSchema1Signed || mediaType === MediaType.dockerSchema1;
}

/** The digest of `bytes` with the algorithm of `like`. */
function hashOf(like: Digest | 'sha256:', bytes: Uint8Array): Digest {
  const algorithm = like === 'sha256:' ? 'sha256' : splitDigest(like).algorithm;
  return `${algorithm}:${createHash(algorithm).update(bytes).digest('hex')}`;
}

function stripParameters(contentType: string): string {
  return contentType.split(';')[0]?.trim() ?? contentType;
}

/** The media type of a fetched manifest: Content-Type, unless it is generic and the document names its own. */
function manifestMediaType(contentType: string | undefined, bytes: Uint8Array): string {
  const declared = contentType === undefined ? '' : stripParameters(contentType);
  if (declared !== '' && declared !== 'application/json' && declared !== 'text/plain' && declared !== 'application/octet-stream') return declared;
  const inline = (parseJson(bytes) as { mediaType?: unknown } | undefined)?.mediaType;
  if (typeof inline === 'string') return inline;
  return declared !== '' ? declared : 'application/json';
}

/** JSON bytes parsed, or undefined when they are not JSON. */
export function parseJson(bytes: Uint8Array): unknown {
  try {
    return JSON.parse(Buffer.from(bytes).toString('utf8')) as unknown;
  } catch {
    return undefined;
  }
}
