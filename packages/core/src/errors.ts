/**
 * Every failure rxpush reports has a stable `code`, so callers branch on codes, not messages.
 * Messages name what failed and say what to do; the CLI prints them as one line.
 */
export type PushErrorCode =
  | 'USAGE'
  | 'INVALID_REFERENCE'
  | 'INVALID_DIGEST'
  | 'SOURCE_NOT_FOUND'
  | 'INVALID_SOURCE'
  | 'BLOB_MISSING'
  | 'DIGEST_MISMATCH'
  | 'UNSUPPORTED'
  | 'REGISTRY_UNREACHABLE'
  | 'REGISTRY_ERROR'
  | 'UNAUTHORIZED'
  | 'DENIED'
  | 'TLS'
  | 'TIMEOUT'
  | 'BLOB_NOT_VERIFIED'
  | 'CANCELLED';

/** The base of all rxpush errors. */
export class PushError extends Error {
  override readonly name: string = 'PushError';
  readonly code: PushErrorCode;

  constructor(code: PushErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
  }
}

/** Bad command-line or option input; the CLI exits 2. */
export class UsageError extends PushError {
  override readonly name = 'UsageError';
  constructor(message: string) {
    super('USAGE', message);
  }
}

/** An image reference (destination or docker:// source) that does not parse. */
export class ReferenceFormatError extends PushError {
  override readonly name = 'ReferenceFormatError';
  readonly reference: string;
  constructor(reference: string, reason: string) {
    super('INVALID_REFERENCE', `invalid image reference "${reference}": ${reason}; expected REGISTRY/REPOSITORY[:TAG], e.g. localhost:5000/app:1.0`);
    this.reference = reference;
  }
}

/** A digest that is not `sha256:` + 64 hex (checked before any use in a path or URL). */
export class DigestFormatError extends PushError {
  override readonly name = 'DigestFormatError';
  readonly value: unknown;
  constructor(value: unknown, what = 'digest') {
    const shown = typeof value === 'string' ? `"${value.length > 80 ? `${value.slice(0, 80)}…` : value}"` : String(value);
    super('INVALID_DIGEST', `invalid ${what} ${shown}: expected sha256: followed by 64 lowercase hex digits`);
    this.value = value;
  }
}

/** The source does not exist, or is not what its transport says it is. */
export class SourceError extends PushError {
  override readonly name = 'SourceError';
  /** The file, directory or image the problem is in. */
  readonly path: string;
  constructor(code: 'SOURCE_NOT_FOUND' | 'INVALID_SOURCE', path: string, message: string, options?: { cause?: unknown }) {
    super(code, message, options);
    this.path = path;
  }
}

/** A blob the image names is not where the source should have it. */
export class BlobMissingError extends PushError {
  override readonly name = 'BlobMissingError';
  readonly digest: string;
  readonly path: string;
  constructor(digest: string, path: string, hint = 'the image is incomplete; re-export it from where it came from') {
    super('BLOB_MISSING', `blob ${digest} is missing from ${path}: ${hint}`);
    this.digest = digest;
    this.path = path;
  }
}

/** Bytes read do not hash to the digest they are recorded under. */
export class DigestMismatchError extends PushError {
  override readonly name = 'DigestMismatchError';
  readonly expected: string;
  readonly actual: string;
  readonly path: string;
  constructor(expected: string, actual: string, path: string) {
    super('DIGEST_MISMATCH', `${path} does not match its digest: expected ${expected}, read ${actual}; the source is corrupt, re-export the image`);
    this.expected = expected;
    this.actual = actual;
    this.path = path;
  }
}

/** Something the image or options ask for that rxpush cannot do (e.g. zstd layers in a Docker manifest). */
export class UnsupportedError extends PushError {
  override readonly name = 'UnsupportedError';
  constructor(message: string) {
    super('UNSUPPORTED', message);
  }
}

/** The registry answered with an error status; the message names the request, like ky's HTTPError. */
export class RegistryError extends PushError {
  override readonly name: string = 'RegistryError';
  readonly method: string;
  /** The URL with any query values that may be secret removed. */
  readonly url: string;
  readonly status: number;
  /** The first error code of the registry's JSON body (e.g. `BLOB_UNKNOWN`), if it sent one. */
  readonly registryCode: string | undefined;
  readonly detail: string | undefined;

  constructor(
    init: { method: string; url: string; status: number; registryCode?: string | undefined; detail?: string | undefined; hint?: string | undefined },
    code: PushErrorCode = init.status === 401 ? 'UNAUTHORIZED' : init.status === 403 ? 'DENIED' : 'REGISTRY_ERROR',
  ) {
    const what = [init.registryCode, init.detail].filter(Boolean).join(': ');
    super(code, `${init.method} ${init.url} → ${init.status}${what ? ` ${what}` : ''}${init.hint ? `; ${init.hint}` : ''}`);
    this.method = init.method;
    this.url = init.url;
    this.status = init.status;
    this.registryCode = init.registryCode;
    this.detail = init.detail;
  }
}

/** No HTTP answer at all: connection refused, DNS, reset, or a timeout. The message names the request: `GET https://r/v2/ failed: …`. */
export class RegistryUnreachableError extends PushError {
  override readonly name = 'RegistryUnreachableError';
  readonly url: string;
  /** The request's method, when known. */
  readonly method: string | undefined;
  constructor(url: string, reason: string, options?: { cause?: unknown; code?: 'REGISTRY_UNREACHABLE' | 'TIMEOUT' | 'TLS'; method?: string }) {
    super(options?.code ?? 'REGISTRY_UNREACHABLE', options?.method !== undefined ? `${options.method} ${url} failed: ${reason}` : `cannot reach ${url}: ${reason}`, options);
    this.url = url;
    this.method = options?.method;
  }
}

/** The push was cancelled (unsubscribed, or Ctrl-C). */
export class CancelledError extends PushError {
  override readonly name = 'CancelledError';
  constructor(message = 'push cancelled') {
    super('CANCELLED', message);
  }
}

/** True for errors of rxpush; narrows to PushError. */
export function isPushError(error: unknown): error is PushError {
  return error instanceof PushError;
}
