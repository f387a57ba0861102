import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { buffer } from 'node:stream/consumers';
import { describe, it } from 'node:test';

import type { ImageRecord } from '@rxpush/core';

import { fakeEngine } from './fake-engine.js';
import { readOne } from './read.js';

describe('readImages from a Docker Engine whose save stream stops half-way', () => {
  it('gives up after the idle timeout, naming the engine and the layer it was in', async (t) => {
    // One layer of 1 MB that does not compress: the archive is mostly it, so its middle is inside the layer.
    const layers = [{ big: randomBytes(512 * 1024).toString('hex') }];
    const whole = await fakeEngine(t, { layers });
    const engine = await fakeEngine(t, { layers, stallAfter: Math.floor(whole.archive.length / 2) });
    const image: ImageRecord = await readOne('docker-daemon:app:1', { dockerHost: engine.host, engineIdleTimeoutMs: 200 });
    const [layer] = image.layers.kind === 'list' ? image.layers.layers : [];
    assert.ok(layer);
    await assert.rejects(buffer(await layer.open()), {
      name: 'InvalidSourceError',
      code: 'INVALID_SOURCE',
      message: new RegExp(
        `^docker-daemon:app:1: the Docker Engine at ${engine.host} sent nothing for 0\\.2 s in the middle of its save stream \\(at layer 1 of 1 \\(${engine.diffIds[0]!.slice(7, 19)}\\), \\S+layer\\.tar\\); check dockerd and its logs, then push again$`,
      ),
    });
  });

  it('does not count the time the push keeps the stream paused', async (t) => {
    const engine = await fakeEngine(t, { layers: [{ big: randomBytes(2 * 1024 * 1024).toString('hex') }] });
    const image: ImageRecord = await readOne('docker-daemon:app:1', { dockerHost: engine.host, engineIdleTimeoutMs: 100 });
    const [layer] = image.layers.kind === 'list' ? image.layers.layers : [];
    assert.ok(layer);
    const stream = await layer.open();
    // A registry that takes its time: the reader pauses well past the idle timeout, then reads on.
    const chunks: Buffer[] = [];
    for await (const chunk of stream) {
      chunks.push(chunk as Buffer);
      if (chunks.length === 1) await new Promise((resolve) => setTimeout(resolve, 500));
    }
    assert.ok(Buffer.concat(chunks).length > 4 * 1024 * 1024);
  });
});
