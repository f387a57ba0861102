import { asyncScheduler, connect, filter, merge, throttleTime, type MonoTypeOperatorFunction, type SchedulerLike } from 'rxjs';

/**
 * Lets at most one `pushing` event through per `interval` ms (the first of each window, so a blob's
 * progress starts at once), and every other event untouched and in place. Time is the scheduler's, so
 * TestScheduler can drive it.
 *
 * @example upload$.pipe(throttleProgress(100))
 */
export function throttleProgress<T extends { readonly type: string }>(interval: number, scheduler: SchedulerLike = asyncScheduler): MonoTypeOperatorFunction<T> {
  return connect((events) =>
    merge(
      events.pipe(
        filter((event) => event.type === 'pushing'),
        throttleTime(interval, scheduler),
      ),
      events.pipe(filter((event) => event.type !== 'pushing')),
    ),
  );
}
