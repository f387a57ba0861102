/**
 * `rxpush push --dry-run` against the reference registry: it reports what a push would upload, mount and
 * skip, and the registry's own access log shows it sent nothing but reads (GET, HEAD).
 */
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { before, describe, it } from 'node:test';

import type { Digest } from '@rxpush/core';

import type { RunningRegistry } from '../tools/registry.ts';
import { useRegistry } from './helpers/registry-suite.ts';
import { runCli } from './helpers/run-cli.ts';
import { skopeoCopy } from './helpers/skopeo.ts';

/** The HTTP methods of the requests the registry logged after `from` characters of its log. */
async function methodsSince(registry: RunningRegistry, from: number): Promise<string[]> {
  const log = (await readFile(registry.logFile, 'utf8')).slice(from);
  return [...log.matchAll(/http\.request\.method=(\w+)/g)].map((match) => match[1] ?? '');
}

describe('rxpush push --dry-run against the reference registry', () => {
  const suite = useRegistry('dry-run', {
    images: [
      { tags: ['latest'], layers: [{ files: 2, fileSize: 50_000, seed: 'dry-base' }, { files: 1, fileSize: 20_000, seed: 'dry-app' }] },
      { tags: ['edge'], layers: [{ files: 2, fileSize: 50_000, seed: 'dry-base' }, { files: 1, fileSize: 20_000, seed: 'dry-edge' }] },
    ],
  });
  let env: Record<string, string>;

  before(async () => {
    env = { RXPUSH_CACHE_DIR: join(suite.work, 'cache') };
    // The base layer is in dry/base, and the digest cache knows it: a push elsewhere would mount it.
    const first = await runCli(['push', `oci:${suite.layout.dir}:latest`, `${suite.registry.host}/dry/base:latest`, '-q'], { env });
    assert.equal(first.code, 0, first.stderr);
  });

  it('reports a layer to upload, one to mount and writes nothing: only GET and HEAD reach the registry', async () => {
    const [, edge] = suite.layout.images;
    const logged = (await readFile(suite.registry.logFile, 'utf8')).length;
    const result = await runCli(['push', `oci:${suite.layout.dir}:edge`, `${suite.registry.host}/dry/app:1.0`, '--dry-run', '--progress', 'plain'], { env });
    assert.equal(result.code, 0, result.stderr);
    const [base, top] = edge!.layerDigests.map((digest) => digest.slice(7, 19));
    assert.match(result.stdout, new RegExp(`^${base}: Would mount from dry/base$`, 'm'));
    assert.match(result.stdout, new RegExp(`^${top}: Would push \\(\\d+(\\.\\d+)?kB\\)$`, 'm'));
    assert.match(result.stdout, /^1\.0: would push the manifest \(dry run\)$/m);
    assert.equal(result.stderr, 'dry run: 1 layer to push, 1 to mount, 0 skipped; nothing was written\n');

    const methods = await methodsSince(suite.registry, logged);
    assert.ok(methods.includes('HEAD'), 'blobs were checked');
    assert.deepEqual(methods.filter((method) => method !== 'GET' && method !== 'HEAD'), [], 'no POST, PUT, PATCH or DELETE');
    assert.equal(await suite.client.hasBlob('dry/app', edge!.layerDigests[0]! as Digest), undefined, 'nothing was mounted');
    assert.equal(await suite.client.hasBlob('dry/app', edge!.layerDigests[1]! as Digest), undefined, 'nothing was uploaded');
  });

  it('says "Layer already exists" for what the repository has, and compresses nothing of a docker-archive', async () => {
    const archive = join(suite.work, 'app.tar');
    await skopeoCopy(`oci:${suite.layout.dir}:latest`, `docker-archive:${archive}:dry/app:v1`);
    const logged = (await readFile(suite.registry.logFile, 'utf8')).length;
    const stored = await runCli(['push', `oci:${suite.layout.dir}:latest`, `${suite.registry.host}/dry/base:latest`, '--dry-run'], { env });
    assert.equal(stored.code, 0, stored.stderr);
    for (const digest of suite.layout.images[0]!.layerDigests) assert.match(stored.stdout, new RegExp(`^${digest.slice(7, 19)}: Layer already exists$`, 'm'));
    assert.equal(stored.stderr, 'dry run: 0 layers to push, 0 to mount, 2 skipped; nothing was written\n');

    // A docker save archive holds uncompressed layers: without a cached compressed form, they would be pushed.
    const fresh = await runCli(['push', `docker-archive:${archive}`, `${suite.registry.host}/dry/archive`, '--dry-run', '--progress', 'json'], {
      env: { RXPUSH_CACHE_DIR: join(suite.work, 'empty-cache') },
    });
    assert.equal(fresh.code, 0, fresh.stderr);
    const statuses = fresh.stdout.trimEnd().split('\n').map((line) => (JSON.parse(line) as { status: string }).status);
    assert.equal(statuses.filter((status) => /^Would push \(\S+ before compression\)$/.test(status)).length, 2, fresh.stdout);
    assert.ok(statuses.includes('v1: would push the manifest (dry run)'), fresh.stdout);
    assert.deepEqual((await methodsSince(suite.registry, logged)).filter((method) => method !== 'GET' && method !== 'HEAD'), []);
  });
});
