/**
 * Every failure rxpush reports has a stable `code`, fixed by its class (as undici's `UND_ERR_*`), so callers
 * branch on codes or classes, not messages. Messages name what failed and say what to do; the CLI prints
 * them as one line.
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
  | 'INVALID_RESPONSE'
  | 'UNAUTHORIZED'
  | 'DENIED'
  | 'CREDENTIALS'
  | 'TOKEN_REALM'
  | 'INSUFFICIENT_SCOPE'
  | 'INVALID_CHALLENGE'
  | 'TLS'
  | 'TLS_CONFIG'
  | 'TIMEOUT'
  | 'BLOB_NOT_VERIFIED'
  | 'CANCELLED'
  | 'INVALID_KEY'
  | 'NOT_SIGNED'
  | 'VERIFY_FAILED';

const BRAND_PREFIX = 'rxpush.error';

/** The registry-wide symbol an error of `brand` carries: the same in every installed copy of core. */
function brandSymbol(brand: string): symbol {
  return Symbol.for(brand === '' ? BRAND_PREFIX : `${BRAND_PREFIX}.${brand}`);
}

/**
 * The base of all rxpush errors. Every instance carries `Symbol.for('rxpush.error')` and the brand of each class
 * it descends from (a concrete class's brand is its code: `Symbol.for('rxpush.error.CODE')`), and `instanceof`
 * checks those brands (`Symbol.hasInstance`): an error made by one installed copy of core is an instance of the
 * other copy's classes too.
 */
export abstract class PushError extends Error {
  /** The brand instances of this class carry, and `instanceof` checks: its code, or its family's name. */
  static readonly brand: string = '';
  /**
   * A family whose codes all have a class among its subclasses (with no fields of their own) sets this:
   * its instances then carry their code's brand too, so `new RegistryError({ status: 401, … })` is an
   * UnauthorizedError. A class that only borrows codes must not, or it would pass for the class of that code.
   */
  static readonly brandsItsCode: boolean = false;
  override readonly name: string = 'PushError';
  readonly code: PushErrorCode;

  protected constructor(code: PushErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options?.cause !== undefined ? { cause: options.cause } : undefined);
    this.code = code;
    const brands = new Set(['']);
    if ((new.target as unknown as typeof PushError).brandsItsCode) brands.add(code);
    for (let c: unknown = new.target; typeof c === 'function' && c !== Error; c = Object.getPrototypeOf(c)) {
      const brand = (c as { brand?: unknown }).brand;
      if (typeof brand === 'string') brands.add(brand);
    }
    for (const brand of brands) Object.defineProperty(this, brandSymbol(brand), { value: true });
  }

  static override [Symbol.hasInstance](value: unknown): boolean {
    // A subclass without a brand of its own (one a user wrote) is checked the ordinary way, by prototype.
    if (!Object.hasOwn(this, 'brand')) return Function.prototype[Symbol.hasInstance].call(this, value);
    return typeof value === 'object' && value !== null && (value as Record<symbol, unknown>)[brandSymbol(this.brand)] === true;
  }
}

/** Bad command-line or option input; the CLI exits 2. */
export class UsageError extends PushError {
  static override readonly brand = 'USAGE';
  override readonly name = 'UsageError';
  constructor(message: string) {
    super('USAGE', message);
  }
}

/** An image reference (destination or docker:// source) that does not parse. */
export class ReferenceFormatError extends PushError {
  static override readonly brand = 'INVALID_REFERENCE';
  override readonly name = 'ReferenceFormatError';
  readonly reference: string;
  constructor(reference: string, reason: string) {
    super('INVALID_REFERENCE', `invalid image reference "${reference}": ${reason}; expected REGISTRY/REPOSITORY[:TAG], e.g. localhost:5000/app:1.0`);
    this.reference = reference;
  }
}

/**
 * A value read from a document, for a message: a string quoted, anything else as JSON (`null`, `{}`), never
 * String()'s `[object Object]`; cut after 80 characters. (The CLI's quote() cuts its words the same way.)
 */
function quoted(value: unknown): string {
  const cut = (text: string): string => (text.length > 80 ? `${text.slice(0, 80)}…` : text);
  if (typeof value === 'string') return `"${cut(value)}"`;
  try {
    return cut(JSON.stringify(value) ?? String(value));
  } catch {
    // A BigInt, or a cycle: not from a JSON document.
    return cut(String(value));
  }
}

/** A digest that is not `sha256:` + 64 hex (checked before any use in a path or URL). */
export class DigestFormatError extends PushError {
  static override readonly brand = 'INVALID_DIGEST';
  override readonly name = 'DigestFormatError';
  readonly value: unknown;
  constructor(value: unknown, what = 'digest') {
    const problem = value === undefined ? `missing ${what}` : `invalid ${what}: ${quoted(value)}`;
    super('INVALID_DIGEST', `${problem}; expected sha256: followed by 64 lowercase hex digits`);
    this.value = value;
  }
}

/**
 * The family of problems with the source: it does not exist ({@link SourceNotFoundError}), or is not what its
 * transport says it is ({@link InvalidSourceError}). Its subclasses fix the code; `instanceof SourceError` matches both.
 */
export abstract class SourceError extends PushError {
  static override readonly brand: string = 'SOURCE';
  override readonly name: string = 'SourceError';
  /** The file, directory or image the problem is in. */
  readonly path: string;
  protected constructor(path: string, message: string, options?: { cause?: unknown }) {
    // The concrete class's brand is its code, as for RegistryUnreachableError.
    super((new.target as unknown as typeof PushError).brand as 'SOURCE_NOT_FOUND' | 'INVALID_SOURCE', message, options);
    this.path = path;
  }
}

/** The source (file, directory, image in a daemon) does not exist. */
export class SourceNotFoundError extends SourceError {
  static override readonly brand = 'SOURCE_NOT_FOUND';
  override readonly name = 'SourceNotFoundError';
  constructor(path: string, message: string, options?: { cause?: unknown }) {
    super(path, message, options);
  }
}

/** The source is not what its transport says it is, or its bytes are not what it recorded (length, readability). */
export class InvalidSourceError extends SourceError {
  static override readonly brand = 'INVALID_SOURCE';
  override readonly name = 'InvalidSourceError';
  constructor(path: string, message: string, options?: { cause?: unknown }) {
    super(path, message, options);
  }
}

/** A blob the image names is not where the source should have it. */
export class BlobMissingError extends PushError {
  static override readonly brand = 'BLOB_MISSING';
  override readonly name = 'BlobMissingError';
  readonly digest: string;
  readonly path: string;
  constructor(digest: string, path: string, hint = 'the image is incomplete; re-export it from where it came from') {
    super('BLOB_MISSING', `blob ${digest} is missing from ${path}: ${hint}`);
    this.digest = digest;
    this.path = path;
  }
}

/**
 * Bytes do not hash to the digest (or size) they are recorded under: in the source, or as the registry stored them.
 * `message` replaces the default one (about a corrupt source) where the mismatch is elsewhere.
 */
export class DigestMismatchError extends PushError {
  static override readonly brand = 'DIGEST_MISMATCH';
  override readonly name = 'DigestMismatchError';
  /** The digest (or `N bytes`) the bytes should have had. */
  readonly expected: string;
  /** What they had. */
  readonly actual: string;
  /** Where the bytes are: a file, a layer, or the URL of the request that stored them. */
  readonly path: string;
  constructor(expected: string, actual: string, path: string, options?: { message?: string; cause?: unknown }) {
    super(
      'DIGEST_MISMATCH',
      options?.message ?? `${path} does not match its digest: expected ${expected}, read ${actual}; the source is corrupt, re-export the image`,
      options,
    );
    this.expected = expected;
    this.actual = actual;
    this.path = path;
  }
}

/** Something the image or options ask for that rxpush cannot do (e.g. zstd layers in a Docker manifest). */
export class UnsupportedError extends PushError {
  static override readonly brand = 'UNSUPPORTED';
  override readonly name = 'UnsupportedError';
  constructor(message: string) {
    super('UNSUPPORTED', message);
  }
}

/** What a retry decision needs to know about a failed request, carried by the error itself. */
export interface RetryFacts {
  /** A caller may try the request again: the failure can pass (5xx, 429, a reset), and no retries were spent on it yet. */
  readonly retryable?: boolean;
  /** How long the registry asked to wait (Retry-After), in ms. */
  readonly retryAfterMs?: number | undefined;
  /** Attempts the request already made, retries included (1 when it was not retried). */
  readonly attempts?: number;
}

interface RegistryAnswer extends RetryFacts {
  readonly method: string;
  readonly url: string;
  readonly status: number;
  readonly registryCode?: string | undefined;
  readonly detail?: string | undefined;
  readonly hint?: string | undefined;
}

/**
 * The registry answered with an error status; the message names the request, like ky's HTTPError:
 * `METHOD URL → STATUS CODE: detail; what to do`. 401 answers are {@link UnauthorizedError}, 403 {@link DeniedError}.
 */
export class RegistryError extends PushError {
  static override readonly brand: string = 'REGISTRY_ERROR';
  static override readonly brandsItsCode = true;
  override readonly name: string = 'RegistryError';
  readonly method: string;
  /** The URL with any query values that may be secret removed. */
  readonly url: string;
  readonly status: number;
  /** The first error code of the registry's JSON body (e.g. `BLOB_UNKNOWN`), if it sent one. */
  readonly registryCode: string | undefined;
  readonly detail: string | undefined;
  /** What the message advises (after `;`), if anything. */
  readonly hint: string | undefined;
  readonly retryable: boolean;
  readonly retryAfterMs: number | undefined;
  readonly attempts: number;

  constructor(init: RegistryAnswer) {
    super(init.status === 401 ? 'UNAUTHORIZED' : init.status === 403 ? 'DENIED' : 'REGISTRY_ERROR', registryMessage(init));
    this.method = init.method;
    this.url = init.url;
    this.status = init.status;
    this.registryCode = init.registryCode;
    this.detail = init.detail;
    this.hint = init.hint;
    this.retryable = init.retryable ?? false;
    this.retryAfterMs = init.retryAfterMs;
    this.attempts = init.attempts ?? 1;
  }
}

function registryMessage(init: RegistryAnswer): string {
  // "unsupported.; the registry …" reads badly: a sentence's full stop gives way to the hint's semicolon.
  const said = [init.registryCode, init.detail].filter(Boolean).join(': ');
  const what = init.hint ? said.replace(/\.$/, '') : said;
  return `${init.method} ${init.url} → ${init.status}${what ? ` ${what}` : ''}${init.hint ? `; ${init.hint}` : ''}`;
}

/** The registry answered 401: it wants (other) credentials. */
export class UnauthorizedError extends RegistryError {
  static override readonly brand = 'UNAUTHORIZED';
  override readonly name = 'UnauthorizedError';
  constructor(init: Omit<RegistryAnswer, 'status'>) {
    super({ ...init, status: 401 });
  }
}

/** The registry answered 403: the credentials may not do this. */
export class DeniedError extends RegistryError {
  static override readonly brand = 'DENIED';
  override readonly name = 'DeniedError';
  constructor(init: Omit<RegistryAnswer, 'status'>) {
    super({ ...init, status: 403 });
  }
}

/**
 * The registry answered with a status rxpush expected, but the answer is not what the distribution API says
 * (no Location, no Content-Length, a body that is not a tag list, a Range that disagrees with what was sent).
 */
export class InvalidResponseError extends PushError {
  static override readonly brand = 'INVALID_RESPONSE';
  override readonly name = 'InvalidResponseError';
  readonly method: string;
  readonly url: string;
  readonly status: number;
  /** `problem` says what is wrong with the answer and what to do. */
  constructor(init: { method: string; url: string; status: number; problem: string }) {
    super('INVALID_RESPONSE', `${init.method} ${init.url} → ${init.status} ${init.problem}`);
    this.method = init.method;
    this.url = init.url;
    this.status = init.status;
  }
}

/**
 * No HTTP answer at all: connection refused, DNS, reset. Timeouts are {@link TimeoutError}, TLS failures {@link TlsError}.
 * The message names the request: `GET https://r/v2/ failed: …` (`cannot reach URL: …` when the method is not known).
 */
export class RegistryUnreachableError extends PushError {
  static override readonly brand: string = 'REGISTRY_UNREACHABLE';
  override readonly name: string = 'RegistryUnreachableError';
  readonly url: string;
  /** The request's method, when known. */
  readonly method: string | undefined;
  /** Why there was no answer, and what to do (the message after the request). */
  readonly reason: string;
  readonly retryable: boolean;
  readonly attempts: number;
  /** `refused`: rxpush refused to send the request (`METHOD URL refused: reason`), rather than it failing. */
  constructor(url: string, reason: string, options?: { cause?: unknown; method?: string | undefined; refused?: boolean } & Omit<RetryFacts, 'retryAfterMs'>) {
    const code = new.target.brand === 'TIMEOUT' ? 'TIMEOUT' : new.target.brand === 'TLS' ? 'TLS' : 'REGISTRY_UNREACHABLE';
    const request = options?.method !== undefined ? `${options.method} ${url}` : undefined;
    super(code, request === undefined ? `cannot reach ${url}: ${reason}` : `${request} ${options?.refused === true ? 'refused' : 'failed'}: ${reason}`, options);
    this.url = url;
    this.method = options?.method;
    this.reason = reason;
    this.retryable = options?.retryable ?? false;
    this.attempts = options?.attempts ?? 1;
  }
}

/** Connecting, or waiting for the registry's answer or the rest of its body, took longer than allowed. */
export class TimeoutError extends RegistryUnreachableError {
  static override readonly brand = 'TIMEOUT';
  override readonly name = 'TimeoutError';
}

/** The TLS handshake with the registry failed: an untrusted certificate, or a server that does not speak TLS. Never retried. */
export class TlsError extends RegistryUnreachableError {
  static override readonly brand = 'TLS';
  override readonly name = 'TlsError';
}

/** A local TLS file (`--ca-file`, a certs.d directory, a client certificate or key) cannot be used. */
export class TlsConfigError extends PushError {
  static override readonly brand = 'TLS_CONFIG';
  override readonly name = 'TlsConfigError';
  /** The file or directory at fault. */
  readonly path: string;
  constructor(path: string, message: string, options?: { cause?: unknown }) {
    super('TLS_CONFIG', message, options);
    this.path = path;
  }
}

/** A blob that should be in the registry cannot be found there, so no manifest naming it is pushed. */
export class BlobNotVerifiedError extends PushError {
  static override readonly brand = 'BLOB_NOT_VERIFIED';
  override readonly name = 'BlobNotVerifiedError';
  constructor(message: string) {
    super('BLOB_NOT_VERIFIED', message);
  }
}

/** The push was cancelled (unsubscribed, or Ctrl-C). */
export class CancelledError extends PushError {
  static override readonly brand = 'CANCELLED';
  override readonly name = 'CancelledError';
  constructor(message = 'push cancelled') {
    super('CANCELLED', message);
  }
}

/** A signing or verification key that is missing, unreadable, unparsable, locked, or of a type the format cannot use. */
export class KeyError extends PushError {
  static override readonly brand = 'INVALID_KEY';
  override readonly name = 'KeyError';
  /** The key file (or `the key` when it came as text). */
  readonly path: string;
  constructor(path: string, message: string, options?: { cause?: unknown }) {
    super('INVALID_KEY', message, options);
    this.path = path;
  }
}

/** The image is in the registry, but its signature could not be pushed: say so, with the digest. */
export class NotSignedError extends PushError {
  static override readonly brand = 'NOT_SIGNED';
  override readonly name = 'NotSignedError';
  readonly digest: string;
  constructor(digest: string, reason: string, options?: { cause?: unknown }) {
    super('NOT_SIGNED', `the image IS pushed (${digest}) but NOT signed: ${reason}; sign it again with the same command`, options);
    this.digest = digest;
  }
}

/** Why a verification failed, for callers that branch on it. */
export type VerifyFailure = 'no-signature' | 'other-key' | 'other-digest' | 'other-repository' | 'invalid-signature';

/** No signature by the given key covers exactly the image's digest and repository. */
export class VerifyError extends PushError {
  static override readonly brand = 'VERIFY_FAILED';
  override readonly name = 'VerifyError';
  readonly reason: VerifyFailure;
  constructor(reason: VerifyFailure, message: string) {
    super('VERIFY_FAILED', message);
    this.reason = reason;
  }
}

/** True for errors of rxpush (of any installed copy of core); narrows to PushError. */
export function isPushError(error: unknown): error is PushError {
  return error instanceof PushError;
}
