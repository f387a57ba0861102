import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import * as core from '../src/index.ts';
import {
  BlobNotVerifiedError,
  CancelledError,
  DeniedError,
  DigestMismatchError,
  InvalidSourceError,
  PushError,
  RegistryError,
  RegistryUnreachableError,
  SourceError,
  SourceNotFoundError,
  TimeoutError,
  TlsConfigError,
  TlsError,
  UnauthorizedError,
  UsageError,
} from '../src/index.ts';

describe('error classes', () => {
  it('fix the code by the class', () => {
    const url = 'https://r.example/v2/';
    const cases: [PushError, string][] = [
      [new UsageError('x'), 'USAGE'],
      [new SourceNotFoundError('p', 'x'), 'SOURCE_NOT_FOUND'],
      [new InvalidSourceError('p', 'x'), 'INVALID_SOURCE'],
      [new DigestMismatchError('a', 'b', 'p'), 'DIGEST_MISMATCH'],
      [new RegistryError({ method: 'GET', url, status: 500 }), 'REGISTRY_ERROR'],
      [new UnauthorizedError({ method: 'GET', url }), 'UNAUTHORIZED'],
      [new DeniedError({ method: 'GET', url }), 'DENIED'],
      [new RegistryUnreachableError(url, 'x'), 'REGISTRY_UNREACHABLE'],
      [new TimeoutError(url, 'x'), 'TIMEOUT'],
      [new TlsError(url, 'x'), 'TLS'],
      [new TlsConfigError('ca.crt', 'x'), 'TLS_CONFIG'],
      [new BlobNotVerifiedError('x'), 'BLOB_NOT_VERIFIED'],
      [new CancelledError(), 'CANCELLED'],
    ];
    for (const [error, code] of cases) {
      assert.equal(error.code, code, error.name);
      assert.equal((error as unknown as Record<symbol, unknown>)[Symbol.for(`rxpush.error.${code}`)], true, error.name);
    }
  });

  it('are instances of their family and of nothing else', () => {
    const url = 'https://r.example/v2/';
    assert.ok(new UnauthorizedError({ method: 'GET', url }) instanceof RegistryError);
    assert.ok(!(new RegistryError({ method: 'GET', url, status: 500 }) instanceof UnauthorizedError));
    assert.ok(new TimeoutError(url, 'x') instanceof RegistryUnreachableError);
    assert.ok(!(new TimeoutError(url, 'x') instanceof TlsError));
    assert.ok(new SourceNotFoundError('p', 'x') instanceof SourceError);
    // A family constructed with a code is an instance of that code's class.
    assert.ok(new SourceError('SOURCE_NOT_FOUND', 'p', 'x') instanceof SourceNotFoundError);
    assert.ok(!(new SourceError('INVALID_SOURCE', 'p', 'x') instanceof SourceNotFoundError));
    assert.ok(new UsageError('x') instanceof PushError && new UsageError('x') instanceof Error);
    assert.ok(!(new UsageError('x') instanceof CancelledError));
    assert.ok(!(new Error('x') instanceof PushError));
    assert.ok(!((null as unknown as object) instanceof PushError));
    assert.ok(core.isPushError(new TlsConfigError('p', 'x')));
    // A RegistryError made for a 401 is what registryError() would have made: an UnauthorizedError.
    assert.ok(new RegistryError({ method: 'GET', url, status: 401 }) instanceof UnauthorizedError);
  });

  it('do not make a class that borrows a code pass for the class of that code', () => {
    class Borrowing extends PushError {
      constructor() {
        super('UNAUTHORIZED', 'the token service refused');
      }
    }
    const error = new Borrowing();
    assert.equal(error.code, 'UNAUTHORIZED');
    assert.ok(error instanceof PushError && error instanceof Borrowing);
    assert.ok(!(error instanceof UnauthorizedError) && !(error instanceof RegistryError), 'it has no status, method or URL');
    assert.ok(!(new UsageError('x') instanceof Borrowing), 'a class without a brand of its own is checked by prototype');
  });

  it('are recognised by instanceof across two installed copies of core', async () => {
    // The same module loaded a second time, as a second copy in node_modules would be.
    const other = (await import(`../src/errors.ts?copy=${Date.now()}`)) as typeof import('../src/errors.ts');
    assert.notEqual(other.UsageError, UsageError);
    const foreign = new other.DigestMismatchError('a', 'b', 'p');
    assert.ok(foreign instanceof DigestMismatchError);
    assert.ok(foreign instanceof PushError);
    assert.ok(!(foreign instanceof UsageError));
    assert.ok(new UnauthorizedError({ method: 'GET', url: 'u' }) instanceof other.RegistryError);
    assert.ok(other.isPushError(new CancelledError()));
  });
});
