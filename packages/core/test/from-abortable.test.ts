import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import { fromAbortable } from '@rxpush/core';
import { lastValueFrom, toArray } from 'rxjs';

describe('fromAbortable', () => {
  it('emits what the work hands out, then its value, and completes', async () => {
    const values = await lastValueFrom(
      fromAbortable<number>(async (_signal, emit) => {
        emit(1);
        return 2;
      }).pipe(toArray()),
    );
    assert.deepEqual(values, [1, 2]);
  });

  it('aborts work still running when unsubscribed', async () => {
    let seen: AbortSignal | undefined;
    const subscription = fromAbortable<number>((signal) => {
      seen = signal;
      return new Promise(() => {});
    }).subscribe();
    subscription.unsubscribe();
    assert.equal(seen?.aborted, true);
  });

  it('does not abort work that has finished (each abort builds a DOMException)', async () => {
    let seen: AbortSignal | undefined;
    await lastValueFrom(
      fromAbortable<number>(async (signal) => {
        seen = signal;
        return 1;
      }),
    );
    assert.equal(seen?.aborted, false);
  });
});
