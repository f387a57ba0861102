import { Observable } from 'rxjs';

/**
 * Turns one promise-returning piece of I/O into an Observable whose teardown aborts it:
 * where real I/O starts in an operator, this is the `new Observable` with the teardown that cancels it.
 *
 * Emits what `run` hands to `emit` while it works (progress, such as a request's retries), then the
 * resolved value, and completes; errors with the rejection. Emitting after unsubscription does nothing.
 *
 * @example
 * fromAbortable<PushEvent[]>(async (signal, emit) => {
 *   const info = await client.hasBlob('app', digest, { signal, onRetry: (retrying) => emit([retrying]) });
 *   return info === undefined ? [] : [{ type: 'exists', id, key, role, digest }];
 * })
 */
export function fromAbortable<T>(run: (signal: AbortSignal, emit: (value: T) => void) => Promise<T>): Observable<T> {
  return new Observable<T>((subscriber) => {
    const controller = new AbortController();
    let settled = false;
    run(controller.signal, (value) => subscriber.next(value)).then(
      (value) => {
        settled = true;
        subscriber.next(value);
        subscriber.complete();
      },
      (error: unknown) => {
        settled = true;
        subscriber.error(error);
      },
    );
    // Only work still running is aborted: abort() builds a DOMException (a stack trace) each time, and the
    // teardown runs after every completion too (one per request of a push).
    return () => {
      if (!settled) controller.abort();
    };
  });
}
