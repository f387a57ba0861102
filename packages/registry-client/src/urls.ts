import { isDigest, isValidRepository, isValidTag, ReferenceFormatError, UsageError } from '@rxpush/core';

/**
 * Query parameters whose values are safe to show. Everything else is redacted: `_state` carries the
 * registry's signed upload state, and redirect targets carry signatures and credentials (X-Amz-*, sig, token).
 */
const SHOWN_QUERY = new Set(['digest', 'mount', 'from', 'n', 'last']);

/**
 * A URL as it may appear in messages and logs: user info dropped, query values other than
 * digest/mount/from/n/last replaced by `REDACTED`.
 *
 * @example redactUrl(new URL('http://r/v2/app/blobs/uploads/1?_state=abc&digest=sha256:…')) // 'http://r/v2/app/blobs/uploads/1?_state=REDACTED&digest=sha256:…'
 */
export function redactUrl(url: URL | string): string {
  const u = new URL(url);
  u.username = '';
  u.password = '';
  if (u.search === '') return u.href;
  // Build the query by hand: URLSearchParams would percent-encode the `:` of digests and hurt readability.
  const parts = [...u.searchParams].map(([key, value]) => `${encodeURIComponent(key)}=${SHOWN_QUERY.has(key) ? readable(value) : 'REDACTED'}`);
  u.search = '';
  return `${u.href}?${parts.join('&')}`;
}

function readable(value: string): string {
  return encodeURIComponent(value).replace(/%3A/gi, ':').replace(/%2F/gi, '/');
}

/** Checks a repository name before it goes into a URL path. */
export function checkRepository(repository: string): string {
  if (!isValidRepository(repository) || repository.length > 255) {
    throw new ReferenceFormatError(repository, 'the repository name must be lowercase letters, digits and separators (. _ - /), at most 255 characters');
  }
  return repository;
}

/** Checks a manifest reference (a tag or a digest) before it goes into a URL path. */
export function checkManifestReference(repository: string, reference: string): string {
  if (isValidTag(reference) || isDigest(reference)) return reference;
  throw new ReferenceFormatError(`${repository}:${reference}`, `"${reference}" is neither a valid tag nor a sha256 digest`);
}

/** The parts of `host[:port]`, checked. */
export function parseRegistry(registry: string): { host: string; hostname: string } {
  let url: URL | undefined;
  try {
    url = new URL(`https://${registry}`);
  } catch {
    url = undefined;
  }
  if (url === undefined || url.host !== registry.toLowerCase() || url.pathname !== '/' || url.username !== '' || registry.includes('?')) {
    throw new UsageError(`invalid registry "${registry}": expected host[:port], e.g. localhost:5000 or ghcr.io`);
  }
  return { host: url.host, hostname: url.hostname };
}

/** True for registries on this machine: 127.0.0.0/8, ::1 and localhost. Only these may fall back to plain HTTP. */
export function isLoopbackHost(hostname: string): boolean {
  const name = hostname.toLowerCase();
  if (name === 'localhost' || name.endsWith('.localhost')) return true;
  if (name === '[::1]' || name === '::1') return true;
  return /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(name);
}

/** The host requests go to: Docker Hub's API lives at registry-1.docker.io, not at the name users write. */
export function apiHost(host: string): string {
  return host === 'docker.io' || host === 'index.docker.io' ? 'registry-1.docker.io' : host;
}

/** A Location (or Link) value resolved against the URL of the request that returned it. */
export function resolveLocation(location: string, requestUrl: URL): URL {
  return new URL(location, requestUrl);
}

/**
 * `url` with `key=value` added, keeping the query it already has (registries put `_state` there).
 * The value is not percent-encoded beyond what URLs need: digests stay readable (`sha256:…`).
 */
export function withQuery(url: URL, key: string, value: string): URL {
  const next = new URL(url);
  const pair = `${encodeURIComponent(key)}=${readable(value)}`;
  next.search = next.search === '' || next.search === '?' ? pair : `${next.search.slice(1)}&${pair}`;
  return next;
}
