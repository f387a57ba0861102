/** Shared by the end-to-end tests: run push() to the end, and pick events of one type. */
import type { PushEvent } from '@rxpush/core';
import { push, type PushOptions } from '@rxpush/pipeline';
import { lastValueFrom, toArray } from 'rxjs';

/** Pushes and collects every event; with no digest cache unless the test names one, so each test sees only its own push. */
export const pushAll = (options: PushOptions): Promise<PushEvent[]> => lastValueFrom(push({ cacheDir: false, ...options }).pipe(toArray()));

/** The events of one type, typed as such. */
export const ofType = <T extends PushEvent['type']>(events: PushEvent[], type: T): Extract<PushEvent, { type: T }>[] =>
  events.filter((e): e is Extract<PushEvent, { type: T }> => e.type === type);
