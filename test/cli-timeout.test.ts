/**
 * `--timeout` and `--retries` reach the registry client: a loopback server that takes requests and never
 * answers fails the push with the timeout named, after the number of attempts asked for.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';

import { makeOciLayout, type OciLayoutFixture } from '../tools/fixtures.ts';
import { assertOneLineError } from './helpers/assert-cli.ts';
import { runCli } from './helpers/run-cli.ts';

describe('rxpush push --timeout and --retries', () => {
  let silent: Server;
  let host: string;
  let work: string;
  let layout: OciLayoutFixture;

  before(async () => {
    work = await mkdtemp(join(tmpdir(), 'rxpush-timeout-'));
    layout = await makeOciLayout(join(work, 'layout'), { images: [{ tags: ['latest'], layers: [{ files: 1, fileSize: 1_000, seed: 'timeout' }] }] });
    // Reads every request, answers none.
    silent = createServer(() => {});
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
    host = `127.0.0.1:${(silent.address() as AddressInfo).port}`;
  });
  after(async () => {
    silent?.closeAllConnections();
    await new Promise((resolve) => silent?.close(resolve));
    await rm(work, { recursive: true, force: true });
  });

  it('fails a registry that never answers, naming the timeout and the attempts', async () => {
    const result = await runCli(['push', `oci:${layout.dir}:latest`, `${host}/app:1`, '--timeout', '1s', '--retries', '1', '-q'], {
      env: { RXPUSH_CACHE_DIR: join(work, 'cache'), DOCKER_CONFIG: join(work, 'docker') },
    });
    assertOneLineError(result, /^rxpush: HEAD http:\/\/127\.0\.0\.1:\d+\/v2\/app\/blobs\/sha256:[0-9a-f]{64} failed: the registry did not answer within 1 s \(the answer timeout\); .*\(gave up after 2 attempts\)$/);
  });
});
