import { UnsupportedError } from '@rxpush/core';
import { Observable, type MonoTypeOperatorFunction, type Subscription } from 'rxjs';

/** Uploads at once in one process by default, across every push that shares {@link sharedUploadLimiter}. */
export const DEFAULT_UPLOAD_SLOTS = 8;

/**
 * A limit on uploads in flight, shared by every `uploadBlobs` (and so every `push()`) it is given to: a
 * service running 50 pushes at once keeps 8 uploads (and their buffers) going, not 200, which the
 * registry could not serve faster anyway. Slots are handed out first come, first served. `uploadBlobs`
 * frees the slot of a file's blob once its bytes are all sent (the wait for the registry's answer needs
 * neither buffers nor CPU), and does not put the blobs of a sequential source (a tar stream read once, in
 * its own order) through it: they must all be open at once, or the stream can stop at a blob that waits
 * for a slot.
 *
 * @example
 * const limiter = new UploadLimiter(8);
 * await Promise.all(users.map((user) => lastValueFrom(push({ ...user, uploadLimiter: limiter }))));
 */
export class UploadLimiter {
  readonly slots: number;
  #busy = 0;
  readonly #waiting: Array<() => void> = [];

  constructor(slots: number) {
    if (!Number.isSafeInteger(slots) || slots < 1) throw new UnsupportedError(`an upload limit of ${slots} is not a whole number of 1 or more`);
    this.slots = slots;
  }

  /** Uploads running now. */
  get busy(): number {
    return this.#busy;
  }

  /** Uploads waiting for a slot. */
  get waiting(): number {
    return this.#waiting.length;
  }

  /**
   * Subscribes to each source once a slot is free, and frees the slot when it completes, fails or is
   * unsubscribed, or as soon as it emits a value `frees` accepts (its work goes on without one); until then it
   * waits, subscribed to nothing.
   */
  limit<T>(frees?: (value: T) => boolean): MonoTypeOperatorFunction<T> {
    return (work) =>
      new Observable<T>((subscriber) => {
        let inner: Subscription | undefined;
        let holding = false;
        const release = (): void => {
          if (!holding) return;
          holding = false;
          this.#busy -= 1;
          this.#next();
        };
        const start = (): void => {
          holding = true;
          this.#busy += 1;
          inner = work.subscribe({
            next: (value) => {
              if (holding && frees?.(value) === true) release();
              subscriber.next(value);
            },
            error: (error: unknown) => {
              release();
              subscriber.error(error);
            },
            complete: () => {
              release();
              subscriber.complete();
            },
          });
        };
        if (this.#busy < this.slots && this.#waiting.length === 0) start();
        else this.#waiting.push(start);
        return () => {
          const queued = this.#waiting.indexOf(start);
          if (queued >= 0) this.#waiting.splice(queued, 1);
          inner?.unsubscribe();
          release();
        };
      });
  }

  #next(): void {
    while (this.#busy < this.slots) {
      const start = this.#waiting.shift();
      if (start === undefined) return;
      start();
    }
  }
}

/** The process-wide limiter (8 slots) that every push uses unless it is given one of its own. */
export const sharedUploadLimiter = new UploadLimiter(DEFAULT_UPLOAD_SLOTS);
