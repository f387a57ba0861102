/**
 * A chunked upload broken off by a crash (SIGKILL) resumes in the next run: the session is kept in the cache
 * directory, the next push asks the registry where it is (GET → Range), re-reads and re-hashes the part already
 * sent, and sends only the rest. The proxy's record of the requests is the registry's access log here.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtemp, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, it } from 'node:test';

import type { Digest } from '@rxpush/core';

import { useProxiedRegistry } from './helpers/proxied-registry.ts';
import { CLI_BIN, runCli } from './helpers/run-cli.ts';

const MIB = 1024 * 1024;

describe('resuming a chunked upload in the next run', () => {
  // One layer of ~24 MiB of pseudo-random bytes: 24 chunks of 1 MiB.
  const env = useProxiedRegistry('resume', [{ tags: ['latest'], layers: [{ files: 24, fileSize: MIB, seed: 'resume' }] }]);

  it('sends only the rest after a push killed mid-layer, and ends with the same digests', async () => {
    // The 7th chunk never reaches the registry (the network is gone), and the push is killed while it waits:
    // the registry's session holds 6 whole chunks. (One killed in the middle of a chunk is the next test.)
    const image = env.layout.images[0]!;
    const layer = image.layerDigests[0]!;
    const size = image.layerSizes[0]!;
    const repository = 'resume/killed';
    const cache = await mkdtemp(join(env.work, 'cache-'));
    const args = ['push', `oci:${env.layout.dir}:latest`, `${env.proxy.host}/${repository}:1.0`, '--chunk-size', '1MiB', '--progress', 'plain', '--concurrency', '1'];
    const cliEnv = { RXPUSH_CACHE_DIR: cache, DOCKER_CONFIG: join(env.work, 'docker') };

    env.proxy.addFault({ method: 'PATCH', path: new RegExp(`${repository}/blobs/uploads/`), nth: 7, fault: { kind: 'stall' } });
    const first = spawn(process.execPath, [CLI_BIN, ...args], { env: { ...process.env, ...cliEnv }, stdio: 'ignore' });
    const killed = new Promise((resolve) => first.on('close', resolve));
    while (!env.proxy.requests.some((r) => r.fault === 'stall' && r.url.includes(repository))) await new Promise((resolve) => setTimeout(resolve, 10));
    first.kill('SIGKILL');
    env.proxy.clearFaults();
    await killed;
    const before = env.proxy.requests.length;
    assert.equal(await env.direct.hasManifest(repository, '1.0'), undefined, 'the killed push left no tag');
    assert.equal((await readdir(join(cache, 'uploads'))).length >= 1, true, 'the session was kept in the cache directory');

    const second = await runCli(args, { env: cliEnv });
    assert.equal(second.code, 0, second.stderr);
    assert.match(second.stdout, /: Resuming at \d+(\.\d+)?MB\n/);
    const rerun = env.proxy.requests.slice(before).filter((r) => r.url.includes(repository));
    const status = rerun.find((r) => r.method === 'GET' && r.url.includes('/blobs/uploads/'));
    assert.equal(status?.status, 204, 'the next push asked the session where it was');
    const patches = rerun.filter((r) => r.method === 'PATCH');
    const start = Number(/^(\d+)-/.exec(String(patches[0]?.headers['content-range']))?.[1]);
    assert.ok(start >= 6 * MIB, `the first PATCH goes on at ${start}, after what the registry had`);
    const sent = patches.reduce((sum, r) => sum + r.bodyBytes, 0);
    assert.ok(sent <= size - start + 64 * 1024, `only the rest went up again (${sent} of ${size} bytes)`);
    assert.equal(rerun.filter((r) => r.method === 'POST' && r.url.includes(`${repository}/blobs/uploads/`)).length <= 1, true, 'no fresh session for the layer');
    assert.equal((await env.direct.hasManifest(repository, '1.0'))?.digest, image.manifestDigest);
    assert.equal((await env.direct.hasBlob(repository, layer as Digest))?.size, size);
    assert.deepEqual(await readdir(join(cache, 'uploads')), [], 'the kept session is gone once the blob landed');
  });

  it('starts over, and still pushes whole, when the registry dropped the kept session (a push killed in the middle of a chunk)', async () => {
    // The reference registry keeps the part of a chunk it got before the kill, then refuses the session whose
    // signed state names fewer bytes ("upload resumed at wrong offset") and cancels it: the next push finds it gone.
    const image = env.layout.images[0]!;
    const repository = 'resume/gone';
    const cache = await mkdtemp(join(env.work, 'cache-'));
    const args = ['push', `oci:${env.layout.dir}:latest`, `${env.proxy.host}/${repository}:1.0`, '--chunk-size', '1MiB', '--progress', 'plain', '--concurrency', '1'];
    const cliEnv = { RXPUSH_CACHE_DIR: cache, DOCKER_CONFIG: join(env.work, 'docker') };
    const first = spawn(process.execPath, [CLI_BIN, ...args], { env: { ...process.env, ...cliEnv }, stdio: 'ignore' });
    const killed = new Promise((resolve) => first.on('close', resolve));
    while (env.proxy.requests.filter((r) => r.method === 'PATCH' && r.url.includes(repository) && r.status === 202).length < 4) await new Promise((resolve) => setTimeout(resolve, 10));
    first.kill('SIGKILL');
    await killed;
    const before = env.proxy.requests.length;
    const second = await runCli(args, { env: cliEnv });
    assert.equal(second.code, 0, second.stderr);
    const rerun = env.proxy.requests.slice(before).filter((r) => r.url.includes(repository));
    assert.ok(rerun.some((r) => r.method === 'GET' && r.url.includes('/blobs/uploads/') && r.status === 404), 'the kept session was asked for, and is gone');
    assert.doesNotMatch(second.stdout, /Resuming at/);
    assert.equal((await env.direct.hasManifest(repository, '1.0'))?.digest, image.manifestDigest);
    assert.equal((await env.direct.hasBlob(repository, image.layerDigests[0] as Digest))?.size, image.layerSizes[0]);
  });
});
