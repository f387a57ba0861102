import type { Descriptor, Digest, ImageRecord, IndexRecord, Logger, Platform, SourceRecord } from '@rxpush/core';
import { InvalidSourceError, MediaType, SourceNotFoundError, UnsupportedError, UsageError, isDigest, isImageManifestType, isIndexType, parseDigest } from '@rxpush/core';

import { openLayoutDirectory } from './layout-directory.js';
import { verifyDigest } from '../shared/files.js';
import { checkSize, type LayoutBlob, type LayoutFiles } from './layout-files.js';
import { parseJson } from '../shared/json.js';
import { checkImagePlatform, findPlatform, platformText } from '../shared/platform.js';
import { REF_NAME, parseIndex, parseJsonObject, parseManifest } from './documents.js';
import type { OciReference } from './reference.js';

/** How to read a layout; `source` is the whole source string as the user gave it. */
export interface ReadOciLayoutOptions {
  readonly source: string;
  readonly allTags: boolean;
  readonly logger: Logger;
  /** Of an index, read only this platform's image, pushed under the index's tags (`--platform`). */
  readonly platform?: Platform | undefined;
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
  return readLayout(await openLayoutDirectory(reference.dir), reference.ref, options);
}

/**
 * Reads the images `ref` selects from the files of a layout, wherever they are kept (see LayoutFiles),
 * with the same checks for each.
 */
export async function readLayout(files: LayoutFiles, ref: string | undefined, options: ReadOciLayoutOptions): Promise<SourceRecord[]> {
  const markerFile = files.display('oci-layout');
  const marker = await files.readRootFile('oci-layout', 'the layout marker');
  if (marker === undefined) throw files.notALayout(`${markerFile} is missing`);
  const version = parseJsonObject(marker, markerFile).imageLayoutVersion;
  if (version !== '1.0.0') {
    throw new InvalidSourceError(markerFile, `${markerFile} has imageLayoutVersion ${JSON.stringify(version) ?? 'missing'}; rxpush reads OCI image layouts of version 1.0.0`);
  }

  const indexFile = files.display('index.json');
  const indexBytes = await files.readRootFile('index.json', 'the layout index');
  if (indexBytes === undefined) throw files.notALayout(`${indexFile} is missing`);
  const index = parseIndex(indexBytes, indexFile, [MediaType.ociIndex]);
  const selections = select(index.manifests, files, ref, options, indexFile);

  const records: SourceRecord[] = [];
  for (const { descriptor, tags } of selections) {
    // A record named by what selected it, so later messages say which image of the layout they mean.
    const source = ref !== undefined ? options.source : `${files.transport}:${files.location}:${tags[0] ?? descriptor.digest}`;
    records.push(await readRecord(files, descriptor, tags, source, indexFile, options.platform));
  }
  options.logger.debug({ transport: files.transport, location: files.location, images: records.length }, 'OCI layout read');
  return records;
}

/** Applies REF, `allTags` or the defaults (`latest`, else the only image) to the entries of index.json. */
function select(entries: readonly Descriptor[], files: LayoutFiles, ref: string | undefined, options: ReadOciLayoutOptions, indexFile: string): Selection[] {
  const nameOf = (entry: Descriptor) => entry.annotations?.[REF_NAME];
  const names = [...new Set(entries.flatMap((entry) => nameOf(entry) ?? []))];
  const available = names.length > 0 ? `it has: ${names.join(', ')}` : `it names no images; select one by digest: ${entries.map((e) => e.digest).join(', ')}`;

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
    if (byDigest.size === 0) throw new InvalidSourceError(indexFile, `${indexFile} has no ref names to push as tags; ${available}`);
    return [...byDigest.values()];
  }

  if (ref !== undefined && /^sha(256|512):/.test(ref)) {
    const digest = parseDigest(ref, `digest in source ${options.source}`);
    const entry = entries.find((e) => e.digest === digest);
    if (entry === undefined) throw new SourceNotFoundError(indexFile, `no image with digest ${digest} in ${indexFile}; ${available}`);
    return [{ descriptor: entry, tags: [] }];
  }
  if (ref !== undefined) {
    const entry = entries.find((e) => nameOf(e) === ref);
    if (entry === undefined) throw new SourceNotFoundError(indexFile, `no image named "${ref}" in ${indexFile}; ${available}`);
    return [{ descriptor: entry, tags: [ref] }];
  }

  const latest = entries.find((e) => nameOf(e) === 'latest');
  if (latest !== undefined) return [{ descriptor: latest, tags: ['latest'] }];
  const [only, ...others] = entries;
  if (only === undefined) throw new InvalidSourceError(indexFile, `${indexFile} lists no images; the layout is empty`);
  if (others.length > 0) {
    throw new InvalidSourceError(indexFile,
      `${files.location} holds ${entries.length} images and none is named "latest"; choose one as ${files.transport}:${files.location}:REF or push them all with --all-tags (${available})`,
    );
  }
  const name = nameOf(only);
  return [{ descriptor: only, tags: name !== undefined ? [name] : [] }];
}

/** The record of an entry of index.json: an image, an index read whole, or the one image of an index `platform` picks. */
async function readRecord(files: LayoutFiles, descriptor: Descriptor, tags: string[], source: string, indexFile: string, platform: Platform | undefined): Promise<SourceRecord> {
  const { mediaType, digest } = descriptor;
  if (isImageManifestType(mediaType)) return readImage(files, descriptor, tags, source, platform);
  if (!isIndexType(mediaType)) {
    throw new UnsupportedError(`${source}: ${indexFile} lists ${digest} as ${mediaType}, not an image manifest or index; rxpush pushes images only`);
  }

  const { path, bytes } = await readDocument(files, descriptor, `index ${digest}`);
  const index = parseIndex(bytes, path, [mediaType]);
  const imageOf = (child: Descriptor, childTags: string[]): Promise<ImageRecord> => {
    if (!isImageManifestType(child.mediaType)) {
      throw new UnsupportedError(`${source}: index ${path} lists ${child.digest} as ${child.mediaType}; rxpush pushes indexes of image manifests only`);
    }
    return readImage(files, child, childTags, source);
  };
  if (platform !== undefined) {
    const chosen = findPlatform(index.manifests, platform);
    if (chosen === undefined) {
      const offered = index.manifests.map((entry) => platformText(entry.platform)).join(', ');
      throw new SourceNotFoundError(path, `${source} has no image for ${platformText(platform)}; its index ${digest} offers ${offered}`);
    }
    // Pushed by itself, under the index's tags, as `docker pull --platform` then `docker push` would.
    return imageOf(chosen, tags);
  }
  const manifests: ImageRecord[] = [];
  for (const child of index.manifests) manifests.push(await imageOf(child, []));
  const record: IndexRecord = { kind: 'index', source, tags, manifests, index: { bytes, mediaType, digest } };
  return record;
}

/** An image manifest's record; `platform`, for an image the source names by itself, must be its config's. */
async function readImage(files: LayoutFiles, descriptor: Descriptor, tags: string[], source: string, platform?: Platform): Promise<ImageRecord> {
  const { mediaType, digest } = descriptor;
  const { path, bytes } = await readDocument(files, descriptor, `manifest ${digest}`);
  const manifest = parseManifest(bytes, path, mediaType);

  const configRead = await readDocument(files, manifest.config, `config of manifest ${digest}`);
  if (platform !== undefined) checkImagePlatform(configRead.bytes, platform, source);
  const diffIds = diffIdsOf(configRead.bytes, manifest.layers.length);
  const config = configRead.blob.source(manifest.config, 'config');

  const layers = [];
  for (const [i, layer] of manifest.layers.entries()) {
    const what = `layer ${i + 1} of manifest ${digest}`;
    const blob = await files.findBlob(layer.digest, what);
    // Only the size here: a layer's hash is checked by the uploader as it streams, not read twice.
    checkSize(blob.path, blob.size, layer.size, what);
    layers.push(blob.source(layer, 'layer', diffIds[i]));
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
async function readDocument(files: LayoutFiles, descriptor: Descriptor, what: string): Promise<{ path: string; bytes: Buffer; blob: LayoutBlob }> {
  const blob = await files.findBlob(descriptor.digest, what);
  checkSize(blob.path, blob.size, descriptor.size, what);
  const bytes = await blob.read(what);
  verifyDigest(bytes, descriptor.digest, blob.path);
  return { path: blob.path, bytes, blob };
}

/** The config's diff IDs when it lists one per layer; a config rxpush cannot read just yields none. */
function diffIdsOf(config: Uint8Array, layerCount: number): (Digest | undefined)[] {
  let json: unknown;
  try {
    json = parseJson(config, (problem) => new Error(problem));
  } catch {
    // Not JSON (an artifact's config): there are no diff IDs to carry.
    return [];
  }
  const ids: unknown = (json as { rootfs?: { diff_ids?: unknown } } | null)?.rootfs?.diff_ids;
  if (Array.isArray(ids) && ids.length === layerCount) return ids.map((id) => (isDigest(id) ? id : undefined));
  return [];
}
