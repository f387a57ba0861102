import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { promisify } from 'node:util';

import { lastValueFrom, toArray } from 'rxjs';

import { makeOciLayout, type OciLayoutFixture } from '../../tools/fixtures.ts';
import { startRegistry, type RunningRegistry } from '../../tools/registry.ts';
import { startFaultProxy } from '../../test/helpers/fault-proxy.ts';
import { missingBlobs } from './check-blobs-alone.ts';
import { nightlyPush, type Connection } from './custom-pipeline.ts';

const run = promisify(execFile);

const PASSWORD = 'examples-s3cret';

describe('the docs examples', () => {
  /** TLS with its own CA, and htpasswd: the client must assemble TLS and credentials itself. */
  let registry: RunningRegistry;
  let plain: RunningRegistry;
  let work: string;
  let layout: OciLayoutFixture;
  let connection: Connection;

  before(async () => {
    work = await mkdtemp(join(tmpdir(), 'rxpush-examples-'));
    await mkdir(join(work, 'docker'));
    [registry, plain] = await Promise.all([startRegistry({ tls: true, htpasswd: { bob: PASSWORD } }), startRegistry()]);
    // An empty Docker config dir, so nothing of this machine's docker login is read.
    connection = { credentials: { username: 'bob', password: PASSWORD }, caFile: registry.caFile ?? '', dockerConfigDir: join(work, 'docker') };
    layout = await makeOciLayout(join(work, 'layout'), {
      images: [
        { tags: ['1.0'], layers: [{ files: 2, fileSize: 10_000, seed: 'shared' }, { files: 1, fileSize: 5_000, seed: 'one' }] },
        { tags: ['2.0'], layers: [{ files: 2, fileSize: 10_000, seed: 'shared' }, { files: 1, fileSize: 5_000, seed: 'two' }] },
      ],
    });
  });
  after(async () => {
    await Promise.all([registry?.stop(), plain?.stop()]);
    await rm(work, { recursive: true, force: true });
  });

  it('checks blobs alone: everything is missing before a push and nothing after', async () => {
    const destination = `${registry.host}/examples/app`;
    const before = await missingBlobs(`oci:${layout.dir}:1.0`, destination, connection);
    assert.deepEqual(before.map((blob) => blob.digest).sort(), [...layout.images[0]!.layerDigests, layout.images[0]!.configDigest].sort());
    await lastValueFrom(nightlyPush(`oci:${layout.dir}`, destination, () => {}, connection).pipe(toArray()));
    assert.deepEqual(await missingBlobs(`oci:${layout.dir}:1.0`, destination, connection), []);
  });

  it('pushes every tag renamed by the custom pipeline, with its own progress lines', async () => {
    const lines: string[] = [];
    await lastValueFrom(nightlyPush(`oci:${layout.dir}`, `${registry.host}/examples/nightly`, (line) => lines.push(line), connection).pipe(toArray()));
    assert.ok(lines.includes(`${registry.host}/examples/nightly:1.0-nightly -> ${layout.images[0]!.manifestDigest}`), lines.join('\n'));
    assert.ok(lines.includes(`${registry.host}/examples/nightly:2.0-nightly -> ${layout.images[1]!.manifestDigest}`), lines.join('\n'));
    assert.equal(lines.filter((line) => line.endsWith('bytes)')).length, 5, 'the shared layer is uploaded once');
  });

  it('is refused by the registry without credentials, naming the request', async () => {
    const anonymous = { caFile: connection.caFile ?? '', dockerConfigDir: join(work, 'docker') };
    await assert.rejects(lastValueFrom(nightlyPush(`oci:${layout.dir}`, `${registry.host}/examples/anonymous`, () => {}, anonymous)), (error: Error) => {
      assert.match(error.message, /^HEAD https:\/\/127\.0\.0\.1:\d+\/v2\/examples\/anonymous\/blobs\/sha256:[0-9a-f]{64} → 401/);
      return true;
    });
  });

  it("puts the client's retries into the hand-built pipeline's stream, with the blob's id where there is one", async () => {
    const proxy = await startFaultProxy({ target: plain.host });
    try {
      const config = layout.images[0]!.configDigest;
      proxy.addFault({ method: 'HEAD', path: new RegExp(`/blobs/${config}`), nth: 1, fault: { kind: 'status', status: 503 } });
      proxy.addFault({ method: 'PUT', path: /\/manifests\//, nth: 1, fault: { kind: 'status', status: 503 } });
      const lines: string[] = [];
      const retried = { retry: { baseDelayMs: 1, maxDelayMs: 2 }, dockerConfigDir: join(work, 'docker') };
      await lastValueFrom(nightlyPush(`oci:${layout.dir}`, `${proxy.host}/examples/retried`, (line) => lines.push(line), retried).pipe(toArray()));
      const retries = lines.filter((line) => line.includes(' retrying in '));
      assert.ok(retries.some((line) => line.startsWith(`${config.slice(7, 19)} retrying in `) && / → 503/.test(line)), lines.join('\n'));
      assert.ok(retries.some((line) => line.startsWith(`${proxy.host} retrying in `) && /^\S+ retrying in \d+ ms: PUT \S+\/manifests\/\d\.0-nightly → 503/.test(line)), lines.join('\n'));
    } finally {
      await proxy.close();
    }
  });

  it('runs both examples as scripts', async () => {
    const env = { ...process.env, REGISTRY_USER: 'bob', REGISTRY_PASSWORD: PASSWORD, CA_FILE: registry.caFile ?? '', DOCKER_CONFIG: join(work, 'docker') };
    const custom = await run(process.execPath, ['--import', 'tsx', 'docs/examples/custom-pipeline.ts', `oci:${layout.dir}`, `${registry.host}/examples/script`], { env });
    assert.match(custom.stdout, /2 tag\(s\) pushed/);
    const check = await run(process.execPath, ['--import', 'tsx', 'docs/examples/check-blobs-alone.ts', `oci:${layout.dir}:2.0`, `${plain.host}/examples/script`]);
    assert.match(check.stdout, /3 blob\(s\) to push/);
  });
});
