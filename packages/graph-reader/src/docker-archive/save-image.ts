import type { FileHandle } from 'node:fs/promises';
import type { Readable } from 'node:stream';

import type { BlobSource, Digest, OpenOptions, Platform } from '@rxpush/core';
import { InvalidSourceError, MediaType, SourceError, isDigest, parseDigest } from '@rxpush/core';

import { parseJsonObject } from '../shared/json.js';

/** What rxpush reads from an image config: the layers' diff IDs and the platform. */
export interface ConfigFacts {
  readonly diffIds: Digest[];
  readonly platform?: Platform;
}

/** Reads the diff IDs (`rootfs.diff_ids`) and platform of a Docker image config; `file` names it in errors. */
export function readConfigFacts(bytes: Uint8Array, file: string): ConfigFacts {
  const { rootfs, architecture, os, variant } = parseJsonObject(bytes, (problem) => invalidConfig(file, problem));
  const ids = (rootfs as { diff_ids?: unknown } | null | undefined)?.diff_ids ?? [];
  if (!Array.isArray(ids)) throw invalidConfig(file, 'has a "rootfs.diff_ids" that is not a list');
  const diffIds = ids.map((id, i) => parseDigest(id, `rootfs.diff_ids[${i}] of ${file}`));
  const platform: Platform | undefined =
    typeof architecture === 'string' && typeof os === 'string' ? { architecture, os, ...(typeof variant === 'string' && variant !== '' && { variant }) } : undefined;
  return { diffIds, ...(platform !== undefined && { platform }) };
}

/** Fails unless a config lists exactly one diff ID per layer the image names. */
export function checkLayerCount(facts: ConfigFacts, layerCount: number, file: string, layersFrom: string): void {
  if (facts.diffIds.length !== layerCount) {
    throw new InvalidSourceError(file,
      `${file} lists ${facts.diffIds.length} layer diff IDs (rootfs.diff_ids) but ${layersFrom} names ${layerCount} layers; the config does not belong to these layers, re-export the image`,
    );
  }
}

/**
 * A layer of a `docker save` archive or stream: an uncompressed tar the uploader compresses while it
 * hashes it, checking it against its diff ID in the same pass.
 */
export function saveLayerSource(init: {
  diffId: Digest;
  origin: string;
  size?: number;
  open(options?: OpenOptions): Promise<Readable>;
  /** A layer that is a range of a file (an archive's member): the file, and where in it the layer starts. */
  file?: { open(options?: OpenOptions): Promise<FileHandle>; offset: number };
  release?(): void;
}): BlobSource {
  return {
    key: init.diffId,
    role: 'layer',
    mediaType: MediaType.dockerLayer,
    diffId: init.diffId,
    form: 'uncompressed',
    origin: init.origin,
    ...(init.size !== undefined && { size: init.size }),
    open: init.open,
    ...(init.file !== undefined && init.size !== undefined && { openFile: init.file.open, fileOffset: init.file.offset }),
    ...(init.release !== undefined && { release: init.release }),
  };
}

/** The image config of a `docker save` archive or stream, pushed byte for byte as its digest (the image ID) says. */
export function saveConfigSource(init: { digest: Digest; origin: string; size?: number; open(options?: OpenOptions): Promise<Readable>; release?(): void }): BlobSource {
  return {
    key: init.digest,
    role: 'config',
    mediaType: MediaType.dockerConfig,
    digest: init.digest,
    form: 'stored',
    origin: init.origin,
    ...(init.size !== undefined && { size: init.size }),
    open: init.open,
    ...(init.release !== undefined && { release: init.release }),
  };
}

/** The digest a `<hex>.json` or `blobs/sha256/<hex>` file name claims for its content, if it claims one. */
export function digestInName(name: string): Digest | undefined {
  const match = /(?:^|\/)(?:blobs\/sha256\/([a-f0-9]{64})|([a-f0-9]{64})\.json)$/.exec(name);
  const hex = match?.[1] ?? match?.[2];
  const digest = hex !== undefined ? `sha256:${hex}` : undefined;
  return isDigest(digest) ? digest : undefined;
}

function invalidConfig(file: string, problem: string): SourceError {
  return new InvalidSourceError(file, `${file} ${problem}; the image config is damaged, re-export the image`);
}
