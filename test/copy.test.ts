/**
 * `rxpush copy` (and `rxpush push docker://…`) between two reference registries: one plain, one with TLS
 * and htpasswd. skopeo puts the images in and reads the copies back; the registries' own access logs
 * show what was sent. Digests must be the source's.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdir, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';

import { makeOciLayout, type OciLayoutFixture } from '../tools/fixtures.ts';
import { startRegistry, type RunningRegistry } from '../tools/registry.ts';
import { assertOneLineError } from './helpers/assert-cli.ts';
import { startFaultProxy } from './helpers/fault-proxy.ts';
import { homeIn, runCli } from './helpers/run-cli.ts';
import { runSkopeo, skopeoCopy, skopeoInspectRaw } from './helpers/skopeo.ts';

const sha256 = (bytes: Buffer): string => `sha256:${createHash('sha256').update(bytes).digest('hex')}`;
const CREDS = 'alice:s3cret';

/** The requests a registry logged after `from` characters of its log, as "METHOD PATH". */
async function requestsSince(registry: RunningRegistry, from: number): Promise<string[]> {
  const log = (await readFile(registry.logFile, 'utf8')).slice(from);
  return [...log.matchAll(/"(GET|HEAD|POST|PUT|PATCH|DELETE) (\S+) HTTP/g)].map((match) => `${match[1]} ${match[2]}`);
}

async function logLength(registry: RunningRegistry): Promise<number> {
  return (await readFile(registry.logFile, 'utf8')).length;
}

/** Where the reference registry keeps a blob's bytes. */
function blobData(registry: RunningRegistry, digest: string): string {
  const hex = digest.slice('sha256:'.length);
  return join(registry.storageDir, 'docker', 'registry', 'v2', 'blobs', 'sha256', hex.slice(0, 2), hex, 'data');
}

/** Adds an OCI index of the layout's first two images (as amd64 and arm64/v8) to the layout, as ref `multi`. */
async function addIndex(layout: OciLayoutFixture): Promise<{ digest: string; children: string[] }> {
  const [amd, arm] = layout.images;
  assert.ok(amd && arm);
  const index = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: 'application/vnd.oci.image.index.v1+json',
      manifests: [
        { mediaType: amd.manifestMediaType, digest: amd.manifestDigest, size: amd.manifestSize, platform: { os: 'linux', architecture: 'amd64' } },
        { mediaType: arm.manifestMediaType, digest: arm.manifestDigest, size: arm.manifestSize, platform: { os: 'linux', architecture: 'arm64', variant: 'v8' } },
      ],
    }),
  );
  const digest = sha256(index);
  await writeFile(join(layout.dir, 'blobs', 'sha256', digest.slice(7)), index);
  const indexJson = JSON.parse(await readFile(join(layout.dir, 'index.json'), 'utf8')) as { manifests: object[] };
  indexJson.manifests.push({ mediaType: 'application/vnd.oci.image.index.v1+json', digest, size: index.length, annotations: { 'org.opencontainers.image.ref.name': 'multi' } });
  await writeFile(join(layout.dir, 'index.json'), JSON.stringify(indexJson));
  return { digest, children: [amd.manifestDigest, arm.manifestDigest] };
}

describe('rxpush copy between two reference registries', () => {
  let work: string;
  let plain: RunningRegistry;
  let secure: RunningRegistry;
  let layout: OciLayoutFixture;
  let multi: { digest: string; children: string[] };
  let env: Record<string, string>;
  /** What rxpush needs for the TLS + htpasswd registry as a destination. */
  let toSecure: string[];
  const onSecure = { creds: CREDS };

  before(async () => {
    work = await mkdtemp(join(tmpdir(), 'rxpush-copy-'));
    env = homeIn(work);
    [plain, secure] = await Promise.all([startRegistry(), startRegistry({ tls: true, htpasswd: { alice: 's3cret' } })]);
    toSecure = ['--creds', CREDS, '--ca-file', secure.caFile ?? ''];
    layout = await makeOciLayout(join(work, 'layout'), {
      images: [
        { tags: ['app'], layers: [{ files: 2, fileSize: 300_000, seed: 'copy-base' }, { files: 1, fileSize: 50_000, seed: 'copy-app' }] },
        { tags: ['arm'], layers: [{ files: 2, fileSize: 300_000, seed: 'copy-base' }, { files: 1, fileSize: 40_000, seed: 'copy-arm' }] },
        { tags: ['corrupt'], layers: [{ files: 1, fileSize: 30_000, seed: 'copy-corrupt' }] },
        { tags: ['gone'], layers: [{ files: 1, fileSize: 30_000, seed: 'copy-gone' }] },
      ],
    });
    multi = await addIndex(layout);
    await skopeoCopy(`oci:${layout.dir}:app`, `${plain.host}/src/app:1`);
    await skopeoCopy(`oci:${layout.dir}:app`, `${secure.host}/src/app:1`, onSecure);
    await skopeoCopy(`oci:${layout.dir}:corrupt`, `${plain.host}/src/corrupt:1`);
    await skopeoCopy(`oci:${layout.dir}:gone`, `${plain.host}/src/gone:1`);
    await runSkopeo(['copy', '--quiet', '--all', '--dest-tls-verify=false', `oci:${layout.dir}:multi`, `docker://${plain.host}/src/multi:1`]);
  });

  after(async () => {
    await Promise.all([plain?.stop(), secure?.stop()]);
    await rm(work, { recursive: true, force: true });
  });

  it('copies from a plain registry to a TLS + htpasswd one, and the manifest keeps its digest', async () => {
    const result = await runCli(['copy', `docker://${plain.host}/src/app:1`, `${secure.host}/dst/app:1`, ...toSecure, '--progress', 'plain'], { env });
    assert.equal(result.code, 0, result.stderr);
    assert.match(result.stdout, /: Pushed$/m);
    const source = await skopeoInspectRaw(`${plain.host}/src/app:1`);
    const copied = await skopeoInspectRaw(`${secure.host}/dst/app:1`, onSecure);
    assert.equal(sha256(copied.bytes), sha256(source.bytes));
    assert.equal(sha256(source.bytes), layout.images[0]?.manifestDigest);
  });

  it('copies from the TLS + htpasswd registry with the source\'s own credentials and CA', async () => {
    const result = await runCli(['copy', `${secure.host}/src/app:1`, `${plain.host}/from-secure/app:1`, '--src-creds', CREDS, '--src-ca-file', secure.caFile ?? '', '-q'], { env });
    assert.equal(result.code, 0, result.stderr);
    const copied = await skopeoInspectRaw(`${plain.host}/from-secure/app:1`);
    assert.equal(sha256(copied.bytes), layout.images[0]?.manifestDigest);
  });

  it('finds the source registry\'s credentials in Docker\'s config.json by its host, and in --src-authfile', async () => {
    const config = JSON.stringify({ auths: { [secure.host]: { auth: Buffer.from(CREDS).toString('base64') } } });
    const dockerConfig = join(work, 'docker-with-secure');
    await mkdir(dockerConfig, { recursive: true });
    await writeFile(join(dockerConfig, 'config.json'), config);
    const fromConfig = await runCli(['copy', `${secure.host}/src/app:1`, `${plain.host}/from-config/app:1`, '--src-ca-file', secure.caFile ?? '', '-q'], { env: { ...env, DOCKER_CONFIG: dockerConfig } });
    assert.equal(fromConfig.code, 0, fromConfig.stderr);
    const authfile = join(work, 'src-auth.json');
    await writeFile(authfile, config);
    const fromAuthfile = await runCli(['copy', `${secure.host}/src/app:1`, `${plain.host}/from-authfile/app:1`, '--src-authfile', authfile, '--src-ca-file', secure.caFile ?? '', '-q'], { env });
    assert.equal(fromAuthfile.code, 0, fromAuthfile.stderr);
  });

  it('never gives the destination\'s credentials to the source registry, and tags nothing when the source refuses', async () => {
    const result = await runCli(['copy', `docker://${secure.host}/src/app:1`, `${plain.host}/refused/app:1`, '--creds', CREDS, '--src-ca-file', secure.caFile ?? ''], { env });
    assertOneLineError(
      result,
      new RegExp(
        `^rxpush: docker://${secure.host}/src/app:1: ${secure.host} does not let rxpush pull src/app \\(GET https://${secure.host}/v2/src/app/manifests/1 → 401 UNAUTHORIZED.*\\); the source registry needs its own credentials: --src-creds USER:PASS, --src-authfile PATH or docker login ${secure.host}$`,
      ),
    );
    await assert.rejects(skopeoInspectRaw(`${plain.host}/refused/app:1`), /manifest unknown|not found/i);
  });

  it('never gives the source\'s credentials to the destination registry', async () => {
    const result = await runCli(['copy', `docker://${plain.host}/src/app:1`, `${secure.host}/dst/unauthorized:1`, '--src-creds', CREDS, '--ca-file', secure.caFile ?? ''], { env });
    assert.equal(result.code, 1, result.stderr);
    assert.match(result.stderr, / → 401; the registry wants credentials; pass --creds USER:PASS/);
  });

  it('copies within one registry by mounting every blob: "Mounted from", and no blob upload in the access log', async () => {
    const logged = await logLength(plain);
    const result = await runCli(['copy', `docker://${plain.host}/src/app:1`, `${plain.host}/mounted/app:1`, '--progress', 'plain'], { env: { ...env, RXPUSH_CACHE_DIR: join(work, 'no-cache') } });
    assert.equal(result.code, 0, result.stderr);
    assert.equal([...result.stdout.matchAll(/: Mounted from src\/app$/gm)].length, 2, result.stdout);
    const requests = await requestsSince(plain, logged);
    const uploads = requests.filter((r) => /^(PATCH|PUT) \/v2\/mounted\/app\/blobs\/uploads\//.test(r));
    assert.deepEqual(uploads, [], 'no blob bytes sent');
    assert.ok(requests.some((r) => /^POST \/v2\/mounted\/app\/blobs\/uploads\/\?.*mount=/.test(r)), requests.join('\n'));
    assert.ok(!requests.some((r) => /^GET \/v2\/src\/app\/blobs\//.test(r)), 'no blob read from the source');
    const copied = await skopeoInspectRaw(`${plain.host}/mounted/app:1`);
    assert.equal(sha256(copied.bytes), layout.images[0]?.manifestDigest);
  });

  it('fetches no blob the destination already has', async () => {
    const logged = await logLength(plain);
    const result = await runCli(['copy', `docker://${plain.host}/src/app:1`, `${secure.host}/dst/app:again`, ...toSecure, '--progress', 'plain'], { env });
    assert.equal(result.code, 0, result.stderr);
    assert.equal([...result.stdout.matchAll(/: Layer already exists$/gm)].length, 2, result.stdout);
    assert.deepEqual((await requestsSince(plain, logged)).filter((r) => r.includes('/blobs/')), []);
  });

  it('copies a multi-platform index whole: every image, then the index, digests unchanged', async () => {
    const result = await runCli(['copy', `docker://${plain.host}/src/multi:1`, `${secure.host}/dst/multi:1`, ...toSecure, '-q'], { env });
    assert.equal(result.code, 0, result.stderr);
    const copied = await skopeoInspectRaw(`${secure.host}/dst/multi:1`, onSecure);
    assert.equal(sha256(copied.bytes), multi.digest);
    assert.deepEqual(
      copied.json.manifests.map((m: { digest: string }) => m.digest),
      multi.children,
    );
    // skopeo pulls every image of the index and checks every blob.
    const out = join(work, 'multi-out');
    await runSkopeo(['copy', '--quiet', '--all', `--src-creds=${CREDS}`, '--src-tls-verify=false', `docker://${secure.host}/dst/multi:1`, `oci:${out}:multi`]);
    assert.ok((await stat(join(out, 'index.json'))).isFile());
  });

  it('copies one image of an index with --platform, under the tag', async () => {
    const result = await runCli(['copy', `docker://${plain.host}/src/multi:1`, `${plain.host}/one/app:arm`, '--platform', 'linux/arm64', '-q'], { env });
    assert.equal(result.code, 0, result.stderr);
    const copied = await skopeoInspectRaw(`${plain.host}/one/app:arm`);
    assert.equal(sha256(copied.bytes), multi.children[1]);
  });

  it('pushes one image of an OCI layout\'s index with --platform, under the tag, and refuses a platform it lacks', async () => {
    const result = await runCli(['push', `oci:${layout.dir}:multi`, `${plain.host}/local/app:arm`, '--platform', 'linux/arm64', '-q'], { env });
    assert.equal(result.code, 0, result.stderr);
    const pushed = await skopeoInspectRaw(`${plain.host}/local/app:arm`);
    assert.equal(sha256(pushed.bytes), multi.children[1]);

    const missing = await runCli(['push', `oci:${layout.dir}:multi`, `${plain.host}/local/app:s390x`, '--platform', 'linux/s390x'], { env });
    assertOneLineError(missing, new RegExp(`^rxpush: oci:${layout.dir}:multi has no image for linux/s390x; its index ${multi.digest} offers linux/amd64, linux/arm64/v8$`));
    await assert.rejects(skopeoInspectRaw(`${plain.host}/local/app:s390x`), /manifest unknown|not found/i);
  });

  it('refuses --platform for a tag of one image of another platform, as docker pull does, and copies it when they agree', async () => {
    // The fixture's images are linux/amd64 in their configs; src/app:1 is one image, not an index.
    const other = await runCli(['copy', `docker://${plain.host}/src/app:1`, `${plain.host}/single/app:arm`, '--platform', 'linux/arm64'], { env });
    assertOneLineError(other, new RegExp(`^rxpush: docker://${plain.host}/src/app:1 is one image, for linux/amd64, not for linux/arm64 \\(--platform\\); drop --platform to take it as it is$`));
    await assert.rejects(skopeoInspectRaw(`${plain.host}/single/app:arm`), /manifest unknown|not found/i);
    const local = await runCli(['push', `oci:${layout.dir}:app`, `${plain.host}/single/app:arm`, '--platform', 'linux/arm64'], { env });
    assertOneLineError(local, new RegExp(`^rxpush: oci:${layout.dir}:app is one image, for linux/amd64, not for linux/arm64 \\(--platform\\)`));

    const same = await runCli(['copy', `docker://${plain.host}/src/app:1`, `${plain.host}/single/app:amd`, '--platform', 'linux/amd64', '-q'], { env });
    assert.equal(same.code, 0, same.stderr);
    assert.equal(sha256((await skopeoInspectRaw(`${plain.host}/single/app:amd`)).bytes), layout.images[0]?.manifestDigest);
  });

  it('skips verifying the source registry\'s certificate with --src-tls-verify=false', async () => {
    const result = await runCli(['copy', `${secure.host}/src/app:1`, `${plain.host}/unverified/app:1`, '--src-creds', CREDS, '--src-tls-verify=false', '-q'], { env });
    assert.equal(result.code, 0, result.stderr);
    assert.match(result.stderr, /TLS verification is off for 127\.0\.0\.1/);
  });

  it('changes the manifest digest only when --format converts it', async () => {
    const result = await runCli(['copy', `docker://${plain.host}/src/app:1`, `${plain.host}/converted/app:1`, '--format', 'docker', '-q'], { env });
    assert.equal(result.code, 0, result.stderr);
    const copied = await skopeoInspectRaw(`${plain.host}/converted/app:1`);
    assert.equal(copied.json.mediaType, 'application/vnd.docker.distribution.manifest.v2+json');
    assert.notEqual(sha256(copied.bytes), layout.images[0]?.manifestDigest);
    assert.deepEqual(
      copied.json.layers.map((l: { digest: string }) => l.digest),
      layout.images[0]?.layerDigests,
    );
    await runSkopeo(['copy', '--quiet', '--src-tls-verify=false', `docker://${plain.host}/converted/app:1`, `oci:${join(work, 'converted-out')}:app`]);
  });

  it('follows a source blob redirected to storage on another host, without the source\'s credentials', async () => {
    const tls = { certFile: secure.certFile ?? '', keyFile: secure.keyFile ?? '' };
    // The "registry" asks for Basic credentials; its blobs live in "storage" on another host (localhost, not 127.0.0.1).
    const [registryProxy, storage] = await Promise.all([startFaultProxy({ target: plain.host, tls }), startFaultProxy({ target: plain.host, tls })]);
    try {
      const storageHost = `localhost:${storage.host.split(':')[1]}`;
      registryProxy.addFault({ method: 'GET', path: /\/manifests\//, nth: 1, fault: { kind: 'status', status: 401, headers: { 'www-authenticate': 'Basic realm="source"' } } });
      const image = layout.images[0]!;
      for (const digest of [image.configDigest, ...image.layerDigests]) {
        registryProxy.addFault({ method: 'GET', path: new RegExp(`/blobs/${digest}$`), fault: { kind: 'redirect', status: 307, location: `https://${storageHost}/v2/src/app/blobs/${digest}?X-Amz-Signature=abc` } });
      }
      const result = await runCli(['copy', `${registryProxy.host}/src/app:1`, `${plain.host}/redirected/app:1`, '--src-creds', CREDS, '--src-ca-file', secure.caFile ?? '', '-q'], {
        // A fresh digest cache: the one of the other tests knows where these blobs are, and would mount them.
        env: { ...env, RXPUSH_CACHE_DIR: join(work, 'redirect-cache') },
      });
      assert.equal(result.code, 0, result.stderr);
      assert.equal(sha256((await skopeoInspectRaw(`${plain.host}/redirected/app:1`)).bytes), image.manifestDigest);
      assert.ok(registryProxy.requests.some((r) => r.headers.authorization?.startsWith('Basic ')), 'the source registry got its credentials');
      const fetched = storage.requests.filter((r) => r.url.includes('/blobs/'));
      assert.equal(fetched.length, 3, 'every blob came from storage');
      assert.deepEqual(fetched.map((r) => r.headers.authorization), [undefined, undefined, undefined]);
    } finally {
      await Promise.all([registryProxy.close(), storage.close()]);
    }
  });

  it("retries a source blob whose GET the source registry answers 503, on that blob's own line, and lands", async () => {
    const proxy = await startFaultProxy({ target: plain.host });
    try {
      const [image] = layout.images;
      const layer = image!.layerDigests[0]!;
      proxy.addFault({ method: 'GET', path: new RegExp(`/blobs/${layer}$`), nth: 1, fault: { kind: 'status', status: 503 } });
      // To the other registry, with a cache of its own: the layer must be fetched, not mounted.
      const cache = await mkdtemp(join(work, 'retry-cache-'));
      const result = await runCli(['copy', `${proxy.host}/src/app:1`, `${secure.host}/retried/app:1`, ...toSecure, '--progress', 'plain'], { env: { ...env, RXPUSH_CACHE_DIR: cache } });
      assert.equal(result.code, 0, result.stderr);
      const id = layer.slice('sha256:'.length, 'sha256:'.length + 12);
      assert.match(result.stdout, new RegExp(`^${id}: Retrying in \\d+ seconds?$`, 'm'));
      assert.equal(proxy.requests.filter((r) => r.method === 'GET' && r.url.endsWith(`/blobs/${layer}`)).length, 2);
      const raw = await skopeoInspectRaw(`${secure.host}/retried/app:1`, onSecure);
      assert.equal(raw.json.layers[0]?.digest, layer);
    } finally {
      await proxy.close();
    }
  });

  it('fails with one line when the source answers HTML instead of a manifest', async () => {
    const proxy = await startFaultProxy({ target: plain.host });
    try {
      proxy.addFault({ method: 'GET', path: /\/manifests\//, fault: { kind: 'status', status: 200, headers: { 'content-type': 'text/html; charset=utf-8' }, body: '<!doctype html><title>Sign in</title>' } });
      const result = await runCli(['copy', `${proxy.host}/src/app:1`, `${plain.host}/html/app:1`], { env });
      assertOneLineError(result, new RegExp(`^rxpush: docker://${proxy.host}/src/app:1: ${proxy.host} answered GET /v2/src/app/manifests/1 with text/html, not an image manifest or index; is ${proxy.host} a registry`));
      await assert.rejects(skopeoInspectRaw(`${plain.host}/html/app:1`), /manifest unknown|not found/i);
    } finally {
      await proxy.close();
    }
  });

  it('pushes a docker:// source with rxpush push too', async () => {
    const result = await runCli(['push', `docker://${plain.host}/src/app:1`, `${secure.host}/pushed/app:1`, ...toSecure, '-q'], { env });
    assert.equal(result.code, 0, result.stderr);
    assert.equal(sha256((await skopeoInspectRaw(`${secure.host}/pushed/app:1`, onSecure)).bytes), layout.images[0]?.manifestDigest);
  });

  it('fails with one line naming the image and registry for a tag the source does not have', async () => {
    const result = await runCli(['copy', `docker://${plain.host}/src/app:nope`, `${secure.host}/dst/nope:1`, ...toSecure], { env });
    assertOneLineError(result, new RegExp(`^rxpush: docker://${plain.host}/src/app:nope: ${plain.host} has no such image \\(GET http://${plain.host}/v2/src/app/manifests/nope → 404 MANIFEST_UNKNOWN.*\\); check the repository and tag$`));
  });

  it('fails with one line for a platform the index does not have, and tags nothing', async () => {
    const result = await runCli(['copy', `docker://${plain.host}/src/multi:1`, `${plain.host}/one/app:s390x`, '--platform', 'linux/s390x'], { env });
    assertOneLineError(result, new RegExp(`^rxpush: docker://${plain.host}/src/multi:1 has no image for linux/s390x; its index ${multi.digest} in ${plain.host} offers linux/amd64, linux/arm64/v8$`));
    await assert.rejects(skopeoInspectRaw(`${plain.host}/one/app:s390x`), /manifest unknown|not found/i);
  });

  it('fails with one line for a source blob whose bytes do not match its digest, and tags nothing', async () => {
    const layer = layout.images[2]?.layerDigests[0] ?? '';
    const data = blobData(plain, layer);
    const bytes = await readFile(data);
    bytes[bytes.length - 100] = (bytes[bytes.length - 100] ?? 0) ^ 0xff;
    await writeFile(data, bytes);
    const result = await runCli(['copy', `docker://${plain.host}/src/corrupt:1`, `${secure.host}/dst/corrupt:1`, ...toSecure], { env });
    assertOneLineError(result, new RegExp(`^rxpush: docker://${plain.host}/src/corrupt:1 layer 1 of 1 \\(${layer}\\) does not match its digest: expected ${layer}, read sha256:`));
    await assert.rejects(skopeoInspectRaw(`${secure.host}/dst/corrupt:1`, onSecure), /manifest unknown|not found/i);
  });

  it('fails with one line for a source blob that is gone, and tags nothing', async () => {
    const layer = layout.images[3]?.layerDigests[0] ?? '';
    await rm(blobData(plain, layer));
    const result = await runCli(['copy', `docker://${plain.host}/src/gone:1`, `${secure.host}/dst/gone:1`, ...toSecure], { env });
    // The registry still lists the blob, so it starts the answer, then finds no bytes to send.
    assertOneLineError(
      result,
      new RegExp(`^rxpush: docker://${plain.host}/src/gone:1 layer 1 of 1 \\(${layer}\\): ${plain.host} broke off sending it \\(.*\\); it may have been deleted from the source while copying; nothing was tagged at the destination, copy again$`),
    );
    await assert.rejects(skopeoInspectRaw(`${secure.host}/dst/gone:1`, onSecure), /manifest unknown|not found/i);
  });

  it('refuses a local source for rxpush copy, saying to push it', async () => {
    const result = await runCli(['copy', `oci:${layout.dir}:app`, `${plain.host}/x/app:1`], { env });
    assertOneLineError(result, /^rxpush: rxpush copy reads from a registry \(SOURCE is \[docker:\/\/\]REGISTRY\/REPO\[:TAG\]\); push oci:.* with rxpush push; see 'rxpush copy --help'$/, 2);
  });
});
