import { stat } from 'node:fs/promises';
import { join } from 'node:path';

import type { Digest } from '@rxpush/core';
import { InvalidSourceError, SourceError, splitDigest } from '@rxpush/core';

import { chainIds } from '../shared/chain-ids.js';
import { isNotFound } from '../shared/files.js';
import { damaged, readDigestFile, readMetadataFile } from './metadata-file.js';

/** One layer of Docker's layer store (`image/<driver>/layerdb/sha256/<chain ID>/`), checked. */
export interface StoredLayer {
  readonly chainId: Digest;
  /** The layer's layerdb directory. */
  readonly dir: string;
  /** The digest of the layer's tar (layerdb `diff`), equal to the config's diff ID at its index. */
  readonly diffId: Digest;
  /** The storage driver's id of the layer's files (layerdb `cache-id`). */
  readonly cacheId: string;
}

// Docker's cache ids are 64 hex digits; anything that could be a path (/, ..) must never reach join().
const CACHE_ID = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$/;

/**
 * Walks an image's layers in Docker's layer store from the top (the chain ID of its last diff ID)
 * down the `parent` files to the base, and returns them base first, checked against the image config:
 * the chain must not loop, every parent must exist, and the layers' `diff` files must be the config's
 * diff IDs, in order, each in the directory of its chain ID.
 *
 * Throws a `SourceError` naming the layer directory or `parent` file at fault.
 *
 * @example await readLayerChain('/var/lib/docker/image/vfs/layerdb', config.rootfs.diff_ids, configPath)
 */
export async function readLayerChain(layerdb: string, diffIds: readonly Digest[], configPath: string): Promise<StoredLayer[]> {
  const expected = chainIds(diffIds);
  const top = expected.at(-1);
  const layers: StoredLayer[] = [];
  const seen = new Set<string>();
  let pointer: string | undefined;
  for (let id = top; id !== undefined; ) {
    if (seen.has(id)) {
      throw new InvalidSourceError(pointer ?? layerdb, `${pointer} points back to layer ${id}: the layer chain loops, so Docker's layer store is damaged; pull or load the image into Docker again`);
    }
    seen.add(id);
    const dir = join(layerdb, 'sha256', splitDigest(id).hex);
    const stats = await stat(dir).catch((err: unknown) => {
      if (!isNotFound(err)) throw err;
      const why = pointer === undefined ? `the top layer of the image (config ${configPath}) is ${id}` : `${pointer} names layer ${id}`;
      throw new InvalidSourceError(dir, `${why}, but ${dir} does not exist: Docker's layer store is missing a layer; pull or load the image into Docker again`);
    });
    if (!stats.isDirectory()) throw damaged(dir, 'is not a directory');

    const diffPath = join(dir, 'diff');
    const diffId = await readDigestFile(diffPath, 'the layer diff ID');
    if (diffId === undefined) throw damaged(diffPath, '(the layer diff ID) is missing or empty');
    const cacheIdPath = join(dir, 'cache-id');
    const cacheId = (await readMetadataFile(cacheIdPath, 'the storage driver id', 1024))?.toString('utf8').trim();
    if (cacheId === undefined || !CACHE_ID.test(cacheId)) {
      throw damaged(cacheIdPath, cacheId === undefined ? '(the storage driver id) is missing' : `(the storage driver id) holds "${cacheId.slice(0, 80)}", not an id`);
    }
    layers.push({ chainId: id, dir, diffId, cacheId });
    pointer = join(dir, 'parent');
    id = await readDigestFile(pointer, 'the parent layer');
  }
  layers.reverse();

  // Same diffs, same order: then each layer must also sit under the chain ID its position gives.
  for (let i = 0; i < Math.max(layers.length, diffIds.length); i++) {
    const layer = layers[i];
    if (layer === undefined || layer.diffId !== diffIds[i]) {
      throw new InvalidSourceError(layer?.dir ?? configPath,
        `${configPath} lists ${diffIds.length} layers but the layer chain under ${layerdb} from ${top} has ${layers.length}, ` +
          `differing at layer ${i + 1} (config ${diffIds[i] ?? 'none'}, layer store ${layer?.diffId ?? 'none'}${layer ? ` in ${layer.dir}` : ''}): ` +
          `Docker's layer store is damaged; pull or load the image into Docker again`,
      );
    }
    if (layer.chainId !== expected[i]) throw damaged(layer.dir, `sits at layer ${i + 1} of the image, whose chain ID there is ${expected[i]}`);
  }
  return layers;
}
