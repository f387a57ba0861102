import { CancelledError, silentLogger, type Logger } from '@rxpush/core';
import { getGlobalDispatcher, type Dispatcher } from 'undici';

import type { Authenticator } from '../types.js';
import { apiHost } from '../urls.js';
import { InsufficientScopeError, TokenRealmError, checkCredentialsHint } from './auth-error.js';
import { basicAuthorization, hasPassword, type Credentials, type CredentialsLoader } from './credentials.js';
import { fetchToken, shown, type Token } from './fetch-token.js';
import { parseChallenges, type Challenge } from './parse-challenges.js';
import { registryKey } from './resolve-credentials.js';
import { coversScopes, isScope, normalizeScopes, scopeKey } from './scopes.js';

export interface AuthenticatorOptions {
  /** host[:port] of the registry, as in an image reference: the only registry these credentials are for. */
  readonly registry: string;
  /** The credentials, or a loader run the first time the registry asks for them; none: anonymous. */
  readonly credentials?: Credentials | CredentialsLoader;
  /** Sends the token requests (the registry client's dispatcher, so --ca-file applies to the realm too). */
  readonly dispatcher?: Dispatcher;
  readonly logger?: Logger;
  readonly userAgent?: string;
  /** OAuth2 client_id sent with POST token requests (default `rxpush`). */
  readonly clientId?: string;
  /** Get tokens with the OAuth2 password grant (POST) instead of GET with Basic. */
  readonly forceOAuth?: boolean;
  /** How long a token request may take to answer, in ms (default 30 000). */
  readonly timeoutMs?: number;
  /** The clock, in ms (tests). */
  readonly now?: () => number;
}

/** What the registry asked for, remembered so later scope sets get a token before their first request. */
type Scheme = { readonly kind: 'bearer'; readonly realm: URL; readonly service: string | undefined } | { readonly kind: 'basic' };

interface CachedToken {
  readonly key: string;
  readonly scopes: readonly string[];
  readonly header: string;
  /** When to stop using it: a little before it expires (a tenth of its life, at most 5 s), so none runs out on the way. */
  readonly renewAt: number;
}

const EXPIRY_MARGIN_MS = 5_000;

/**
 * Makes the Authenticator a RegistryClient asks before each request: Docker's token auth (Bearer:
 * GET the realm with service and scopes, Basic credentials when there are some, anonymous otherwise;
 * OAuth2 POST with an identity token), or Basic auth, whichever the registry's challenge asks for.
 *
 * Tokens are cached per scope set until shortly before they expire; a request for scopes a cached token
 * already covers reuses it. After a 401 the client asks again with the challenge: a token that was
 * rejected (`invalid_token`, expired, revoked) is replaced once, and a replacement that is rejected in
 * turn is not replaced again, however many concurrent requests report it; the client retries a request
 * once, so nothing loops. Concurrent requests for the same scopes share one token request.
 *
 * Credentials are only ever sent to the registry (the client sends Authorization to its origin alone)
 * and to a token realm `credentialRefusal` allows. Nothing secret is logged.
 *
 * @throws {UnauthorizedError}, {DeniedError}, {RegistryError} or {InvalidResponseError} from `authorize` when the token service
 *   refuses or answers garbage; {TokenRealmError} when the realm is refused; {InsufficientScopeError} when a token is short;
 *   {CredentialsError} when the credentials cannot be read.
 * @throws {ChallengeParseError} when the registry's WWW-Authenticate header is malformed.
 * @example
 * const auth = createAuthenticator({ registry: 'ghcr.io', credentials: { username: 'me', password: token, source: '--creds' } });
 * const client = new RegistryClient({ registry: 'ghcr.io', auth });
 */
export function createAuthenticator(options: AuthenticatorOptions): Authenticator {
  return new TokenAuthenticator(options);
}

class TokenAuthenticator implements Authenticator {
  readonly #options: AuthenticatorOptions;
  readonly #logger: Logger;
  readonly #now: () => number;
  #scheme: Scheme | undefined;
  #credentials: Promise<Credentials | undefined> | undefined;
  /** A refresh token the token service rotated: it replaces the identity token from the credentials. */
  #refreshToken: string | undefined;
  readonly #tokens = new Map<string, CachedToken>();
  readonly #pending = new Map<string, Promise<CachedToken>>();
  /** Scope sets whose token request in flight replaces a rejected token (some caller sent `rejected`). */
  readonly #replacing = new Set<string>();
  /** Which scope set each recent token was issued for, and whether it was fetched to replace a rejected one. */
  readonly #issuedFor = new Map<string, { readonly key: string; readonly replacement: boolean }>();

  constructor(options: AuthenticatorOptions) {
    this.#options = options;
    this.#logger = (options.logger ?? silentLogger).child({ pkg: 'registry-client', part: 'auth' });
    this.#now = options.now ?? Date.now;
  }

  async authorize(request: Parameters<Authenticator['authorize']>[0]): Promise<string | undefined> {
    // One authenticator, one registry: a client of another registry sharing it by mistake gets nothing of ours.
    if (registryKey(request.registry) !== registryKey(this.#options.registry)) {
      this.#logger.debug({ registry: request.registry, for: this.#options.registry }, 'not authorizing a request to another registry');
      return undefined;
    }
    const origin = new URL(request.origin ?? `https://${apiHost(this.#options.registry)}`);
    let scopes = normalizeScopes(request.scopes);
    if (request.challenge === undefined) {
      // Until the registry has said what it wants, ask for nothing: an open registry needs nothing.
      if (this.#scheme === undefined) return undefined;
      return this.#answer(this.#scheme, scopes, origin, request.rejected, undefined, request.signal);
    }

    const challenges = parseChallenges(request.challenge);
    const chosen = choose(challenges);
    if (chosen === undefined) {
      this.#logger.debug({ schemes: challenges.map((c) => c.scheme) }, 'the registry asks for an auth scheme rxpush does not speak');
      return undefined;
    }
    const scheme = toScheme(chosen, origin);
    if (!sameScheme(scheme, this.#scheme)) {
      this.#logger.debug({ scheme: scheme.kind, ...(scheme.kind === 'bearer' && { realm: shown(scheme.realm), service: scheme.service }) }, 'registry auth challenge');
      this.#scheme = scheme;
      this.#tokens.clear();
    }
    // The registry may name scopes it wants beyond ours (distribution names exactly the ones it checks).
    const hinted = chosen.params.get('scope')?.split(' ').filter(isScope) ?? [];
    if (hinted.length > 0) scopes = normalizeScopes([...scopes, ...hinted]);
    return this.#answer(scheme, scopes, origin, request.rejected, chosen.params.get('error'), request.signal);
  }

  async #answer(
    scheme: Scheme,
    scopes: readonly string[],
    origin: URL,
    rejected: string | undefined,
    error: string | undefined,
    signal: AbortSignal | undefined,
  ): Promise<string | undefined> {
    const credentials = await this.#loadCredentials(signal);
    if (scheme.kind === 'basic') {
      if (!hasPassword(credentials)) return undefined;
      const value = basicAuthorization(credentials.username, credentials.password);
      // The registry has just refused exactly these: sending them again cannot help.
      return value === rejected ? undefined : value;
    }
    if (credentials?.registryToken !== undefined) {
      const value = `Bearer ${credentials.registryToken}`;
      return value === rejected ? undefined : value;
    }

    // A token the service issued for exactly these scopes that the registry finds short: asking again gets
    // the same grant. Only an expired or revoked token (invalid_token) is worth replacing.
    const issued = rejected === undefined ? undefined : this.#issuedFor.get(rejected);
    if (issued !== undefined && error === 'insufficient_scope' && issued.key === scopeKey(scopes)) {
      throw insufficientScope(scheme, scopes, origin, credentials);
    }
    const cached = this.#lookup(scopes);
    if (cached !== undefined && cached.header !== rejected) return cached.header;
    // A token fetched to replace a rejected one was rejected in turn: the registry refuses fresh tokens, so
    // another would be refused too. Each request retries once, but concurrent requests each report their
    // own 401; counting per token, not per request, keeps it to one replacement whatever the interleaving.
    if (issued?.replacement === true) {
      this.#logger.debug({ scopes }, 'a replacement token was rejected too; not fetching another');
      return undefined;
    }
    if (cached !== undefined) this.#tokens.delete(cached.key);
    const fresh = await this.#fetchShared(scheme, scopes, origin, credentials, rejected !== undefined, signal);
    return fresh.header === rejected ? undefined : fresh.header;
  }

  /** A cached token that covers `scopes` and is not about to expire; expired ones are dropped on the way. */
  #lookup(scopes: readonly string[]): CachedToken | undefined {
    const now = this.#now();
    const key = scopeKey(scopes);
    const exact = this.#tokens.get(key);
    for (const entry of exact !== undefined ? [exact, ...this.#tokens.values()] : this.#tokens.values()) {
      if (now >= entry.renewAt) {
        this.#tokens.delete(entry.key);
        continue;
      }
      if (entry === exact || coversScopes(entry.scopes, scopes)) return entry;
    }
    return undefined;
  }

  /**
   * One token request per scope set at a time: concurrent callers wait for the same answer. When any of
   * them is `replacing` a rejected token, the token it gets is marked a replacement before anyone can use it.
   */
  #fetchShared(
    scheme: Scheme & { kind: 'bearer' },
    scopes: readonly string[],
    origin: URL,
    credentials: Credentials | undefined,
    replacing: boolean,
    signal: AbortSignal | undefined,
  ): Promise<CachedToken> {
    const key = scopeKey(scopes);
    if (replacing) this.#replacing.add(key);
    const pending = this.#pending.get(key);
    if (pending !== undefined) return pending;
    const promise = this.#fetch(scheme, scopes, origin, credentials, signal).finally(() => {
      this.#pending.delete(key);
      this.#replacing.delete(key);
    });
    this.#pending.set(key, promise);
    return promise;
  }

  async #fetch(scheme: Scheme & { kind: 'bearer' }, scopes: readonly string[], origin: URL, credentials: Credentials | undefined, signal: AbortSignal | undefined): Promise<CachedToken> {
    const identityToken = this.#refreshToken ?? credentials?.identityToken;
    const effective = credentials === undefined ? undefined : { ...credentials, ...(identityToken !== undefined && { identityToken }) };
    let token: Token;
    try {
      token = await fetchToken({
        realm: scheme.realm,
        service: scheme.service,
        scopes,
        credentials: effective,
        registryOrigin: origin,
        dispatcher: this.#options.dispatcher ?? getGlobalDispatcher(),
        userAgent: this.#options.userAgent ?? 'rxpush',
        clientId: this.#options.clientId ?? 'rxpush',
        forceOAuth: this.#options.forceOAuth === true,
        timeoutMs: this.#options.timeoutMs ?? 30_000,
        now: this.#now,
        signal,
      });
    } catch (error) {
      this.#logger.debug({ realm: shown(scheme.realm), scopes, err: error }, 'token request failed');
      throw error;
    }
    if (token.refreshToken !== undefined) this.#refreshToken = token.refreshToken;
    const now = this.#now();
    const renewAt = token.expiresAt - Math.min(EXPIRY_MARGIN_MS, Math.max(0, token.expiresAt - now) / 10);
    const entry: CachedToken = { key: scopeKey(scopes), scopes, header: `Bearer ${token.token}`, renewAt };
    this.#tokens.set(entry.key, entry);
    this.#issuedFor.set(entry.header, { key: entry.key, replacement: this.#replacing.delete(entry.key) });
    // Only recent tokens can come back as rejected; keep the map small.
    if (this.#issuedFor.size > 64) this.#issuedFor.delete(this.#issuedFor.keys().next().value ?? '');
    this.#logger.debug(
      { realm: shown(scheme.realm), service: scheme.service, scopes, expiresInS: Math.round((token.expiresAt - now) / 1000), credentials: effective?.source ?? 'anonymous' },
      'token fetched',
    );
    return entry;
  }

  /**
   * The credentials, loaded once. The load is tied to the signal of the request that started it: a
   * cancelled push stops a credential helper that hangs (and kills it) instead of waiting on it. A load
   * that was cancelled is not remembered, so the next request starts another.
   */
  #loadCredentials(signal: AbortSignal | undefined): Promise<Credentials | undefined> {
    const given = this.#options.credentials;
    if (this.#credentials === undefined) {
      const loading = typeof given === 'function' ? given(signal) : Promise.resolve(given);
      this.#credentials = loading;
      loading.catch((error: unknown) => {
        if (error instanceof CancelledError && this.#credentials === loading) this.#credentials = undefined;
      });
    }
    return this.#credentials;
  }
}

/** The registry wants more than the token service granted: say whether credentials are missing or lack the access. */
function insufficientScope(scheme: Scheme & { kind: 'bearer' }, scopes: readonly string[], origin: URL, credentials: Credentials | undefined): InsufficientScopeError {
  const wanted = scopes.join(' ');
  if (!hasPassword(credentials) && credentials?.identityToken === undefined) {
    return new InsufficientScopeError(`${origin.host} wants credentials for ${wanted}: an anonymous token does not allow it; ${checkCredentialsHint(undefined)}`, {
      scopes,
      anonymous: true,
    });
  }
  const who = credentials.username !== undefined ? `${credentials.username} (from ${credentials.source})` : `the credentials from ${credentials.source}`;
  return new InsufficientScopeError(
    `the token service ${shown(scheme.realm)} did not grant ${wanted} to ${who} (insufficient_scope); check that the account may do this, and ${checkCredentialsHint(credentials.source)}`,
    { scopes, anonymous: false, where: shown(scheme.realm) },
  );
}

/** Bearer when offered (tokens are scoped), else Basic; other schemes rxpush does not speak. */
function choose(challenges: readonly Challenge[]): Challenge | undefined {
  return challenges.find((c) => c.scheme === 'bearer') ?? challenges.find((c) => c.scheme === 'basic');
}

function toScheme(challenge: Challenge, origin: URL): Scheme {
  if (challenge.scheme === 'basic') return { kind: 'basic' };
  const realm = challenge.params.get('realm');
  if (realm === undefined || realm === '') {
    throw new TokenRealmError(`${origin.host} asks for a Bearer token but names no realm to get it from; the registry's auth configuration is broken`);
  }
  let url: URL;
  try {
    // A relative realm is resolved against the registry, as browsers resolve Location.
    url = new URL(realm, origin);
  } catch {
    throw new TokenRealmError(`${origin.host} names a token realm that is not a URL (${JSON.stringify(realm.slice(0, 100))}); the registry's auth configuration is broken`);
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') {
    throw new TokenRealmError(`${origin.host} names a token realm that is not http(s) (${url.protocol}); the registry's auth configuration is broken`);
  }
  if (url.username !== '' || url.password !== '') {
    throw new TokenRealmError(`${origin.host} names a token realm with user info in it; the registry's auth configuration is broken`);
  }
  return { kind: 'bearer', realm: url, service: challenge.params.get('service') };
}

function sameScheme(a: Scheme, b: Scheme | undefined): boolean {
  if (b === undefined || a.kind !== b.kind) return false;
  if (a.kind === 'basic' || b.kind === 'basic') return true;
  return a.realm.href === b.realm.href && a.service === b.service;
}
