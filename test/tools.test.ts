import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { createReadStream, existsSync } from 'node:fs';
import { mkdtemp, readFile, readdir, rm, stat, writeFile } from 'node:fs/promises';
import { request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { describe, it } from 'node:test';
import { createGunzip } from 'node:zlib';
import { makeOciLayout } from '../tools/fixtures.ts';
import { startRegistry } from '../tools/registry.ts';
import { runCli } from './helpers/run-cli.ts';
import { skopeoCopy, skopeoInspectRaw } from './helpers/skopeo.ts';

async function tempDir(t: { after(fn: () => Promise<void>): void }): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'rxpush-tools-test-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

async function sha256File(path: string, gunzip = false): Promise<string> {
  const hash = createHash('sha256');
  const sink = async (source: AsyncIterable<Buffer>) => {
    for await (const chunk of source) hash.update(chunk);
  };
  if (gunzip) await pipeline(createReadStream(path), createGunzip(), sink);
  else await pipeline(createReadStream(path), sink);
  return `sha256:${hash.digest('hex')}`;
}

function get(url: string, opts: { ca?: string; auth?: string } = {}): Promise<{ status: number; headers: Record<string, unknown> }> {
  return new Promise((ok, fail) => {
    const headers = opts.auth ? { authorization: `Basic ${Buffer.from(opts.auth).toString('base64')}` } : undefined;
    const req = (url.startsWith('https:') ? httpsRequest : httpRequest)(
      url,
      { ...(opts.ca ? { ca: opts.ca } : {}), ...(headers ? { headers } : {}) },
      (res) => {
        res.resume();
        ok({ status: res.statusCode ?? 0, headers: res.headers });
      },
    );
    req.on('error', fail);
    req.end();
  });
}

describe('makeOciLayout', () => {
  it('writes a layout skopeo reads, whose blobs hash to their names', async (t) => {
    const dir = await tempDir(t);
    const { images } = await makeOciLayout(dir);
    const image = images[0];
    assert.ok(image);
    assert.equal(image.layerDigests.length, 3);

    const { bytes, json } = await skopeoInspectRaw(`oci:${dir}:latest`);
    assert.equal(`sha256:${createHash('sha256').update(bytes).digest('hex')}`, image.manifestDigest);
    assert.equal(bytes.length, image.manifestSize);
    assert.equal(json.mediaType, 'application/vnd.oci.image.manifest.v1+json');
    assert.deepEqual(
      json.layers.map((l: { digest: string }) => l.digest),
      image.layerDigests,
    );

    const blobDir = join(dir, 'blobs', 'sha256');
    for (const name of await readdir(blobDir)) {
      assert.equal(await sha256File(join(blobDir, name)), `sha256:${name}`);
    }
    // A layer's diff ID is the digest of its uncompressed tar, as the config says.
    for (const [i, digest] of image.layerDigests.entries()) {
      assert.equal(await sha256File(join(blobDir, digest.slice(7)), true), image.diffIds[i]);
    }
    const config = JSON.parse(await readFile(join(blobDir, image.configDigest.slice(7)), 'utf8'));
    assert.deepEqual(config.rootfs.diff_ids, image.diffIds);
    assert.equal(config.architecture, 'amd64');
  });

  it('produces the same digests every time and writes shared layers once', async (t) => {
    const layers = (seed: string) => ({ files: 2, fileSize: 3000, seed });
    const images = [
      { tags: ['one', 'uno'], layers: [layers('base'), layers('a')] },
      { tags: ['two'], layers: [layers('base'), layers('b')] },
    ];
    const first = await makeOciLayout(await tempDir(t), { images });
    const again = await makeOciLayout(await tempDir(t), { images });
    assert.deepEqual(again.images, first.images);

    const [one, two] = first.images;
    assert.ok(one && two);
    assert.equal(one.layerDigests[0], two.layerDigests[0]);
    assert.notEqual(one.layerDigests[1], two.layerDigests[1]);
    // 3 distinct layers + 2 configs + 2 manifests.
    assert.equal((await readdir(join(first.dir, 'blobs', 'sha256'))).length, 7);
    for (const tag of ['one', 'uno', 'two']) {
      const { json } = await skopeoInspectRaw(`oci:${first.dir}:${tag}`);
      assert.ok(json.layers.length === 2);
    }
  });

  it('writes Docker schema 2 media types when asked', async (t) => {
    // skopeo 1.9 reads only OCI-typed manifests from a layout, so check the files themselves.
    const dir = await tempDir(t);
    const { images } = await makeOciLayout(dir, { format: 'docker' });
    const image = images[0];
    assert.ok(image);
    const index = JSON.parse(await readFile(join(dir, 'index.json'), 'utf8'));
    assert.equal(index.manifests[0].mediaType, 'application/vnd.docker.distribution.manifest.v2+json');
    assert.equal(index.manifests[0].digest, image.manifestDigest);
    assert.equal(index.manifests[0].annotations['org.opencontainers.image.ref.name'], 'latest');
    const json = JSON.parse(await readFile(join(dir, 'blobs', 'sha256', image.manifestDigest.slice(7)), 'utf8'));
    assert.equal(json.mediaType, 'application/vnd.docker.distribution.manifest.v2+json');
    assert.equal(json.config.mediaType, 'application/vnd.docker.container.image.v1+json');
    assert.equal(json.layers[0].mediaType, 'application/vnd.docker.image.rootfs.diff.tar.gzip');
    assert.equal(json.config.digest, image.configDigest);
  });
});

describe('startRegistry', () => {
  it('serves plain HTTP on a loopback port and cleans up on stop', async () => {
    const registry = await startRegistry();
    try {
      assert.match(registry.host, /^127\.0\.0\.1:\d+$/);
      assert.equal((await get(`${registry.url}/v2/`)).status, 200);
    } finally {
      await registry.stop();
    }
    assert.equal(existsSync(dirname(registry.configFile)), false);
    await assert.rejects(get(`${registry.url}/v2/`));
  });

  it('serves TLS with its own CA and asks for htpasswd credentials', async () => {
    const registry = await startRegistry({ tls: true, htpasswd: { alice: 'wonderland' } });
    try {
      assert.ok(registry.caFile);
      assert.match(registry.url, /^https:/);
      const ca = await readFile(registry.caFile, 'utf8');
      const anonymous = await get(`${registry.url}/v2/`, { ca });
      assert.equal(anonymous.status, 401);
      assert.match(String(anonymous.headers['www-authenticate']), /^Basic realm=/);
      assert.equal((await get(`${registry.url}/v2/`, { ca, auth: 'alice:wonderland' })).status, 200);
      assert.equal((await get(`${registry.url}/v2/`, { ca, auth: 'alice:wrong' })).status, 401);
      // Without the CA the certificate is not trusted.
      await assert.rejects(get(`${registry.url}/v2/`));
    } finally {
      await registry.stop();
    }
  });

  it('answers with a Bearer challenge when token auth is configured', async () => {
    // Any certificate will do as the token signer's root for this check.
    const tls = await startRegistry({ tls: true });
    const rootCertBundle = await readFile(tls.caFile ?? '', 'utf8');
    await tls.stop();
    const registry = await startRegistry({
      token: { realm: 'http://127.0.0.1:1/token', service: 'test-registry', issuer: 'test-issuer', rootCertBundle },
      schema1: true,
    });
    try {
      const res = await get(`${registry.url}/v2/`);
      assert.equal(res.status, 401);
      assert.match(String(res.headers['www-authenticate']), /^Bearer realm="http:\/\/127\.0\.0\.1:1\/token",service="test-registry"/);
    } finally {
      await registry.stop();
    }
  });

  it('takes an image that skopeo copies from a fixture layout, digests unchanged', async (t) => {
    const dir = await tempDir(t);
    const { images } = await makeOciLayout(dir);
    const registry = await startRegistry();
    t.after(() => registry.stop());
    await skopeoCopy(`oci:${dir}:latest`, `${registry.host}/fixtures/sample:v1`);
    const { bytes, json } = await skopeoInspectRaw(`${registry.host}/fixtures/sample:v1`);
    assert.equal(`sha256:${createHash('sha256').update(bytes).digest('hex')}`, images[0]?.manifestDigest);
    assert.deepEqual(
      json.layers.map((l: { digest: string }) => l.digest),
      images[0]?.layerDigests,
    );
  });
});

describe('tools/bundle-cli.mjs (run by npm run build)', () => {
  it("bundles the CLI with undici's dispatchers only, one string-width, a lazy pino, rxjs's used modules, and the push split off", async () => {
    const dir = join(import.meta.dirname, '..', 'packages', 'cli', 'bundle');
    const files = (await readdir(dir)).filter((name) => name.endsWith('.cjs') && name !== 'load.cjs');
    const texts = await Promise.all(files.map((name) => readFile(join(dir, name), 'utf8')));
    // esbuild heads each module it includes with a comment naming its path (kept as `//! path` in the CommonJS chunks).
    const modules = texts.flatMap((text) => [...text.matchAll(/^\/\/! (\S+)$/gm)].map((match) => match[1] ?? ''));
    assert.ok(modules.some((path) => path.includes('undici/lib/dispatcher/agent.js')), 'undici is bundled');
    // The request API's bodies use a few of fetch's helpers (body mixins); fetch itself is not there.
    const unused = /undici\/lib\/(web\/fetch\/index|web\/websocket\/|web\/cookies\/|web\/eventsource\/|cache\/|mock\/)/;
    assert.deepEqual(modules.filter((path) => unused.test(path)), [], 'no fetch, WebSocket, cookies, caches or mocks');
    assert.equal(new Set(modules.filter((path) => path.includes('/string-width@')).map((path) => /string-width@[^/]+/.exec(path)?.[0])).size, 1);
    // rxjs's ES2015 build, tree-shaken: its CommonJS index would bring all 223 modules.
    assert.deepEqual(modules.filter((path) => path.includes('/rxjs/dist/cjs/')), [], "rxjs's CommonJS build is not bundled");
    const rxjs = modules.filter((path) => path.includes('/rxjs/dist/esm/'));
    assert.ok(rxjs.length > 0 && rxjs.length < 150, `rxjs's ES2015 build, only the modules used (${rxjs.length})`);
    assert.ok(modules.includes('tools/bundle/lazy-client-h2.cjs'), "undici's HTTP/2 client is behind the shim that loads it for an h2 connection");
    assert.ok(modules.includes('tools/bundle/liftoff-client-h1.cjs'), "undici's HTTP/1.1 client is behind the shim that compiles its parser with Liftoff alone");
    assert.ok(modules.includes('tools/bundle/undici-http.cjs'), "undici's two values of node:http come from the shim that does not load it");
    assert.ok(modules.includes('tools/bundle/lazy-pino.cjs'), 'pino is behind the shim that loads it on the first line logged');
    assert.ok(modules.some((path) => path.includes('/pino@')), 'and bundled');
    const entry = texts[files.indexOf('rxpush.cjs')] ?? '';
    assert.ok(modules.includes('packages/cli/dist/main.js'), 'the entry is there');
    assert.doesNotMatch(entry, /rxjs/, 'the entry holds the command line, not the push');
  });

  it("prints help without building string-width's Unicode tables, which its ASCII text does not need", async () => {
    // string-width builds an Intl.Segmenter when it loads; the bundle's shim measures printable ASCII itself.
    const spy = "const S=Intl.Segmenter;Intl.Segmenter=class extends S{constructor(...a){super(...a);process.stderr.write('segmenter built\\n')}}";
    const result = await runCli(['push', '--help'], { env: { NODE_OPTIONS: `--import=data:text/javascript,${encodeURIComponent(spy)}` } });
    assert.equal(result.code, 0, result.stderr);
    assert.match(result.stdout, /--concurrency/);
    assert.doesNotMatch(result.stderr, /segmenter built/);
  });
});

describe('what a second push loads', () => {
  it('loads none of the Node modules only other commands, sources or protocols need', async (t) => {
    // A push of an OCI layout that the registry has: the CLI bundle, the digest cache, HEADs and a manifest PUT.
    const dir = await tempDir(t);
    const { images } = await makeOciLayout(dir);
    const registry = await startRegistry();
    t.after(() => registry.stop());
    const env = { RXPUSH_CACHE_DIR: join(dir, 'cache') };
    const destination = `${registry.host}/second/push:1`;
    assert.equal((await runCli(['push', `oci:${dir}:latest`, destination, '--quiet'], { env })).code, 0);
    // Node's own list of the built-in modules it loaded, written as the process ends.
    const report = "process.on('exit',()=>process.stderr.write('MODULES '+process.moduleLoadList.join(',')+'\\n'))";
    const result = await runCli(['push', `oci:${dir}:latest`, destination, '--progress', 'plain'], { env: { ...env, NODE_OPTIONS: `--import=data:text/javascript,${encodeURIComponent(report)}` } });
    assert.equal(result.code, 0, result.stderr);
    assert.match(result.stdout, /Layer already exists/);
    assert.match(result.stdout, new RegExp(`digest: ${images[0]?.manifestDigest ?? 'none'}`));
    const loaded = new Set(/^MODULES (.*)$/m.exec(result.stderr)?.[1]?.split(',').map((entry) => entry.replace(/^NativeModule /, '')));
    assert.ok(loaded.has('net') && loaded.has('zlib'), 'the list is of this push');
    // http2: undici's h2 client; child_process: credential helpers; worker_threads: pino's transports.
    // http: undici reads two of its values (tools/bundle/undici-http.cjs); perf_hooks: Node's `performance` global;
    // tls: the loopback registry is asked whether it speaks TLS with a hello of rxpush's own, and it does not.
    for (const name of ['http2', 'child_process', 'dgram', 'worker_threads', 'http', 'perf_hooks', 'tls']) assert.equal(loaded.has(name), false, `${name} is not loaded`);
  });

  it("compiles Node's built-in modules with the code Node ships for them, and the bundle with its cached code", async (t) => {
    // Node refuses its built-ins' code cache once V8's flags differ from their defaults, as they do while undici
    // compiles its parser with Liftoff alone (tools/bundle/liftoff-client-h1.cjs): they must be back after it.
    const dir = await tempDir(t);
    await makeOciLayout(dir);
    const registry = await startRegistry();
    t.after(() => registry.stop());
    const env = { RXPUSH_CACHE_DIR: join(dir, 'cache') };
    const push = ['push', `oci:${dir}:latest`, `${registry.host}/second/cache:1`, '--quiet'];
    for (let run = 1; run <= 2; run++) assert.equal((await runCli(push, { env })).code, 0, `push ${run}`);
    const cacheDir = join(dir, 'cache', 'code-cache');
    const cacheFiles = async () => (await readdir(cacheDir, { recursive: true, withFileTypes: true })).filter((entry) => entry.isFile()).map((entry) => join(entry.parentPath, entry.name));
    const files = await cacheFiles();
    const written = await Promise.all(files.map(async (file) => (await stat(file)).mtimeMs));
    assert.ok(files.length > 3, 'the push chunks are cached');

    // Node's own account (an internal binding, hence --expose-internals), made as the process ends, after loading
    // one built-in more: the flags must be back to their defaults, not only before the parser compiled.
    const preload = join(dir, 'report-cache-usage.cjs');
    await writeFile(
      preload,
      `const { internalBinding } = require('internal/test/binding');
process.on('exit', () => {
  const late = process.moduleLoadList.includes('NativeModule dns') ? 'loaded before' : (require('node:dns'), 'dns');
  const usage = internalBinding('builtins').getCacheUsage();
  process.stderr.write('CACHE ' + JSON.stringify({ late, without: [...usage.compiledWithoutCache] }) + '\\n');
});
`,
    );
    const result = await runCli(push, { env, nodeArgs: ['--expose-internals', '--no-warnings', '--require', preload] });
    assert.equal(result.code, 0, result.stderr);
    const report = JSON.parse(/^CACHE (.*)$/m.exec(result.stderr)?.[1] ?? 'null') as { late: string; without: string[] } | null;
    assert.equal(report?.late, 'dns', 'a built-in module is loaded after the push');
    assert.deepEqual(report.without, [], 'every built-in module was compiled with its code cache');
    // A chunk V8 did not take would be written anew as the run ends.
    assert.deepEqual(await cacheFiles(), files);
    assert.deepEqual(await Promise.all(files.map(async (file) => (await stat(file)).mtimeMs)), written, 'V8 took every cached chunk');
  });
});
