import { Observable } from 'rxjs';

/**
 * Turns one promise-returning piece of I/O into an Observable whose teardown aborts it:
 * where real I/O starts in an operator, this is the `new Observable` with the teardown that cancels it.
 *
 * Emits the resolved value once and completes; errors with the rejection.
 *
 * @example
 * fromAbortable((signal) => client.hasBlob('app', digest, { signal }))
 */
export function fromAbortable<T>(run: (signal: AbortSignal) => Promise<T>): Observable<T> {
  return new Observable<T>((subscriber) => {
    const controller = new AbortController();
    run(controller.signal).then(
      (value) => {
        subscriber.next(value);
        subscriber.complete();
      },
      (error: unknown) => subscriber.error(error),
    );
    return () => controller.abort();
  });
}
