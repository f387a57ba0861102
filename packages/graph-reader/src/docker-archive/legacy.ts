import { createHash } from 'node:crypto';
import { Readable } from 'node:stream';

import type { Digest, ImageRecord, LayerLink, OpenOptions } from '@rxpush/core';
import { InvalidSourceError, SourceError, UsageError, sha256Digest } from '@rxpush/core';

import type { ArchiveFile, ArchiveFiles } from './archive-files.js';
import type { ReadDockerArchiveOptions } from './options.js';
import type { DockerArchiveReference } from './reference.js';
import { saveConfigSource, saveLayerSource } from './save-image.js';
import { parseRepositories, selectImages } from './save-manifest.js';
import { legacyConfig, parseV1LayerJson, type V1LayerJson } from './save-v1.js';

/** One layer directory of a legacy archive: `<id>/json` and `<id>/layer.tar`. */
interface LegacyLayer {
  readonly id: string;
  readonly json: V1LayerJson;
  readonly jsonFile: ArchiveFile;
  readonly tar: ArchiveFile;
}

/**
 * Reads a legacy `docker save` archive (Docker before 1.10): no manifest.json, one directory per layer
 * with `json`, `VERSION` and `layer.tar`, and a `repositories` file naming each tag's top layer. The
 * image is the chain of `parent` links from the top layer down; its config is made from the top layer's
 * JSON as `docker load` makes it. Layers are emitted as a parent chain, for the layer walker.
 */
export async function readLegacyArchive(files: ArchiveFiles, reference: DockerArchiveReference, options: ReadDockerArchiveOptions): Promise<ImageRecord[]> {
  const { archive } = files;
  const repositories = files.find('repositories', 'the legacy tag list');
  if (repositories === undefined) {
    throw new InvalidSourceError(archive,
      `${archive} is not a docker save archive: it has neither manifest.json nor a legacy repositories file; write one with docker save NAME:TAG -o FILE`,
    );
  }
  if (reference.selector?.kind === 'index') {
    throw new UsageError(`${options.source}: @INDEX counts the images of manifest.json, and ${archive} is a legacy archive without one; choose the image as NAME:TAG`);
  }
  const byTop = new Map<string, string[]>();
  for (const { repoTag, id } of parseRepositories(await files.read(repositories, 'the legacy tag list'), repositories.origin)) {
    byTop.set(id, [...(byTop.get(id) ?? []), repoTag]);
  }
  const candidates = [...byTop].map(([id, repoTags]) => ({ image: id, repoTags }));
  const selected = selectImages(candidates, reference.selector, options.allTags, { source: options.source, archive });

  // Images of one archive share base layers: each layer tar is hashed once.
  const diffIds = new Map<number, Promise<Digest>>();
  const records: ImageRecord[] = [];
  for (const { image: top, tags } of selected) {
    const repoTag = byTop.get(top)?.[0];
    const source = reference.selector !== undefined || repoTag === undefined ? options.source : `docker-archive:${archive}:${repoTag}`;
    const chain = await readChain(files, top, `${repositories.origin} (${repoTag ?? top})`);
    records.push(await legacyImage(files, chain, tags, source, diffIds));
  }
  return records;
}

/** Follows `parent` from the top layer to the base, refusing loops and parents missing from the archive; base first. */
async function readChain(files: ArchiveFiles, top: string, topReferrer: string): Promise<LegacyLayer[]> {
  const chain: LegacyLayer[] = [];
  const seen = new Set<string>();
  let referrer = topReferrer;
  for (let id: string | undefined = top; id !== undefined; ) {
    if (seen.has(id)) {
      throw new InvalidSourceError(files.archive, `the parent chain of ${topReferrer} loops: ${referrer} names ${id} as its parent, which is already in the chain; the archive is corrupt, re-export the image`);
    }
    seen.add(id);
    const what = `layer ${id}`;
    const jsonFile = files.find(`${id}/json`, what);
    if (jsonFile === undefined) {
      const role = chain.length === 0 ? 'its top layer' : 'its parent';
      throw new InvalidSourceError(files.archive, `layer ${id} is missing from ${files.archive}: ${referrer} names it as ${role}, but there is no ${id}/json; the archive is incomplete, re-export the image`);
    }
    let json: V1LayerJson;
    try {
      json = parseV1LayerJson(await files.read(jsonFile, what));
    } catch (err) {
      if (err instanceof SourceError) throw err;
      throw new InvalidSourceError(files.archive, `${jsonFile.origin} ${(err as Error).message}; the archive is damaged, re-export the image`);
    }
    const tar = files.require(`${id}/layer.tar`, what, `${jsonFile.origin} describes it`);
    chain.push({ id, json, jsonFile, tar });
    referrer = jsonFile.origin;
    id = json.parent;
  }
  return chain.reverse();
}

async function legacyImage(files: ArchiveFiles, chain: readonly LegacyLayer[], tags: string[], source: string, hashed: Map<number, Promise<Digest>>): Promise<ImageRecord> {
  // A legacy archive records no diff IDs, and the config must list them: each layer tar is hashed
  // here, once, before anything is pushed. Only this form needs the extra read; the uploader still
  // checks each layer against its diff ID as it streams it.
  const diffIds: Digest[] = [];
  for (const layer of chain) {
    const what = `layer ${layer.id}`;
    let diffId = hashed.get(layer.tar.member.offset);
    if (diffId === undefined) {
      diffId = files.checkPlainTar(layer.tar, what).then(() => hashFile(files, layer.tar));
      hashed.set(layer.tar.member.offset, diffId);
    }
    diffIds.push(await diffId);
  }

  const top = chain.at(-1);
  if (top === undefined) throw new Error('a legacy chain has at least its top layer');
  let config: Buffer;
  try {
    config = legacyConfig(
      chain.map((layer) => layer.json),
      diffIds,
    );
  } catch (err) {
    throw new InvalidSourceError(files.archive, `cannot make the image config from ${top.jsonFile.origin} as docker load would: ${(err as Error).message}; the archive is damaged, re-export the image`);
  }
  const digest = sha256Digest(config);

  let link: LayerLink | undefined;
  for (const [i, layer] of chain.entries()) {
    const below = link;
    const diffId = diffIds[i] as Digest;
    link = {
      id: layer.id,
      blob: saveLayerSource({
        diffId,
        origin: layer.tar.origin,
        size: layer.tar.member.size,
        open: (options) => files.open(layer.tar, options),
        file: { open: (options) => files.openFile(options), offset: files.offsetOf(layer.tar) },
      }),
      parent: () => Promise.resolve(below),
    };
  }

  const { architecture, os, variant } = top.json.fields;
  return {
    kind: 'image',
    source,
    tags,
    config: saveConfigSource({
      digest,
      origin: `${top.jsonFile.origin} (made into an image config as docker load does)`,
      size: config.length,
      open: async (options?: OpenOptions) => {
        options?.signal?.throwIfAborted();
        return Readable.from([config]);
      },
    }),
    layers: { kind: 'chain', top: link },
    ...(typeof architecture === 'string' &&
      typeof os === 'string' && { platform: { architecture, os, ...(typeof variant === 'string' && variant !== '' && { variant }) } }),
  };
}

/** The sha256 of a whole archive member, streamed. */
async function hashFile(files: ArchiveFiles, file: ArchiveFile): Promise<Digest> {
  const hash = createHash('sha256');
  for await (const chunk of await files.open(file)) hash.update(chunk as Buffer);
  return `sha256:${hash.digest('hex')}`;
}
