import assert from 'node:assert/strict';
import { Readable } from 'node:stream';
import { describe, it } from 'node:test';

import type { BlobSource, ImageRecord, IndexRecord, LayerLink, PushEvent } from '@rxpush/core';
import { PushError, sha256Digest } from '@rxpush/core';
import { Subject, firstValueFrom, from, lastValueFrom, toArray, type Observable } from 'rxjs';

import { walkLayers } from '../src/index.js';

function stream(...events: PushEvent[]): Observable<PushEvent> {
  return from(events);
}

function blob(name: string, role: 'config' | 'layer' = 'layer'): BlobSource {
  const digest = sha256Digest(name);
  return {
    key: digest,
    role,
    mediaType: 'application/octet-stream',
    digest,
    size: name.length,
    form: 'stored',
    origin: name,
    open: async () => Readable.from([Buffer.from(name)]),
  };
}

function image(name: string, layers: BlobSource[]): ImageRecord {
  return { kind: 'image', source: `test:${name}`, tags: [name], config: blob(`${name}-config`, 'config'), layers: { kind: 'list', layers } };
}

/** A parent chain built from `ids` listed top first; `parentOf` may point anywhere, to make loops. */
function chain(ids: string[], parentOf: (id: string, i: number) => string | undefined = (_, i) => ids[i + 1]): LayerLink | undefined {
  const links = new Map<string, LayerLink>();
  for (const [i, id] of ids.entries()) {
    links.set(id, {
      id,
      blob: blob(id),
      parent: async () => {
        const parent = parentOf(id, i);
        return parent === undefined ? undefined : links.get(parent);
      },
    });
  }
  return ids[0] === undefined ? undefined : links.get(ids[0]);
}

/** Events as short strings: `image:a`, `preparing:<origin>`, `blob:<origin>`, others by type. */
function summary(events: PushEvent[], blobs: Map<string, string>): string[] {
  return events.map((event) => {
    switch (event.type) {
      case 'image':
        return `image:${event.image.tags.join(',')}`;
      case 'preparing':
        return `preparing:${blobs.get(event.key) ?? '?'}`;
      case 'blob':
        return `blob:${event.blob.origin}`;
      default:
        return event.type;
    }
  });
}

function namesOf(...records: (ImageRecord | IndexRecord)[]): Map<string, string> {
  const names = new Map<string, string>();
  const add = (b: BlobSource) => names.set(b.key, b.origin);
  for (const record of records) {
    for (const img of record.kind === 'index' ? record.manifests : [record]) {
      add(img.config);
      if (img.layers.kind === 'list') img.layers.layers.forEach(add);
    }
  }
  return names;
}

describe('walkLayers', () => {
  it('passes the image through first, then layers base to top and the config, each with a preparing event', async () => {
    const a = image('a', [blob('base'), blob('middle'), blob('top')]);
    const events = await lastValueFrom(stream({ type: 'image', image: a }).pipe(walkLayers(), toArray()));
    assert.deepEqual(summary(events, namesOf(a)), [
      'image:a',
      'preparing:base',
      'blob:base',
      'preparing:middle',
      'blob:middle',
      'preparing:top',
      'blob:top',
      'preparing:a-config',
      'blob:a-config',
    ]);
    const preparing = events[7];
    assert.deepEqual(preparing, { type: 'preparing', id: a.config.key.slice(7, 19), key: a.config.key, role: 'config' });
  });

  it('emits a layer shared by two images once', async () => {
    const a = image('a', [blob('base'), blob('a-top')]);
    const b = image('b', [blob('base'), blob('b-top')]);
    const events = await lastValueFrom(stream({ type: 'image', image: a }, { type: 'image', image: b }).pipe(walkLayers(), toArray()));
    assert.deepEqual(summary(events, namesOf(a, b)), [
      'image:a',
      'preparing:base',
      'blob:base',
      'preparing:a-top',
      'blob:a-top',
      'preparing:a-config',
      'blob:a-config',
      'image:b',
      'preparing:b-top',
      'blob:b-top',
      'preparing:b-config',
      'blob:b-config',
    ]);
  });

  it('emits the blobs of every image of an index, de-duplicated', async () => {
    const amd64 = image('amd64', [blob('base'), blob('amd64-top')]);
    const arm64 = image('arm64', [blob('base'), blob('arm64-top')]);
    const index: IndexRecord = {
      kind: 'index',
      source: 'test:index',
      tags: ['multi'],
      manifests: [amd64, arm64],
      index: { bytes: new Uint8Array(), mediaType: 'application/vnd.oci.image.index.v1+json', digest: sha256Digest('') },
    };
    const events = await lastValueFrom(stream({ type: 'image', image: index }).pipe(walkLayers(), toArray()));
    assert.deepEqual(
      summary(events, namesOf(index)).filter((s) => !s.startsWith('preparing')),
      ['image:multi', 'blob:base', 'blob:amd64-top', 'blob:amd64-config', 'blob:arm64-top', 'blob:arm64-config'],
    );
  });

  it('walks a parent chain from the top down and emits it base first', async () => {
    const top = chain(['l3', 'l2', 'l1']);
    const a: ImageRecord = { kind: 'image', source: 'test:chain', tags: ['c'], config: blob('c-config', 'config'), layers: { kind: 'chain', top } };
    const events = await lastValueFrom(stream({ type: 'image', image: a }).pipe(walkLayers(), toArray()));
    assert.deepEqual(
      events.flatMap((e) => (e.type === 'blob' ? [e.blob.origin] : [])),
      ['l1', 'l2', 'l3', 'c-config'],
    );
  });

  it('walks an empty chain as an image with only a config', async () => {
    const a: ImageRecord = { kind: 'image', source: 'test:empty', tags: [], config: blob('e-config', 'config'), layers: { kind: 'chain', top: undefined } };
    const events = await lastValueFrom(stream({ type: 'image', image: a }).pipe(walkLayers(), toArray()));
    assert.deepEqual(events.map((e) => e.type), ['image', 'preparing', 'blob']);
  });

  it('fails with a clear error when a layer chain loops', async () => {
    // l1's parent is l3 again: l3 → l2 → l1 → l3 …
    const top = chain(['l3', 'l2', 'l1'], (id, i) => (id === 'l1' ? 'l3' : ['l3', 'l2', 'l1'][i + 1]));
    const a: ImageRecord = { kind: 'image', source: 'docker-root:app:1', tags: [], config: blob('config', 'config'), layers: { kind: 'chain', top } };
    await assert.rejects(lastValueFrom(stream({ type: 'image', image: a }).pipe(walkLayers(), toArray())), (err: unknown) => {
      assert.ok(err instanceof PushError);
      assert.equal(err.code, 'INVALID_SOURCE');
      assert.match(err.message, /^layer chain loops at l3 in docker-root:app:1/);
      return true;
    });
  });

  it('fails instead of hanging when a chain is longer than the cap', async () => {
    // An endless chain: every link has a new parent.
    const endless = (n: number): LayerLink => ({ id: `l${n}`, blob: blob(`l${n}`), parent: async () => endless(n + 1) });
    const a: ImageRecord = { kind: 'image', source: 'test:endless', tags: [], config: blob('config', 'config'), layers: { kind: 'chain', top: endless(0) } };
    await assert.rejects(
      lastValueFrom(stream({ type: 'image', image: a }).pipe(walkLayers({ maxChainLength: 50 }), toArray())),
      /layer chain of test:endless is longer than 50 layers/,
    );
  });

  it('passes every other event through untouched and in order', async () => {
    const retrying: PushEvent = { type: 'retrying', attempt: 1, delayMs: 10, reason: 'reset' };
    const ready: PushEvent = { type: 'blob-ready', key: 'k', descriptor: { mediaType: 'x', digest: sha256Digest('k'), size: 1 } };
    const a = image('a', []);
    const events = await lastValueFrom(stream(retrying, { type: 'image', image: a }, ready).pipe(walkLayers(), toArray()));
    assert.equal(events[0], retrying);
    assert.equal(events.at(-1), ready);
    assert.deepEqual(events.map((e) => e.type), ['retrying', 'image', 'preparing', 'blob', 'blob-ready']);
  });

  it('keeps what was emitted per subscription, so a second push emits every blob again', async () => {
    const a = image('a', [blob('base')]);
    const pushes = stream({ type: 'image', image: a }).pipe(walkLayers());
    const first = await lastValueFrom(pushes.pipe(toArray()));
    const second = await lastValueFrom(pushes.pipe(toArray()));
    assert.equal(first.length, 5);
    assert.deepEqual(second.map((e) => e.type), first.map((e) => e.type));
  });

  it('keeps the order of the source while a chain is being walked', async () => {
    const source = new Subject<PushEvent>();
    const top = chain(['l2', 'l1']);
    const a: ImageRecord = { kind: 'image', source: 'test:chain', tags: ['c'], config: blob('c-config', 'config'), layers: { kind: 'chain', top } };
    const all = lastValueFrom(source.pipe(walkLayers(), toArray()));
    source.next({ type: 'image', image: a });
    // Arrives while the chain's parent() promises are still pending; must come after the chain's blobs.
    source.next({ type: 'retrying', attempt: 1, delayMs: 0, reason: 'x' });
    source.complete();
    const events = await all;
    assert.deepEqual(events.map((e) => e.type), ['image', 'preparing', 'blob', 'preparing', 'blob', 'preparing', 'blob', 'retrying']);
  });

  it('passes the image on with its chain walked into a layer list, base first', async () => {
    const base: LayerLink = { id: 'base', blob: blob('base'), parent: () => Promise.resolve(undefined) };
    const top: LayerLink = { id: 'top', blob: blob('top'), parent: () => Promise.resolve(base) };
    const a: ImageRecord = { kind: 'image', source: 'test:chain', tags: [], config: blob('config', 'config'), layers: { kind: 'chain', top } };
    const first = await firstValueFrom(stream({ type: 'image', image: a }).pipe(walkLayers()));
    assert.equal(first.type, 'image');
    const image = first.type === 'image' ? first.image : undefined;
    assert.ok(image?.kind === 'image' && image.layers.kind === 'list');
    assert.deepEqual(image.layers.layers.map((layer) => layer.key), [sha256Digest('base'), sha256Digest('top')]);
  });
});
