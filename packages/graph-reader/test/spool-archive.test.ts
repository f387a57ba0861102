import assert from 'node:assert/strict';
import { readdir, readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, it, type TestContext } from 'node:test';
import { gzipSync } from 'node:zlib';

import type { ImageRecord } from '@rxpush/core';

import { spoolArchive } from '../src/index.js';
import { makeDockerSave, packTar } from './docker-save-fixtures.js';
import { pipeAt, tempDir } from './layouts.js';
import { archive } from './oci-archives.js';
import { readOne } from './read.js';

/** A docker save archive of two layers, its path. */
async function saved(t: TestContext): Promise<string> {
  const path = join(await tempDir(t), 'image.tar');
  await makeDockerSave(path, { images: [{ repoTags: ['app:1'], layers: [{ a: 'a'.repeat(70_000) }, { b: 'b' }] }] });
  return path;
}

/** What a push takes from a record: its config, and each layer's diff ID and bytes. */
async function contents(record: ImageRecord): Promise<unknown> {
  assert.equal(record.layers.kind, 'list');
  const layers = [];
  for (const layer of record.layers.layers) {
    const chunks: Buffer[] = [];
    for await (const chunk of await layer.open()) chunks.push(chunk as Buffer);
    layers.push({ diffId: layer.diffId, bytes: Buffer.concat(chunks).toString('base64') });
  }
  return { config: record.config.digest, layers };
}

describe('spoolArchive', () => {
  it('leaves every source it can read in place as it is, with nothing to release', async (t) => {
    const plain = await saved(t);
    const work = await tempDir(t);
    for (const source of [`docker-archive:${plain}:app:1`, 'oci:./layout:latest', 'docker-daemon:app:1', `oci-archive:${join(work, 'absent.tar')}`, `docker-archive:${work}`]) {
      const spooled = await spoolArchive(source, { tmpDir: work });
      assert.equal(spooled.source, source);
      await spooled.release();
    }
    assert.deepEqual(await readdir(work), [], 'no copy made');
  });

  it('reads a gzip-compressed docker save archive from a plain copy, the same image, and release removes the copy', async (t) => {
    const plain = await saved(t);
    const compressed = `${plain}.gz`;
    await writeFile(compressed, gzipSync(await readFile(plain)));
    const work = await tempDir(t);

    const spooled = await spoolArchive(`docker-archive:${compressed}:app:1`, { tmpDir: work });
    const [dir = ''] = await readdir(work);
    assert.ok(dir.startsWith('rxpush-archive-'), dir);
    assert.equal(spooled.source, `docker-archive:${join(work, dir, 'image.tar')}:app:1`, 'the NAME:TAG kept, the copy named after the archive');
    assert.equal((await stat(join(work, dir))).mode & 0o777, 0o700);
    assert.deepEqual(await contents(await readOne(spooled.source)), await contents(await readOne(`docker-archive:${plain}:app:1`)));

    await spooled.release();
    await spooled.release();
    assert.deepEqual(await readdir(work), []);
  });

  it('reads an OCI archive from a pipe, gzipped or not, as docker save | rxpush push docker-archive:/dev/stdin would', async (t) => {
    const { file } = await archive(t);
    const work = await tempDir(t);
    for (const gzip of [false, true]) {
      const fifo = join(await tempDir(t), 'pipe');
      await pipeAt(t, fifo);
      const bytes = await readFile(file);
      // The writer opens the pipe once the spool is there to read it, as a shell's pipeline does.
      const writing = writeFile(fifo, gzip ? gzipSync(bytes) : bytes);
      const spooled = await spoolArchive(`oci-archive:${fifo}:latest`, { tmpDir: work });
      await writing;
      assert.match(spooled.source, /^oci-archive:.*\/rxpush-archive-[^/]+\/archive\.tar:latest$/);
      assert.deepEqual(await contents(await readOne(spooled.source)), await contents(await readOne(`oci-archive:${file}:latest`)));
      await spooled.release();
    }
    assert.deepEqual(await readdir(work), []);
  });

  it("names the archive given, not its copy, in a failure of reading the copy", async (t) => {
    // A plain tar, gzipped, that holds no image: readImages fails on the copy, and named() says which file it was.
    const notAnImage = join(await tempDir(t), 'notes.tar.gz');
    await writeFile(notAnImage, gzipSync(await packTar([{ name: 'notes.txt', data: 'no image here' }])));
    const work = await tempDir(t);
    const spooled = await spoolArchive(`docker-archive:${notAnImage}`, { tmpDir: work });
    t.after(() => spooled.release());
    const failure = await readOne(spooled.source).then(
      () => assert.fail('read an image out of notes'),
      (error: unknown) => error as Error & { code?: string },
    );
    assert.match(failure.message, /rxpush-archive-.*notes\.tar is not a docker save archive/);
    assert.equal(spooled.named(failure), failure, 'the same error, its class and code kept');
    assert.equal(failure.code, 'INVALID_SOURCE');
    assert.equal(failure.message.startsWith(`${notAnImage} is not a docker save archive: it has neither manifest.json nor a legacy repositories file`), true, failure.message);
    assert.doesNotMatch(failure.message, /rxpush-archive-/);
    const other = new Error('unrelated');
    assert.equal(spooled.named(other).message, 'unrelated');
  });

  it('says where it could not make its copy, and what to do', async (t) => {
    const plain = await saved(t);
    const compressed = `${plain}.gz`;
    await writeFile(compressed, gzipSync(await readFile(plain)));
    const missing = join(await tempDir(t), 'no-such-dir');
    await assert.rejects(spoolArchive(`docker-archive:${compressed}`, { tmpDir: missing }), {
      name: 'InvalidSourceError',
      message: `cannot make a directory in ${missing} to copy ${compressed} into (it does not exist); set TMPDIR to a directory rxpush may write`,
    });
  });

  it('fails on a damaged gzip stream with one line naming the archive, leaving nothing behind', async (t) => {
    const plain = await saved(t);
    const cut = `${plain}.gz`;
    const whole = gzipSync(await readFile(plain));
    await writeFile(cut, whole.subarray(0, whole.length - 100));
    const work = await tempDir(t);
    await assert.rejects(spoolArchive(`docker-archive:${cut}`, { tmpDir: work }), {
      name: 'InvalidSourceError',
      message: `${cut} is gzip-compressed, but its stream is damaged (unexpected end of file); export the archive again`,
    });
    assert.deepEqual(await readdir(work), []);
  });

  it('stops at once when aborted while the pipe has no writer yet, leaving nothing behind', async (t) => {
    const fifo = join(await tempDir(t), 'pipe');
    const pipe = await pipeAt(t, fifo);
    const work = await tempDir(t);
    const controller = new AbortController();
    const spooling = spoolArchive(`docker-archive:${fifo}`, { tmpDir: work, signal: controller.signal });
    setTimeout(() => controller.abort(), 50);
    await assert.rejects(spooling, { name: 'AbortError' });
    assert.equal(pipe.waited(), false, 'the open that waited for a writer was let go');
    assert.deepEqual(await readdir(work), []);
  });
});
