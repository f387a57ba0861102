/**
 * cosign signatures for today's registries, end to end through the CLI: rxpush keygen, push --sign-key,
 * the `.sig` manifest checked field by field against cosign's signature spec and its signature verified by
 * openssl (an independent implementation), rxpush verify's answers, inspect, and every bad key refused
 * before anything is pushed.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { generateKeyPairSync } from 'node:crypto';
import { readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { before, describe, it } from 'node:test';
import { promisify } from 'node:util';

import { MediaType, type Descriptor, type Digest } from '@rxpush/core';
import { parseSigningKey } from '@rxpush/manifest-signer';

import { makeOciLayout, type OciLayoutFixture } from '../tools/fixtures.ts';
import { addIndex } from '../packages/graph-reader/test/layouts.ts';
import { assertOneLineError } from './helpers/assert-cli.ts';
import { startFaultProxy } from './helpers/fault-proxy.ts';
import { ofType, pushAll } from './helpers/push-events.ts';
import { useRegistry } from './helpers/registry-suite.ts';
import { runCli } from './helpers/run-cli.ts';
import { skopeoCopy } from './helpers/skopeo.ts';

const execFileAsync = promisify(execFile);
const SIG_ACCEPT = [MediaType.ociManifest];

interface SigManifest {
  schemaVersion: number;
  mediaType: string;
  config: Descriptor;
  layers: Descriptor[];
}

describe('cosign signatures, rxpush keygen, verify and inspect', () => {
  const suite = useRegistry('cosign');
  let other: OciLayoutFixture;
  let key: string;
  let key2: string;
  let signedPush: Awaited<ReturnType<typeof runCli>>;

  async function blobBytes(repository: string, digest: Digest): Promise<Buffer> {
    const chunks: Buffer[] = [];
    for await (const chunk of await suite.client.getBlob(repository, digest)) chunks.push(chunk as Buffer);
    return Buffer.concat(chunks);
  }

  async function sigManifest(repository: string, digest: string): Promise<{ digest: Digest; document: SigManifest }> {
    const stored = await suite.client.getManifest(repository, `${digest.replace(':', '-')}.sig`, { accept: SIG_ACCEPT });
    return { digest: stored.digest, document: JSON.parse(Buffer.from(stored.bytes).toString()) as SigManifest };
  }

  /** Copies a manifest (its blobs mounted) from one repository to another under `tag`, byte for byte. */
  async function copyManifest(from: string, to: string, reference: string, tag: string): Promise<void> {
    const stored = await suite.client.getManifest(from, reference, { accept: [MediaType.ociManifest] });
    const document = JSON.parse(Buffer.from(stored.bytes).toString()) as SigManifest;
    for (const blob of [document.config, ...document.layers]) await suite.client.startUpload(to, { mount: { digest: blob.digest, from } });
    await suite.client.putManifest(to, tag, stored);
  }

  const cli = (args: string[], env: Record<string, string> = {}, input?: string) => runCli(args, { env, ...(input !== undefined && { input }) });

  before(async () => {
    other = await makeOciLayout(join(suite.work, 'other'), { images: [{ tags: ['latest'], layers: [{ files: 1, fileSize: 100, seed: 'other' }] }] });
    key = join(suite.work, 'rxpush.key');
    key2 = join(suite.work, 'second.key');
    for (const file of [key, key2]) assert.equal((await cli(['keygen', '--out', file])).code, 0);
    // The signed push most tests look at.
    signedPush = await cli(['push', `oci:${suite.layout.dir}:latest`, `${suite.registry.host}/cosign/app:1.0`, '--sign-key', key, '--progress', 'plain']);
  });

  it('keygen encrypts the key with a passphrase from stdin or RXPUSH_KEY_PASSWORD, which push then needs', async () => {
    const file = join(suite.work, 'encrypted.key');
    const made = await cli(['keygen', '--out', file, '--key-password-stdin'], {}, 'pass phrase\n');
    assert.equal(made.code, 0, made.stderr);
    assert.match(made.stdout, /^wrote .*encrypted\.key \(private key, encrypted with the passphrase\) and .*encrypted\.key\.pub; key ID /);
    assert.match(await readFile(file, 'utf8'), /^-----BEGIN ENCRYPTED PRIVATE KEY-----\n/);
    // openssl reads it with the passphrase (the trailing line break of stdin is not part of it), and not without.
    await execFileAsync('openssl', ['pkey', '-in', file, '-passin', 'pass:pass phrase', '-noout']);
    await assert.rejects(execFileAsync('openssl', ['pkey', '-in', file, '-passin', 'pass:other', '-noout']));

    const destination = `${suite.registry.host}/cosign/encrypted:1.0`;
    assertOneLineError(await cli(['push', `oci:${suite.layout.dir}:latest`, destination, '--sign-key', file, '-q']), /encrypted\.key is encrypted; give its passphrase in RXPUSH_KEY_PASSWORD or with --key-password-stdin$/);
    const pushed = await cli(['push', `oci:${suite.layout.dir}:latest`, destination, '--sign-key', file, '-q'], { RXPUSH_KEY_PASSWORD: 'pass phrase' });
    assert.equal(pushed.code, 0, pushed.stderr);
    assert.equal((await cli(['verify', destination, '--key', `${file}.pub`])).code, 0);

    const fromEnv = join(suite.work, 'env-encrypted.key');
    assert.equal((await cli(['keygen', '--out', fromEnv], { RXPUSH_KEY_PASSWORD: 'from env' })).code, 0);
    await execFileAsync('openssl', ['pkey', '-in', fromEnv, '-passin', 'pass:from env', '-noout']);
    assertOneLineError(await cli(['keygen', '--out', join(suite.work, 'empty.key'), '--key-password-stdin'], {}, ''), /--key-password-stdin read an empty password from stdin/, 2);
    await assert.rejects(stat(join(suite.work, 'empty.key')), { code: 'ENOENT' });
  });

  it('keygen writes an ECDSA P-256 PKCS#8 key with mode 0600 and FILE.pub, and never overwrites without --force', async () => {
    const file = join(suite.work, 'made.key');
    const made = await cli(['keygen', '--out', file]);
    assert.equal(made.code, 0, made.stderr);
    assert.match(made.stdout, /^wrote .*made\.key \(private key: keep it secret\) and .*made\.key\.pub; key ID ([A-Z2-7]{4}:){11}[A-Z2-7]{4}\n$/);
    assert.equal((await stat(file)).mode & 0o777, 0o600);
    const pem = await readFile(file, 'utf8');
    assert.match(pem, /^-----BEGIN PRIVATE KEY-----\n/);
    assert.equal(parseSigningKey(pem).curve, 'P-256');
    assert.match(await readFile(`${file}.pub`, 'utf8'), /^-----BEGIN PUBLIC KEY-----\n/);

    assertOneLineError(await cli(['keygen', '--out', file]), /made\.key already exists; rxpush keygen never overwrites a key: choose another --out, or pass --force$/);
    assert.equal(await readFile(file, 'utf8'), pem);
    const forced = await cli(['keygen', '--out', file, '--force']);
    assert.equal(forced.code, 0, forced.stderr);
    assert.notEqual(await readFile(file, 'utf8'), pem);
    assertOneLineError(await cli(['keygen']), /^rxpush: keygen needs --out FILE, the private key file to write; see 'rxpush keygen --help'$/, 2);
    assertOneLineError(await cli(['keygen', '--out', join(suite.work, 'no', 'such', 'dir', 'k')]), /cannot write .*k: its directory does not exist$/);
    // A directory is no key file, with --force or without; nor is a path through a file.
    for (const force of [[], ['--force']]) {
      assertOneLineError(await cli(['keygen', '--out', suite.work, ...force]), /cannot write \S+: it is a directory; --out names the private key file to write, e\.g\. \S+\/rxpush\.key$/);
    }
    assertOneLineError(await cli(['keygen', '--out', join(file, 'k')]), /cannot write \S+made\.key\/k: a part of its path is a file, not a directory$/);
  });

  it("pushes a signature cosign's spec describes, field by field, that openssl verifies over the payload", async () => {
    const pushed = signedPush;
    assert.equal(pushed.code, 0, pushed.stderr);
    const keyId = parseSigningKey(await readFile(key, 'utf8')).keyId;
    assert.match(pushed.stdout, new RegExp(`^1\\.0: signed with ${keyId}$`, 'm'));
    const lines = pushed.stdout.split('\n');
    assert.ok(lines.findIndex((l) => l.startsWith('1.0: signed')) < lines.findIndex((l) => l.startsWith('1.0: digest:')), 'signed before the digest line');
    const digest = suite.layout.images[0]!.manifestDigest;

    // Storage: an OCI image manifest under the tag sha256-<hex>.sig in the same repository.
    const { document } = await sigManifest('cosign/app', digest);
    assert.equal(document.schemaVersion, 2);
    assert.equal(document.mediaType, MediaType.ociManifest);
    assert.equal(document.config.mediaType, MediaType.ociConfig);
    assert.equal(document.layers.length, 1);
    const [layer] = document.layers;
    // Payload and mediaType: the payload is a blob, named by a layer descriptor of the simple-signing type.
    assert.equal(layer!.mediaType, 'application/vnd.dev.cosign.simplesigning.v1+json');
    const payload = await blobBytes('cosign/app', layer!.digest);
    assert.equal(layer!.size, payload.length);
    // Simple signing: critical.identity.docker-reference, critical.image.docker-manifest-digest, critical.type.
    const claims = JSON.parse(payload.toString()) as { critical: Record<string, Record<string, string> | string>; optional: unknown };
    assert.deepEqual(claims, {
      critical: { identity: { 'docker-reference': `${suite.registry.host}/cosign/app` }, image: { 'docker-manifest-digest': digest }, type: 'cosign container image signature' },
      optional: null,
    });
    // Signature: base64 in the layer annotation dev.cosignproject.cosign/signature, ECDSA over SHA-256, ASN.1 DER.
    const signature = layer!.annotations?.['dev.cosignproject.cosign/signature'];
    assert.match(signature ?? '', /^[A-Za-z0-9+/]+=*$/);
    const der = Buffer.from(signature!, 'base64');
    assert.equal(der[0], 0x30, 'an ASN.1 SEQUENCE');
    await writeFile(join(suite.work, 'payload.json'), payload);
    await writeFile(join(suite.work, 'signature.der'), der);
    const verified = await execFileAsync('openssl', ['dgst', '-sha256', '-verify', `${key}.pub`, '-signature', join(suite.work, 'signature.der'), join(suite.work, 'payload.json')]);
    assert.equal(verified.stdout.trim(), 'Verified OK');
    await assert.rejects(
      execFileAsync('openssl', ['dgst', '-sha256', '-verify', `${key2}.pub`, '-signature', join(suite.work, 'signature.der'), join(suite.work, 'payload.json')]),
      (error: { stdout?: string }) => /Verification failure/.test(error.stdout ?? ''),
    );
    // The config names the layers as its diff IDs (go-containerregistry's image of them).
    const config = JSON.parse((await blobBytes('cosign/app', document.config.digest)).toString()) as { rootfs: { diff_ids: string[] } };
    assert.deepEqual(config.rootfs.diff_ids, [layer!.digest]);
  });

  it('adds a second signature as another layer, keeping the first, as cosign does', async () => {
    const before = (await sigManifest('cosign/app', suite.layout.images[0]!.manifestDigest)).document.layers;
    const again = await cli(['push', `oci:${suite.layout.dir}:latest`, `${suite.registry.host}/cosign/app:1.0`, '--sign-key', key2, '--quiet']);
    assert.equal(again.code, 0, again.stderr);
    const after = (await sigManifest('cosign/app', suite.layout.images[0]!.manifestDigest)).document.layers;
    assert.equal(after.length, before.length + 1);
    assert.deepEqual(after[0], before[0]);
    assert.equal((await cli(['verify', `${suite.registry.host}/cosign/app:1.0`, '--key', `${key2}.pub`])).code, 0);
  });

  it('verify exits 0 for the right key and prints what it verified, as JSON too', async () => {
    const ok = await cli(['verify', `${suite.registry.host}/cosign/app:1.0`, '--key', `${key}.pub`]);
    assert.equal(ok.code, 0, ok.stderr);
    const keyId = parseSigningKey(await readFile(key, 'utf8')).keyId;
    assert.match(ok.stdout, new RegExp(`^${suite.registry.host}/cosign/app:1\\.0: ${suite.layout.images[0]!.manifestDigest} is signed by ${keyId} \\(cosign, sha256-[a-f0-9]{64}\\.sig\\)\n$`));
    const json = await cli(['verify', `${suite.registry.host}/cosign/app@${suite.layout.images[0]!.manifestDigest}`, '--key', `${key}.pub`, '--output', 'json']);
    assert.equal(json.code, 0, json.stderr);
    const result = JSON.parse(json.stdout) as { digest: string; repository: string; keyId: string; signatures: { scheme: string; identity: string }[] };
    assert.equal(result.digest, suite.layout.images[0]!.manifestDigest);
    assert.equal(result.repository, 'cosign/app');
    assert.equal(result.keyId, keyId);
    assert.deepEqual(result.signatures.map((s) => [s.scheme, s.identity]), [['cosign', `${suite.registry.host}/cosign/app`]]);
    // The private key file works as the key to verify with, too.
    assert.equal((await cli(['verify', `${suite.registry.host}/cosign/app:1.0`, '--key', key])).code, 0);
  });

  it('verify exits 1 naming what failed: another key, another digest, another repository, no signature', async () => {
    await cli(['push', `oci:${suite.layout.dir}:latest`, `${suite.registry.host}/cosign/one:1.0`, '--sign-key', key, '--quiet']);
    assertOneLineError(await cli(['verify', `${suite.registry.host}/cosign/one:1.0`, '--key', `${key2}.pub`]), /^rxpush: no signature of .*cosign\/one@sha256:[a-f0-9]{64} is by the key [A-Z2-7:]+ \(.*second\.key\.pub\): /);

    // A re-tagged other image: the first image's .sig put where the other image's would be.
    await cli(['push', `oci:${other.dir}:latest`, `${suite.registry.host}/cosign/one:other`, '--quiet']);
    await copyManifest('cosign/one', 'cosign/one', `${suite.layout.images[0]!.manifestDigest.replace(':', '-')}.sig`, `${other.images[0]!.manifestDigest.replace(':', '-')}.sig`);
    assertOneLineError(
      await cli(['verify', `${suite.registry.host}/cosign/one:other`, '--key', `${key}.pub`]),
      new RegExp(`no signature by [A-Z2-7:]+ covers .*cosign/one@${other.images[0]!.manifestDigest}: .* covers ${suite.layout.images[0]!.manifestDigest}, another image; the signature was copied or the tag re-pointed$`),
    );

    // Another repository: the image and its signature copied elsewhere still name where they were signed.
    const sigTag = `${suite.layout.images[0]!.manifestDigest.replace(':', '-')}.sig`;
    await copyManifest('cosign/one', 'cosign/copied', '1.0', '1.0');
    await copyManifest('cosign/one', 'cosign/copied', sigTag, sigTag);
    assertOneLineError(
      await cli(['verify', `${suite.registry.host}/cosign/copied:1.0`, '--key', `${key}.pub`]),
      new RegExp(`covers ${suite.registry.host}/cosign/one, not ${suite.registry.host}/cosign/copied; the image was copied from elsewhere$`),
    );

    // A deleted .sig: nothing signs the image any more.
    const sig = await sigManifest('cosign/one', suite.layout.images[0]!.manifestDigest);
    const deleted = await fetch(`${suite.registry.url}/v2/cosign/one/manifests/${sig.digest}`, { method: 'DELETE' });
    assert.equal(deleted.status, 202);
    assertOneLineError(await cli(['verify', `${suite.registry.host}/cosign/one:1.0`, '--key', `${key}.pub`]), new RegExp(`has no signature: there is no cosign/one:${sigTag} \\(and no schema 1 JWS\\); push it with --sign-key$`));
    // Something else under the .sig tag (here the image's own manifest): no layer of it is a signature.
    await copyManifest('cosign/one', 'cosign/one', '1.0', sigTag);
    assertOneLineError(
      await cli(['verify', `${suite.registry.host}/cosign/one:1.0`, '--key', `${key}.pub`]),
      new RegExp(`has no signature: cosign/one:${sigTag} is there, but its manifest holds no cosign signature \\(no layer with a dev\\.cosignproject\\.cosign/signature annotation\\); sign the image again with --sign-key$`),
    );
    assertOneLineError(await cli(['verify', `${suite.registry.host}/cosign/one:1.0`]), /^rxpush: verify needs --key FILE, .*; see 'rxpush verify --help'$/, 2);
  });

  it('signs an index, and with --sign-children each of its images too', async () => {
    const layout = await makeOciLayout(join(suite.work, 'index'), {
      images: [
        { tags: ['amd64'], layers: [{ files: 1, fileSize: 10, seed: 'ix1' }] },
        { tags: ['arm64'], layers: [{ files: 1, fileSize: 10, seed: 'ix2' }] },
      ],
    });
    const index = await addIndex(layout, 'multi');
    const signKey = parseSigningKey(await readFile(key, 'utf8'));
    const only = await pushAll({ source: `oci:${layout.dir}:multi`, destination: `${suite.registry.host}/cosign/index:only`, signKey });
    assert.deepEqual(ofType(only, 'signed-manifest').map((e) => e.digest), [index.digest]);
    assert.equal(ofType(only, 'signed-manifest')[0]?.referrer, undefined, 'the reference registry keeps no referrers: the tag scheme only');
    assert.equal(await suite.client.hasManifest('cosign/index', `${layout.images[0]!.manifestDigest.replace(':', '-')}.sig`), undefined);

    const all = await pushAll({ source: `oci:${layout.dir}:multi`, destination: `${suite.registry.host}/cosign/index:all`, signKey, signChildren: true });
    assert.deepEqual(new Set(ofType(all, 'signed-manifest').map((e) => e.digest)), new Set([index.digest, ...layout.images.map((i) => i.manifestDigest)]));
    for (const digest of [index.digest, ...layout.images.map((i) => i.manifestDigest)]) {
      assert.equal((await cli(['verify', `${suite.registry.host}/cosign/index@${digest}`, '--key', `${key}.pub`])).code, 0, digest);
    }

    // inspect shows an index as it is stored, and has no config to show for it.
    const shown = await cli(['inspect', `${suite.registry.host}/cosign/index:all`]);
    assert.equal(shown.code, 0, shown.stderr);
    const document = JSON.parse(shown.stdout) as { digest: string; manifest: { manifests: unknown[] }; config?: unknown };
    assert.equal(document.digest, index.digest);
    assert.equal(document.manifest.manifests.length, 2);
    assert.equal(document.config, undefined);
    assertOneLineError(await cli(['inspect', `${suite.registry.host}/cosign/index:all`, '--config']), /cosign\/index:all is an index, which has no config; pick one of its images with --platform \(it offers linux\/amd64, linux\/arm64\/v8\)$/);
  });

  it('inspect --platform shows one image of an index, from a layout and from the registry, and names what an index offers', async () => {
    const layout = await makeOciLayout(join(suite.work, 'inspect-index'), {
      images: [
        { tags: ['amd64'], layers: [{ files: 1, fileSize: 10, seed: 'ii1' }] },
        { tags: ['arm64'], layers: [{ files: 1, fileSize: 10, seed: 'ii2' }] },
      ],
    });
    await addIndex(layout, 'multi');
    const arm = layout.images[1]!;
    const remote = `${suite.registry.host}/cosign/inspect-index:multi`;
    assert.equal((await cli(['push', `oci:${layout.dir}:multi`, remote, '--quiet'])).code, 0);

    for (const ref of [`oci:${layout.dir}:multi`, remote]) {
      const shown = await cli(['inspect', ref, '--platform', 'linux/arm64']);
      assert.equal(shown.code, 0, shown.stderr);
      const document = JSON.parse(shown.stdout) as { digest: string; mediaType: string; manifest: { config: { digest: string } }; config: { rootfs: { diff_ids: string[] } } };
      assert.equal(document.digest, arm.manifestDigest, ref);
      assert.equal(document.manifest.config.digest, arm.configDigest);
      assert.deepEqual(document.config.rootfs.diff_ids, arm.diffIds);
      const raw = await cli(['inspect', ref, '--platform', 'linux/arm64/v8', '--raw']);
      assert.equal(raw.code, 0, raw.stderr);
      assert.equal(raw.stdout, (await readFile(join(layout.dir, 'blobs', 'sha256', arm.manifestDigest.slice(7)), 'utf8')));
    }
    assertOneLineError(await cli(['inspect', remote, '--config']), /cosign\/inspect-index:multi is an index, which has no config; pick one of its images with --platform \(it offers linux\/amd64, linux\/arm64\/v8\)$/);
    assertOneLineError(await cli(['inspect', `oci:${layout.dir}:multi`, '--config']), /:multi is an index, which has no config; pick one of its images with --platform \(it offers linux\/amd64, linux\/arm64\/v8\)$/);
    assertOneLineError(
      await cli(['inspect', remote, '--platform', 'linux/s390x']),
      new RegExp(`^rxpush: \\S+/cosign/inspect-index:multi has no image for linux/s390x; its index offers linux/amd64, linux/arm64/v8$`),
    );
    assertOneLineError(await cli(['inspect', remote, '--platform', 'arm64']), /^rxpush: --platform "arm64" is not os\/arch\[\/variant\]/, 2);
    // A single image is shown only when its config is of the platform asked for, as copy --platform has it.
    assertOneLineError(
      await cli(['inspect', `${suite.registry.host}/cosign/inspect-index@${arm.manifestDigest}`, '--platform', 'linux/arm64', '--raw']),
      /is one image, for linux\/amd64, not for linux\/arm64 \(--platform\); drop --platform to take it as it is$/,
    );
    assert.equal((await cli(['inspect', `${suite.registry.host}/cosign/inspect-index@${arm.manifestDigest}`, '--platform', 'linux/amd64'])).code, 0);

    // An index whose entry gives another size than the registry's manifest has: its image is not shown.
    const stored = await suite.client.getManifest('cosign/inspect-index', 'multi', { accept: [MediaType.ociIndex] });
    const damaged = JSON.parse(Buffer.from(stored.bytes).toString()) as { manifests: { size: number }[] };
    damaged.manifests[1]!.size += 1;
    await suite.client.putManifest('cosign/inspect-index', 'damaged', { bytes: Buffer.from(JSON.stringify(damaged)), mediaType: MediaType.ociIndex });
    assertOneLineError(
      await cli(['inspect', `${suite.registry.host}/cosign/inspect-index:damaged`, '--platform', 'linux/arm64']),
      new RegExp(`the index of \\S+:damaged says its linux/arm64 image ${arm.manifestDigest} is ${arm.manifestSize + 1} bytes, but the registry's is ${arm.manifestSize}; the index is damaged there$`),
    );
  });

  it('says the image IS pushed but NOT signed, with its digest, when the signature PUT fails', async () => {
    const proxy = await startFaultProxy({ target: suite.registry.host });
    try {
      proxy.addFault({ method: 'PUT', path: /\/manifests\/sha256-[a-f0-9]{64}\.sig$/, fault: { kind: 'status', status: 400, body: '{"errors":[{"code":"DENIED","message":"no signatures here"}]}' } });
      const result = await cli(['push', `oci:${suite.layout.dir}:latest`, `${proxy.host}/cosign/unsigned:1.0`, '--sign-key', key, '--quiet']);
      assertOneLineError(result, new RegExp(`^rxpush: the image IS pushed \\(${suite.layout.images[0]!.manifestDigest}\\) but NOT signed: pushing its signature to cosign/unsigned:sha256-[a-f0-9]{64}\\.sig failed: .*400.*; sign it again with the same command$`));
      assert.equal((await suite.client.hasManifest('cosign/unsigned', '1.0'))?.digest, suite.layout.images[0]!.manifestDigest);
    } finally {
      await proxy.close();
    }
  });

  it('refuses a missing, locked, DSA or Ed25519 key before anything is pushed, and takes a passphrase from the environment or stdin', async () => {
    const dest = `${suite.registry.host}/cosign/badkey:1.0`;
    const ec = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const encrypted = join(suite.work, 'encrypted.pem');
    await writeFile(encrypted, ec.privateKey.export({ format: 'pem', type: 'pkcs8', cipher: 'aes-256-cbc', passphrase: 'sesame' }));
    const dsa = join(suite.work, 'dsa.pem');
    await writeFile(dsa, generateKeyPairSync('dsa', { modulusLength: 2048, divisorLength: 256 }).privateKey.export({ format: 'pem', type: 'pkcs8' }));
    const ed = join(suite.work, 'ed.pem');
    await writeFile(ed, generateKeyPairSync('ed25519').privateKey.export({ format: 'pem', type: 'pkcs8' }));
    const garbage = join(suite.work, 'garbage.pem');
    await writeFile(garbage, 'not a key\n');
    const source = `oci:${suite.layout.dir}:latest`;

    assertOneLineError(await cli(['push', source, dest, '--sign-key', join(suite.work, 'missing.pem')]), /cannot read the key .*missing\.pem: it does not exist; give the key's file \(rxpush keygen --out FILE makes one\)$/);
    assertOneLineError(await cli(['push', source, dest, '--sign-key', garbage]), /garbage\.pem is not a key rxpush reads/);
    assertOneLineError(await cli(['push', source, dest, '--sign-key', encrypted]), /encrypted\.pem is encrypted; give its passphrase in RXPUSH_KEY_PASSWORD or with --key-password-stdin$/);
    assertOneLineError(await cli(['push', source, dest, '--sign-key', encrypted], { RXPUSH_KEY_PASSWORD: 'wrong' }), /cannot decrypt .*encrypted\.pem: wrong passphrase\?/);
    assertOneLineError(await cli(['push', source, dest, '--sign-key', dsa]), /dsa\.pem is a DSA key, which rxpush cannot sign with/);
    assertOneLineError(await cli(['push', source, dest, '--sign-key', ed]), /ed\.pem is an Ed25519 key, which cosign signatures .* cannot use/);
    assertOneLineError(await cli(['push', source, dest, '--sign-key', `${key}.pub`]), /holds a public key; signing needs the private key/);
    assert.equal(await suite.client.hasManifest('cosign/badkey', '1.0'), undefined, 'nothing was pushed');

    const fromEnv = await cli(['push', source, dest, '--sign-key', encrypted, '--quiet'], { RXPUSH_KEY_PASSWORD: 'sesame' });
    assert.equal(fromEnv.code, 0, fromEnv.stderr);
    const fromStdin = await cli(['push', source, `${suite.registry.host}/cosign/badkey:2.0`, '--sign-key', encrypted, '--key-password-stdin', '--quiet'], {}, 'sesame\n');
    assert.equal(fromStdin.code, 0, fromStdin.stderr);
  });

  it("signs with each key flavour: SEC1 and PKCS#1 PEM, a JWK, and an RSA key openssl verifies", async () => {
    const flavours: [string, string][] = [
      ['sec1.pem', generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey.export({ format: 'pem', type: 'sec1' }).toString()],
      ['pkcs1.pem', generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey.export({ format: 'pem', type: 'pkcs1' }).toString()],
      ['key.jwk', JSON.stringify(generateKeyPairSync('ec', { namedCurve: 'P-384' }).privateKey.export({ format: 'jwk' }))],
    ];
    for (const [name, text] of flavours) {
      const file = join(suite.work, name);
      await writeFile(file, text);
      const tag = name.replace(/\W/g, '-');
      const pushed = await cli(['push', `oci:${suite.layout.dir}:latest`, `${suite.registry.host}/cosign/flavours:${tag}`, '--sign-key', file, '--quiet']);
      assert.equal(pushed.code, 0, `${name}: ${pushed.stderr}`);
      assert.equal((await cli(['verify', `${suite.registry.host}/cosign/flavours:${tag}`, '--key', file])).code, 0, name);
    }
    // openssl checks the RSA signature (PKCS#1 v1.5 over SHA-256) too.
    const rsaKey = parseSigningKey(flavours[1]![1]);
    await writeFile(join(suite.work, 'rsa.pub'), rsaKey.publicKey.export({ format: 'pem', type: 'spki' }));
    const { document } = await sigManifest('cosign/flavours', suite.layout.images[0]!.manifestDigest);
    const layers = document.layers;
    let verifiedByOpenssl = 0;
    for (const layer of layers) {
      await writeFile(join(suite.work, 'p.json'), await blobBytes('cosign/flavours', layer.digest));
      await writeFile(join(suite.work, 's.bin'), Buffer.from(layer.annotations!['dev.cosignproject.cosign/signature']!, 'base64'));
      const checked = await execFileAsync('openssl', ['dgst', '-sha256', '-verify', join(suite.work, 'rsa.pub'), '-signature', join(suite.work, 's.bin'), join(suite.work, 'p.json')]).catch(() => undefined);
      if (checked?.stdout.trim() === 'Verified OK') verifiedByOpenssl++;
    }
    assert.equal(verifiedByOpenssl, 1);
  });

  it('inspect prints the manifest and config of a layout and of the pushed image, --raw the stored bytes, --config the config', async () => {
    const local = await cli(['inspect', `oci:${suite.layout.dir}:latest`]);
    assert.equal(local.code, 0, local.stderr);
    const shown = JSON.parse(local.stdout) as { digest: string; mediaType: string; manifest: { layers: unknown[] }; config: { architecture: string } };
    assert.equal(shown.digest, suite.layout.images[0]!.manifestDigest);
    assert.equal(shown.mediaType, MediaType.ociManifest);
    assert.equal(shown.manifest.layers.length, suite.layout.images[0]!.layerDigests.length);
    assert.equal(shown.config.architecture, 'amd64');

    assert.equal((await cli(['push', `oci:${suite.layout.dir}:latest`, `${suite.registry.host}/cosign/inspect:1.0`, '--quiet'])).code, 0);
    const raw = await cli(['inspect', `${suite.registry.host}/cosign/inspect:1.0`, '--raw']);
    assert.equal(raw.code, 0, raw.stderr);
    const stored = await suite.client.getManifest('cosign/inspect', '1.0');
    assert.equal(raw.stdout, Buffer.from(stored.bytes).toString());
    const config = await cli(['inspect', `docker://${suite.registry.host}/cosign/inspect:1.0`, '--config']);
    assert.equal(config.code, 0, config.stderr);
    assert.deepEqual(JSON.parse(config.stdout), JSON.parse((await blobBytes('cosign/inspect', suite.layout.images[0]!.configDigest as Digest)).toString()));

    // A docker save archive stores no manifest: inspect shows the config, and says so for --raw.
    const archive = join(suite.work, 'saved.tar');
    await skopeoCopy(`oci:${suite.layout.dir}:latest`, `docker-archive:${archive}:saved/app:1.0`);
    const saved = await cli(['inspect', `docker-archive:${archive}`]);
    assert.equal(saved.code, 0, saved.stderr);
    const savedShown = JSON.parse(saved.stdout) as { manifest: unknown; config: { rootfs: { diff_ids: string[] } } };
    assert.equal(savedShown.manifest, null);
    assert.deepEqual(savedShown.config.rootfs.diff_ids, suite.layout.images[0]!.diffIds);
    assertOneLineError(await cli(['inspect', `docker-archive:${archive}`, '--raw']), /saved\.tar stores no manifest \(rxpush builds one as it pushes\); inspect it without --raw$/);
    assertOneLineError(
      await cli(['inspect', `${suite.registry.host}/cosign/nothing:1.0`]),
      /^rxpush: no image \S+\/cosign\/nothing:1\.0 in the registry \(GET \S+\/cosign\/nothing\/manifests\/1\.0 → 404 [^)]*\); check the repository and tag$/,
    );
    assertOneLineError(await cli(['inspect']), /^rxpush: missing SOURCE or DEST; see 'rxpush inspect --help'$/, 2);
  });
});
