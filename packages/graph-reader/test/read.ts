/** Reading a source the way every graph-reader test does: to the end, or to the error it must fail with. */
import assert from 'node:assert/strict';

import { PushError, type ImageRecord, type PushEvent, type SourceRecord } from '@rxpush/core';
import { lastValueFrom, toArray } from 'rxjs';

import { readImages, type ReadImagesOptions } from '../src/index.js';

/** Every record `source` emits (each as an `image` event). */
export async function read(source: string, options?: ReadImagesOptions): Promise<SourceRecord[]> {
  const events: PushEvent[] = await lastValueFrom(readImages(source, options).pipe(toArray()));
  return events.map((event) => {
    assert.equal(event.type, 'image');
    return event.image;
  });
}

/** Every record `source` emits, each a single image (no index). */
export async function readImageRecords(source: string, options?: ReadImagesOptions): Promise<ImageRecord[]> {
  return (await read(source, options)).map((record) => {
    assert.equal(record.kind, 'image');
    return record;
  });
}

/** The one image `source` emits. */
export async function readOne(source: string, options?: ReadImagesOptions): Promise<ImageRecord> {
  const [record, ...rest] = await readImageRecords(source, options);
  assert.equal(rest.length, 0);
  assert.ok(record);
  return record;
}

/** Reads `source`, expecting a one-line PushError of `code` (and `name`, when given) whose message matches `message`. */
export async function fails(source: string, expected: { code: string; message: RegExp; name?: string }, options?: ReadImagesOptions): Promise<void> {
  await assert.rejects(lastValueFrom(readImages(source, options).pipe(toArray())), (err: unknown) => {
    assert.ok(err instanceof PushError, `not a PushError: ${String(err)}`);
    assert.equal(err.code, expected.code, err.message);
    if (expected.name !== undefined) assert.equal(err.name, expected.name, err.message);
    assert.match(err.message, expected.message);
    assert.doesNotMatch(err.message, /\n/);
    return true;
  });
}

/** What a damaged source fails with: a SourceError, code INVALID_SOURCE. */
export const invalid = (message: RegExp): { name: string; code: string; message: RegExp } => ({ name: 'InvalidSourceError', code: 'INVALID_SOURCE', message });
