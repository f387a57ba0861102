import type { PushEvent } from '@rxpush/core';

/** Where a renderer writes: a stream, or anything with `write` (tests collect the text). */
export interface TextSink {
  write(text: string): unknown;
}

/**
 * Turns the events of one push into output. Shaped like an RxJS observer, so it can be given to
 * `subscribe` or `tap`; `start` comes first, then events, then exactly one of `error` or `complete`. (The CLI holds
 * `start` back until the first event, so a push that fails before any gets `error` alone.)
 */
export interface ProgressRenderer {
  /** Announces the repository pushed to (`REGISTRY/REPO`), before any event. */
  start(repository: string): void;
  next(event: PushEvent): void;
  /** The push failed or was cancelled: draws what is pending, and reports the error where the format carries errors. */
  error(error: Error): void;
  /**
   * `text` (whole lines) was written to the same terminal meanwhile, a log line on stderr: a renderer that moves
   * the cursor back to lines it drew counts the rows it took. The others leave it out.
   */
  logged?(text: string): void;
  /**
   * The push has sent no event for a while since it began (a large archive copied first, a slow source): `text`
   * says what it waits for, until `start`. A renderer that can take the line back (a terminal's) shows it; the
   * others leave it out, so their output stays what scripts read.
   */
  waiting?(text: string): void;
  /** The push is done: draws what is pending and stops timers. */
  complete(): void;
}
