import { isDigest, MediaType, parseDigest, RegistryError, splitDigest, UnsupportedError, type Descriptor, type Digest } from '@rxpush/core';

import { fetchManifest, parseJson, putManifest } from './manifests.js';
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

/**
 * The tag the distribution spec's "referrers tag schema" keeps a subject's referrers under, for registries
 * without the referrers API: `<algorithm>-<hex>`, the hex cut to 64 characters (so sha512 digests fit a tag).
 */
export function referrersTagOf(subject: Digest): string {
  const { algorithm, hex } = splitDigest(subject);
  return `${algorithm}-${hex.slice(0, 64)}`;
}

/** A pushed manifest as a referrers index lists it, and the subject it refers to. */
export interface Referrer {
  readonly subject: Digest;
  readonly descriptor: Descriptor;
}

/**
 * The referrer an OCI manifest or index is, when it has a `subject`: its descriptor with the artifact type
 * the spec gives it (its own `artifactType`, else an image manifest's config type) and its annotations.
 * Undefined for anything else, Docker's types included (they have no `subject`).
 */
export function referrerOf(manifest: { bytes: Uint8Array; mediaType: string }, digest: Digest): Referrer | undefined {
  if (manifest.mediaType !== MediaType.ociManifest && manifest.mediaType !== MediaType.ociIndex) return undefined;
  // Most manifests have no subject; they are not parsed again for it.
  if (!Buffer.from(manifest.bytes.buffer, manifest.bytes.byteOffset, manifest.bytes.byteLength).includes('"subject"')) return undefined;
  const document = parseJson(manifest.bytes) as
    | { subject?: { digest?: unknown }; artifactType?: unknown; config?: { mediaType?: unknown }; annotations?: unknown }
    | undefined;
  const subject = document?.subject?.digest;
  if (typeof subject !== 'string' || !isDigest(subject)) return undefined;
  const artifactType = typeof document?.artifactType === 'string' ? document.artifactType : manifest.mediaType === MediaType.ociManifest ? document?.config?.mediaType : undefined;
  const annotations = isStringRecord(document?.annotations) ? document.annotations : undefined;
  return {
    subject,
    descriptor: {
      mediaType: manifest.mediaType,
      digest,
      size: manifest.bytes.byteLength,
      ...(typeof artifactType === 'string' && { artifactType }),
      ...(annotations !== undefined && { annotations }),
    },
  };
}

/**
 * What one client remembers of the referrers tags it updates: updates of one tag run one at a time (two at once
 * would each add to the index they read, and one entry would be lost), and a referrer it has listed is not
 * looked for again (the same manifest pushed under more tags).
 */
export interface ReferrersTagState {
  /** Per `repository:tag`, the update running or queued last. */
  readonly queues: Map<string, Promise<void>>;
  /** `repository:tag@digest` of each referrer listed. */
  readonly listed: Set<string>;
}

/** How often an index changed under a conditional PUT (412) is read and written again before giving up. */
const CONDITIONAL_TRIES = 3;

/**
 * Lists `referrer` in its subject's referrers tag, as the distribution spec asks of a client whose registry
 * answered a manifest with `subject` without `OCI-Subject` (no referrers API): the index under the tag is
 * read (none yet: an empty one), the referrer added unless it is there, and the index PUT back. Returns the tag.
 * The PUT is conditional (If-Match, the ETag of the index read) where the registry sent one: a registry that
 * honours it answers 412 when another client changed the index meanwhile, and the index is read again. The
 * reference registry sends ETags but ignores If-Match, so two clients at once can still lose an entry there;
 * within one client, `state` keeps updates of one tag in turn.
 *
 * @throws {UnsupportedError} when the tag holds something other than an OCI index (it is not rxpush's to replace).
 */
export async function listReferrer(r: Requester, repository: string, referrer: Referrer, state: ReferrersTagState, opts: RequestOptions = {}): Promise<string> {
  const tag = referrersTagOf(referrer.subject);
  const key = `${repository}:${tag}`;
  const entry = `${key}@${referrer.descriptor.digest}`;
  if (state.listed.has(entry)) return tag;
  // A failed update before this one is its own caller's failure; this one reads the index afresh.
  const update = (state.queues.get(key) ?? Promise.resolve()).then(() => addReferrer(r, repository, tag, referrer, opts));
  const settled = update.then(
    () => undefined,
    () => undefined,
  );
  state.queues.set(key, settled);
  try {
    await update;
    state.listed.add(entry);
    return tag;
  } finally {
    if (state.queues.get(key) === settled) state.queues.delete(key);
  }
}

async function addReferrer(r: Requester, repository: string, tag: string, referrer: Referrer, opts: RequestOptions): Promise<void> {
  for (let attempt = 1; ; attempt++) {
    const { listed, etag } = await readReferrersTag(r, repository, tag, referrer.subject, opts);
    if (listed.some((entry) => entry.digest === referrer.descriptor.digest)) return;
    const index = { schemaVersion: 2, mediaType: MediaType.ociIndex, manifests: [...listed, referrer.descriptor] };
    try {
      await putManifest(r, repository, tag, { bytes: Buffer.from(JSON.stringify(index)), mediaType: MediaType.ociIndex }, { ...opts, ...(etag !== undefined && { ifMatch: etag }) });
      return;
    } catch (error) {
      if (!(error instanceof RegistryError) || error.status !== 412) throw error;
      if (attempt < CONDITIONAL_TRIES) continue;
      throw new RegistryError({
        method: error.method,
        url: error.url,
        status: error.status,
        registryCode: error.registryCode,
        detail: error.detail,
        hint: `the referrers tag ${tag} changed under rxpush ${CONDITIONAL_TRIES} times: another client is updating it; the manifest is pushed, push it again to list it as a referrer of ${referrer.subject}`,
      });
    }
  }
}

/** The descriptors the referrers tag lists (none when there is no such tag yet), and the index's ETag. */
async function readReferrersTag(r: Requester, repository: string, tag: string, subject: Digest, opts: RequestOptions): Promise<{ listed: { digest?: unknown }[]; etag: string | undefined }> {
  let stored;
  try {
    // Every type is accepted: the reference registry answers 404 for a manifest of a type not accepted, and an
    // image under this tag must be found and left alone, not taken for no tag and replaced.
    stored = await fetchManifest(r, repository, tag, opts, `that many referrers of ${subject} are more than rxpush lists; remove some of them from the tag's index, or push to a registry with the referrers API`);
  } catch (error) {
    if (error instanceof RegistryError && error.status === 404) return { listed: [], etag: undefined };
    throw error;
  }
  const { manifest } = stored;
  // If-Match compares strongly (RFC 9110): a weak ETag never matches, and a PUT over it would be refused forever.
  const etag = stored.etag?.startsWith('W/') === true ? undefined : stored.etag;
  const index = parseJson(manifest.bytes) as { manifests?: unknown } | undefined;
  if (manifest.mediaType !== MediaType.ociIndex || !Array.isArray(index?.manifests) || !index.manifests.every(isObject)) {
    throw new UnsupportedError(
      `the tag ${tag} of ${repository} holds a ${manifest.mediaType} that is not an OCI index of referrers, where the distribution spec keeps the referrers of ${subject}: the manifest is pushed, but not listed as a referrer; move that tag away and push again`,
    );
  }
  return { listed: index.manifests as { digest?: unknown }[], etag };
}

function isObject(value: unknown): value is object {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function isStringRecord(value: unknown): value is Record<string, string> {
  return isObject(value) && Object.values(value).every((entry) => typeof entry === 'string');
}
