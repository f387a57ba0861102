import {
  CancelledError,
  DeniedError,
  InvalidSourceError,
  isPushError,
  oneLine,
  RegistryError,
  RegistryUnreachableError,
  TimeoutError,
  TlsError,
  UnauthorizedError,
} from '@rxpush/core';

import { isRetryableStatus } from './retry.js';
import { DEFAULT_TIMEOUTS, showDuration, type Timeouts } from './timeouts.js';
import { ProxyError } from './tls/proxy.js';

/** What a registry's error body says: the first entry of `{"errors":[{"code","message","detail"}]}`. */
export interface RegistryErrorBody {
  readonly code?: string;
  readonly message?: string;
}

/** Error bodies are read up to this size; a registry (or a proxy in front of it) may send a whole HTML page. */
export const ERROR_BODY_LIMIT = 64 * 1024;

/**
 * Reads the registry's JSON error body, tolerating garbage: anything that is not the expected shape
 * gives `{}`, and a short plain-text body becomes the message.
 */
export function parseErrorBody(bytes: Uint8Array, contentType: string | undefined): RegistryErrorBody {
  const text = Buffer.from(bytes.subarray(0, ERROR_BODY_LIMIT)).toString('utf8');
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    if (contentType?.startsWith('text/plain') === true) {
      const line = oneLine(text);
      if (line !== '') return { message: line };
    }
    return {};
  }
  const first: unknown = Array.isArray((json as { errors?: unknown } | null)?.errors) ? (json as { errors: unknown[] }).errors[0] : undefined;
  if (typeof first !== 'object' || first === null) return {};
  const { code, message, detail } = first as { code?: unknown; message?: unknown; detail?: unknown };
  const parts = [typeof message === 'string' ? oneLine(message) : '', describeDetail(detail)].filter((s) => s !== '');
  return {
    ...(typeof code === 'string' && /^[A-Z_]{1,64}$/.test(code) && { code }),
    ...(parts.length > 0 && { message: parts.join(' ') }),
  };
}

/**
 * The `detail` of an error entry when it is a short string (distribution puts the digest of an unknown blob
 * there); objects are left out, they repeat the request in Go's field names.
 */
function describeDetail(detail: unknown): string {
  if (typeof detail !== 'string' || detail === '' || detail.length > 200) return '';
  return `(${oneLine(detail)})`;
}

/** Requests that write: the only ones a read-only registry or a pull-through cache refuses with 405. */
const WRITES = new Set(['POST', 'PUT', 'PATCH', 'DELETE']);
const UPLOAD_PATH = /\/blobs\/uploads\//;
const UNEXPLAINED = 'the registry refused the request without saying why (no error code or message); its log says more';
const NOT_THE_API = 'the distribution API gives no such answer here; is something other than the registry (a proxy or web server) answering at this address?';

/**
 * What to do about a registry answer, by status (and the registry's code when it helps), and by the request: a
 * hint about chunk sizes belongs to an upload, not to a HEAD a proxy answered 413.
 */
export function hintFor(
  status: number,
  registryCode: string | undefined,
  context: { authenticated: boolean; challengeError?: string | undefined; request: { method: string; url: string } },
): string | undefined {
  const { method, url } = context.request;
  const upload = UPLOAD_PATH.test(url) && (method === 'PATCH' || method === 'PUT');
  if (status === 401) {
    // The credentials got a token; the registry then refused the token (expired or revoked mid-push): not the user's doing.
    if (context.authenticated && context.challengeError === 'invalid_token') {
      return 'the registry refused the token (invalid_token), also after rxpush fetched a fresh one; check that the clocks of the registry and its token service agree, and the registry\'s token configuration';
    }
    return context.authenticated
      ? 'the registry refused the credentials; check them (--creds, --authfile or docker login)'
      : 'the registry wants credentials; pass --creds USER:PASS, --authfile PATH or docker login';
  }
  if (status === 403) return 'the credentials are not allowed to do this; check the repository name and your access to it';
  if (registryCode === 'BLOB_UPLOAD_UNKNOWN' || registryCode === 'BLOB_UPLOAD_INVALID') return 'the upload session is gone or broken; start the upload again';
  // Distribution answers a push to a read-only registry (maintenance) or a pull-through cache 405.
  if (status === 405 && WRITES.has(method)) {
    return 'the registry does not take this request here: it may be read-only or a pull-through cache (a mirror); push to a registry that accepts pushes';
  }
  // A forwarding proxy answers plain-HTTP requests itself (tunnels' 407s are ProxyErrors).
  if (status === 407) return 'a proxy between rxpush and the registry refused the request: put its user and password in HTTP_PROXY (http://USER:PASSWORD@HOST:PORT) and check them, or set NO_PROXY to reach the registry directly';
  if (status === 413 && upload) return 'the registry refuses a body this large; try a smaller --chunk-size';
  if (status === 413 && WRITES.has(method)) return 'the registry (or a proxy in front of it) refuses a body this large';
  if (status === 416 && upload) return 'the registry holds other bytes of the upload than rxpush sent; push again, which starts the upload over';
  if (status === 429) return 'the registry is rate limiting; wait and try again';
  if (status >= 500) return 'the registry failed; try again later or check its logs';
  // A success or redirect where the API has none, or a read refused as a write would be.
  if (status < 400 || status === 405) return NOT_THE_API;
  return undefined;
}

/**
 * The error for an error answer, its message naming the (redacted) request like ky's HTTPError: an
 * UnauthorizedError (401), DeniedError (403) or RegistryError, retryable for 408/429/5xx with the Retry-After given.
 */
export function registryError(
  request: { method: string; url: string },
  status: number,
  body: RegistryErrorBody,
  context: { authenticated: boolean; retryAfterMs?: number | undefined; challengeError?: string | undefined; tokenRefreshed?: boolean },
): RegistryError {
  const hint = hintFor(status, body.code, { ...context, request });
  const init = {
    method: request.method,
    url: request.url,
    registryCode: body.code,
    // Go's "404 page not found" (a route the registry does not have) would read "→ 404 404 page not found".
    detail: body.message?.startsWith(`${status} `) === true ? body.message.slice(`${status} `.length) : body.message,
    // A bare "→ 400" leaves the user nowhere to go; 404s are read by their callers (not found, unknown blob), and a
    // HEAD answer has no body to give a reason in.
    hint: hint ?? (body.code === undefined && body.message === undefined && status >= 400 && status !== 404 && request.method !== 'HEAD' ? UNEXPLAINED : undefined),
    // A 401 to a stream body whose token was just refreshed: the caller re-sends it (re-opening the source) once.
    retryable: isRetryableStatus(status) || (status === 401 && context.tokenRefreshed === true),
    retryAfterMs: context.retryAfterMs,
  };
  if (status === 401) return new UnauthorizedError(init);
  if (status === 403) return new DeniedError(init);
  return new RegistryError({ ...init, status });
}

/**
 * The same failure once the client has spent its retries on it: no longer retryable, so a caller does not
 * multiply the retries, and, after more than one attempt, saying how many were made.
 */
export function retriesSpent(error: Error, attempts: number): Error {
  const gaveUp = (text: string | undefined, fallback: string): string | undefined =>
    attempts > 1 ? `${text ?? fallback} (gave up after ${attempts} attempts)` : text;
  if (error instanceof RegistryError) {
    const { method, url, status, registryCode, detail, retryAfterMs } = error;
    const init = { method, url, registryCode, detail, hint: gaveUp(error.hint, 'the registry keeps failing'), retryable: false, retryAfterMs, attempts };
    if (status === 401) return new UnauthorizedError(init);
    if (status === 403) return new DeniedError(init);
    return new RegistryError({ ...init, status });
  }
  if (error instanceof RegistryUnreachableError) return sameFailure(error, gaveUp(error.reason, '') ?? error.reason, { retryable: false, attempts });
  return error;
}

/** `error` as the same kind of failure (TLS, timeout or no answer) of the same request, with another reason and retry facts. */
export function sameFailure(error: RegistryUnreachableError, reason: string, facts: { retryable: boolean; attempts: number }): RegistryUnreachableError {
  const Kind = error instanceof TlsError ? TlsError : error instanceof TimeoutError ? TimeoutError : RegistryUnreachableError;
  return new Kind(error.url, reason, { cause: error.cause, method: error.method, ...facts });
}

// Node's TLS verification failures (OpenSSL X509 codes and Node's own). None of these ever falls back to HTTP.
const CERTIFICATE_CODES = new Set([
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'UNABLE_TO_GET_ISSUER_CERT',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'CERT_HAS_EXPIRED',
  'CERT_NOT_YET_VALID',
  'CERT_REVOKED',
  'CERT_UNTRUSTED',
  'CERT_REJECTED',
  'CERT_SIGNATURE_FAILURE',
  'INVALID_CA',
  'ERR_TLS_CERT_ALTNAME_INVALID',
]);

function errorCode(error: unknown): string | undefined {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === 'string' ? code : undefined;
}

/**
 * The TLS alerts of a registry that wants a client certificate it trusts (none sent, or one it refuses). With TLS 1.3
 * they come after the handshake, and undici then reports only "other side closed": the connector notes them
 * ({@link noteTlsAlert}) by connection, for {@link transportError} to find. With TLS 1.2 they fail the handshake.
 */
// By pattern: OpenSSL 3.0 (Node 20) says ERR_SSL_SSLV3_ALERT_BAD_CERTIFICATE, 3.5 (Node 24) ERR_SSL_SSL/TLS_ALERT_BAD_CERTIFICATE.
const CLIENT_CERTIFICATE_ALERT = /^ERR_SSL_.*ALERT_(?:BAD_CERTIFICATE|CERTIFICATE_REQUIRED|CERTIFICATE_UNKNOWN|UNKNOWN_CA)$/;

/** What a connection is known by in undici's SocketError (`socket`, from util.getSocketInfo) and on the socket itself. */
interface SocketEnds {
  readonly localAddress?: string | undefined;
  readonly localPort?: number | undefined;
  readonly remoteAddress?: string | undefined;
  readonly remotePort?: number | undefined;
}

/** Client-certificate alerts of connections that ended since, by connection; a few suffice, the oldest go first. */
const notedAlerts = new Map<string, string>();
const NOTED_AT_MOST = 64;

const connectionKey = (ends: SocketEnds): string => `${ends.localAddress}:${ends.localPort}>${ends.remoteAddress}:${ends.remotePort}`;

/** Called by the connector with a TLS socket's error: a client-certificate alert is kept for the request's failure. */
export function noteTlsAlert(socket: SocketEnds, error: unknown): void {
  const code = errorCode(error);
  if (code === undefined || !CLIENT_CERTIFICATE_ALERT.test(code)) return;
  if (notedAlerts.size >= NOTED_AT_MOST) notedAlerts.delete(notedAlerts.keys().next().value!);
  notedAlerts.set(connectionKey(socket), code);
}

/** The client-certificate alert behind `error`: its own code (TLS 1.2), or one noted for its connection (TLS 1.3). */
function clientCertificateAlert(error: unknown): string | undefined {
  const code = errorCode(error);
  if (code !== undefined && CLIENT_CERTIFICATE_ALERT.test(code)) return code;
  const socket = (error as { socket?: SocketEnds } | null)?.socket;
  if (code !== 'UND_ERR_SOCKET' || socket === undefined) return undefined;
  const key = connectionKey(socket);
  const noted = notedAlerts.get(key);
  notedAlerts.delete(key);
  return noted;
}

/** True when the server's certificate was not trusted. */
export function isCertificateError(error: unknown): boolean {
  const code = errorCode(error);
  return code !== undefined && CERTIFICATE_CODES.has(code);
}

/**
 * True when a TLS handshake failed because the server answered in plain HTTP: OpenSSL reads the
 * start of an HTTP response as a TLS record and reports "wrong version number" or "packet length too long".
 */
export function isPlainHttpAnswer(error: unknown): boolean {
  const code = errorCode(error);
  if (code === 'ERR_SSL_WRONG_VERSION_NUMBER' || code === 'ERR_SSL_PACKET_LENGTH_TOO_LONG') return true;
  const message = error instanceof Error ? error.message : '';
  return /wrong version number|packet length too long/.test(message);
}

/**
 * Transport failures where the request may not have been processed and trying again can work.
 * Name resolution and TLS failures are left out: they do not heal in seconds, and a certificate error
 * must never be "retried away".
 */
const RETRYABLE_CODES = new Set([
  'ECONNRESET',
  'EPIPE',
  'ETIMEDOUT',
  'ECONNABORTED',
  'UND_ERR_SOCKET',
  'UND_ERR_CLOSED',
  'UND_ERR_CONNECT_TIMEOUT',
  'UND_ERR_HEADERS_TIMEOUT',
  'UND_ERR_BODY_TIMEOUT',
]);

/** Why a request got no HTTP answer, in words a user can act on; a timeout says which one fired, and after how long. */
function describe(error: unknown, url: string, timeouts: Timeouts): { reason: string; code: 'REGISTRY_UNREACHABLE' | 'TIMEOUT' | 'TLS' } {
  const code = errorCode(error);
  // Node 24 appends advice about its own flags ("…; if the root CA is installed locally, try running Node.js
  // with --use-system-ca") that rxpush users cannot act on; our own advice follows instead.
  const raw = (error instanceof Error ? error.message : String(error)).replace(/;\s*if the root CA is installed locally.*$/s, '');
  // Problems --ca-file cannot mend get advice of their own.
  const alert = clientCertificateAlert(error);
  if (alert !== undefined) {
    return {
      code: 'TLS',
      reason: `the registry wants a client certificate it trusts and closed the connection (${alert}); put one as NAME.cert and NAME.key (PEM) in --cert-dir DIR or /etc/docker/certs.d/${new URL(url).host}, or check the one there`,
    };
  }
  if (code === 'ERR_TLS_CERT_ALTNAME_INVALID') {
    return {
      code: 'TLS',
      reason: `the TLS certificate is for other names (${raw}); use the registry's name as its certificate gives it, or --tls-verify=false if you trust the network`,
    };
  }
  if (code === 'CERT_HAS_EXPIRED' || code === 'CERT_NOT_YET_VALID') {
    const when = code === 'CERT_HAS_EXPIRED' ? 'has expired' : 'is not valid yet';
    return {
      code: 'TLS',
      reason: `the registry's TLS certificate ${when} (${code}); check this machine's clock, have the certificate renewed, or pass --tls-verify=false if you trust the network`,
    };
  }
  if (isCertificateError(error)) {
    return {
      code: 'TLS',
      reason: `the TLS certificate is not trusted (${code}: ${raw}); pass --ca-file PATH with the registry's CA, or --tls-verify=false if you trust the network`,
    };
  }
  if (isPlainHttpAnswer(error)) {
    return { code: 'TLS', reason: 'the server does not speak TLS; if the registry serves plain HTTP, pass --plain-http' };
  }
  if (code?.startsWith('ERR_SSL_') === true || code?.startsWith('ERR_TLS_') === true) {
    return { code: 'TLS', reason: `the TLS handshake failed (${code}); check the address, or try --ca-file PATH / --tls-verify=false` };
  }
  switch (code) {
    case 'ECONNREFUSED':
      return { code: 'REGISTRY_UNREACHABLE', reason: 'connection refused; is the registry running and the address right?' };
    case 'ENOTFOUND':
    case 'EAI_AGAIN':
      return { code: 'REGISTRY_UNREACHABLE', reason: `host ${new URL(url).hostname} not found; is the registry address right?` };
    case 'ECONNRESET':
    case 'EPIPE':
    case 'UND_ERR_SOCKET':
    case 'UND_ERR_CLOSED':
      return { code: 'REGISTRY_UNREACHABLE', reason: 'the connection was closed before the registry answered; try again' };
    case 'EHOSTUNREACH':
    case 'ENETUNREACH':
      return { code: 'REGISTRY_UNREACHABLE', reason: 'no route to the host; check the network and the address' };
    case 'UND_ERR_CONNECT_TIMEOUT':
      return { code: 'TIMEOUT', reason: `no connection within ${showDuration(timeouts.connect)} (the connect timeout); is the address right and the registry reachable?` };
    case 'UND_ERR_HEADERS_TIMEOUT':
      return {
        code: 'TIMEOUT',
        reason: `the registry did not answer within ${showDuration(timeouts.headers)} (the answer timeout); check the registry, or allow it more time with --timeout`,
      };
    case 'UND_ERR_BODY_TIMEOUT':
      return {
        code: 'TIMEOUT',
        reason: `the registry's answer stalled for ${showDuration(timeouts.body)} (the idle timeout); check the registry, or allow it more time with --timeout`,
      };
    default:
      return { code: 'REGISTRY_UNREACHABLE', reason: raw };
  }
}

/**
 * Errors undici destroys a request's body stream with when the connection fails or the request is aborted:
 * they say what happened to the request, not what is wrong with the body's source.
 */
const TRANSPORT_CODES = new Set([
  // A connection that could not be made (the registry went away between two requests of a streamed upload).
  'ECONNREFUSED',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'UND_ERR_CONNECT_TIMEOUT',
  'ECONNRESET',
  'EPIPE',
  'ECONNABORTED',
  'ETIMEDOUT',
  'UND_ERR_SOCKET',
  'UND_ERR_CLOSED',
  'UND_ERR_ABORTED',
  'UND_ERR_HEADERS_TIMEOUT',
  'UND_ERR_BODY_TIMEOUT',
]);

function inflictedByTransport(bodyError: unknown): boolean {
  const code = errorCode(bodyError);
  return (code !== undefined && TRANSPORT_CODES.has(code)) || (bodyError as Error | null)?.name === 'AbortError';
}

/**
 * The typed error for a request that failed without an HTTP answer: TlsError, TimeoutError or
 * RegistryUnreachableError, retryable when the failure can pass (a reset, a timeout; a refused connection only
 * when `refusedIsTransient`, i.e. the registry answered before and is restarting). rxpush errors (say, a digest
 * check in the body stream) and the body stream's own failures pass through unchanged; an abort becomes CancelledError.
 */
export function transportError(
  error: unknown,
  request: { method: string; url: string; signal?: AbortSignal | undefined; bodyError?: unknown; refusedIsTransient?: boolean; timeouts?: Timeouts | undefined },
): Error {
  if (isPushError(error)) return error;
  // undici destroys the body stream with this error too, so it must be recognised before the body's own failures.
  if (errorCode(error) === 'UND_ERR_REQ_CONTENT_LENGTH_MISMATCH' || errorCode(request.bodyError) === 'UND_ERR_REQ_CONTENT_LENGTH_MISMATCH') {
    return new InvalidSourceError(request.url, `${request.method} ${request.url}: the body was not as long as its announced length; the blob's recorded size is wrong`, {
      cause: error,
    });
  }
  const { bodyError } = request;
  if (bodyError !== undefined && bodyError !== null && !inflictedByTransport(bodyError)) {
    if (bodyError instanceof Error) return bodyError;
    return new InvalidSourceError(request.url, `${request.method} ${request.url}: the body failed (${String(bodyError)}); check the source`);
  }
  if (request.signal?.aborted === true || errorCode(error) === 'UND_ERR_ABORTED' || (error as Error | null)?.name === 'AbortError') {
    return new CancelledError(`${request.method} ${request.url} cancelled`);
  }
  // The proxy's own failure says what the proxy did and what to do; it is retried only when that may help.
  if (error instanceof ProxyError) return new RegistryUnreachableError(request.url, error.message, { cause: error, retryable: error.retryable, method: request.method });
  const { reason, code } = describe(error, request.url, request.timeouts ?? DEFAULT_TIMEOUTS);
  const cause = errorCode(error) ?? errorCode((error as { cause?: unknown } | null)?.cause);
  const retryable = code !== 'TLS' && cause !== undefined && (RETRYABLE_CODES.has(cause) || (cause === 'ECONNREFUSED' && request.refusedIsTransient === true));
  const Class = code === 'TLS' ? TlsError : code === 'TIMEOUT' ? TimeoutError : RegistryUnreachableError;
  return new Class(request.url, reason, { cause: error, retryable, method: request.method });
}
