import type { Logger } from '@rxpush/core';

import { transportError } from './errors.js';
import type { SendRequest, SendResponse } from './send.js';
import { header, readBody } from './send.js';
import type { Timeouts } from './timeouts.js';
import type { Body } from './types.js';
import { redactUrl } from './urls.js';

/**
 * What the client's concerns (blobs, uploads, manifests, tags) send their requests through: the one
 * RegistryClient they belong to, with its scheme, auth, retries and logger.
 */
export interface Requester {
  /** Sends a request to a path of the registry's API, or to a URL it handed out (a session's Location). */
  send(req: Omit<SendRequest, 'url'> & ({ readonly path: string } | { readonly url: URL })): Promise<SendResponse>;
  /** The origin of the registry's API, once the scheme is settled. */
  origin(signal: AbortSignal | undefined): Promise<string>;
  readonly logger: Logger;
  /** Session cancels still in flight: the client's close() lets them finish. */
  readonly cancelling: Set<Promise<void>>;
  /** The client's timeouts, for a message about a body read after send() returned. */
  readonly timeouts: Timeouts;
}

/** The auth scope to read a repository. */
export const pull = (repository: string): string => `repository:${repository}:pull`;
/** The auth scope to write a repository. */
export const push = (repository: string): string => `repository:${repository}:push,pull`;

/** The length of a request body, when known. */
export function bodyLength(body: Body): number | undefined {
  return body instanceof Uint8Array ? body.byteLength : body.length;
}

/** The Content-Length of an answer, undefined when it is missing or not a size (proxies and CDNs drop it). */
export function contentLength(res: SendResponse): number | undefined {
  const value = header(res.headers, 'content-length');
  const size = Number(value);
  return value !== undefined && value.trim() !== '' && Number.isSafeInteger(size) && size >= 0 ? size : undefined;
}


/**
 * At most `limit` bytes of the body of a GET answer `send()` gave. The body is read after send() returned,
 * outside its error mapping, so a connection that breaks or stalls here is mapped as that request's failure
 * (`GET … failed: the registry's answer stalled for 30 s …`), not left as undici's bare `Body Timeout Error`.
 */
export async function readAnswer(r: Requester, res: SendResponse, limit: number, signal: AbortSignal | undefined): Promise<{ bytes: Buffer; complete: boolean }> {
  return readBody(res.body, limit).catch((error: unknown) => {
    throw transportError(error, { method: 'GET', url: redactUrl(res.url), signal, timeouts: r.timeouts });
  });
}
