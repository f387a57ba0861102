import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import * as core from '../src/index.ts';
import {
  BlobNotVerifiedError,
  CancelledError,
  DeniedError,
  DigestMismatchError,
  InvalidSourceError,
  KeyError,
  NotSignedError,
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
  VerifyError,
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
      [new KeyError('k', 'x'), 'INVALID_KEY'],
      [new NotSignedError('sha256:0', 'x'), 'NOT_SIGNED'],
      [new VerifyError('no-signature', 'x'), 'VERIFY_FAILED'],
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
    // The family takes no code: each failure is its own class, and a sibling is not one of the other.
    assert.ok(new InvalidSourceError('p', 'x') instanceof SourceError);
    assert.ok(!(new InvalidSourceError('p', 'x') instanceof SourceNotFoundError));
    assert.ok(!(new SourceNotFoundError('p', 'x') instanceof InvalidSourceError));
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

  it('are each recognised by instanceof across two installed copies of core, as their own class only', async () => {
    const other = (await import(`../src/errors.ts?copy=${Date.now()}-all`)) as typeof import('../src/errors.ts');
    const url = 'https://r.example/v2/';
    // One of every concrete class, made by the other copy, with this copy's class it must match.
    const made: [PushError, Function][] = [
      [new other.UsageError('x'), UsageError],
      [new other.SourceNotFoundError('p', 'x'), SourceNotFoundError],
      [new other.InvalidSourceError('p', 'x'), InvalidSourceError],
      [new other.DigestMismatchError('a', 'b', 'p'), DigestMismatchError],
      [new other.RegistryError({ method: 'GET', url, status: 500 }), RegistryError],
      [new other.UnauthorizedError({ method: 'GET', url }), UnauthorizedError],
      [new other.DeniedError({ method: 'GET', url }), DeniedError],
      [new other.RegistryUnreachableError(url, 'x'), RegistryUnreachableError],
      [new other.TimeoutError(url, 'x'), TimeoutError],
      [new other.TlsError(url, 'x'), TlsError],
      [new other.TlsConfigError('ca.crt', 'x'), TlsConfigError],
      [new other.BlobNotVerifiedError('x'), BlobNotVerifiedError],
      [new other.CancelledError(), CancelledError],
      [new other.KeyError('k', 'x'), KeyError],
      [new other.NotSignedError('sha256:0', 'x'), NotSignedError],
      [new other.VerifyError('no-signature', 'x'), VerifyError],
    ];
    const families = new Map<Function, Function[]>([
      [SourceNotFoundError, [SourceError]],
      [InvalidSourceError, [SourceError]],
      [UnauthorizedError, [RegistryError]],
      [DeniedError, [RegistryError]],
      [TimeoutError, [RegistryUnreachableError]],
      [TlsError, [RegistryUnreachableError]],
    ]);
    for (const [error, own] of made) {
      assert.ok(error instanceof PushError && error instanceof own, `${error.name} is a ${own.name} here too`);
      for (const family of families.get(own) ?? []) assert.ok(error instanceof family, `${error.name} is a ${family.name}`);
      for (const [, otherClass] of made) {
        if (otherClass !== own && !(families.get(own) ?? []).includes(otherClass)) assert.ok(!(error instanceof otherClass), `${error.name} is not a ${otherClass.name}`);
      }
    }
  });
});
