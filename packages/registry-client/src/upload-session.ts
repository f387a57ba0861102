import type { IncomingHttpHeaders } from 'node:http';

import { InvalidResponseError } from '@rxpush/core';

import { header } from './send.js';
import type { UploadSession } from './types.js';
import { redactUrl, resolveLocation } from './urls.js';

/**
 * The bytes a registry holds according to its `Range: 0-<last>` header. Distribution answers `0-0` for an
 * empty session too, so `0-0` is ambiguous between 0 and 1 byte: callers that know what they sent pass
 * `expected` to settle it, and everyone else gets 0 (re-sending a byte fails loudly; skipping one corrupts).
 */
export function rangeOffset(value: string | undefined, expected?: number): number | undefined {
  const match = value === undefined ? null : /^(?:bytes=)?0-(\d+)$/.exec(value.trim());
  if (match === null) return undefined;
  const last = Number(match[1]);
  if (last === 0) return expected !== undefined && expected <= 1 ? expected : 0;
  return last + 1;
}

/** The session a registry's answer points to: its (new) Location, the bytes it holds, its chunk minimum. */
export function nextSession(
  res: { headers: IncomingHttpHeaders; url: URL; status: number },
  method: string,
  previous: { location?: URL; repository: string | undefined; minChunkLength?: number | undefined },
  offset: number,
): UploadSession {
  const location = header(res.headers, 'location');
  let url = previous.location;
  // An empty Location would resolve to the request's own URL, which is no session: it counts as none.
  if (location !== undefined && location.trim() !== '') url = resolveLocation(location, res.url, { method, status: res.status });
  if (url === undefined) {
    throw new InvalidResponseError({
      method,
      url: redactUrl(res.url),
      status: res.status,
      problem: 'without a Location header: the registry does not follow the distribution API; check the registry address (a proxy?)',
    });
  }
  const min = Number(header(res.headers, 'oci-chunk-min-length'));
  const minChunkLength = Number.isSafeInteger(min) && min > 0 ? min : previous.minChunkLength;
  return {
    location: url,
    offset,
    answer: { method, status: res.status },
    ...(previous.repository !== undefined && { repository: previous.repository }),
    ...(minChunkLength !== undefined && { minChunkLength }),
  };
}

/** The repository of a session, for its auth scopes. */
export function sessionRepository(session: UploadSession): string | undefined {
  if (session.repository !== undefined && session.repository !== '') return session.repository;
  return /^\/v2\/(.+)\/blobs\/uploads\//.exec(session.location.pathname)?.[1];
}
