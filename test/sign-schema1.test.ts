/**
 * Docker schema 1, signed: rxpush signs with the user's key (or dockerd's own key.json) and the reference
 * registry, with schema 1 compatibility on, verifies the JWS; a changed payload is refused; dockerd 20.10 pulls
 * the image back with the same diff IDs.
 */
import assert from 'node:assert/strict';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';

import { MediaType, RegistryError } from '@rxpush/core';
import { generateSigningKey, loadSigningKey, parseSchema1, parseSigningKey, type SigningKey } from '@rxpush/manifest-signer';
import { RegistryClient } from '@rxpush/registry-client';
import tar from 'tar-stream';

import { makeOciLayout } from '../tools/fixtures.ts';
import { startRegistry, type RunningRegistry } from '../tools/registry.ts';
import { addIndex } from '../packages/graph-reader/test/layouts.ts';
import { assertOneLineError } from './helpers/assert-cli.ts';
import { useDockerd } from './helpers/docker-engine.ts';
import { useRegistry } from './helpers/registry-suite.ts';
import { ofType, pushAll } from './helpers/push-events.ts';
import { skopeoCopy } from './helpers/skopeo.ts';
import { runCli } from './helpers/run-cli.ts';

/**
 * The layers and history of a schema 1 manifest in the registry. containers/image (skopeo --format v2s1) writes
 * Docker's algorithm independently of rxpush; its JSON is compact and ordered otherwise, so these are compared.
 */
async function schema1Content(client: RegistryClient, repository: string, tag: string): Promise<{ fsLayers: unknown; history: unknown; name: unknown; architecture: unknown }> {
  const stored = await client.getManifest(repository, tag, { accept: [MediaType.dockerSchema1Signed] });
  const { fsLayers, history, name, architecture } = JSON.parse(Buffer.from((await parseSchema1(stored.bytes)).payload).toString()) as Record<string, unknown>;
  return { fsLayers, history, name, architecture };
}

/** A build context (Dockerfile and two files) as a tar, for `docker build -`. */
async function buildContext(): Promise<Buffer> {
  const pack = tar.pack();
  const dockerfile = 'FROM scratch\nCOPY a.txt /a.txt\nENV GREETING="hello & <welcome>"\nLABEL org.example.step=two\nCOPY b.txt /b.txt\nCMD ["/b.txt"]\n';
  for (const [name, text] of [['Dockerfile', dockerfile], ['a.txt', 'first layer\n'], ['b.txt', 'second layer\n']] as const) pack.entry({ name, mtime: new Date(0) }, text);
  pack.finalize();
  const chunks: Buffer[] = [];
  for await (const chunk of pack) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

describe('Docker schema 1 manifests signed with the user key', () => {
  const suite = useRegistry('schema1', { registry: { schema1: true } });
  const key: SigningKey = parseSigningKey(generateSigningKey().privatePem, { origin: 'test key' });

  it('pushes a schema 1 manifest the registry verifies, signed with the JWK of the user key', async () => {
    const events = await pushAll({ source: `oci:${suite.layout.dir}:latest`, destination: `${suite.registry.host}/s1/app:1.0`, format: 'schema1', signKey: key });
    const [signed] = ofType(events, 'signed-manifest');
    const [manifest] = ofType(events, 'manifest');
    const [pushed] = ofType(events, 'manifest-pushed');
    assert.equal(signed?.scheme, 'schema1');
    assert.equal(signed?.keyId, key.keyId);
    assert.deepEqual(signed?.tags, ['1.0']);
    assert.ok(events.indexOf(signed!) < events.indexOf(pushed!), 'signed-manifest comes before manifest-pushed');
    assert.equal(pushed?.mediaType, MediaType.dockerSchema1Signed);

    // What was sent carries the user's public key, under libtrust's key ID, and verifies with it.
    const sent = await parseSchema1(manifest!.bytes);
    assert.deepEqual(sent.signatures.map((s) => [s.keyId, s.valid]), [[key.keyId, true]]);
    assert.deepEqual(Buffer.from(sent.signatures[0]!.publicKeySpki), key.publicKey.export({ format: 'der', type: 'spki' }));
    assert.equal(sent.name, 's1/app');
    assert.equal(sent.tag, '1.0');

    // The registry names it by the payload's digest and keeps that payload byte for byte.
    const stored = await suite.client.getManifest('s1/app', '1.0', { accept: [MediaType.dockerSchema1Signed] });
    assert.equal(stored.digest, pushed?.digest);
    assert.equal(stored.digest, sent.digest);
    const served = await parseSchema1(stored.bytes);
    assert.deepEqual(Buffer.from(served.payload), Buffer.from(sent.payload));
    assert.equal(sent.payload.byteLength, JSON.stringify(JSON.parse(Buffer.from(sent.payload).toString()), null, 3).length);

    // distribution keeps the payload only, and signs what it serves with its own key: verify says so.
    const keyFile = join(suite.work, 'user.pub');
    await writeFile(keyFile, key.publicKey.export({ format: 'pem', type: 'spki' }));
    const verified = await runCli(['verify', `${suite.registry.host}/s1/app:1.0`, '--key', keyFile]);
    assertOneLineError(verified, new RegExp(`is by the key ${key.keyId} .*: its schema 1 JWS is by ${served.signatures[0]!.keyId} \\(registries such as distribution re-sign schema 1 manifests with their own key as they serve them\\)$`));
  });

  it('names the same layers and v1 history as containers/image (skopeo --format v2s1) does for the image', async () => {
    await pushAll({ source: `oci:${suite.layout.dir}:latest`, destination: `${suite.registry.host}/s1/same:rxpush`, format: 'schema1', signKey: key });
    await skopeoCopy(`oci:${suite.layout.dir}:latest`, `${suite.registry.host}/s1/same:skopeo`, { format: 'v2s1' });
    assert.deepEqual(await schema1Content(suite.client, 's1/same', 'rxpush'), await schema1Content(suite.client, 's1/same', 'skopeo'));
  });

  it('is refused by the registry when the payload was changed after signing', async () => {
    const events = await pushAll({ source: `oci:${suite.layout.dir}:latest`, destination: `${suite.registry.host}/s1/app:2.0`, format: 'schema1', signKey: key });
    const [manifest] = ofType(events, 'manifest');
    const text = Buffer.from(manifest!.bytes).toString();
    const tampered = Buffer.from(text.replace('"tag": "2.0"', '"tag": "6.6"'));
    assert.notEqual(tampered.toString(), text);
    await assert.rejects(suite.client.putManifest('s1/app', '6.6', { bytes: tampered, mediaType: MediaType.dockerSchema1Signed }), (error: unknown) => {
      assert.ok(error instanceof RegistryError, String(error));
      assert.equal(error.status, 400);
      assert.match(error.message, /MANIFEST_UNVERIFIED|MANIFEST_INVALID/);
      return true;
    });
    assert.equal(await suite.client.hasManifest('s1/app', '6.6'), undefined);
  });

  it('pushes one signed manifest per tag, each naming its own tag', async () => {
    const events = await pushAll({ source: `oci:${suite.layout.dir}:latest`, destination: `${suite.registry.host}/s1/tags:a`, tags: ['b'], format: 'schema1', signKey: key });
    const pushed = ofType(events, 'manifest-pushed');
    assert.deepEqual(pushed.map((e) => e.tag), ['a', 'b']);
    assert.notEqual(pushed[0]?.digest, pushed[1]?.digest);
    const tags = await Promise.all(['a', 'b'].map(async (tag) => (await parseSchema1((await suite.client.getManifest('s1/tags', tag, { accept: [MediaType.dockerSchema1Signed] })).bytes)).tag));
    assert.deepEqual(tags, ['a', 'b']);
  });

  it('refuses an index, a push without a key and an Ed25519 key, before anything is pushed', async () => {
    const index = await makeOciLayout(join(suite.work, 'index'), {
      images: [
        { tags: ['amd64'], layers: [{ files: 1, fileSize: 10, seed: 'i1' }] },
        { tags: ['arm64'], layers: [{ files: 1, fileSize: 10, seed: 'i2' }] },
      ],
    });
    await addIndex(index, 'multi');
    await assert.rejects(pushAll({ source: `oci:${index.dir}:multi`, destination: `${suite.registry.host}/s1/index:1`, format: 'schema1', signKey: key }), /is an index of 2 images, and a schema 1 manifest holds one image: push one platform's image, or push the index with --format oci/);
    assert.equal(await suite.client.hasManifest('s1/index', '1'), undefined);
    await assert.rejects(pushAll({ source: `oci:${suite.layout.dir}:latest`, destination: `${suite.registry.host}/s1/nokey:1`, format: 'schema1' }), /must be signed: give --sign-key FILE/);
    const { generateKeyPairSync } = await import('node:crypto');
    const ed = parseSigningKey(generateKeyPairSync('ed25519').privateKey.export({ format: 'pem', type: 'pkcs8' }).toString(), { origin: 'ed.pem' });
    await assert.rejects(pushAll({ source: `oci:${suite.layout.dir}:latest`, destination: `${suite.registry.host}/s1/ed:1`, format: 'schema1', signKey: ed }), /ed\.pem is an Ed25519 key/);
    assert.equal(await suite.client.hasManifest('s1/nokey', '1'), undefined);
  });

  it('says the registry refuses schema 1, and to push with --format oci, when compatibility is off', async () => {
    const plain = await startRegistry();
    try {
      await assert.rejects(pushAll({ source: `oci:${suite.layout.dir}:latest`, destination: `${plain.host}/s1/app:1`, format: 'schema1', signKey: key }), (error: Error) => {
        assert.match(error.message, /the registry refuses Docker schema 1 manifests .*compatibility\.schema1\.enabled.*; push with --format oci$/);
        return true;
      });
      const keyFile = join(suite.work, 'cli.key');
      await writeFile(keyFile, key.privateKey.export({ format: 'pem', type: 'sec1' }));
      const refused = await runCli(['push', `oci:${suite.layout.dir}:latest`, `${plain.host}/s1/cli:1`, '--format', 'schema1', '--sign-key', keyFile]);
      assertOneLineError(refused, /^rxpush: PUT .*\/v2\/s1\/cli\/manifests\/1 → 500 .*: the registry refuses Docker schema 1 manifests .*; push with --format oci$/);
      const accepted = await runCli(['push', `oci:${suite.layout.dir}:latest`, `${suite.registry.host}/s1/cli:1`, '--format', 'schema1', '--sign-key', keyFile, '--progress', 'plain']);
      assert.equal(accepted.code, 0, accepted.stderr);
      assert.match(accepted.stdout, new RegExp(`^1: signed with ${key.keyId}$`, 'm'));
    } finally {
      await plain.stop();
    }
  });
});

describe('Docker schema 1 with a real Docker Engine', () => {
  const dockerd = useDockerd();
  let registry: RunningRegistry;
  let client: RegistryClient;

  before(async () => {
    if (dockerd.skipped !== undefined) return;
    const engine = dockerd.engine;
    process.env.DOCKER_HOST = engine.host;
    registry = await startRegistry({ schema1: true });
    client = new RegistryClient({ registry: registry.host });
    await engine.docker(['build', '-q', '-t', 'fixtures/built:v1', '-'], { input: await buildContext() });
  });
  after(async () => {
    delete process.env.DOCKER_HOST;
    await client?.close();
    await registry?.stop();
  });

  it("signs with the daemon's own key.json, and docker pulls the schema 1 image back with the same diff IDs", async (t) => {
    if (!dockerd.require(t)) return;
    const keyJson = JSON.parse(await readFile(dockerd.engine.trustKeyFile, 'utf8')) as { kid: string; d?: string };
    assert.ok(keyJson.d !== undefined, "dockerd's key.json holds a private key");
    const daemonKey = await loadSigningKey(dockerd.engine.trustKeyFile);
    assert.equal(daemonKey.keyId, keyJson.kid, "rxpush names the key as libtrust (dockerd) does");

    const original = JSON.parse((await dockerd.engine.docker(['image', 'inspect', 'fixtures/built:v1'])).stdout) as { Id: string; RootFS: { Layers: string[] } }[];
    // inspect reads the engine's config without waiting on the layers of its save stream.
    const inspected = await runCli(['inspect', 'docker-daemon:fixtures/built:v1', '--config'], { env: { DOCKER_HOST: dockerd.engine.host } });
    assert.equal(inspected.code, 0, inspected.stderr);
    assert.deepEqual((JSON.parse(inspected.stdout) as { rootfs: { diff_ids: string[] } }).rootfs.diff_ids, original[0]!.RootFS.Layers);
    const events = await pushAll({ source: 'docker-daemon:fixtures/built:v1', destination: `${registry.host}/s1/built:v1`, format: 'schema1', signKey: daemonKey });
    const [manifest] = ofType(events, 'manifest');
    const sent = await parseSchema1(manifest!.bytes);
    assert.deepEqual(sent.signatures.map((s) => [s.keyId, s.valid]), [[keyJson.kid, true]]);
    // The ENV and LABEL steps are empty layers: schema 1 names Docker's empty tar for them, marked throwaway.
    const document = JSON.parse(Buffer.from(sent.payload).toString()) as { fsLayers: { blobSum: string }[]; history: { v1Compatibility: string }[] };
    const throwaway = document.history.filter((h) => (JSON.parse(h.v1Compatibility) as { throwaway?: boolean }).throwaway === true);
    assert.ok(throwaway.length >= 2, `throwaway entries: ${throwaway.length}`);
    assert.ok(document.fsLayers.some((l) => l.blobSum === 'sha256:a3ed95caeb02ffe68cdd9fd84406680ae93d633cb16422d00e8a7c22955b46d4'));

    // containers/image writes the same history for Docker's own image, throwaway entries and all. It converts the
    // schema 2 image rxpush pushed, so both name the layers as rxpush compressed them.
    await pushAll({ source: 'docker-daemon:fixtures/built:v1', destination: `${registry.host}/s1/built:v2`, format: 'docker' });
    await skopeoCopy(`${registry.host}/s1/built:v2`, `${registry.host}/s1/built:skopeo`, { format: 'v2s1' });
    assert.deepEqual(await schema1Content(client, 's1/built', 'v1'), await schema1Content(client, 's1/built', 'skopeo'));

    await dockerd.engine.docker(['rmi', '-f', original[0]!.Id]);
    const ref = `${registry.host}/s1/built:v1`;
    await dockerd.engine.docker(['pull', ref]);
    const pulled = JSON.parse((await dockerd.engine.docker(['image', 'inspect', ref])).stdout) as { RootFS: { Layers: string[] }; Config: { Env: string[]; Cmd: string[] } }[];
    const shown = await runCli(['inspect', ref, '--config']);
    assert.equal(shown.code, 0, shown.stderr);
    assert.deepEqual((JSON.parse(shown.stdout) as { config: { Cmd: string[] } }).config.Cmd, ['/b.txt'], "a schema 1 image's config is its top v1Compatibility");
    assert.deepEqual(pulled[0]!.RootFS.Layers, original[0]!.RootFS.Layers);
    assert.ok(pulled[0]!.Config.Env.includes('GREETING=hello & <welcome>'));
    assert.deepEqual(pulled[0]!.Config.Cmd, ['/b.txt']);
  });
});
