import type { Readable } from 'node:stream';

import { DeniedError, InvalidResponseError, jsonSyntaxReason, oneLine, RegistryError, RegistryUnreachableError, TlsError, UnauthorizedError } from '@rxpush/core';
import type { Dispatcher } from 'undici';

import { sameFailure, transportError } from '../errors.js';
import { isRetryableStatus, parseRetryAfter } from '../retry.js';
import { dump, header, readBody } from '../send.js';
import { resolveLocation } from '../urls.js';
import { TokenRealmError, checkCredentialsHint } from './auth-error.js';
import { basicAuthorization, hasPassword, hideCredentials, type Credentials } from './credentials.js';
import { credentialRefusal } from './realm-policy.js';

/** A token service answer larger than this is not a token answer (1 MiB; real ones are a few KiB). */
export const TOKEN_BODY_LIMIT = 1024 * 1024;
/** The spec's default lifetime when `expires_in` is missing. */
const DEFAULT_LIFETIME_S = 60;
const MAX_REDIRECTS = 5;
// A token goes into an Authorization header: printable ASCII without spaces, and not absurdly long.
const TOKEN_PATTERN = /^[\x21-\x7e]{1,65536}$/;

export interface TokenRequest {
  /** The `realm` of the registry's Bearer challenge. */
  readonly realm: URL;
  readonly service: string | undefined;
  readonly scopes: readonly string[];
  readonly credentials: Credentials | undefined;
  /** The registry's own origin: credentials only go where `credentialRefusal` allows relative to it. */
  readonly registryOrigin: URL;
  readonly dispatcher: Dispatcher;
  readonly userAgent: string;
  /** OAuth2 client_id for POST requests. */
  readonly clientId: string;
  /** Use the OAuth2 password grant (POST) for a username and password, instead of GET with Basic. */
  readonly forceOAuth: boolean;
  readonly timeoutMs: number;
  readonly now: () => number;
  readonly signal: AbortSignal | undefined;
}

/** A token as the token service issued it. */
export interface Token {
  readonly token: string;
  /** When it stops being valid, in ms since the epoch (`issued_at`/now plus `expires_in`, default 60 s). */
  readonly expiresAt: number;
  /** A new OAuth2 refresh token, when the service rotated it. */
  readonly refreshToken?: string;
}

/**
 * Gets a bearer token from a registry's token service, per Docker's token auth spec: GET the realm with
 * `service` and one `scope` per scope, with Basic credentials when there is a password (anonymous
 * otherwise); or, when there is an OAuth2 refresh token (config.json `identitytoken`), POST a
 * `grant_type=refresh_token` form (`password` grant with `forceOAuth`).
 *
 * Credentials are never sent to a realm `credentialRefusal` rejects, nor along a redirect to another origin.
 *
 * @throws {UnauthorizedError} (401), {DeniedError} (403) or {RegistryError} (another status) when the token service refuses,
 *   as the registry's own answers are; {InvalidResponseError} for an answer that is not a token (garbage, over 1 MiB, no
 *   `token`/`access_token`); {TokenRealmError} for a realm rxpush will not send credentials to or follow.
 * @throws {RegistryUnreachableError} when the token service does not answer.
 * @example
 * const { token } = await fetchToken({ realm: new URL('https://auth.example/token'), service: 'registry.example', scopes: ['repository:app:pull'], … })
 */
export async function fetchToken(req: TokenRequest): Promise<Token> {
  const refreshToken = req.credentials?.identityToken;
  const password = hasPassword(req.credentials) ? req.credentials : undefined;
  const oauth = refreshToken !== undefined || (req.forceOAuth && password !== undefined);
  const withSecrets = refreshToken !== undefined || password !== undefined;
  if (withSecrets) refuseIfUnsafe(req.realm, req);

  const started = req.now();
  const res = oauth ? await post(req, refreshToken, password) : await get(req, password);
  return parseTokenAnswer(res, req, started);
}

interface Answer {
  readonly method: string;
  readonly url: URL;
  readonly status: number;
  readonly headers: Record<string, string | string[] | undefined>;
  readonly body: Readable;
}

async function get(req: TokenRequest, password: { username: string; password: string } | undefined): Promise<Answer> {
  let url = new URL(req.realm);
  url.hash = '';
  if (req.service !== undefined) url.searchParams.append('service', req.service);
  for (const scope of req.scopes) url.searchParams.append('scope', scope);
  if (password !== undefined) url.searchParams.append('account', password.username);
  const authorization = password === undefined ? undefined : basicAuthorization(password.username, password.password);

  for (let redirects = 0; ; redirects++) {
    const res = await dispatch(req, 'GET', url, authorization !== undefined && url.origin === new URL(req.realm).origin ? { authorization } : {});
    const location = header(res.headers, 'location');
    if (!isRedirect(res.statusCode) || location === undefined) return { method: 'GET', url, status: res.statusCode, headers: res.headers, body: res.body };
    await dump(res.body);
    const next = resolveLocation(location, url, { method: 'GET', status: res.statusCode });
    if (redirects >= MAX_REDIRECTS) throw new TokenRealmError(`GET ${shown(url)} redirected more than ${MAX_REDIRECTS} times; check the registry's token realm`, { where: shown(url) });
    // The credentials were for the realm the registry named, not for wherever it sends us next.
    if (authorization !== undefined && next.origin !== new URL(req.realm).origin) {
      throw new TokenRealmError(
        `GET ${shown(url)} → ${res.statusCode} redirects to ${shown(next)}, another host; rxpush does not send credentials (from ${req.credentials?.source ?? '?'}) there. Point the registry's token realm at the final address`,
        { where: shown(url) },
      );
    }
    url = next;
  }
}

async function post(req: TokenRequest, refreshToken: string | undefined, password: { username: string; password: string } | undefined): Promise<Answer> {
  const url = new URL(req.realm);
  url.hash = '';
  const form = new URLSearchParams();
  if (refreshToken !== undefined) {
    form.set('grant_type', 'refresh_token');
    form.set('refresh_token', refreshToken);
  } else if (password !== undefined) {
    form.set('grant_type', 'password');
    form.set('username', password.username);
    form.set('password', password.password);
    // Ask for a refresh token, so later scopes need no password (Docker's oauth.md).
    form.set('access_type', 'offline');
  }
  if (req.service !== undefined) form.set('service', req.service);
  form.set('client_id', req.clientId);
  form.set('scope', req.scopes.join(' '));
  const res = await dispatch(req, 'POST', url, { 'content-type': 'application/x-www-form-urlencoded' }, form.toString());
  if (isRedirect(res.statusCode)) {
    await dump(res.body);
    // A form with a secret in it is never re-posted to wherever a redirect points.
    throw new TokenRealmError(`POST ${shown(url)} → ${res.statusCode} redirect; rxpush does not re-send an OAuth2 form. Point the registry's token realm at the final address`, {
      where: shown(url),
    });
  }
  return { method: 'POST', url, status: res.statusCode, headers: res.headers, body: res.body };
}

async function dispatch(req: TokenRequest, method: 'GET' | 'POST', url: URL, headers: Record<string, string>, body?: string): Promise<Dispatcher.ResponseData> {
  try {
    return await req.dispatcher.request({
      origin: url.origin,
      path: `${url.pathname}${url.search}`,
      method,
      headers: { 'user-agent': req.userAgent, accept: 'application/json', ...headers },
      body: body ?? null,
      signal: req.signal ?? null,
      headersTimeout: req.timeoutMs,
      bodyTimeout: req.timeoutMs,
    });
  } catch (error) {
    throw asTokenService(transportError(error, { method, url: shown(url), signal: req.signal }), req);
  }
}

/**
 * A token service that does not answer is not the registry, whose hint ("is the registry running…") would send the
 * user to the wrong server. Its address is the registry's word (`WWW-Authenticate`), and may be one that only the
 * registry's own network reaches (an internal name behind a proxy). TLS failures keep their own advice.
 */
function asTokenService(error: Error, req: TokenRequest): Error {
  if (!(error instanceof RegistryUnreachableError) || error instanceof TlsError) return error;
  const what = error.reason.split('; ')[0];
  const reason = `${what}; it is the token service that ${req.registryOrigin.host} names in its WWW-Authenticate (its auth realm): is it running, and is that address reachable from here?`;
  return sameFailure(error, reason, { retryable: error.retryable, attempts: error.attempts });
}

function refuseIfUnsafe(target: URL, req: TokenRequest): void {
  const reason = credentialRefusal(target, req.registryOrigin);
  if (reason === undefined) return;
  throw new TokenRealmError(
    `rxpush will not send credentials (from ${req.credentials?.source ?? '?'}) to the token realm ${shown(target)} that ${req.registryOrigin.host} names: ${reason}; fix the registry's token realm (auth.token.realm)`,
    { where: shown(target) },
  );
}

async function parseTokenAnswer(res: Answer, req: TokenRequest, started: number): Promise<Token> {
  const declared = Number(header(res.headers, 'content-length'));
  if (Number.isFinite(declared) && declared > TOKEN_BODY_LIMIT) {
    await dump(res.body);
    throw invalidAnswer(res, `with a body of ${declared} bytes, too large for a token answer (1 MiB at most); is the realm right?`);
  }
  let read: { bytes: Buffer; complete: boolean };
  try {
    read = await readBody(res.body, TOKEN_BODY_LIMIT);
  } catch (error) {
    throw transportError(error, { method: res.method, url: shown(res.url), signal: req.signal });
  }
  if (res.status !== 200) throw statusError(res, read.bytes, req);
  if (!read.complete) {
    throw invalidAnswer(res, 'with a body over 1 MiB, too large for a token answer; is the realm right?');
  }

  const text = read.bytes.toString('utf8');
  let json: unknown;
  let syntax: unknown;
  try {
    json = JSON.parse(text);
  } catch (error) {
    syntax = error;
  }
  if (typeof json !== 'object' || json === null || Array.isArray(json)) {
    throw invalidAnswer(res, `with a body that is not a JSON token answer (${whatItIs(text, syntax, req.credentials)}); is the realm right?`);
  }
  const answer = json as { token?: unknown; access_token?: unknown; expires_in?: unknown; issued_at?: unknown; refresh_token?: unknown };
  const token = typeof answer.token === 'string' && answer.token !== '' ? answer.token : answer.access_token;
  if (typeof token !== 'string' || !TOKEN_PATTERN.test(token)) {
    throw invalidAnswer(res, 'without a usable token (no "token" or "access_token" of printable characters); the token service is misconfigured');
  }
  const lifetime = typeof answer.expires_in === 'number' && Number.isFinite(answer.expires_in) && answer.expires_in > 0 ? answer.expires_in : DEFAULT_LIFETIME_S;
  const refreshToken = typeof answer.refresh_token === 'string' && TOKEN_PATTERN.test(answer.refresh_token) ? answer.refresh_token : undefined;
  return { token, expiresAt: issuedAt(answer.issued_at, started, lifetime) + lifetime * 1000, ...(refreshToken !== undefined && { refreshToken }) };
}

/**
 * When the token was issued: the service's `issued_at`, unless the clocks disagree by more than the
 * token's lifetime (then a skewed clock would make every token look expired, or never expire).
 */
function issuedAt(value: unknown, now: number, lifetimeS: number): number {
  const at = typeof value === 'string' ? Date.parse(value) : Number.NaN;
  if (Number.isNaN(at) || Math.abs(at - now) > lifetimeS * 1000) return now;
  return at;
}

/** A token service's error status is what the same status from the registry is: the request, its status, and what to do. */
function statusError(res: Answer, bytes: Buffer, req: TokenRequest): RegistryError {
  // A token service may echo what it was sent (`incorrect password …`): never the secret.
  const detail = errorDetail(Buffer.from(hideCredentials(bytes.toString('utf8'), req.credentials)));
  const init = { method: res.method, url: shown(res.url), detail: detail !== '' ? detail : undefined };
  const withCredentials = req.credentials !== undefined && (hasPassword(req.credentials) || req.credentials.identityToken !== undefined);
  if (res.status === 401) {
    const hint = withCredentials ? `the token service refused the credentials; ${checkCredentialsHint(req.credentials?.source)}` : `the token service wants credentials; ${checkCredentialsHint(undefined)}`;
    return new UnauthorizedError({ ...init, hint });
  }
  if (res.status === 403) return new DeniedError({ ...init, hint: `the credentials may not have this access (${req.scopes.join(' ')}); check the repository name and your access to it` });
  const hint =
    res.status === 404 || res.status === 405
      ? `the token realm does not serve tokens${res.method === 'POST' ? ' by OAuth2 POST (drop the identitytoken from config.json and use a password)' : ''}`
      : res.status >= 500
        ? 'the token service failed; try again later'
        : res.status === 429
          ? 'the token service is limiting how often it is asked; try again later'
          : 'the token service refused the request';
  // As the registry's own: a token service that is down or busy for a moment is asked again (with its Retry-After).
  const retryable = isRetryableStatus(res.status);
  const retryAfterMs = retryable ? parseRetryAfter(header(res.headers, 'retry-after'), Date.now()) : undefined;
  return new RegistryError({ ...init, status: res.status, hint, retryable, ...(retryAfterMs !== undefined && { retryAfterMs }) });
}

/** A 200 (or other) answer that is no token answer: named like the registry's own malformed answers. */
function invalidAnswer(res: Answer, problem: string): InvalidResponseError {
  return new InvalidResponseError({ method: res.method, url: shown(res.url), status: res.status, problem });
}

/** The reason a token service gives in its error body (`details`, OAuth2 `error_description`, registry `errors`). */
function errorDetail(bytes: Buffer): string {
  let json: unknown;
  try {
    json = JSON.parse(bytes.subarray(0, 64 * 1024).toString('utf8'));
  } catch {
    return '';
  }
  if (typeof json !== 'object' || json === null) return '';
  const body = json as { details?: unknown; error_description?: unknown; error?: unknown; errors?: unknown };
  const first = Array.isArray(body.errors) ? (body.errors[0] as { code?: unknown; message?: unknown } | undefined) : undefined;
  const candidates = [body.details, body.error_description, body.error, first?.code, first?.message];
  return candidates
    .filter((v): v is string => typeof v === 'string' && v !== '')
    .slice(0, 2)
    .map((text) => oneLine(text))
    .join(': ');
}

/**
 * What a token answer that is no JSON object is, for the message. Only markup (a login or error page) is quoted:
 * any other body may hold a token, cut off or in another format (a bare token, a token answer broken off part-way),
 * and tokens are secrets.
 */
function whatItIs(text: string, syntax: unknown, credentials: Credentials | undefined): string {
  const start = text.trimStart();
  if (start === '') return 'empty';
  // A login page may echo what it was sent: hidden before the quote is cut, so no part of a secret is left.
  if (start.startsWith('<')) return `starts ${JSON.stringify(oneLine(hideCredentials(start, credentials).slice(0, 60)))}`;
  if (syntax !== undefined) return jsonSyntaxReason(syntax, text);
  return start.startsWith('[') ? 'a JSON array' : start.startsWith('"') ? 'a JSON string' : start.startsWith('null') ? 'JSON null' : 'a JSON number or boolean';
}

function isRedirect(status: number): boolean {
  return status === 301 || status === 302 || status === 303 || status === 307 || status === 308;
}

/** A realm URL as messages show it: no query (it repeats the scopes and may hold secrets), no user info. */
export function shown(url: URL): string {
  return `${url.protocol}//${url.host}${url.pathname}`;
}
