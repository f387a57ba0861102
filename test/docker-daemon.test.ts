/**
 * docker-daemon: end to end. A private dockerd loads generated images; rxpush reads them over the
 * engine's API (one `docker save` stream, never written to disk), pushes them to the reference
 * registry, and the same dockerd pulls them back: the layers and image ID must be the originals.
 */
import assert from 'node:assert/strict';
import { createReadStream } from 'node:fs';
import { copyFile, mkdir, mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';

import { silentLogger, type Digest, type Logger, type PushEvent } from '@rxpush/core';
import { checkBlobs } from '@rxpush/blob-checker';
import { walkLayers } from '@rxpush/layer-walker';
import { pushManifests } from '@rxpush/manifest-signer';
import { push, UploadLimiter } from '@rxpush/pipeline';
import { RegistryClient } from '@rxpush/registry-client';
import { uploadBlobs } from '@rxpush/uploader';
import { from, lastValueFrom, map, mergeMap, tap, toArray } from 'rxjs';
import tar from 'tar-stream';

import { readDockerDaemon } from '../packages/graph-reader/src/docker-daemon/read-docker-daemon.ts';
import { makeOciLayout, type OciLayoutFixture } from '../tools/fixtures.ts';
import { makeCertificates, startRegistry, type RunningRegistry, type TestCertificates } from '../tools/registry.ts';
import { useDockerd } from './helpers/docker-engine.ts';
import { startFaultProxy } from './helpers/fault-proxy.ts';
import { runCli, startCli } from './helpers/run-cli.ts';
import { skopeoCopy } from './helpers/skopeo.ts';
import { ofType, pushAll } from './helpers/push-events.ts';
import { assertOneLineError } from './helpers/assert-cli.ts';


/** The members of a tar file, in order, and its manifest.json. */
async function readSave(path: string): Promise<{ names: string[]; manifest: { Layers: string[] }[] }> {
  const names: string[] = [];
  let manifest = '[]';
  const extract = tar.extract();
  createReadStream(path).pipe(extract);
  for await (const entry of extract) {
    names.push(entry.header.name);
    const chunks: Buffer[] = [];
    for await (const chunk of entry) if (entry.header.name === 'manifest.json') chunks.push(chunk as Buffer);
    if (entry.header.name === 'manifest.json') manifest = Buffer.concat(chunks).toString();
  }
  return { names, manifest: JSON.parse(manifest) };
}

describe('pushing from a Docker Engine (docker-daemon:)', () => {
  let registry: RunningRegistry;
  let client: RegistryClient;
  let work: string;
  /** DOCKER_CERT_PATH directories: the CA and a client certificate; the CA alone; another CA with the client certificate. */
  let certPath: string;
  let caOnly: string;
  let otherCa: string;
  /** The engine's own certificates, for its TLS listener. */
  let certs: TestCertificates;
  /** Three layers: fewer than the uploader's default of 4 at once. */
  let small: OciLayoutFixture;
  /** Seven layers, the last repeating the first, whose save stream is not in base-to-top order. */
  let seven: OciLayoutFixture;
  /** Twelve layers: more than the shared upload limit's 8 slots. */
  let twelve: OciLayoutFixture;
  const ids = new Map<string, string>();

  /**
   * Pulls `ref` after removing the original image (`name`) from the engine, so every layer is downloaded,
   * and checks that Docker computes the fixture's diff IDs and the original's image ID for it. The pulled
   * image is the original again: it is tagged back as `name`.
   */
  async function pullsBackAs(ref: string, name: string, fixture: OciLayoutFixture): Promise<void> {
    await dockerd.engine.docker(['rmi', '-f', ids.get(name) ?? name]);
    await dockerd.engine.docker(['pull', ref]);
    const inspected = await dockerd.engine.docker(['image', 'inspect', '--format', '{{json .RootFS.Layers}} {{.Id}}', ref]);
    await dockerd.engine.docker(['tag', ref, name]);
    const [layers, id] = inspected.stdout.trim().split(' ');
    assert.deepEqual(JSON.parse(layers ?? '[]'), fixture.images[0]?.diffIds);
    assert.equal(id ?? '', ids.get(name));
  }

  /** Puts the config of fixtures/small:v1 in `repository`, so the push's first PATCH or PUT is a layer's. */
  async function storeConfigOfSmall(repository: string): Promise<void> {
    const config = (ids.get('fixtures/small:v1') ?? '') as Digest;
    const session = await client.startUpload(repository);
    assert.equal(session.kind, 'session');
    if (session.kind === 'session') await client.finishUpload(session, config, { body: await readFile(join(small.dir, 'blobs', 'sha256', config.slice('sha256:'.length))) });
  }

  before(async () => {
    work = await mkdtemp(join(tmpdir(), 'rxpush-daemon-e2e-'));
    // The engine also listens on loopback TCP with TLS that checks client certificates (dockerd --tlsverify).
    certPath = join(work, 'docker-certs');
    caOnly = join(work, 'docker-ca-only');
    otherCa = join(work, 'docker-other-ca');
    await Promise.all([join(work, 'certs'), join(work, 'other-certs'), certPath, caOnly, otherCa].map((dir) => mkdir(dir)));
    certs = await makeCertificates(join(work, 'certs'), { client: true });
    const other = await makeCertificates(join(work, 'other-certs'));
    await Promise.all([
      copyFile(certs.caFile, join(certPath, 'ca.pem')),
      copyFile(certs.clientCertFile!, join(certPath, 'cert.pem')),
      copyFile(certs.clientKeyFile!, join(certPath, 'key.pem')),
      copyFile(certs.caFile, join(caOnly, 'ca.pem')),
      copyFile(other.caFile, join(otherCa, 'ca.pem')),
      copyFile(certs.clientCertFile!, join(otherCa, 'cert.pem')),
      copyFile(certs.clientKeyFile!, join(otherCa, 'key.pem')),
    ]);
  });
  const dockerd = useDockerd(() => ({ tcpTls: { caFile: certs.caFile, certFile: certs.certFile, keyFile: certs.keyFile } }));
  before(async () => {
    if (dockerd.skipped !== undefined) return;
    const engine = dockerd.engine;
    // push() and readImages take the engine from DOCKER_HOST, as the CLI does.
    process.env.DOCKER_HOST = engine.host;
    registry = await startRegistry();
    client = new RegistryClient({ registry: registry.host });
    small = await makeOciLayout(join(work, 'small'), { images: [{ tags: ['latest'], layers: [1, 2, 3].map((i) => ({ files: 2, fileSize: 200_000, seed: `daemon-${i}` })) }] });
    seven = await makeOciLayout(join(work, 'seven'), {
      images: [{ tags: ['latest'], layers: [1, 2, 3, 4, 5, 6].map((i) => ({ files: 1, fileSize: 1000 * i, seed: `s${i}` })).concat([{ files: 1, fileSize: 1000, seed: 's1' }]) }],
    });
    twelve = await makeOciLayout(join(work, 'twelve'), {
      images: [{ tags: ['latest'], layers: Array.from({ length: 12 }, (_, i) => ({ files: 1, fileSize: 2000 * (i + 1), seed: `t${i}` })) }],
    });
    for (const [fixture, name] of [
      [small, 'fixtures/small:v1'],
      [seven, 'fixtures/seven:v1'],
      [twelve, 'fixtures/twelve:v1'],
    ] as const) {
      const archive = join(work, `${name.replace(/\W/g, '-')}.tar`);
      await skopeoCopy(`oci:${fixture.dir}:latest`, `docker-archive:${archive}:${name}`);
      await engine.docker(['load', '-i', archive]);
      ids.set(name, (await engine.docker(['image', 'inspect', '--format', '{{.Id}}', name])).stdout.trim());
    }
  });

  after(async () => {
    delete process.env.DOCKER_HOST;
    await client?.close();
    await registry?.stop();
    if (work !== undefined) await rm(work, { recursive: true, force: true });
  });

  it('pushes an image from the engine, and docker pulls back the same layers and ID', async (t) => {
    if (!dockerd.require(t)) return;
    const events = await pushAll({ source: 'docker-daemon:fixtures/small:v1', destination: `${registry.host}/daemon/small` });
    const [pushed] = ofType(events, 'manifest-pushed');
    assert.equal(pushed?.tag, 'v1');
    assert.equal(pushed?.mediaType, 'application/vnd.docker.distribution.manifest.v2+json');
    assert.equal(ofType(events, 'pushed').length, 4);
    await pullsBackAs(`${registry.host}/daemon/small:v1`, 'fixtures/small:v1', small);
  });

  it('says every blob exists on a second push, and reads nothing of the save stream', async (t) => {
    if (!dockerd.require(t)) return;
    const destination = `${registry.host}/daemon/again:v1`;
    await pushAll({ source: 'docker-daemon:fixtures/small:v1', destination });
    // The layers are known by diff ID only; the digest cache maps them to what the registry holds.
    const cacheDir = join(work, 'cache');
    await lastValueFrom(push({ source: 'docker-daemon:fixtures/small:v1', destination, cacheDir }).pipe(toArray()));
    const messages: string[] = [];
    const logger: Logger = { debug: (_fields, message) => void messages.push(message ?? ''), info() {}, warn() {}, error() {}, child: () => logger };
    const events = await lastValueFrom(push({ source: 'docker-daemon:fixtures/small:v1', destination, cacheDir, logger }).pipe(toArray()));
    assert.equal(ofType(events, 'pushing').length, 0);
    assert.ok(messages.includes('Docker Engine image found'));
    assert.deepEqual(messages.filter((m) => m.startsWith('save stream')), []);
    assert.equal(ofType(events, 'exists').length, 4);
    assert.equal(ofType(events, 'manifest-pushed').length, 1);
  });

  it("reads docker save's members in name order, not base to top, and pushes them even one upload at a time", async (t) => {
    if (!dockerd.require(t)) return;
    const saved = join(work, 'seven-saved.tar');
    await dockerd.engine.docker(['save', '-o', saved, 'fixtures/seven:v1']);
    const { names, manifest } = await readSave(saved);
    assert.deepEqual(names, [...names].sort(), 'docker save writes its export directory in name order');
    // The layer directories are named by v1 IDs, so the stream does not have them base to top.
    assert.notDeepEqual(
      names.filter((name) => name.endsWith('/layer.tar')),
      manifest[0]?.Layers,
    );

    // The daemon's blobs are sequential: the uploader opens them all at once whatever its concurrency.
    const events = await pushAll({ source: 'docker-daemon:fixtures/seven:v1', destination: `${registry.host}/daemon/seven:v1`, concurrency: 1 });
    assert.equal(ofType(events, 'manifest-pushed').length, 1);
    await pullsBackAs(`${registry.host}/daemon/seven:v1`, 'fixtures/seven:v1', seven);
  });

  it('shows each layer as waiting until the save stream reaches it, then pushing with its tar size as the total', async (t) => {
    if (!dockerd.require(t)) return;
    // One timeline of the save stream reaching layers (its debug log) and the progress events.
    const timeline: string[] = [];
    const logger: Logger = {
      debug: (fields, message) => {
        if (message === 'save stream layer read') timeline.push(`read ${String((fields as { key?: unknown }).key)}`);
      },
      info() {},
      warn() {},
      error() {},
      child: () => logger,
    };
    const events = await lastValueFrom(
      push({ source: 'docker-daemon:fixtures/seven:v1', destination: `${registry.host}/daemon/progress:v1`, compression: 'none', logger }).pipe(
        tap((event) => {
          if (event.type === 'pushing' && event.role === 'layer') timeline.push(`pushing ${event.key}`);
        }),
        toArray(),
      ),
    );
    const layers = ofType(events, 'pushed').filter((event) => event.role === 'layer');
    assert.equal(layers.length, 6);
    for (const layer of layers) {
      const progress = ofType(events, 'pushing').filter((event) => event.key === layer.key);
      assert.ok(progress.length > 0, `${layer.key} shows progress`);
      // Uncompressed, the blob pushed is the layer tar itself: its size is the total the tar header gave.
      for (const event of progress) assert.equal(event.total, layer.size, `${layer.key}: ${JSON.stringify(event)}`);
      assert.ok(
        timeline.indexOf(`read ${layer.key}`) < timeline.indexOf(`pushing ${layer.key}`),
        `${layer.key} is pushing only once the save stream is at it: ${timeline.join(', ')}`,
      );
      const waiting = events.findIndex((event) => event.type === 'waiting' && event.key === layer.key);
      assert.ok(waiting >= 0 && waiting < events.indexOf(progress[0]!), `${layer.key} waits first`);
    }
  });

  it('pushes an image of more layers than the upload limiter has slots, the save stream in another order than the manifest', async (t) => {
    if (!dockerd.require(t)) return;
    const saved = join(work, 'twelve-saved.tar');
    await dockerd.engine.docker(['save', '-o', saved, 'fixtures/twelve:v1']);
    const { names, manifest } = await readSave(saved);
    assert.notDeepEqual(
      names.filter((name) => name.endsWith('/layer.tar')),
      manifest[0]?.Layers,
      'the stream does not have the layers in the order the image lists them',
    );
    // Two slots for thirteen blobs: a limiter that held back sequential blobs would leave the stream at a layer nobody opened.
    const limiter = new UploadLimiter(2);
    const events = await pushAll({ source: 'docker-daemon:fixtures/twelve:v1', destination: `${registry.host}/daemon/twelve:v1`, uploadLimiter: limiter });
    assert.equal(ofType(events, 'pushed').length, 13);
    assert.equal(ofType(events, 'manifest-pushed').length, 1);
    assert.equal(limiter.busy + limiter.waiting, 0);
    await pullsBackAs(`${registry.host}/daemon/twelve:v1`, 'fixtures/twelve:v1', twelve);
  });

  it("pushes an image of more layers than the shared upload limit's 8 slots with the CLI's defaults", async (t) => {
    if (!dockerd.require(t)) return;
    const result = await runCli(['push', 'docker-daemon:fixtures/twelve:v1', `${registry.host}/daemon/twelve-cli:v1`, '--progress', 'plain'], {
      env: { DOCKER_HOST: dockerd.engine.host, RXPUSH_CACHE_DIR: join(work, 'twelve-cli-cache') },
    });
    assert.equal(result.code, 0, result.stderr);
    assert.ok(await client.hasManifest('daemon/twelve-cli', 'v1'));
  });

  it('fails, saying what to do, when a pipeline reads a layer the engine is not sending yet, and pushes no manifest', async (t) => {
    if (!dockerd.require(t)) return;
    const repository = 'daemon/stuck';
    const target = { client, repository, logger: silentLogger };
    // A pipeline that ignores `sequential` and reads one blob at a time: layer 1 first, while the
    // engine's stream starts with another layer.
    const read = readDockerDaemon('fixtures/seven:v1', { source: 'docker-daemon:fixtures/seven:v1', allTags: false, logger: silentLogger, host: dockerd.engine.host, stallTimeoutMs: 500 });
    const notSequential = map((event: PushEvent): PushEvent => (event.type === 'blob' ? { type: 'blob', blob: { ...event.blob, sequential: false } } : event));
    const pushed = from(read).pipe(
      mergeMap((records) => records.map((image): PushEvent => ({ type: 'image', image }))),
      walkLayers(),
      checkBlobs(target),
      notSequential,
      uploadBlobs({ ...target, concurrency: 1 }),
      pushManifests(target),
    );
    await assert.rejects(lastValueFrom(pushed), (err: Error & { code?: string }) => {
      assert.equal(err.code, 'UNSUPPORTED', err.message);
      assert.match(
        err.message,
        /^docker-daemon:fixtures\/seven:v1: the Docker Engine sends layer \d of 7 .* before layer 1 of 7 \([a-f0-9]{12}\), which the push is waiting for; .* open every blob of this source at once .*, or save it first \(docker save fixtures\/seven:v1 -o FILE\) and push docker-archive:FILE$/,
      );
      return true;
    });
    assert.equal(await client.hasManifest(repository, 'v1'), undefined);
  });

  it('fails with one line when the engine does not have the image', async (t) => {
    if (!dockerd.require(t)) return;
    const result = await runCli(['push', 'docker-daemon:fixtures/nope:v1', `${registry.host}/daemon/nope:v1`], { env: { DOCKER_HOST: dockerd.engine.host } });
    assertOneLineError(result, new RegExp(`^rxpush: image fixtures/nope:v1 not found in the Docker Engine at ${dockerd.engine.host}; docker pull it or check the name$`));
  });

  it('fails with one line when no engine answers at DOCKER_HOST', async (t) => {
    if (!dockerd.require(t)) return;
    const host = `unix://${join(work, 'no-daemon.sock')}`;
    const result = await runCli(['push', 'docker-daemon:fixtures/small:v1', `${registry.host}/daemon/down:v1`], { env: { DOCKER_HOST: host } });
    assertOneLineError(result, /^rxpush: cannot reach the Docker Engine at unix:\/\/.*no-daemon\.sock \(.*\): is dockerd running\? \(DOCKER_HOST=unix:\/\/.*no-daemon\.sock\)$/);
  });

  it('pushes with the CLI, reading the engine from DOCKER_HOST', async (t) => {
    if (!dockerd.require(t)) return;
    const result = await runCli(['push', 'docker-daemon:fixtures/small:v1', `${registry.host}/daemon/cli:v1`, '--progress', 'plain'], { env: { DOCKER_HOST: dockerd.engine.host } });
    assert.equal(result.code, 0, result.stderr);
    assert.match(result.stdout, /^v1: digest: sha256:[a-f0-9]{64} size: \d+$/m);
    assert.ok(await client.hasManifest('daemon/cli', 'v1'));
  });

  it("retries a layer whose upload is reset mid-body from a new save stream, while the first goes on feeding the others", async (t) => {
    if (!dockerd.require(t)) return;
    const proxy = await startFaultProxy({ target: registry.host });
    try {
      // The registry has the config already, so the first PATCH is a layer's (~400 kB, in one PATCH of unknown
      // length): it is cut off after 100 kB.
      await storeConfigOfSmall('daemon/retry');
      proxy.addFault({ method: 'PATCH', path: /\/v2\/daemon\/retry\/blobs\/uploads\//, nth: 1, fault: { kind: 'reset', afterBytes: 100_000 } });
      const messages: string[] = [];
      const logger: Logger = { debug: (_fields, message) => void messages.push(message ?? ''), info() {}, warn() {}, error() {}, child: () => logger };
      const events = await lastValueFrom(
        push({ source: 'docker-daemon:fixtures/small:v1', destination: `${proxy.host}/daemon/retry:v1`, cacheDir: false, retry: { baseDelayMs: 10 }, logger }).pipe(toArray()),
      );
      const reset = proxy.requests.filter((request) => request.fault === 'reset');
      assert.equal(reset.length, 1, 'one PATCH was reset');
      const [retrying, ...more] = ofType(events, 'retrying');
      assert.equal(more.length, 0);
      assert.match(retrying?.reason ?? '', /^PATCH http:\/\/127\.0\.0\.1:\d+\/v2\/daemon\/retry\/blobs\/uploads\/\S+ failed/);
      assert.equal(ofType(events, 'exists').length, 1, 'the config');
      assert.equal(ofType(events, 'pushed').length, 3);
      assert.equal(messages.filter((m) => m === 'reading a blob again from a new save stream').length, 1, 'the broken layer alone was read again');
      // The other layers went up once each, from the first stream: one more PATCH than layers, the reset one.
      assert.equal(proxy.requests.filter((request) => request.method === 'PATCH').length, 4);
    } finally {
      await proxy.close();
    }
    await pullsBackAs(`${registry.host}/daemon/retry:v1`, 'fixtures/small:v1', small);
  });

  it("lands a layer whose commit reached the registry but whose answer was lost, confirming it with a HEAD rather than reading it again", async (t) => {
    if (!dockerd.require(t)) return;
    const proxy = await startFaultProxy({ target: registry.host });
    try {
      await storeConfigOfSmall('daemon/lost-commit');
      // The first commit (an empty PUT ?digest= after a layer's PATCH) reaches the registry; its answer does not.
      proxy.addFault({ method: 'PUT', path: /\/v2\/daemon\/lost-commit\/blobs\/uploads\/.*digest=/, nth: 1, fault: { kind: 'reset', afterBytes: 1 } });
      const messages: string[] = [];
      const logger: Logger = { debug: (_fields, message) => void messages.push(message ?? ''), info() {}, warn() {}, error() {}, child: () => logger };
      const events = await lastValueFrom(
        push({ source: 'docker-daemon:fixtures/small:v1', destination: `${proxy.host}/daemon/lost-commit:v1`, cacheDir: false, retry: { baseDelayMs: 10 }, logger }).pipe(toArray()),
      );
      assert.equal(proxy.requests.filter((request) => request.fault === 'reset').length, 1);
      assert.equal(ofType(events, 'retrying').length, 1);
      assert.equal(ofType(events, 'pushed').length, 3);
      assert.equal(messages.filter((m) => m === 'reading a blob again from a new save stream').length, 0, 'nothing was read again');
      assert.equal(proxy.requests.filter((request) => request.method === 'PATCH').length, 3, 'nothing was sent again');
    } finally {
      await proxy.close();
    }
    await pullsBackAs(`${registry.host}/daemon/lost-commit:v1`, 'fixtures/small:v1', small);
  });

  it("ends with the registry's connection error and exit 1 when the registry dies mid-push, never as a cancelled push", async (t) => {
    if (!dockerd.require(t)) return;
    // Layers big enough (gzipped on the way) that the registry can be stopped while they go up.
    const big = await makeOciLayout(join(work, 'big'), { images: [{ tags: ['latest'], layers: [1, 2].map((i) => ({ files: 4, fileSize: 4_000_000, seed: `dies-${i}` })) }] });
    const archive = join(work, 'big.tar');
    await skopeoCopy(`oci:${big.dir}:latest`, `docker-archive:${archive}:fixtures/big:v1`);
    await dockerd.engine.docker(['load', '-i', archive]);
    const doomed = await startRegistry();
    try {
      const cli = startCli(t, ['push', 'docker-daemon:fixtures/big:v1', `${doomed.host}/daemon/dies:v1`, '--progress', 'json', '--retries', '2'], {
        env: { DOCKER_HOST: dockerd.engine.host, RXPUSH_CACHE_DIR: join(work, 'dies-cache') },
      });
      let stopped: Promise<void> | undefined;
      let buffered = '';
      cli.child.stdout.on('data', (chunk: Buffer) => {
        buffered += chunk.toString('utf8');
        for (let nl = buffered.indexOf('\n'); nl >= 0; nl = buffered.indexOf('\n')) {
          const line = buffered.slice(0, nl);
          buffered = buffered.slice(nl + 1);
          const message = JSON.parse(line) as { status?: string; progressDetail?: { current?: number } };
          // Bytes are on their way: the registry dies now.
          if (stopped === undefined && message.status === 'Pushing' && (message.progressDetail?.current ?? 0) > 0) stopped = doomed.stop();
        }
      });
      const result = await cli.result;
      await stopped;
      assert.ok(stopped !== undefined, 'the push was still uploading when the registry was stopped');
      assertOneLineError(result, /^rxpush: (PATCH|PUT|POST|HEAD) http:\/\/127\.0\.0\.1:\d+\/v2\/daemon\/dies\/\S+ failed: (connection refused|the connection was closed before the registry answered)/);
      assert.doesNotMatch(result.stderr, /stopped reading|cancelled/);
    } finally {
      await doomed.stop();
    }
  });

  describe('over TCP with TLS (DOCKER_TLS_VERIFY, DOCKER_CERT_PATH)', () => {
    const tlsEnv = (dir: string): Record<string, string> => ({ DOCKER_HOST: dockerd.engine.tcpHost!, DOCKER_TLS_VERIFY: '1', DOCKER_CERT_PATH: dir });

    it('pushes from an engine that checks client certificates, with the ones in DOCKER_CERT_PATH', async (t) => {
      if (!dockerd.require(t)) return;
      const result = await runCli(['push', 'docker-daemon:fixtures/small:v1', `${registry.host}/daemon/tls:v1`, '--progress', 'plain'], { env: tlsEnv(certPath) });
      assert.equal(result.code, 0, result.stderr);
      assert.match(result.stdout, /^v1: digest: sha256:[a-f0-9]{64} size: \d+$/m);
      assert.ok(await client.hasManifest('daemon/tls', 'v1'));
    });

    it('says to set DOCKER_TLS_VERIFY when plain HTTP reaches the TLS port', async (t) => {
      if (!dockerd.require(t)) return;
      const result = await runCli(['push', 'docker-daemon:fixtures/small:v1', `${registry.host}/daemon/tls-plain:v1`], { env: { DOCKER_HOST: dockerd.engine.tcpHost! } });
      assertOneLineError(result, /→ 400: .*HTTP request to an HTTPS server.*; the engine speaks TLS: set DOCKER_TLS_VERIFY=1 and DOCKER_CERT_PATH$/);
      assert.equal(await client.hasManifest('daemon/tls-plain', 'v1'), undefined);
    });

    it('says the engine wants a client certificate when DOCKER_CERT_PATH has none', async (t) => {
      if (!dockerd.require(t)) return;
      const result = await runCli(['push', 'docker-daemon:fixtures/small:v1', `${registry.host}/daemon/tls-nocert:v1`], { env: tlsEnv(caOnly) });
      assertOneLineError(
        result,
        /^rxpush: the Docker Engine at tcp:\/\/127\.0\.0\.1:\d+ closed the TLS connection \(.*\): it probably wants a client certificate, and .*docker-ca-only has no cert\.pem and key\.pem; set DOCKER_CERT_PATH .*\(DOCKER_HOST=tcp:.*, DOCKER_TLS_VERIFY is set, certificates from .*docker-ca-only\)$/,
      );
    });

    it('says the TLS handshake failed, and what to check, when ca.pem is not the CA of the engine', async (t) => {
      if (!dockerd.require(t)) return;
      const result = await runCli(['push', 'docker-daemon:fixtures/small:v1', `${registry.host}/daemon/tls-otherca:v1`], { env: tlsEnv(otherCa) });
      assertOneLineError(
        result,
        /^rxpush: the TLS handshake with the Docker Engine at tcp:\/\/127\.0\.0\.1:\d+ failed \(.*\); check that DOCKER_CERT_PATH holds the engine's ca\.pem .*certificates from .*docker-other-ca\)$/,
      );
    });

    it('says which file is missing when DOCKER_CERT_PATH has no ca.pem', async (t) => {
      if (!dockerd.require(t)) return;
      const result = await runCli(['push', 'docker-daemon:fixtures/small:v1', `${registry.host}/daemon/tls-noca:v1`], { env: tlsEnv(join(work, 'nowhere')) });
      assertOneLineError(result, /^rxpush: DOCKER_TLS_VERIFY is set for DOCKER_HOST=tcp:\/\/127\.0\.0\.1:\d+, but .*nowhere\/ca\.pem cannot be read \(.*\); set DOCKER_CERT_PATH to the directory with ca\.pem, cert\.pem and key\.pem$/);
    });
  });
});
