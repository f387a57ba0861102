import { asyncScheduler, connect, filter, merge, throttleTime, type MonoTypeOperatorFunction, type SchedulerLike } from 'rxjs';

/**
 * Lets at most one `pushing` event with bytes through per `interval` ms (the first of each window, so a
 * blob's progress shows at once), and every other event untouched and in place: the `pushing` of 0 bytes that
 * starts an attempt, the one that reaches the blob's known total (every byte sent: what follows is the
 * registry's answer, which may take a while), `retrying`, `pushed`. Time is the scheduler's, so TestScheduler can drive it.
 *
 * @example upload$.pipe(throttleProgress(100))
 */
export function throttleProgress<T extends { readonly type: string }>(interval: number, scheduler: SchedulerLike = asyncScheduler): MonoTypeOperatorFunction<T> {
  const isBytes = (event: T): boolean => {
    if (event.type !== 'pushing') return false;
    const { current, total } = event as { current?: number; total?: number };
    return current !== 0 && current !== total;
  };
  return connect((events) =>
    merge(
      events.pipe(filter(isBytes), throttleTime(interval, scheduler)),
      events.pipe(filter((event) => !isBytes(event))),
    ),
  );
}
