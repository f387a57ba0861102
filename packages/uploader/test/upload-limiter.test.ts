import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import { UploadLimiter } from '@rxpush/uploader';
import { lastValueFrom, merge, Observable, Subject, throwError, toArray } from 'rxjs';

/** A piece of work that starts when subscribed and ends when its subject does. */
function work(name: string, log: string[]): { work: Observable<string>; end: Subject<string> } {
  const end = new Subject<string>();
  return {
    end,
    work: new Observable<string>((subscriber) => {
      log.push(`start ${name}`);
      const subscription = end.subscribe(subscriber);
      return () => subscription.unsubscribe();
    }),
  };
}

describe('UploadLimiter', () => {
  it('runs at most its slots at once, the others in the order they came', async () => {
    const limiter = new UploadLimiter(2);
    const log: string[] = [];
    const jobs = ['a', 'b', 'c', 'd'].map((name) => work(name, log));
    const all = lastValueFrom(merge(...jobs.map((job) => job.work.pipe(limiter.limit()))).pipe(toArray()));
    assert.deepEqual(log, ['start a', 'start b']);
    assert.equal(limiter.waiting, 2);
    jobs[1]?.end.complete();
    assert.deepEqual(log, ['start a', 'start b', 'start c']);
    jobs[0]?.end.complete();
    jobs[2]?.end.complete();
    jobs[3]?.end.complete();
    await all;
    assert.deepEqual(log, ['start a', 'start b', 'start c', 'start d']);
    assert.equal(limiter.busy, 0);
  });

  it('frees the slot as soon as the work emits a value that frees it, once, and lets the work go on', () => {
    const limiter = new UploadLimiter(1);
    const log: string[] = [];
    const [a, b, c] = ['a', 'b', 'c'].map((name) => work(name, log));
    const seen: string[] = [];
    const frees = (value: string): boolean => value === 'sent';
    for (const job of [a!, b!, c!]) job.work.pipe(limiter.limit(frees)).subscribe((value) => seen.push(value));
    assert.deepEqual(log, ['start a']);
    a!.end.next('progress');
    assert.deepEqual(log, ['start a'], 'other values keep the slot');
    a!.end.next('sent');
    assert.deepEqual(log, ['start a', 'start b'], 'b starts while a goes on');
    assert.equal(limiter.busy, 1);
    a!.end.next('sent');
    a!.end.next('answered');
    a!.end.complete();
    assert.deepEqual(log, ['start a', 'start b'], 'a freed its slot once: its end frees nothing more');
    assert.equal(limiter.busy, 1);
    assert.deepEqual(seen, ['progress', 'sent', 'sent', 'answered'], 'every value passes');
    b!.end.complete();
    assert.deepEqual(log, ['start a', 'start b', 'start c']);
    c!.end.complete();
    assert.equal(limiter.busy, 0);
  });

  it('frees the slot of work that fails or is unsubscribed, and never starts work unsubscribed while waiting', () => {
    const limiter = new UploadLimiter(1);
    const log: string[] = [];
    const failing = throwError(() => new Error('broken')).pipe(limiter.limit());
    failing.subscribe({ error: () => log.push('failed') });
    assert.equal(limiter.busy, 0);

    const first = work('first', log);
    const second = work('second', log);
    const third = work('third', log);
    const running = first.work.pipe(limiter.limit()).subscribe();
    const waiting = second.work.pipe(limiter.limit()).subscribe();
    third.work.pipe(limiter.limit()).subscribe();
    waiting.unsubscribe();
    running.unsubscribe();
    assert.deepEqual(log, ['failed', 'start first', 'start third']);
    assert.equal(limiter.busy, 1);
  });

  it('refuses a limit that is not a whole number of 1 or more', () => {
    assert.throws(() => new UploadLimiter(0), /upload limit of 0/);
    assert.throws(() => new UploadLimiter(1.5), /upload limit of 1.5/);
  });
});
