import { realpath, stat } from 'node:fs/promises';
import { join } from 'node:path';

import type { Descriptor, Digest, ImageRecord, IndexRecord, Logger, SourceRecord } from '@rxpush/core';
import { MediaType, SourceError, UnsupportedError, UsageError, isDigest, isImageManifestType, isIndexType, parseDigest } from '@rxpush/core';

import { fileBlobSource } from './file-blob-source.js';
import { checkSize, findBlob, isNotFound, readSmallFile, verifyDigest, type LayoutDir } from './layout-files.js';
import { REF_NAME, parseIndex, parseJsonObject, parseManifest } from './oci-documents.js';
import type { OciReference } from './oci-reference.js';

/** How to read a layout; `source` is the whole source string as the user gave it. */
export interface ReadOciLayoutOptions {
  readonly source: string;
  readonly allTags: boolean;
  readonly logger: Logger;
}

/** One entry of index.json chosen to push, with the tags it is pushed as. */
interface Selection {
  readonly descriptor: Descriptor;
  readonly tags: string[];
}

/**
 * Reads the images a reference selects from an OCI image layout, checking everything a push needs
 * (documents, digests, blob files and sizes) before returning, so nothing is pushed for a broken image.
 */
export async function readOciLayout(reference: OciReference, options: ReadOciLayoutOptions): Promise<SourceRecord[]> {
  const layout = await openLayout(reference.dir);
  const indexFile = join(reference.dir, 'index.json');
  const indexBytes = await readSmallFile(indexFile, 'the layout index').catch((err: unknown) => {
    if (isNotFound(err)) throw notALayout(reference.dir, `${indexFile} is missing`);
    throw err;
  });
  const index = parseIndex(indexBytes, indexFile, [MediaType.ociIndex]);
  const selections = select(index.manifests, reference, options, indexFile);

  const records: SourceRecord[] = [];
  for (const { descriptor, tags } of selections) {
    // A record named by what selected it, so later messages say which image of the layout they mean.
    const source = reference.ref !== undefined ? options.source : `oci:${reference.dir}:${tags[0] ?? descriptor.digest}`;
    records.push(await readRecord(layout, descriptor, tags, source, indexFile));
  }
  options.logger.debug({ dir: reference.dir, images: records.length }, 'OCI layout read');
  return records;
}

async function openLayout(dir: string): Promise<LayoutDir> {
  const stats = await stat(dir).catch((err: unknown) => {
    if (isNotFound(err)) throw new SourceError('SOURCE_NOT_FOUND', dir, `OCI layout directory ${dir} does not exist; check PATH in oci:PATH[:REF]`);
    throw err;
  });
  if (!stats.isDirectory()) {
    throw new SourceError('INVALID_SOURCE', dir, `${dir} is not a directory; oci:PATH needs an OCI image layout directory (for a tar file use oci-archive:PATH)`);
  }
  const markerFile = join(dir, 'oci-layout');
  const marker = await readSmallFile(markerFile, 'the layout marker').catch((err: unknown) => {
    if (isNotFound(err)) throw notALayout(dir, `${markerFile} is missing`);
    throw err;
  });
  const version = parseJsonObject(marker, markerFile).imageLayoutVersion;
  if (version !== '1.0.0') {
    throw new SourceError('INVALID_SOURCE', markerFile, `${markerFile} has imageLayoutVersion ${JSON.stringify(version) ?? 'missing'}; rxpush reads OCI image layouts of version 1.0.0`);
  }
  return { dir, realDir: await realpath(dir) };
}

function notALayout(dir: string, why: string): SourceError {
  return new SourceError(
    'INVALID_SOURCE',
    dir,
    `${dir} is not an OCI image layout (${why}); point oci:PATH at a directory written by e.g. skopeo copy … oci:DIR or docker buildx build --output type=oci,tar=false`,
  );
}

/** Applies REF, `allTags` or the defaults (`latest`, else the only image) to the entries of index.json. */
function select(entries: readonly Descriptor[], reference: OciReference, options: ReadOciLayoutOptions, indexFile: string): Selection[] {
  const nameOf = (entry: Descriptor) => entry.annotations?.[REF_NAME];
  const names = [...new Set(entries.flatMap((entry) => nameOf(entry) ?? []))];
  const available = names.length > 0 ? `it has: ${names.join(', ')}` : `it names no images; select one by digest: ${entries.map((e) => e.digest).join(', ')}`;
  const { ref } = reference;

  if (options.allTags) {
    if (ref !== undefined) throw new UsageError(`source ${options.source} names an image (${ref}) but all tags were asked for; drop :${ref} or --all-tags`);
    // Names that point at the same manifest become one record with several tags, pushed once.
    const byDigest = new Map<Digest, Selection>();
    const seen = new Set<string>();
    for (const entry of entries) {
      const name = nameOf(entry);
      if (name === undefined) continue;
      if (seen.has(name)) {
        options.logger.warn({ name, digest: entry.digest, file: indexFile }, 'ref name listed twice; the first entry wins');
        continue;
      }
      seen.add(name);
      const selection = byDigest.get(entry.digest) ?? { descriptor: entry, tags: [] };
      selection.tags.push(name);
      byDigest.set(entry.digest, selection);
    }
    if (byDigest.size === 0) throw new SourceError('INVALID_SOURCE', indexFile, `${indexFile} has no ref names to push as tags; ${available}`);
    return [...byDigest.values()];
  }

  if (ref !== undefined && /^sha(256|512):/.test(ref)) {
    const digest = parseDigest(ref, `digest in source ${options.source}`);
    const entry = entries.find((e) => e.digest === digest);
    if (entry === undefined) throw new SourceError('SOURCE_NOT_FOUND', indexFile, `no image with digest ${digest} in ${indexFile}; ${available}`);
    return [{ descriptor: entry, tags: [] }];
  }
  if (ref !== undefined) {
    const entry = entries.find((e) => nameOf(e) === ref);
    if (entry === undefined) throw new SourceError('SOURCE_NOT_FOUND', indexFile, `no image named "${ref}" in ${indexFile}; ${available}`);
    return [{ descriptor: entry, tags: [ref] }];
  }

  const latest = entries.find((e) => nameOf(e) === 'latest');
  if (latest !== undefined) return [{ descriptor: latest, tags: ['latest'] }];
  const [only, ...others] = entries;
  if (only === undefined) throw new SourceError('INVALID_SOURCE', indexFile, `${indexFile} lists no images; the layout is empty`);
  if (others.length > 0) {
    throw new SourceError(
      'INVALID_SOURCE',
      indexFile,
      `${reference.dir} holds ${entries.length} images and none is named "latest"; choose one as oci:${reference.dir}:REF or push them all with --all-tags (${available})`,
    );
  }
  const name = nameOf(only);
  return [{ descriptor: only, tags: name !== undefined ? [name] : [] }];
}

async function readRecord(layout: LayoutDir, descriptor: Descriptor, tags: string[], source: string, indexFile: string): Promise<SourceRecord> {
  const { mediaType, digest } = descriptor;
  if (isImageManifestType(mediaType)) return readImage(layout, descriptor, tags, source);
  if (!isIndexType(mediaType)) {
    throw new UnsupportedError(`${source}: ${indexFile} lists ${digest} as ${mediaType}, not an image manifest or index; rxpush pushes images only`);
  }

  const { path, bytes } = await readDocument(layout, descriptor, `index ${digest}`);
  const index = parseIndex(bytes, path, [mediaType]);
  const manifests: ImageRecord[] = [];
  for (const child of index.manifests) {
    if (!isImageManifestType(child.mediaType)) {
      throw new UnsupportedError(`${source}: index ${path} lists ${child.digest} as ${child.mediaType}; rxpush pushes indexes of image manifests only`);
    }
    manifests.push(await readImage(layout, child, [], source));
  }
  const record: IndexRecord = { kind: 'index', source, tags, manifests, index: { bytes, mediaType, digest } };
  return record;
}

async function readImage(layout: LayoutDir, descriptor: Descriptor, tags: string[], source: string): Promise<ImageRecord> {
  const { mediaType, digest } = descriptor;
  const { path, bytes } = await readDocument(layout, descriptor, `manifest ${digest}`);
  const manifest = parseManifest(bytes, path, mediaType);

  const configRead = await readDocument(layout, manifest.config, `config of manifest ${digest}`);
  const diffIds = diffIdsOf(configRead.bytes, manifest.layers.length);
  const config = fileBlobSource(manifest.config, 'config', configRead.path);

  const layers = [];
  for (const [i, layer] of manifest.layers.entries()) {
    const what = `layer ${i + 1} of manifest ${digest}`;
    const file = await findBlob(layout, layer.digest, what);
    // Only the size here: a layer's hash is checked by the uploader as it streams, not read twice.
    checkSize(file.path, file.size, layer.size, what);
    layers.push(fileBlobSource(layer, 'layer', file.path, diffIds[i]));
  }

  return {
    kind: 'image',
    source,
    tags,
    config,
    layers: { kind: 'list', layers },
    manifest: { bytes, mediaType, digest },
    ...(descriptor.platform !== undefined && { platform: descriptor.platform }),
    ...(manifest.annotations !== undefined && { annotations: manifest.annotations }),
  };
}

/** Reads a manifest, index or config blob whole and checks its size and digest. */
async function readDocument(layout: LayoutDir, descriptor: Descriptor, what: string): Promise<{ path: string; bytes: Buffer }> {
  const file = await findBlob(layout, descriptor.digest, what);
  checkSize(file.path, file.size, descriptor.size, what);
  const bytes = await readSmallFile(file.path, what);
  verifyDigest(bytes, descriptor.digest, file.path);
  return { path: file.path, bytes };
}

/** The config's diff IDs when it lists one per layer; a config rxpush cannot read just yields none. */
function diffIdsOf(config: Uint8Array, layerCount: number): (Digest | undefined)[] {
  try {
    const ids: unknown = JSON.parse(Buffer.from(config).toString('utf8'))?.rootfs?.diff_ids;
    if (Array.isArray(ids) && ids.length === layerCount) return ids.map((id) => (isDigest(id) ? id : undefined));
  } catch {
    // Not JSON (an artifact's config): there are no diff IDs to carry.
  }
  return [];
}
