import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buffer } from 'node:stream/consumers';
import { describe, it, type TestContext } from 'node:test';

import type { ImageRecord, PushError, PushEvent } from '@rxpush/core';
import { lastValueFrom, toArray } from 'rxjs';

import { dockerEngine, dockerTlsFromEnv } from '../src/docker-daemon/engine.js';
import { readImages } from '../src/index.js';
import { sha256 } from './docker-save-fixtures.js';
import { fakeEngine } from './fake-engine.js';
import { fails } from './read.js';

async function daemonImage(dockerHost: string): Promise<ImageRecord> {
  const [event] = await lastValueFrom(readImages('docker-daemon:app:1', { dockerHost }).pipe(toArray()));
  assert.equal(event?.type, 'image');
  return (event as { image: ImageRecord }).image;
}

async function tempDir(t: TestContext): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'rxpush-daemon-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

describe('readImages from docker-daemon:', () => {
  it('describes the image from the engine API, and streams its blobs from one save', async (t) => {
    const engine = await fakeEngine(t);
    const events: PushEvent[] = await lastValueFrom(readImages('docker-daemon:app:1', { dockerHost: engine.host }).pipe(toArray()));
    assert.deepEqual(engine.paths, ['/images/app:1/json']);
    const [event] = events;
    assert.equal(event?.type, 'image');
    const image = (event as { image: ImageRecord }).image;
    assert.deepEqual(image.tags, ['1']);
    assert.deepEqual(image.platform, { architecture: 'arm64', os: 'linux', variant: 'v8' });
    assert.equal(image.config.digest, engine.configDigest);
    assert.equal(image.config.form, 'stored');
    const layers = image.layers.kind === 'list' ? image.layers.layers : [];
    assert.deepEqual(layers.map((l) => l.diffId), engine.diffIds);
    assert.ok(layers.every((l) => l.form === 'uncompressed' && l.size === undefined && typeof l.release === 'function'));
    assert.equal(layers[1]?.origin, `docker-daemon:app:1 layer 2 of 2 (${engine.diffIds[1]})`);

    const bytes = await Promise.all([...layers, image.config].map(async (blob) => buffer(await blob.open())));
    assert.deepEqual(bytes.slice(0, 2).map(sha256), engine.diffIds);
    assert.deepEqual(bytes[2], engine.config);
    assert.deepEqual(engine.paths, ['/images/app:1/json', '/images/app:1/get']);
  });

  it('reads a layer opened a second time (its upload broke) from a new save of the image, through to that layer', async (t) => {
    const engine = await fakeEngine(t);
    const image = await daemonImage(engine.host);
    const layers = image.layers.kind === 'list' ? image.layers.layers : [];
    const bytes = await Promise.all([...layers, image.config].map(async (blob) => buffer(await blob.open())));
    assert.deepEqual(bytes.slice(0, 2).map(sha256), engine.diffIds);
    assert.equal(sha256(await buffer(await layers[1]!.open())), engine.diffIds[1]);
    assert.deepEqual(engine.paths, ['/images/app:1/json', '/images/app:1/get', '/images/app:1/json', '/images/app:1/get']);
    assert.deepEqual(await buffer(await image.config.open()), engine.config, 'the config was kept: no third save');
    assert.equal(engine.paths.length, 4);
  });

  /** A stand-in engine's image with every blob read once, from the first save stream. */
  const readOnce = async (t: TestContext) => {
    const engine = await fakeEngine(t);
    const image = await daemonImage(engine.host);
    const layers = image.layers.kind === 'list' ? image.layers.layers : [];
    await Promise.all([...layers, image.config].map(async (blob) => buffer(await blob.open())));
    return { engine, layers };
  };

  it('refuses, in one line, to read a layer again from an image that changed in the engine since', async (t) => {
    const { engine, layers } = await readOnce(t);
    engine.change();
    await assert.rejects(
      buffer(await layers[1]!.open()),
      (err: PushError) => {
        assert.equal(err.code, 'INVALID_SOURCE');
        assert.match(err.message, /^docker-daemon:app:1: app:1 changed in the Docker Engine at unix:\/\/\S+ while it was pushed \(it is image [0-9a-f]{12} now, was [0-9a-f]{12}\), so a broken upload cannot be retried from it; push again$/);
        return true;
      },
    );
    assert.deepEqual(engine.paths, ['/images/app:1/json', '/images/app:1/get', '/images/app:1/json'], 'the changed image is not saved');
  });

  it('fails, in one line naming the request, when the second save of the image fails', async (t) => {
    const { engine, layers } = await readOnce(t);
    engine.failSaves();
    await assert.rejects(buffer(await layers[0]!.open()), (err: PushError) => {
      assert.equal(err.code, 'INVALID_SOURCE');
      assert.match(err.message, /^GET unix:\/\/\S+\/images\/app:1\/get → 500: write \/var\/lib\/docker\/tmp\/docker-export-1: no space left on device$/);
      return true;
    });
  });

  it('says an image the engine lacks is not there', async (t) => {
    const engine = await fakeEngine(t);
    await fails('docker-daemon:app:2', { code: 'SOURCE_NOT_FOUND', message: new RegExp(`^image app:2 not found in the Docker Engine at ${engine.host}; docker pull it or check the name$`) }, { dockerHost: engine.host });
  });

  it('says an error answer without Docker\'s {"message"} did not come from a Docker Engine', async (t) => {
    const engine = await fakeEngine(t, { inspectAnswer: (res) => void res.writeHead(400).end('') });
    await fails('docker-daemon:app:1', { code: 'INVALID_SOURCE', message: new RegExp(`^GET ${engine.host}/images/app:1/json → 400; that is not how a Docker Engine answers: is DOCKER_HOST a Docker Engine\\?$`) }, { dockerHost: engine.host });
  });

  it('shows the text of an error answer on one line, cut to 300 characters', async (t) => {
    const engine = await fakeEngine(t, { inspectAnswer: (res) => void res.writeHead(502).end(`bad\r\ngateway ${'x'.repeat(400)}`) });
    await fails('docker-daemon:app:1', { code: 'INVALID_SOURCE', message: new RegExp(`^GET ${engine.host}/images/app:1/json → 502: bad gateway x{288}…; that is not how a Docker Engine answers`) }, { dockerHost: engine.host });
  });

  it('stops reading an inspect answer of more than 4 MiB, which no image has', async (t) => {
    const engine = await fakeEngine(t, {
      inspectAnswer: (res) => {
        res.writeHead(200, { 'content-type': 'application/json' });
        // Far more than the limit, sent only as fast as it is read: rxpush must stop reading, not buffer it all.
        let sent = 0;
        const more = () => {
          while (sent < 256 && !res.destroyed) if (sent++, !res.write(Buffer.alloc(1024 * 1024, 0x20))) return void res.once('drain', more);
          res.end('{}');
        };
        more();
      },
    });
    await fails('docker-daemon:app:1', { code: 'INVALID_SOURCE', message: new RegExp(`^GET ${engine.host}/images/app:1/json answered with more than 4 MiB, which is no image inspect answer; is DOCKER_HOST a Docker Engine\\?$`) }, { dockerHost: engine.host });
  });

  it('says the engine did not answer in time, rather than that it cannot be reached', async (t) => {
    const engine = await fakeEngine(t, { inspectAnswer: () => {} });
    const client = dockerEngine({ host: engine.host, answerTimeoutMs: 200 });
    t.after(() => client.close());
    await assert.rejects(client.inspectImage('app:1'), (err: PushError) => {
      assert.equal(err.code, 'SOURCE_NOT_FOUND');
      assert.match(err.message, new RegExp(`^the Docker Engine at ${engine.host} did not answer GET /images/app:1/json within 0.2 s; check dockerd and its logs, then push again \\(DOCKER_HOST=${engine.host}\\)$`));
      return true;
    });
  });

  it('says the engine cannot be reached, and what DOCKER_HOST is', async (t) => {
    const socket = join(await tempDir(t), 'none.sock');
    await fails('docker-daemon:app:1', { code: 'SOURCE_NOT_FOUND', message: new RegExp(`^cannot reach the Docker Engine at unix://${socket} \\(GET /images/app:1/json: .*\\): is dockerd running\\? \\(DOCKER_HOST=unix://${socket}\\)$`) }, { dockerHost: `unix://${socket}` });
  });

  it('says the engine cannot be reached over TCP', async () => {
    await fails('docker-daemon:app:1', { code: 'SOURCE_NOT_FOUND', message: /^cannot reach the Docker Engine at tcp:\/\/127\.0\.0\.1:1 .*is dockerd running\? \(DOCKER_HOST=tcp:\/\/127\.0\.0\.1:1\)$/ }, { dockerHost: 'tcp://127.0.0.1:1' });
  });

  it('refuses a DOCKER_HOST it cannot talk to', async () => {
    await fails('docker-daemon:app:1', { code: 'USAGE', message: /^DOCKER_HOST=ssh:\/\/me@host is not supported: rxpush talks to a Docker Engine at unix:\/\/\/PATH or tcp:\/\/HOST:PORT/ }, { dockerHost: 'ssh://me@host' });
  });

  it('reads TLS settings from the environment as the docker CLI does', () => {
    assert.equal(dockerTlsFromEnv({}), undefined);
    assert.equal(dockerTlsFromEnv({ DOCKER_CERT_PATH: '/certs' }), undefined, 'a cert path alone is not TLS, as for docker');
    assert.deepEqual(dockerTlsFromEnv({ DOCKER_TLS_VERIFY: '1', DOCKER_CERT_PATH: '/certs' }), { verify: true, certPath: '/certs' });
    assert.deepEqual(dockerTlsFromEnv({ DOCKER_TLS_VERIFY: '1', DOCKER_CERT_PATH: '' }), { verify: true });
    assert.deepEqual(dockerTlsFromEnv({ DOCKER_TLS: '1' }), { verify: false });
  });

  it('says which TLS file it cannot read, before connecting', async (t) => {
    const dir = await tempDir(t);
    await fails(
      'docker-daemon:app:1',
      { code: 'SOURCE_NOT_FOUND', message: new RegExp(`^DOCKER_TLS_VERIFY is set for DOCKER_HOST=tcp://127\\.0\\.0\\.1:1, but ${dir}/ca\\.pem cannot be read \\(ENOENT`) },
      { dockerHost: 'tcp://127.0.0.1:1', dockerTls: { verify: true, certPath: dir } },
    );
  });

  it('asks for a tag', async () => {
    await fails('docker-daemon:app', { code: 'USAGE', message: /names app without a tag; use docker-daemon:NAME:TAG/ });
  });

  it('refuses --all-tags', async () => {
    await fails('docker-daemon:app:1', { code: 'USAGE', message: /a docker-daemon: source names one image/ }, { allTags: true });
  });
});
