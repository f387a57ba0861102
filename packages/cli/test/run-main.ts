// Runs the CLI's main() in-process for the CLI's tests, with collected output and a stand-in push().
import assert from 'node:assert/strict';

import type { PushEvent } from '@rxpush/core';
import type { PushOptions } from '@rxpush/pipeline';
import type { Observable } from 'rxjs';

import { main, type MainIO } from '../src/main.ts';
import { sink } from './events.ts';

/** Runs main with collected output and, unless told otherwise, a push that must not be called. */
export async function run(argv: string[], io: Partial<MainIO> = {}) {
  const stdout = sink();
  const stderr = sink();
  const code = await main(argv, {
    stdout,
    stderr,
    signal: new AbortController().signal,
    push: () => assert.fail('push must not start'),
    ...io,
  });
  return { code, stdout: stdout.text, stderr: stderr.text };
}

/** A push that emits `events` and records the options it was given. */
export function fakePush(events: Observable<PushEvent>) {
  const calls: PushOptions[] = [];
  return {
    calls,
    push: (options: PushOptions) => {
      calls.push(options);
      return events;
    },
  };
}
