/**
 * What rxpush may authenticate with at one registry. Every field is a secret except `username` and
 * `source`; none of them is ever logged or put in a message.
 */
export interface Credentials {
  readonly username?: string;
  readonly password?: string;
  /** An OAuth2 refresh token (config.json `identitytoken`, or a helper's `<token>` user): exchanged by POST to the realm. */
  readonly identityToken?: string;
  /** A bearer token to send to the registry as it is (config.json `registrytoken`). */
  readonly registryToken?: string;
  /** Where they came from, for messages: `--creds`, `/root/.docker/config.json`, `docker-credential-pass`… */
  readonly source: string;
}

/** Resolves credentials when they are first needed (a credential helper is only run if the registry asks); the signal cancels a helper that hangs. */
export type CredentialsLoader = (signal?: AbortSignal) => Promise<Credentials | undefined>;

/**
 * `text` with the secrets of `credentials` (password, identity token, registry token) replaced by `***`: for
 * what a token service or registry answers, which may echo what it was sent. Shorter values than 4 characters
 * are left, as they would be found inside ordinary words.
 *
 * @example hideCredentials('incorrect password hunter2', { password: 'hunter2', source: '--creds' }) // 'incorrect password ***'
 */
export function hideCredentials(text: string, credentials: Credentials | undefined): string {
  return credentials === undefined ? text : hideSecrets(text, [credentials.password, credentials.identityToken, credentials.registryToken]);
}

/**
 * Secrets of the process rather than of one request: a proxy's password and its `Proxy-Authorization` value
 * (from `HTTP_PROXY`). The proxy sees every request it forwards, and its answers, or a registry's behind it, may
 * echo them; {@link hideSecrets} hides these wherever it hides a request's own.
 */
const processSecrets = new Set<string>();

/** Adds `secret` to those {@link hideSecrets} always hides (see processSecrets). */
export function hideAlways(secret: string): void {
  if (secret.length >= 4) processSecrets.add(secret);
}

/** `text` with each of `secrets` of 4 characters or more, and each secret of the process, replaced by `***`. */
export function hideSecrets(text: string, secrets: readonly (string | undefined)[]): string {
  let hidden = text;
  for (const secret of [...secrets, ...processSecrets]) {
    if (secret !== undefined && secret.length >= 4 && hidden.includes(secret)) hidden = hidden.split(secret).join('***');
  }
  return hidden;
}

/**
 * The `Authorization` (or `Proxy-Authorization`) value for HTTP Basic: `Basic` and base64 of the UTF-8 of
 * `USER:PASSWORD`, as Go's `SetBasicAuth` sends it (RFC 7617 leaves the charset to the server; registries are Go).
 *
 * @example basicAuthorization('alice', 'hunter2') // 'Basic YWxpY2U6aHVudGVyMg=='
 */
export function basicAuthorization(username: string, password: string): string {
  return `Basic ${Buffer.from(`${username}:${password}`, 'utf8').toString('base64')}`;
}

/** True when `credentials` can log in with a username and password. */
export function hasPassword(credentials: Credentials | undefined): credentials is Credentials & { username: string; password: string } {
  return credentials?.username !== undefined && credentials.password !== undefined;
}
