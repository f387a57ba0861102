import { stat } from 'node:fs/promises';

import type { BlobSource, Descriptor, Digest, ImageRecord } from '@rxpush/core';
import { DigestMismatchError, InvalidSourceError, SourceNotFoundError, UnsupportedError, sha256Digest } from '@rxpush/core';

import { ArchiveFiles, type ArchiveFile } from './archive-files.js';
import { readLegacyArchive } from './legacy.js';
import type { ReadDockerArchiveOptions } from './options.js';
import type { DockerArchiveReference } from './reference.js';
import { checkLayerCount, digestInName, readConfigFacts, saveConfigSource, saveLayerSource } from './save-image.js';
import { parseSaveManifest, selectImages, type SaveManifestEntry } from './save-manifest.js';
import { isNotFound, tildeHint } from '../shared/files.js';
import { indexTar } from '../oci/tar-index.js';

/**
 * Reads the images a reference selects from a `docker save` archive (`docker-archive:PATH[:NAME:TAG]`),
 * in place: the tar is indexed by its headers once, small files are read from their offsets, and each
 * layer streams straight out of the archive when the uploader opens it (so several can compress at
 * once). Both forms docker save has written are read: manifest.json with layer tars (`<id>/layer.tar`,
 * skopeo's `<diffID>.tar`, or newer Docker's `blobs/sha256/<hex>`), and the legacy per-layer
 * directories with a `repositories` file. Everything but the layers' bytes is checked before returning.
 */
export async function readDockerArchive(reference: DockerArchiveReference, options: ReadDockerArchiveOptions): Promise<ImageRecord[]> {
  const { path } = reference;
  const stats = await stat(path).catch((err: unknown) => {
    if (isNotFound(err)) throw new SourceNotFoundError(path, `docker archive ${path} does not exist; check PATH in docker-archive:PATH[:NAME:TAG]${tildeHint(path, 'docker-archive:')}`);
    throw err;
  });
  if (stats.isDirectory()) {
    throw new InvalidSourceError(path, `${path} is a directory; docker-archive:PATH needs the tar file docker save writes (docker save NAME:TAG -o FILE)`);
  }
  const files = new ArchiveFiles(await indexTar(path));
  const manifest = files.find('manifest.json', 'the list of images');
  const records = manifest !== undefined ? await readCurrentArchive(files, manifest, reference, options) : await readLegacyArchive(files, reference, options);
  options.logger.debug({ path, images: records.length, form: manifest !== undefined ? 'manifest.json' : 'legacy' }, 'docker archive read');
  return records;
}

async function readCurrentArchive(files: ArchiveFiles, manifestFile: ArchiveFile, reference: DockerArchiveReference, options: ReadDockerArchiveOptions): Promise<ImageRecord[]> {
  const entries = parseSaveManifest(await files.read(manifestFile, 'the list of images'), manifestFile.origin);
  const candidates = entries.map((entry) => ({ image: entry, repoTags: entry.repoTags }));
  const selected = selectImages(candidates, reference.selector, options.allTags, { source: options.source, archive: files.archive });
  const records: ImageRecord[] = [];
  for (const { image, tags } of selected) {
    // Named by what selected it, so later messages say which image of the archive they mean.
    const source = reference.selector !== undefined || image.repoTags[0] === undefined ? options.source : `docker-archive:${files.archive}:${image.repoTags[0]}`;
    records.push(await readEntry(files, image, tags, source, manifestFile.origin));
  }
  return records;
}

async function readEntry(files: ArchiveFiles, entry: SaveManifestEntry, tags: string[], source: string, manifestOrigin: string): Promise<ImageRecord> {
  const what = `config of image ${entry.index} in manifest.json`;
  const configFile = files.require(entry.config, what, `${manifestOrigin} names it`);
  const bytes = await files.read(configFile, what);
  const digest = sha256Digest(bytes);
  // docker save names the config by the image ID, the sha256 of its bytes.
  const named = digestInName(entry.config);
  if (named !== undefined && named !== digest) throw new DigestMismatchError(named, digest, configFile.origin);
  const facts = readConfigFacts(bytes, configFile.origin);
  checkLayerCount(facts, entry.layers.length, configFile.origin, `${manifestOrigin} (image ${entry.index})`);

  const layers: BlobSource[] = [];
  for (const [i, name] of entry.layers.entries()) {
    const diffId = facts.diffIds[i];
    if (diffId === undefined) continue; // counted above
    const foreign = entry.layerSources.get(diffId);
    if (foreign !== undefined && /foreign|nondistributable/.test(foreign.mediaType)) {
      layers.push(foreignLayer(foreign, diffId, files.origin(name)));
      continue;
    }
    const layerWhat = `layer ${i + 1} of ${entry.layers.length}`;
    const file = files.require(name, layerWhat, `${manifestOrigin} names it`);
    await files.checkPlainTar(file, layerWhat);
    layers.push(
      saveLayerSource({
        diffId,
        origin: file.origin,
        size: file.member.size,
        open: (options) => files.open(file, options),
        file: { open: (options) => files.openFile(options), offset: files.offsetOf(file) },
      }),
    );
  }

  return {
    kind: 'image',
    source,
    tags,
    config: saveConfigSource({ digest, origin: configFile.origin, size: bytes.length, open: (options) => files.open(configFile, options) }),
    layers: { kind: 'list', layers },
    ...(facts.platform !== undefined && { platform: facts.platform }),
  };
}

/** A foreign layer (a Windows base layer) lives at its URLs; the registry never holds it, so it is only described. */
function foreignLayer(descriptor: Descriptor, diffId: Digest, origin: string): BlobSource {
  return {
    key: descriptor.digest,
    role: 'layer',
    mediaType: descriptor.mediaType,
    digest: descriptor.digest,
    size: descriptor.size,
    diffId,
    form: 'stored',
    origin,
    ...(descriptor.urls !== undefined && { urls: descriptor.urls }),
    open: () => Promise.reject(new UnsupportedError(`${origin} is a foreign layer that lives at ${descriptor.urls?.join(', ') ?? 'its URLs'}; it is not pushed`)),
  };
}
