/**
 * Test helpers: small Docker data roots laid out as dockerd lays them out (reference store, image
 * configs, layer store with parent links and tar-split metadata, the storage driver's files), for the
 * checks that need damaged ones. test/docker-root.test.ts reads real ones made by dockerd.
 */
import { createHash } from 'node:crypto';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestContext } from 'node:test';

import { chainIds } from '../src/shared/chain-ids.js';
import { buildTar, splitTar, tarSplitFile, writeLayerFiles, type TarEntrySpec } from './tar-splits.js';

export interface DataRootImage {
  /** The repository as Docker stores it (familiar form: `alpine`, `app/web`, `127.0.0.1:5000/app`). */
  readonly repository: string;
  readonly tags: readonly string[];
  readonly layers: readonly (readonly TarEntrySpec[])[];
}

export interface MadeImage {
  readonly imageId: string;
  readonly configPath: string;
  readonly diffIds: string[];
  readonly chainIds: string[];
  /** The layerdb directory of each layer, base first. */
  readonly layerDirs: string[];
  /** Where the storage driver keeps each layer's files, base first. */
  readonly filesDirs: string[];
  /** Each layer's tar, base first. */
  readonly tars: Buffer[];
}

export type Driver = 'vfs' | 'overlay2';

/** A temporary directory removed when the test ends. */
export async function tempDir(t: TestContext, prefix = 'rxpush-docker-root-'): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), prefix));
  t.after(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

const sha256 = (bytes: Buffer | string) => `sha256:${createHash('sha256').update(bytes).digest('hex')}`;
const hex = (digest: string) => digest.slice('sha256:'.length);

/** Lays out `images` in the data root `root` for storage driver `driver`. */
export async function makeDataRoot(root: string, images: readonly DataRootImage[], driver: Driver = 'vfs'): Promise<MadeImage[]> {
  const driverDir = join(root, 'image', driver);
  await mkdir(join(driverDir, 'imagedb', 'content', 'sha256'), { recursive: true });
  await mkdir(join(driverDir, 'layerdb', 'sha256'), { recursive: true });
  const repositories: Record<string, Record<string, string>> = {};
  const made: MadeImage[] = [];

  for (const image of images) {
    const tars = await Promise.all(image.layers.map((entries) => buildTar(entries)));
    const diffIds = tars.map((bytes) => sha256(bytes));
    const chains = chainIds(diffIds as `sha256:${string}`[]);
    const layerDirs: string[] = [];
    const filesDirs: string[] = [];
    for (const [i, entries] of image.layers.entries()) {
      const chain = chains[i]!;
      const dir = join(driverDir, 'layerdb', 'sha256', hex(chain));
      const cacheId = hex(sha256(`${driver} ${chain}`));
      const filesDir = driver === 'vfs' ? join(root, 'vfs', 'dir', cacheId) : join(root, 'overlay2', cacheId, 'diff');
      layerDirs.push(dir);
      filesDirs.push(filesDir);
      await mkdir(dir, { recursive: true });
      await writeFile(join(dir, 'diff'), diffIds[i]!);
      await writeFile(join(dir, 'cache-id'), cacheId);
      await writeFile(join(dir, 'size'), '0');
      if (i > 0) await writeFile(join(dir, 'parent'), chains[i - 1]!);
      await writeFile(join(dir, 'tar-split.json.gz'), tarSplitFile(splitTar(tars[i]!)));
      await writeLayerFiles(filesDir, entries);
    }
    const config = Buffer.from(
      JSON.stringify({
        architecture: 'amd64',
        os: 'linux',
        config: { Cmd: ['/bin/sh'] },
        rootfs: { type: 'layers', diff_ids: diffIds },
        history: diffIds.map(() => ({ created_by: 'rxpush test data root' })),
      }),
    );
    const imageId = sha256(config);
    const configPath = join(driverDir, 'imagedb', 'content', 'sha256', hex(imageId));
    await writeFile(configPath, config);
    const refs = (repositories[image.repository] ??= {});
    for (const tag of image.tags) refs[`${image.repository}:${tag}`] = imageId;
    made.push({ imageId, configPath, diffIds, chainIds: chains, layerDirs, filesDirs, tars });
  }
  await writeFile(join(driverDir, 'repositories.json'), JSON.stringify({ Repositories: repositories }));
  return made;
}

/** Writes Docker's distribution metadata for a layer: the compressed digests and repositories it was pushed or pulled as. */
export async function writeV2Metadata(root: string, diffId: string, entries: readonly { Digest: string; SourceRepository: string }[], driver: Driver = 'vfs'): Promise<void> {
  const dir = join(root, 'image', driver, 'distribution', 'v2metadata-by-diffid', 'sha256');
  await mkdir(dir, { recursive: true });
  await writeFile(join(dir, hex(diffId)), JSON.stringify(entries.map((entry) => ({ ...entry, HMAC: '' }))));
}
