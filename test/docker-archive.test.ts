/**
 * docker-archive: end to end. Archives in both docker save forms are made by skopeo, by a private
 * dockerd's own `docker save`, and (legacy) by the test; rxpush pushes them to the reference registry,
 * and the same dockerd pulls them back: the layers and image ID it computes must be the originals.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtemp, readdir, readFile, truncate, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { gunzipSync, gzipSync } from 'node:zlib';
import { before, describe, it } from 'node:test';

import { entry, makeDockerSave, makeLegacyDockerSave, packTar } from '../packages/graph-reader/test/docker-save-fixtures.ts';
import { makeOciLayout } from '../tools/fixtures.ts';
import { useDockerd } from './helpers/docker-engine.ts';
import { useRegistry } from './helpers/registry-suite.ts';
import { runCli } from './helpers/run-cli.ts';
import { skopeoCopy, skopeoInspectRaw } from './helpers/skopeo.ts';
import { ofType, pushAll } from './helpers/push-events.ts';
import { assertOneLineError } from './helpers/assert-cli.ts';
import { startFaultProxy } from './helpers/fault-proxy.ts';


describe('pushing docker save archives (docker-archive:)', () => {
  const dockerd = useDockerd();
  const suite = useRegistry('docker-archive-e2e', {
    images: [{ tags: ['latest'], layers: [1, 2, 3].map((i) => ({ files: 2, fileSize: 150_000, seed: `archive-${i}` })) }],
  });
  /** What skopeo made of the layout: a docker-archive with the image as fixtures/app:v1. */
  let skopeoArchive: string;

  /** Empties the engine, so a pull downloads every layer instead of finding it. */
  async function emptyEngine(): Promise<void> {
    const { stdout } = await dockerd.engine.docker(['images', '-aq']);
    const ids = [...new Set(stdout.split('\n').filter(Boolean))];
    if (ids.length > 0) await dockerd.engine.docker(['rmi', '-f', ...ids]);
  }

  /** Pulls `ref` into an empty engine: the layers (RootFS) and image ID Docker computes. */
  async function pullBack(ref: string): Promise<{ layers: string[]; id: string }> {
    await emptyEngine();
    await dockerd.engine.docker(['pull', ref]);
    const { stdout } = await dockerd.engine.docker(['image', 'inspect', '--format', '{{json .RootFS.Layers}} {{.Id}}', ref]);
    const [layers, id] = stdout.trim().split(' ');
    return { layers: JSON.parse(layers ?? '[]'), id: id ?? '' };
  }

  before(async () => {
    skopeoArchive = join(suite.work, 'skopeo.tar');
    await skopeoCopy(`oci:${suite.layout.dir}:latest`, `docker-archive:${skopeoArchive}:fixtures/app:v1`);
  });

  it('pushes an archive skopeo wrote as a Docker image, and docker pulls back its layers', async (t) => {
    const events = await pushAll({ source: `docker-archive:${skopeoArchive}`, destination: `${suite.registry.host}/archive/skopeo:v1` });
    const [pushed] = ofType(events, 'manifest-pushed');
    assert.equal(pushed?.tag, 'v1');
    assert.equal(pushed?.mediaType, 'application/vnd.docker.distribution.manifest.v2+json');
    // The layers went up gzipped on the fly; the config as stored.
    const raw = await skopeoInspectRaw(`${suite.registry.host}/archive/skopeo:v1`);
    assert.deepEqual(raw.json.layers.map((l: { mediaType: string }) => l.mediaType), Array(3).fill('application/vnd.docker.image.rootfs.diff.tar.gzip'));
    if (!dockerd.require(t)) return;
    const pulled = await pullBack(`${suite.registry.host}/archive/skopeo:v1`);
    assert.deepEqual(pulled.layers, suite.layout.images[0]?.diffIds);
    assert.equal(pulled.id, raw.json.config.digest);
  });

  it("pushes what docker save wrote, with the CLI, and keeps the layers' diff IDs", async (t) => {
    if (!dockerd.require(t)) return;
    await emptyEngine();
    await dockerd.engine.docker(['load', '-i', skopeoArchive]);
    const saved = join(suite.work, 'saved.tar');
    await dockerd.engine.docker(['save', '-o', saved, 'fixtures/app:v1']);
    const { stdout: id } = await dockerd.engine.docker(['image', 'inspect', '--format', '{{.Id}}', 'fixtures/app:v1']);

    const result = await runCli(['push', `docker-archive:${saved}:fixtures/app:v1`, `${suite.registry.host}/archive/saved:v1`, '--progress', 'plain']);
    assert.equal(result.code, 0, result.stderr);
    assert.match(result.stdout, /^v1: digest: sha256:[a-f0-9]{64} size: \d+$/m);
    const pulled = await pullBack(`${suite.registry.host}/archive/saved:v1`);
    assert.deepEqual(pulled.layers, suite.layout.images[0]?.diffIds);
    assert.equal(pulled.id, id.trim());
  });

  it('pushes a gzip-compressed archive, and one piped in on stdin, as the plain one, leaving no copy behind', async () => {
    const tmp = await mkdtemp(join(suite.work, 'tmp-'));
    const env = { TMPDIR: tmp };
    const compressed = `${skopeoArchive}.gz`;
    await writeFile(compressed, gzipSync(await readFile(skopeoArchive)));
    const pushes = [
      { repository: 'archive/plain', args: [`docker-archive:${skopeoArchive}`], input: undefined },
      { repository: 'archive/gzip', args: [`docker-archive:${compressed}`], input: undefined },
      { repository: 'archive/stdin', args: ['docker-archive:/dev/stdin:fixtures/app:v1'], input: await readFile(skopeoArchive) },
      { repository: 'archive/stdin-gzip', args: ['docker-archive:/dev/stdin'], input: await readFile(compressed) },
    ];
    const digests: string[] = [];
    for (const { repository, args, input } of pushes) {
      const result = await runCli(['push', ...args, `${suite.registry.host}/${repository}:v1`, '--quiet'], { env, ...(input !== undefined && { input }) });
      assert.equal(result.code, 0, `${repository}: ${result.stderr}`);
      assert.deepEqual(await readdir(tmp), [], `${repository}: the copy is removed once pushed`);
      digests.push(createHash('sha256').update((await skopeoInspectRaw(`${suite.registry.host}/${repository}:v1`)).bytes).digest('hex'));
    }
    assert.equal(new Set(digests).size, 1, `one image, pushed four ways: ${digests.join(', ')}`);

    const cut = `${skopeoArchive}.cut.gz`;
    const whole = await readFile(compressed);
    await writeFile(cut, whole.subarray(0, whole.length / 2));
    assertOneLineError(await runCli(['push', `docker-archive:${cut}`, `${suite.registry.host}/archive/cut:v1`], { env }), /skopeo\.tar\.cut\.gz is gzip-compressed, but its stream is damaged \(unexpected end of file\); export the archive again$/);
    // What is wrong inside the copy is said of the archive given: the copy is gone, and not the user's to fix.
    const notes = join(suite.work, 'notes.tar.gz');
    await writeFile(notes, gzipSync(await packTar([{ name: 'notes.txt', data: 'no image here' }])));
    assertOneLineError(await runCli(['push', `docker-archive:${notes}`, `${suite.registry.host}/archive/notes:v1`], { env }), /^rxpush: \S+\/notes\.tar\.gz is not a docker save archive: /);
    assert.deepEqual(await readdir(tmp), []);
  });

  it('pushes a legacy archive with the config docker load makes of it', async (t) => {
    const legacy = await makeLegacyDockerSave(join(suite.work, 'legacy.tar'), {
      images: [{ repoTags: ['fixtures/legacy:v1'], layers: [{ 'etc/base': 'base\n'.repeat(1000) }, { 'usr/app': 'app\n' }, { 'etc/app.conf': 'conf\n' }] }],
    });
    const events = await pushAll({ source: `docker-archive:${legacy.path}:fixtures/legacy:v1`, destination: `${suite.registry.host}/archive/legacy:v1` });
    const configDigest = (await skopeoInspectRaw(`${suite.registry.host}/archive/legacy:v1`)).json.config.digest;
    assert.equal(ofType(events, 'manifest-pushed').length, 1);
    if (!dockerd.require(t)) return;
    // Docker 20.10 still loads legacy archives: the image ID it computes is the config rxpush made.
    await emptyEngine();
    // A legacy load prints no "Loaded image" line; the tag is checked by the inspect below.
    await dockerd.engine.docker(['load', '-i', legacy.path]);
    const { stdout: id } = await dockerd.engine.docker(['image', 'inspect', '--format', '{{.Id}}', 'fixtures/legacy:v1']);
    assert.equal(configDigest, id.trim());
    const pulled = await pullBack(`${suite.registry.host}/archive/legacy:v1`);
    assert.deepEqual(pulled.layers, legacy.images[0]?.diffIds);
    assert.equal(pulled.id, id.trim());
  });

  it('pushes every image of an archive with --all-tags, a shared layer once', async () => {
    const path = join(suite.work, 'two.tar');
    await makeDockerSave(path, {
      images: [
        { repoTags: ['fixtures/a:1', 'fixtures/a:latest'], layers: [{ base: 'shared' }, { a: 'a' }] },
        { repoTags: ['fixtures/b:2'], layers: [{ base: 'shared' }, { b: 'b' }] },
      ],
    });
    const events = await pushAll({ source: `docker-archive:${path}`, destination: `${suite.registry.host}/archive/all`, allTags: true });
    assert.deepEqual(ofType(events, 'manifest-pushed').map((e) => e.tag).sort(), ['1', '2', 'latest']);
    // base, a, b and two configs.
    assert.equal(ofType(events, 'pushed').length, 5);
    assert.deepEqual((await suite.client.listTags('archive/all')).sort(), ['1', '2', 'latest']);
  });

  it('fails on a layer whose bytes are not its diff ID, naming it, and pushes no manifest', async () => {
    const path = join(suite.work, 'corrupt.tar');
    await makeDockerSave(path, {
      images: [{ repoTags: ['fixtures/corrupt:v1'], layers: [{ a: 'a'.repeat(5000) }, { b: 'b'.repeat(5000) }] }],
      edit: (entries) => {
        const manifest = JSON.parse(String(entry(entries, 'manifest.json').data));
        const layer = entry(entries, manifest[0].Layers[1]);
        const bytes = Buffer.from(layer.data as Buffer);
        bytes[bytes.length - 2048] = 0x7a; // inside the file's content: still a tar, another hash
        layer.data = bytes;
      },
    });
    const result = await runCli(['push', `docker-archive:${path}`, `${suite.registry.host}/archive/corrupt:v1`, '--progress', 'plain']);
    assertOneLineError(result, /^rxpush: .*corrupt\.tar:[a-f0-9]{64}\/layer\.tar does not match its digest: expected sha256:[a-f0-9]{64}, read sha256:[a-f0-9]{64}/);
    assert.equal(await suite.client.hasManifest('archive/corrupt', 'v1'), undefined);
  });

  it('fails on a truncated archive with one line naming it, and pushes nothing', async () => {
    const path = join(suite.work, 'truncated.tar');
    await makeDockerSave(path, { images: [{ repoTags: ['fixtures/cut:v1'], layers: [{ a: 'a'.repeat(20_000) }] }] });
    await truncate(path, (await readFile(path)).length - 3000);
    const result = await runCli(['push', `docker-archive:${path}`, `${suite.registry.host}/archive/cut:v1`]);
    assertOneLineError(result, /^rxpush: .*truncated\.tar is truncated: .*; copy or export the archive again$/);
    assert.deepEqual(await suite.client.listTags('archive/cut').catch(() => []), []);
  });

  it('fails on an archive whose manifest.json leads outside it', async () => {
    const path = join(suite.work, 'escape.tar');
    await makeDockerSave(path, {
      images: [{ repoTags: ['fixtures/escape:v1'], layers: [{ a: 'a' }] }],
      edit: (entries) => {
        const manifest = entry(entries, 'manifest.json');
        const items = JSON.parse(String(manifest.data));
        items[0].Layers[0] = '../../../../etc/passwd';
        manifest.data = JSON.stringify(items);
      },
    });
    const result = await runCli(['push', `docker-archive:${path}`, `${suite.registry.host}/archive/escape:v1`]);
    assertOneLineError(result, /^rxpush: .*escape\.tar:manifest\.json has entry 0 "Layers"\[0\] "\.\.\/\.\.\/\.\.\/\.\.\/etc\/passwd", which leads outside the archive/);
  });

  it('compresses big layers block by block into gzip that docker pull and skopeo read back to the same diff IDs', async (t) => {
    // Several 1 MiB blocks of each kind and the switches between them: text (4.4 bits a byte: deflated at level 4
    // by default), base64 noise (6 bits: level 1; zlib's 3) and random data (stored).
    const line = (i: number): string => `${i}: compressible text for the layer, which deflates well ${i % 13}\n`;
    const text = (from: number, bytes: number): string => {
      let out = '';
      for (let i = from; out.length < bytes; i++) out += line(i);
      return out;
    };
    const hash = createHash('sha512');
    let noise = '';
    for (let i = 0; noise.length < 3 * 1024 * 1024; i++) noise += hash.copy().update(String(i)).digest('base64');
    const textual = join(suite.work, 'blocks.tar');
    const saved = await makeDockerSave(textual, {
      images: [{ repoTags: ['fixtures/blocks:v1'], layers: [{ 'a.txt': text(0, 3_500_000) }, { 'noise.b64': noise, 'b.txt': text(10, 2_500_000) }] }],
    });
    const randomLayout = await makeOciLayout(join(suite.work, 'random-layout'), {
      images: [{ tags: ['latest'], layers: [{ files: 3, fileSize: 3 * 1024 * 1024, seed: 'blocks-random' }] }],
    });
    const random = join(suite.work, 'random.tar');
    await skopeoCopy(`oci:${randomLayout.dir}:latest`, `docker-archive:${random}:fixtures/random:v1`);

    for (const [archive, diffIdsOf] of [
      [textual, saved.images[0]?.diffIds],
      [random, randomLayout.images[0]?.diffIds],
    ] as const) {
      const destination = `${suite.registry.host}/archive/blocks-${archive === random ? 'random' : 'text'}:v1`;
      const result = await runCli(['push', `docker-archive:${archive}`, destination, '--progress', 'plain']);
      assert.equal(result.code, 0, result.stderr);

      // skopeo, as the reader: the pushed layers gunzip to the bytes their config's diff IDs name, with Node's
      // zlib, and with skopeo's own gzip reader (--dest-decompress). With libdeflate each 1 MiB block is a gzip
      // member of its own: both must read the members as one stream.
      const copy = await mkdtemp(join(suite.work, 'blocks-copy-'));
      await skopeoCopy(destination, `dir:${copy}`);
      const manifest = JSON.parse(await readFile(join(copy, 'manifest.json'), 'utf8'));
      const config = JSON.parse(await readFile(join(copy, manifest.config.digest.slice(7)), 'utf8'));
      const diffIds: string[] = [];
      for (const layer of manifest.layers as { digest: string }[]) {
        const bytes = gunzipSync(await readFile(join(copy, layer.digest.slice(7))));
        diffIds.push(`sha256:${createHash('sha256').update(bytes).digest('hex')}`);
      }
      assert.deepEqual(diffIds, diffIdsOf);
      const decompressed = await mkdtemp(join(suite.work, 'blocks-decompressed-'));
      await skopeoCopy(destination, `dir:${decompressed}`, { decompress: true });
      const layers = JSON.parse(await readFile(join(decompressed, 'manifest.json'), 'utf8')).layers as { digest: string }[];
      const tars: string[] = [];
      for (const layer of layers) tars.push(`sha256:${createHash('sha256').update(await readFile(join(decompressed, layer.digest.slice(7)))).digest('hex')}`);
      assert.deepEqual(tars, diffIdsOf);
      assert.deepEqual(config.rootfs.diff_ids, diffIdsOf);

      if (!dockerd.require(t)) continue;
      const pulled = await pullBack(destination);
      assert.deepEqual(pulled.layers, diffIdsOf);
    }
  });
  it('sends a layer again, whole and the same bytes, when its upload is reset mid-body, and docker pulls it back', async (t) => {
    // Read from the archive into reused buffers and gzipped with libdeflate (GzipPieces): random data, stored
    // members in pooled buffers, read, stored and sent again by the retry.
    const layout = await makeOciLayout(join(suite.work, 'reset-layout'), {
      images: [{ tags: ['latest'], layers: [{ files: 2, fileSize: 3 * 1024 * 1024, seed: 'reset-random' }] }],
    });
    const archive = join(suite.work, 'reset.tar');
    await skopeoCopy(`oci:${layout.dir}:latest`, `docker-archive:${archive}:fixtures/reset:v1`);
    const saved = { images: [{ diffIds: layout.images[0]?.diffIds }] };
    const proxy = await startFaultProxy({ target: suite.registry.host });
    try {
      proxy.addFault({ method: 'PATCH', path: /\/v2\/archive\/reset\//, nth: 1, fault: { kind: 'reset', afterBytes: 1_500_000 } });
      const result = await runCli(['push', `docker-archive:${archive}`, `${proxy.host}/archive/reset:v1`, '--progress', 'plain']);
      assert.equal(result.code, 0, result.stderr);
      assert.equal(proxy.requests.filter((request) => request.fault === 'reset').length, 1, 'the fault was met');
    } finally {
      await proxy.close();
    }
    const destination = `${suite.registry.host}/archive/reset:v1`;
    const decompressed = await mkdtemp(join(suite.work, 'reset-decompressed-'));
    await skopeoCopy(destination, `dir:${decompressed}`, { decompress: true });
    const layers = JSON.parse(await readFile(join(decompressed, 'manifest.json'), 'utf8')).layers as { digest: string }[];
    const tars: string[] = [];
    for (const layer of layers) tars.push(`sha256:${createHash('sha256').update(await readFile(join(decompressed, layer.digest.slice(7)))).digest('hex')}`);
    assert.deepEqual(tars, saved.images[0]?.diffIds);
    if (!dockerd.require(t)) return;
    const pulled = await pullBack(destination);
    assert.deepEqual(pulled.layers, saved.images[0]?.diffIds);
  });
});
