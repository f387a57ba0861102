import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { buffer } from 'node:stream/consumers';
import { describe, it, type TestContext } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';

import type { Digest } from '@rxpush/core';
import { PushError, silentLogger } from '@rxpush/core';

import { SaveStreamReader, type SaveStreamOptions } from '../src/docker-daemon/save-stream.js';
import { makeDockerSave, sha256, type TarEntry } from './docker-save-fixtures.js';

const layers = [{ a: 'first' }, { b: 'second'.repeat(5000) }, { c: 'third' }, { d: 'fourth'.repeat(300) }];

interface Saved {
  bytes: Buffer;
  imageId: Digest;
  diffIds: Digest[];
  config: Buffer;
  /** The diff IDs in the order the stream has their layer tars (by directory name, as docker save writes). */
  streamOrder: Digest[];
}

async function save(t: TestContext, edit?: (entries: TarEntry[]) => TarEntry[] | void): Promise<Saved> {
  const dir = await mkdtemp(join(tmpdir(), 'rxpush-save-stream-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const fixture = await makeDockerSave(join(dir, 'save.tar'), { images: [{ repoTags: ['app:1'], layers }], ...(edit !== undefined && { edit }) });
  const [image] = fixture.images;
  assert.ok(image?.config && image.configDigest);
  const diffIds = image.diffIds as Digest[];
  const streamOrder = image.layerIds
    .map((id, i) => [id, diffIds[i]] as const)
    .sort(([a], [b]) => (a < b ? -1 : 1))
    .map(([, diffId]) => diffId as Digest);
  return { bytes: await readFile(fixture.path), imageId: image.configDigest as Digest, diffIds, config: image.config, streamOrder };
}

/** A reader over `saved`, streamed in small chunks; counts starts and closes. */
function reader(saved: Saved, options: Partial<SaveStreamOptions> = {}, chunkSize = 4096): { reader: SaveStreamReader; starts: () => number; closes: () => number; agains: boolean[] } {
  let starts = 0;
  const agains: boolean[] = [];
  let closes = 0;
  const stream = new SaveStreamReader({
    source: 'docker-daemon:app:1',
    imageId: saved.imageId,
    diffIds: saved.diffIds,
    logger: silentLogger,
    alternative: 'save it first',
    start: async (_signal, again) => {
      starts++;
      agains.push(again);
      const chunks: Buffer[] = [];
      for (let at = 0; at < saved.bytes.length; at += chunkSize) chunks.push(saved.bytes.subarray(at, at + chunkSize));
      return { stream: Readable.from(chunks), close: async () => void closes++ };
    },
    ...options,
  });
  return { reader: stream, starts: () => starts, closes: () => closes, agains };
}

async function rejectsWith(promise: Promise<unknown>, code: string, message: RegExp): Promise<void> {
  await assert.rejects(promise, (err: unknown) => {
    assert.ok(err instanceof PushError, `not a PushError: ${String(err)}`);
    assert.equal(err.code, code, err.message);
    assert.match(err.message, message);
    return true;
  });
}

describe('SaveStreamReader, serving blobs from one docker save stream', () => {
  it('feeds every opened blob from a single read, whatever order the stream has them in', async (t) => {
    const saved = await save(t);
    assert.notDeepEqual(saved.streamOrder, saved.diffIds, 'the fixture should not stream base to top');
    const { reader: r, starts, closes } = reader(saved);
    const streams = await Promise.all([...saved.diffIds, saved.imageId].map((key) => r.open(key)));
    const bytes = await Promise.all(streams.map((s) => buffer(s)));
    assert.deepEqual(bytes.slice(0, -1).map(sha256), saved.diffIds);
    assert.deepEqual(bytes.at(-1), saved.config);
    assert.equal(starts(), 1);
    await sleep(10);
    assert.equal(closes(), 1);
  });

  it('opens each layer when the stream reaches it, telling its size from the tar header first', async (t) => {
    const saved = await save(t);
    const { reader: r } = reader(saved);
    const log: string[] = [];
    const sizes = new Map<Digest, number>();
    r.release(saved.imageId);
    const streams = await Promise.all(
      saved.diffIds.map(async (key) => {
        const stream = await r.open(key, {
          onSize: (size) => {
            log.push(`size ${key}`);
            sizes.set(key, size);
          },
        });
        log.push(`open ${key}`);
        // Read at once, as the uploader does: the next layer comes only once this one is through.
        return buffer(stream);
      }),
    );
    assert.deepEqual(
      log,
      saved.streamOrder.flatMap((key) => [`size ${key}`, `open ${key}`]),
      'each layer opens in the order the stream reaches it, its size told first',
    );
    for (const [i, key] of saved.diffIds.entries()) assert.equal(sizes.get(key), streams[i]?.length, `the size of ${key} is its tar's`);
  });

  it('skips the members of released blobs', async (t) => {
    const saved = await save(t);
    const { reader: r } = reader(saved);
    const wanted = saved.streamOrder.at(-1) as Digest;
    for (const key of [...saved.diffIds, saved.imageId]) if (key !== wanted) r.release(key);
    assert.equal(sha256(await buffer(await r.open(wanted))), wanted);
  });

  it('says it is still waiting when the engine takes long to start its stream, and only then', async (t) => {
    const saved = await save(t);
    const warned: string[] = [];
    const logger = { ...silentLogger, warn: (_obj: object, msg?: string) => void warned.push(msg ?? '') };
    const slow = reader(saved, { logger, slowStartNoticeMs: 50, engine: 'the Docker Engine at unix:///d.sock' });
    const late = new SaveStreamReader({
      source: 'docker-daemon:app:1',
      imageId: saved.imageId,
      diffIds: saved.diffIds,
      logger,
      alternative: 'save it first',
      slowStartNoticeMs: 50,
      engine: 'the Docker Engine at unix:///d.sock',
      start: async () => {
        await sleep(200);
        return { stream: Readable.from([saved.bytes]), close: async () => {} };
      },
    });
    for (const key of saved.diffIds) late.release(key);
    assert.deepEqual(await buffer(await late.open(saved.imageId)), saved.config);
    assert.deepEqual(warned, [
      'docker-daemon:app:1: the Docker Engine at unix:///d.sock has not started its save stream after 0.05 s; it writes the whole image out first, which takes a while for a big image (Ctrl-C cancels)',
    ]);
    warned.length = 0;
    for (const key of saved.diffIds) slow.reader.release(key);
    assert.deepEqual(await buffer(await slow.reader.open(saved.imageId)), saved.config);
    await sleep(100);
    assert.deepEqual(warned, []);
  });

  it('does not start the stream when the registry has every blob', async (t) => {
    const saved = await save(t);
    const { reader: r, starts } = reader(saved);
    for (const key of [...saved.diffIds, saved.imageId]) r.release(key);
    await sleep(10);
    assert.equal(starts(), 0);
  });

  it('holds the config when it passes by before it is opened', async (t) => {
    const saved = await save(t);
    const { reader: r, closes } = reader(saved);
    const bytes = await Promise.all(saved.diffIds.map(async (key) => buffer(await r.open(key))));
    assert.deepEqual(bytes.map(sha256), saved.diffIds);
    await sleep(10);
    // Every layer is read and the config is held: the stream is no longer needed.
    assert.equal(closes(), 1);
    assert.deepEqual(await buffer(await r.open(saved.imageId)), saved.config);
  });

  it('pauses the stream until the layer it is at is opened', async (t) => {
    const saved = await save(t);
    const { reader: r } = reader(saved);
    const [first, second] = saved.streamOrder as [Digest, Digest];
    for (const key of saved.diffIds) if (key !== first && key !== second) r.release(key);
    r.release(saved.imageId);
    const late = r.open(second).then((s) => buffer(s));
    await sleep(50);
    const early = await buffer(await r.open(first));
    assert.equal(sha256(early), first);
    assert.equal(sha256(await late), second);
  });

  it('fails, saying what to do, when the stream is at a layer nobody opens while others wait', async (t) => {
    const saved = await save(t);
    const { reader: r, closes } = reader(saved, { stallTimeoutMs: 100 });
    await rejectsWith(
      r.open(saved.streamOrder.at(-1) as Digest).then((stream) => buffer(stream)),
      'UNSUPPORTED',
      /^docker-daemon:app:1: the Docker Engine sends layer \d of 4 \([a-f0-9]{12}\) \(as [a-f0-9]{64}\/layer\.tar\) before layer \d of 4 \([a-f0-9]{12}\), which the push is waiting for; rxpush never holds a whole layer in memory or on disk, .* open every blob of this source at once .*, or save it first$/,
    );
    await sleep(10);
    assert.equal(closes(), 1);
  });

  it('fails a layer that the stream does not have, naming it', async (t) => {
    const saved = await save(t);
    const missing = `sha256:${'e'.repeat(64)}` as Digest;
    const { reader: r } = reader({ ...saved, diffIds: [...saved.diffIds, missing] });
    for (const key of saved.diffIds) r.release(key);
    await rejectsWith(r.open(missing).then((stream) => buffer(stream)), 'INVALID_SOURCE', /the Docker Engine's save stream has no layer 5 of 5 \(eeeeeeeeeeee\)/);
  });

  it('refuses a config that is not the image ID', async (t) => {
    const saved = await save(t, (entries) => {
      const config = entries.find((e) => e.name.endsWith('.json') && !e.name.includes('/') && e.name !== 'manifest.json');
      assert.ok(config);
      config.data = Buffer.concat([config.data as Buffer, Buffer.from(' ')]);
    });
    const { reader: r } = reader(saved);
    for (const key of saved.diffIds) r.release(key);
    await rejectsWith(r.open(saved.imageId).then((stream) => buffer(stream)), 'DIGEST_MISMATCH', /docker-daemon:app:1 config \([a-f0-9]{64}\.json in the Docker Engine's save stream\) does not match its digest/);
  });

  it('fails its readers when the stream breaks off', async (t) => {
    const saved = await save(t);
    const { reader: r } = reader({ ...saved, bytes: saved.bytes.subarray(0, saved.bytes.length / 2) });
    const results = await Promise.allSettled(saved.diffIds.map((key) => r.open(key).then((stream) => buffer(stream))));
    assert.ok(results.some((result) => result.status === 'rejected'));
    for (const result of results) {
      if (result.status === 'rejected') assert.match(String(result.reason.message), /the Docker Engine's save stream (broke off or is not a tar|has no layer)/);
    }
  });

  it('stops the stream when the push is cancelled while reading a layer', async (t) => {
    const saved = await save(t);
    // In 512-byte chunks every layer arrives in several: the first one's reader is cancelled as it starts.
    const { reader: r, closes } = reader(saved, {}, 512);
    r.release(saved.imageId);
    const [first, ...later] = saved.streamOrder as [Digest, ...Digest[]];
    const others = later.map((key) => [key, r.open(key).then((stream) => buffer(stream))] as const);
    for (const [, reading] of others) reading.catch(() => {});
    const cancel = new AbortController();
    const stream = await r.open(first, { signal: cancel.signal });
    stream.on('error', () => {});
    cancel.abort();
    await sleep(20);
    assert.equal(closes(), 1);
    for (const [, reading] of others) await rejectsWith(reading, 'CANCELLED', /the push stopped reading docker-daemon:app:1/);
  });

  it('goes on feeding the other blobs when the reader of a layer lets go of it (its upload broke)', async (t) => {
    const saved = await save(t);
    const { reader: r, starts } = reader(saved, {}, 512);
    r.release(saved.imageId);
    const [first, ...later] = saved.streamOrder as [Digest, ...Digest[]];
    const others = later.map((key) => r.open(key).then((stream) => buffer(stream)));
    (await r.open(first)).destroy();
    assert.deepEqual((await Promise.all(others)).map(sha256), later);
    assert.equal(starts(), 1);
  });

  it('reads a blob opened a second time from a new save stream, which it reads only as far as that blob', async (t) => {
    const saved = await save(t);
    const { reader: r, starts, closes, agains } = reader(saved);
    for (const key of saved.diffIds.slice(1)) r.release(key);
    const [first] = saved.diffIds as [Digest];
    assert.equal(sha256(await buffer(await r.open(first))), first);
    assert.equal(sha256(await buffer(await r.open(first))), first, 'read again');
    assert.equal(starts(), 2);
    assert.deepEqual(await buffer(await r.open(saved.imageId)), saved.config);
    assert.deepEqual(await buffer(await r.open(saved.imageId)), saved.config, 'the config is small: kept, not read again');
    assert.equal(starts(), 2);
    assert.deepEqual(agains, [false, true], 'the second stream is started as a second read, for the engine to check its image');
    await sleep(20);
    assert.equal(closes(), 2);
  });

  it("reads newer Docker's stream, whose layers are named by their diff IDs", async (t) => {
    const saved = await save(t, (entries) => {
      const kept = entries.filter((e) => !/^[a-f0-9]{64}(\/|$)/.test(e.name) || e.name.endsWith('/layer.tar'));
      for (const e of kept) if (e.name.endsWith('/layer.tar') && e.type !== 'symlink') e.name = `blobs/sha256/${sha256(e.data as Buffer).slice(7)}`;
      return kept.sort((a, b) => (a.name < b.name ? -1 : 1));
    });
    const { reader: r } = reader(saved);
    const bytes = await Promise.all(saved.diffIds.map(async (key) => buffer(await r.open(key))));
    assert.deepEqual(bytes.map(sha256), saved.diffIds);
  });

  it('says so when a layer directory matches no layer of the image', async (t) => {
    const saved = await save(t, (entries) => {
      for (const e of entries) if (e.name.endsWith('/json')) e.data = String(e.data).replace('"Hostname":""', '"Hostname":"x"');
    });
    const { reader: r } = reader(saved);
    await rejectsWith(r.open(saved.streamOrder[0] as Digest).then((stream) => buffer(stream)), 'UNSUPPORTED', /cannot tell which layer [a-f0-9]{64}\/layer\.tar of the Docker Engine's save stream is \(its json matches no layer of the image\); save it first/);
  });
});

