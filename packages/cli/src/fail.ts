import { inspect } from 'node:util';

import { isPushError, printable } from '@rxpush/core';

import { PUSH_HELP } from './parse-args.js';
import type { TextSink } from './progress/renderer.js';
import type { LogLevel } from './push-command.js';

/** Reports a failure on stderr and gives its exit status; usage errors name the help to read. */
export function fail(error: unknown, stderr: TextSink, logLevel: LogLevel, help: string = PUSH_HELP): number {
  let message = (error instanceof Error ? error.message : String(error)).replace(/\s*\n\s*/g, ' ');
  if (isPushError(error) && error.code === 'USAGE') message += `; ${help}`;
  // Messages quote registries and local files (an index.json's ref names, an error body): never raw control characters.
  stderr.write(`rxpush: ${printable(message)}\n`);
  if (logLevel === 'debug' || logLevel === 'trace') stderr.write(`${inspect(error)}\n`);
  if (!isPushError(error)) return 1;
  if (error.code === 'USAGE') return 2;
  if (error.code === 'CANCELLED') return 130;
  return 1;
}
