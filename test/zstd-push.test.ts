/**
 * `--compression zstd`: on a Node.js with zlib's zstd streams (22.15+; the suite's Node 24 run) an
 * uncompressed source goes up as zstd layers in an OCI manifest, which skopeo pulls back whole; on
 * Node 20 it is refused in one line before anything is sent. Docker's format cannot name zstd layers,
 * so `--format docker` with zstd is a usage error on any Node.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { before, describe, it } from 'node:test';
import * as zlib from 'node:zlib';

import { assertOneLineError } from './helpers/assert-cli.ts';
import { useRegistry } from './helpers/registry-suite.ts';
import { runCli } from './helpers/run-cli.ts';
import { skopeoCopy, skopeoCopyToOci, skopeoInspectRaw } from './helpers/skopeo.ts';

const zstd = zlib as unknown as { createZstdCompress?: unknown; zstdDecompressSync?: (data: Buffer) => Buffer };
const hasZstd = typeof zstd.createZstdCompress === 'function';

describe(`--compression zstd on Node.js ${process.versions.node}`, () => {
  const suite = useRegistry('zstd', { images: [{ tags: ['latest'], layers: [1, 2].map((i) => ({ files: 2, fileSize: 64 * 1024, seed: `zstd-${i}` })) }] });
  let archive: string;

  before(async () => {
    // skopeo writes docker-archive layers uncompressed: what rxpush compresses on the way.
    archive = join(suite.work, 'image.tar');
    await skopeoCopy(`oci:${suite.layout.dir}:latest`, `docker-archive:${archive}:zstd/app:v1`);
  });

  const nothingPushed = async (): Promise<void> => {
    const catalog = (await (await fetch(`${suite.registry.url}/v2/_catalog`)).json()) as { repositories: string[] };
    assert.deepEqual(catalog.repositories, [], 'nothing reached the registry');
  };

  it('refuses --format docker with zstd in one line, before sending anything', async () => {
    const result = await runCli(['push', `docker-archive:${archive}`, `${suite.registry.host}/zstd/docker:v1`, '--compression', 'zstd', '--format', 'docker']);
    assertOneLineError(result, /--compression zstd needs an OCI manifest .*use --format oci/, 2);
    await nothingPushed();
  });

  it('on Node 20, refuses zstd in one line naming the Node.js it needs, before sending anything', { skip: hasZstd && 'this Node.js has zstd' }, async () => {
    const result = await runCli(['push', `docker-archive:${archive}`, `${suite.registry.host}/zstd/old:v1`, '--compression', 'zstd']);
    assertOneLineError(result, new RegExp(`zstd compression needs Node\\.js 22\\.15 or newer .*this is Node\\.js ${process.versions.node.replaceAll('.', '\\.')}; .*--compression gzip`));
    await nothingPushed();
  });

  it('pushes the layers as zstd in an OCI manifest, and skopeo pulls back the very layers', { skip: !hasZstd && 'this Node.js has no zstd' }, async () => {
    const destination = `${suite.registry.host}/zstd/app:v1`;
    const result = await runCli(['push', `docker-archive:${archive}`, destination, '--compression', 'zstd', '--progress', 'plain']);
    assert.equal(result.code, 0, result.stderr);

    const { json: manifest } = await skopeoInspectRaw(destination);
    assert.equal(manifest.mediaType, 'application/vnd.oci.image.manifest.v1+json');
    assert.deepEqual(
      manifest.layers.map((layer: { mediaType: string }) => layer.mediaType),
      ['application/vnd.oci.image.layer.v1.tar+zstd', 'application/vnd.oci.image.layer.v1.tar+zstd'],
    );

    // skopeo checks every blob's digest as it pulls; the layers, unzstd'ed, must be the image's diff IDs.
    const pulled = join(suite.work, 'pulled');
    await skopeoCopyToOci(destination, pulled);
    const blob = (digest: string) => readFile(join(pulled, 'blobs', 'sha256', digest.slice('sha256:'.length)));
    const config = JSON.parse((await blob(manifest.config.digest)).toString('utf8'));
    const diffIds: string[] = [];
    for (const layer of manifest.layers as Array<{ digest: string }>) {
      const tar = zstd.zstdDecompressSync?.(await blob(layer.digest)) ?? Buffer.alloc(0);
      diffIds.push(`sha256:${createHash('sha256').update(tar).digest('hex')}`);
    }
    assert.deepEqual(diffIds, config.rootfs.diff_ids);
  });
});
