import { InvalidResponseError, isDigest, isValidRepository, isValidTag, printable, ReferenceFormatError, TlsError, UsageError } from '@rxpush/core';

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

/** The port of `url`, its scheme's default (80 for http:, else 443) when it names none. */
export function effectivePort(url: URL): string {
  return url.port !== '' ? url.port : url.protocol === 'http:' ? '80' : '443';
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

/**
 * A Location (or Link) value resolved against the URL of the request that returned it.
 *
 * @throws {PushError} `REGISTRY_ERROR` naming the answer (`answer`: its method and status) when the value is
 *   not an http(s) URL; never the bare `Invalid URL` of the URL constructor.
 */
export function resolveLocation(location: string, requestUrl: URL, answer: { method: string; status: number; header?: string } = { method: 'GET', status: 0 }): URL {
  let url: URL | undefined;
  try {
    url = new URL(location, requestUrl);
  } catch {
    url = undefined;
  }
  if (url === undefined || (url.protocol !== 'https:' && url.protocol !== 'http:')) {
    const shown = printable(location.length > 100 ? `${location.slice(0, 100)}…` : location);
    throw new InvalidResponseError({
      method: answer.method,
      url: redactUrl(requestUrl),
      status: answer.status,
      problem: `with a ${answer.header ?? 'Location'} that is not an http(s) URL ("${shown}"); the registry (or a proxy in front of it) is broken`,
    });
  }
  return url;
}

/**
 * Refuses a request that would take an HTTPS registry's traffic to plain HTTP: an upload Location or a
 * redirect on `http:` would send the layer's bytes, the upload session (and, for the registry's own
 * host, credentials) in the clear. Plain HTTP is used only where the user asked for it (`plainHttp`),
 * or for a loopback registry that speaks nothing else; then the registry's origin is `http:` already.
 *
 * @throws {TlsError} (code `TLS`), naming the request and where it was sent from.
 */
export function refuseDowngrade(registryOrigin: string, request: { method: string; url: URL; from?: URL | undefined }): void {
  if (request.url.protocol !== 'http:' || !registryOrigin.startsWith('https:')) return;
  const via = request.from !== undefined ? `a redirect from ${redactUrl(request.from)} points to` : `the registry (${registryOrigin}) handed out`;
  throw new TlsError(redactUrl(request.url), `${via} plain HTTP, which would send the upload and its session in the clear; fix the registry's (or its proxy's) Location and redirects, or pass --plain-http if the registry is meant to serve plain HTTP`, {
    method: request.method,
    refused: true,
  });
}

/**
 * `url` with `key=value` set, keeping the rest of the query it already has byte for byte (registries put
 * `_state` there, whose `+` URLSearchParams would turn into a space). A `key` already there is replaced: a
 * Location that carries a `digest=` of its own must not reach the registry with two.
 * The value is not percent-encoded beyond what URLs need: digests stay readable (`sha256:…`).
 */
export function withQuery(url: URL, key: string, value: string): URL {
  const next = new URL(url);
  const kept = next.search.slice(1).split('&').filter((part) => part !== '' && decodeKey(part) !== key);
  next.search = [...kept, `${encodeURIComponent(key)}=${readable(value)}`].join('&');
  return next;
}

function decodeKey(part: string): string {
  const raw = part.split('=', 1)[0] ?? '';
  try {
    return decodeURIComponent(raw.replace(/\+/g, ' '));
  } catch {
    return raw;
  }
}
