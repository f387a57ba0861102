/** Shared by the end-to-end tests of the CLI. */
import assert from 'node:assert/strict';

import type { CliResult } from './run-cli.ts';

/** A failure is one `rxpush: …` line on stderr, saying what is wrong and what to do, and exit status `code`. */
export function assertOneLineError(result: CliResult, pattern: RegExp, code = 1): void {
  assert.equal(result.code, code, `exit status; stderr: ${result.stderr}`);
  const lines = result.stderr.trimEnd().split('\n');
  assert.equal(lines.length, 1, `one line on stderr, got:\n${result.stderr}`);
  assert.match(lines[0] ?? '', /^rxpush: /);
  assert.match(lines[0] ?? '', pattern);
}

/**
 * A failure whose wording a table of faults cannot know in advance: exit 1 and one `rxpush: …` line that
 * shows none of JavaScript's insides (a TypeError, `undefined`, `[object Object]`, an `Error:` prefix).
 * Returns the line for further checks.
 */
export function assertCleanFailure(result: CliResult): string {
  assertOneLineError(result, /^rxpush: \S/);
  const line = result.stderr.trimEnd();
  assert.doesNotMatch(line, /TypeError|Cannot read|undefined|\[object|Error:/);
  return line;
}
