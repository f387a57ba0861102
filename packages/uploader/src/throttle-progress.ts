import { asyncScheduler, connect, filter, merge, throttleTime, type MonoTypeOperatorFunction, type SchedulerLike } from 'rxjs';

/**
 * Lets at most one `pushing` event with bytes through per `interval` ms (the first of each window, so a
 * blob's progress shows at once), and every other event untouched and in place: the `pushing` of 0 bytes that
 * starts an attempt, `retrying`, `pushed`. Time is the scheduler's, so TestScheduler can drive it.
 *
 * @example upload$.pipe(throttleProgress(100))
 */
export function throttleProgress<T extends { readonly type: string }>(interval: number, scheduler: SchedulerLike = asyncScheduler): MonoTypeOperatorFunction<T> {
  const isBytes = (event: T): boolean => event.type === 'pushing' && (event as { current?: number }).current !== 0;
  return connect((events) =>
    merge(
      events.pipe(filter(isBytes), throttleTime(interval, scheduler)),
      events.pipe(filter((event) => !isBytes(event))),
    ),
  );
}
