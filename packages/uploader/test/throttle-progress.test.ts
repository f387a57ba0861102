import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import type { PushEvent } from '@rxpush/core';
import { TestScheduler } from 'rxjs/testing';

import { throttleProgress } from '../src/throttle-progress.ts';

const pushing = (current: number): PushEvent => ({ type: 'pushing', id: 'a', key: 'k', role: 'layer', current });
const events = {
  z: pushing(0),
  a: pushing(1),
  b: pushing(2),
  c: pushing(3),
  d: pushing(4),
  r: { type: 'retrying', id: 'a', attempt: 1, delayMs: 0, reason: 'x' } as PushEvent,
  t: { type: 'pushing', id: 'a', key: 'k', role: 'layer', current: 4, total: 4 } as PushEvent,
  p: { type: 'pushed', id: 'a', key: 'k', role: 'layer', digest: 'sha256:0', size: 4 } as PushEvent,
};

describe('throttleProgress', () => {
  it('lets one pushing event through per interval, the first of each, and every other event at once', () => {
    const scheduler = new TestScheduler((actual, expected) => assert.deepEqual(actual, expected));
    scheduler.run(({ cold, expectObservable }) => {
      const source = cold('a 49ms b 29ms r 20ms c 100ms d p|', events);
      expectObservable(source.pipe(throttleProgress(100, scheduler))).toBe('a 79ms r 20ms c 100ms d p|', events);
    });
  });

  it('lets the 0-byte start of an attempt through without taking the window from the first bytes', () => {
    const scheduler = new TestScheduler((actual, expected) => assert.deepEqual(actual, expected));
    scheduler.run(({ cold, expectObservable }) => {
      expectObservable(cold('z 9ms a 9ms b p|', events).pipe(throttleProgress(100, scheduler))).toBe('z 9ms a 9ms - p|', events);
    });
  });

  it('never holds a pushing event back to the end of its window', () => {
    const scheduler = new TestScheduler((actual, expected) => assert.deepEqual(actual, expected));
    scheduler.run(({ cold, expectObservable }) => {
      expectObservable(cold('a 10ms b p|', events).pipe(throttleProgress(100, scheduler))).toBe('a 10ms - p|', events);
    });
  });

  it('lets the pushing event that reaches the total through, so a blob shows every byte sent while its answer comes', () => {
    const scheduler = new TestScheduler((actual, expected) => assert.deepEqual(actual, expected));
    scheduler.run(({ cold, expectObservable }) => {
      expectObservable(cold('a 9ms b 9ms t 500ms p|', events).pipe(throttleProgress(100, scheduler))).toBe('a 9ms - 9ms t 500ms p|', events);
    });
  });
});
