'use strict';
// What yargs's platform shim gets for `import { notStrictEqual, strictEqual } from 'assert'` (tools/bundle-cli.mjs):
// yargs uses the two as sanity checks of its own arguments, and loading node:assert (its inspect and diff
// machinery) costs ~1.7 ms of `rxpush --help` and of usage errors; a push loads it anyway, for undici's own
// checks. Same semantics (Object.is), same error name and code.
class AssertionError extends Error {
  constructor(message) {
    super(message);
    this.name = 'AssertionError';
    this.code = 'ERR_ASSERTION';
  }
}

function fail(message, fallback) {
  throw message instanceof Error ? message : new AssertionError(message ?? fallback);
}

exports.strictEqual = function strictEqual(actual, expected, message) {
  if (!Object.is(actual, expected)) fail(message, `Expected values to be strictly equal: ${String(actual)} !== ${String(expected)}`);
};

exports.notStrictEqual = function notStrictEqual(actual, expected, message) {
  if (Object.is(actual, expected)) fail(message, `Expected "actual" to be strictly unequal to: ${String(expected)}`);
};
