/**
 * The CLI on Node.js 22, the LTS between the oldest supported (20.19) and Node 24, which the whole suite runs on:
 * the bundle starts, its libdeflate binding loads, and a push that compresses lands and reads back with skopeo.
 * tools/setup.mjs installs Node 22 (npm's `node@22`); without it this fails, saying to run setup.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { before, describe, it } from 'node:test';
import { promisify } from 'node:util';
import { crc32 } from 'node:zlib';

import { NODE22 } from '../tools/other-nodes.mjs';
import { useRegistry } from './helpers/registry-suite.ts';
import { CLI_BIN, homeIn, runCli } from './helpers/run-cli.ts';
import { skopeoCopy, skopeoCopyToOci, skopeoInspectConfig } from './helpers/skopeo.ts';

const execFileAsync = promisify(execFile);

describe('the CLI on Node.js 22', () => {
  const suite = useRegistry('node22', { images: [{ tags: ['latest'], layers: [{ files: 3, fileSize: 200_000, seed: 'node22-a' }, { files: 1, fileSize: 5_000, seed: 'node22-b' }] }] });
  let env: Record<string, string>;
  before(() => {
    assert.ok(NODE22.installed(), `Node.js 22 is not installed at ${NODE22.path}; run "node tools/setup.mjs" (npm test does)`);
    env = homeIn(join(suite.work, 'home'));
  });
  const cli = (args: string[]) => runCli(args, { node: NODE22.path, env });

  it('starts, and loads its libdeflate binding', async () => {
    const version = await cli(['--version']);
    assert.equal(version.code, 0, version.stderr);
    const binding = join(CLI_BIN, '..', '..', 'bundle', 'rxpush-deflate.node');
    const { stdout } = await execFileAsync(NODE22.path, ['-e', `process.stdout.write(String(require(${JSON.stringify(binding)}).crc32(Buffer.from('rxpush'), 0)))`]);
    assert.equal(Number(stdout), crc32(Buffer.from('rxpush')));
  });

  it('pushes an OCI layout and a docker save archive (compressing its layers), which skopeo reads back', async () => {
    const image = suite.layout.images[0]!;
    const oci = await cli(['push', `oci:${suite.layout.dir}:latest`, `${suite.registry.host}/node22/oci:1`, '--quiet']);
    assert.equal(oci.code, 0, oci.stderr);
    const archive = join(suite.work, 'saved.tar');
    await skopeoCopy(`oci:${suite.layout.dir}:latest`, `docker-archive:${archive}:saved/app:1`);
    const saved = await cli(['push', `docker-archive:${archive}`, `${suite.registry.host}/node22/archive:1`, '--quiet']);
    assert.equal(saved.code, 0, saved.stderr);
    for (const repository of ['oci', 'archive']) {
      const config = (await skopeoInspectConfig(`${suite.registry.host}/node22/${repository}:1`)) as { rootfs: { diff_ids: string[] } };
      assert.deepEqual(config.rootfs.diff_ids, image.diffIds, repository);
      // skopeo checks every blob against its digest as it copies.
      await skopeoCopyToOci(`${suite.registry.host}/node22/${repository}:1`, join(suite.work, `back-${repository}`));
    }
  });
});
