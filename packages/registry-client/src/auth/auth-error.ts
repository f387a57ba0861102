import { PushError } from '@rxpush/core';

/**
 * The family of authentication failures that are not a registry's answer to a request: the credentials rxpush
 * was told to use cannot be read ({@link CredentialsError}), the token realm the registry names cannot be used
 * ({@link TokenRealmError}), or the token the service grants is short ({@link InsufficientScopeError}). A token
 * service that answers with an error status is an `UnauthorizedError`, `DeniedError` or `RegistryError` of core,
 * and one that answers something that is no token an `InvalidResponseError`, as for the registry itself.
 * Its subclasses fix the code; the message names the request or file and says what to do.
 */
export abstract class AuthError extends PushError {
  static override readonly brand: string = 'AUTH';
  override readonly name: string = 'AuthError';
  /** The token realm or file the problem is with (URLs redacted), when there is one. */
  readonly where: string | undefined;
  protected constructor(message: string, options?: { where?: string; cause?: unknown }) {
    // The concrete class's brand is its code, as for core's SourceError family.
    super((new.target as unknown as typeof PushError).brand as 'CREDENTIALS' | 'TOKEN_REALM' | 'INSUFFICIENT_SCOPE', message, options?.cause !== undefined ? { cause: options.cause } : undefined);
    this.where = options?.where;
  }
}

/** The credentials cannot be read: `--authfile` or a config.json that is missing or broken, a credential helper that is not installed, fails, hangs or answers garbage. */
export class CredentialsError extends AuthError {
  static override readonly brand = 'CREDENTIALS';
  override readonly name = 'CredentialsError';
  /** `where` is the file at fault (the config that names a helper, for a helper's failure). */
  constructor(message: string, options?: { where?: string; cause?: unknown }) {
    super(message, options);
  }
}

/**
 * The token realm the registry names cannot be used: none, not an http(s) URL, user info in it, a place rxpush
 * will not send credentials to (plain HTTP for an HTTPS registry, an internal address, a redirect to another
 * host), too many redirects, or a redirect of an OAuth2 form. The registry's auth configuration must change.
 */
export class TokenRealmError extends AuthError {
  static override readonly brand = 'TOKEN_REALM';
  override readonly name = 'TokenRealmError';
  /** `where` is the realm (redacted), when it is a URL. */
  constructor(message: string, options?: { where?: string; cause?: unknown }) {
    super(message, options);
  }
}

/**
 * The registry finds the token short (`insufficient_scope`) that the service issued for exactly the scopes
 * asked for, so asking again cannot help: credentials are needed (`anonymous`), or the account lacks the access.
 */
export class InsufficientScopeError extends AuthError {
  static override readonly brand = 'INSUFFICIENT_SCOPE';
  override readonly name = 'InsufficientScopeError';
  /** The scopes the token should have allowed. */
  readonly scopes: readonly string[];
  /** The token was anonymous: credentials may get the access. */
  readonly anonymous: boolean;
  constructor(message: string, init: { scopes: readonly string[]; anonymous: boolean; where?: string }) {
    super(message, init.where !== undefined ? { where: init.where } : undefined);
    this.scopes = init.scopes;
    this.anonymous = init.anonymous;
  }
}

/** What to tell a user whose credentials were refused, naming where they came from. */
export function checkCredentialsHint(source: string | undefined): string {
  return source === undefined
    ? 'pass credentials with --creds USER:PASS, --authfile PATH or docker login'
    : `check the credentials (from ${source}): --creds, --authfile or docker login`;
}
