import { PushError, type PushErrorCode } from '@rxpush/core';

/**
 * Authentication failed before the registry got a usable Authorization: the token service refused or
 * answered garbage, the credentials could not be read, or rxpush refused to send them somewhere.
 * The message names the request or file and says what to do.
 */
export class AuthError extends PushError {
  /** Its own brand, so instanceof works across installed copies; its codes are borrowed, so it never passes for a RegistryError. */
  static override readonly brand = 'AUTH';
  override readonly name = 'AuthError';
  /** The token realm or file the problem is with (URLs redacted), when there is one. */
  readonly where: string | undefined;
  constructor(code: Extract<PushErrorCode, 'UNAUTHORIZED' | 'DENIED' | 'REGISTRY_ERROR' | 'USAGE'>, message: string, options?: { where?: string; cause?: unknown }) {
    super(code, message, options?.cause !== undefined ? { cause: options.cause } : undefined);
    this.where = options?.where;
  }
}

/** What to tell a user whose credentials were refused, naming where they came from. */
export function checkCredentialsHint(source: string | undefined): string {
  return source === undefined
    ? 'pass credentials with --creds USER:PASS, --authfile PATH or docker login'
    : `check the credentials (from ${source}): --creds, --authfile or docker login`;
}
