import { readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable } from 'node:stream';

import type { BlobSource, Digest, ImageRecord, LayerLink, Logger } from '@rxpush/core';
import { InvalidSourceError, MediaType, SourceError, SourceNotFoundError, UnsupportedError, UsageError, isDigest, splitDigest } from '@rxpush/core';

import { parseJson } from '../shared/json.js';
import { assembleTarSplit, type TarSplitFiles } from '../tar-split/assembly.js';
import { readTarSplitEntries, type TarSplitEntry, type TarSplitLimits } from '../tar-split/entries.js';
import { readDistributionHints } from './distribution-hints.js';
import { isNotFound, verifyDigest } from '../shared/files.js';
import { withPermissionHint } from './docker-root-errors.js';
import { parseDockerRootReference, type DockerRootReference } from './docker-root-reference.js';
import { displayName, layerFiles, layerRelativePath } from './layer-files.js';
import { readLayerChain, type StoredLayer } from './layer-chain.js';
import { damaged, readMetadataFile } from './metadata-file.js';

/** Where the data root is and how to read it; `source` is the whole source string as the user gave it. */
export interface ReadDockerRootOptions {
  readonly source: string;
  /** Docker's data root (`--data-root`, `docker info -f '{{.DockerRootDir}}'`). */
  readonly dataRoot: string;
  /** The storage driver whose images to read, when the data root has images of several. */
  readonly storageDriver?: string;
  readonly allTags: boolean;
  readonly logger: Logger;
  /** Caps on each layer's tar-split metadata (tests lower them). */
  readonly tarSplitLimits?: TarSplitLimits;
}

/** Where each storage driver keeps a layer's own files, given its cache id: the layer's diff, or its whole tree. */
const LAYER_FILES: Readonly<Record<string, (dataRoot: string, cacheId: string) => string>> = {
  vfs: (dataRoot, id) => join(dataRoot, 'vfs', 'dir', id),
  overlay2: (dataRoot, id) => join(dataRoot, 'overlay2', id, 'diff'),
  'fuse-overlayfs': (dataRoot, id) => join(dataRoot, 'fuse-overlayfs', id, 'diff'),
};

/** repositories.json: repository name → reference (`name:tag`, `name@digest`) → image ID. */
type Repositories = Record<string, Record<string, string>>;

interface Driver {
  readonly name: string;
  readonly dir: string;
  readonly repositories: Repositories;
  readonly file: string;
}

/** One image to read, with the tags it is pushed as. */
interface Selection {
  readonly imageId: Digest;
  readonly tags: string[];
  readonly source: string;
}

// Enough to recognise an image among those listed, short enough for one line.
const NAMES_SHOWN = 8;

/**
 * Reads images straight from a Docker data root, no daemon needed: the reference store
 * (`image/<driver>/repositories.json`), the image config (`imagedb/content`), the layer chain
 * (`layerdb/sha256/<chain ID>/parent`), each layer's tar-split metadata, and the storage driver's
 * files, from which each layer's exact tar is rebuilt when the uploader opens it.
 *
 * Everything but file contents is checked before returning (config digest, chain against the
 * config's diff IDs, each layer's files directory and tar-split), so a broken image fails before any
 * blob is pushed; a file whose content changed fails its layer's upload (DIGEST_MISMATCH), and no
 * manifest is pushed.
 *
 * @example await readDockerRoot('alpine:3.20', { source: 'docker-root:alpine:3.20', dataRoot: '/var/lib/docker', allTags: false, logger })
 */
export async function readDockerRoot(text: string, options: ReadDockerRootOptions): Promise<ImageRecord[]> {
  const parsed = parseDockerRootReference(text);
  if (options.allTags && (parsed.tag !== undefined || parsed.digest !== undefined)) {
    throw new UsageError(`source ${options.source} names one image but all tags were asked for; give docker-root:NAME with --all-tags`);
  }
  // As Docker does: a name alone means its tag latest (unless every tag is asked for).
  const reference = options.allTags || parsed.tag !== undefined || parsed.digest !== undefined ? parsed : { ...parsed, tag: 'latest' };
  if (options.storageDriver !== undefined && !/^[a-z0-9][a-z0-9_-]*$/.test(options.storageDriver)) {
    throw new UsageError(`storage driver "${options.storageDriver}" is not a driver name (vfs, overlay2, …)`);
  }
  try {
    const driver = await findDriver(reference, options);
    // Tags of one repository share layers: each is checked (its tar-split read through) once.
    const layers = new Map<Digest, Promise<BlobSource>>();
    const records: ImageRecord[] = [];
    for (const selection of select(driver, reference, options)) records.push(await readImage(driver, selection, layers, options));
    options.logger.debug({ dataRoot: options.dataRoot, driver: driver.name, images: records.length }, 'Docker data root read');
    return records;
  } catch (err) {
    throw withPermissionHint(err, options.source);
  }
}

/** The storage driver directory (`image/<driver>`) whose reference store has the image. */
async function findDriver(reference: DockerRootReference, options: ReadDockerRootOptions): Promise<Driver> {
  const { dataRoot } = options;
  const stats = await stat(dataRoot).catch((err: unknown) => {
    if (isNotFound(err)) {
      throw new SourceNotFoundError(dataRoot, `Docker data root ${dataRoot} does not exist; give Docker's with --data-root DIR (docker info -f '{{.DockerRootDir}}' prints it)`);
    }
    throw err;
  });
  if (!stats.isDirectory()) throw new InvalidSourceError(dataRoot, `Docker data root ${dataRoot} is not a directory; give Docker's with --data-root DIR`);

  const imageDir = join(dataRoot, 'image');
  const found = await readdir(imageDir, { withFileTypes: true }).catch((err: unknown) => {
    if (!isNotFound(err)) throw err;
    throw new InvalidSourceError(imageDir,
      `${dataRoot} has no image/ directory, so it is not a Docker data root, or its daemon keeps images in the containerd image store, which rxpush cannot read; push docker-daemon:NAME:TAG instead`,
    );
  });
  const names = found.filter((entry) => entry.isDirectory()).map((entry) => entry.name).sort();
  if (options.storageDriver !== undefined && !names.includes(options.storageDriver)) {
    throw new SourceNotFoundError(join(imageDir, options.storageDriver), `${dataRoot} has no images of storage driver ${options.storageDriver} (it has: ${names.join(', ') || 'none'})`);
  }

  const drivers: Driver[] = [];
  for (const name of options.storageDriver !== undefined ? [options.storageDriver] : names) {
    const file = join(imageDir, name, 'repositories.json');
    drivers.push({ name, dir: join(imageDir, name), file, repositories: await readRepositories(file) });
  }
  const matching = drivers.filter((driver) => lookUp(driver.repositories, reference) !== undefined);
  const [driver, ...others] = matching;
  if (driver === undefined) throw notFound(reference, drivers, options);
  if (others.length > 0) {
    throw new UsageError(
      `${dataRoot} has ${reference.familiar} for several storage drivers (${matching.map((d) => d.name).join(', ')}); choose the one the daemon uses with --storage-driver`,
    );
  }
  if (LAYER_FILES[driver.name] === undefined) {
    throw new UnsupportedError(
      `${options.source}: the image is stored by the ${driver.name} storage driver; docker-root: reads ${Object.keys(LAYER_FILES).join(', ')}; push docker-daemon:NAME:TAG instead`,
    );
  }
  return driver;
}

async function readRepositories(file: string): Promise<Repositories> {
  // The reference store lists every image of the daemon: larger than a config, still small.
  const bytes = await readMetadataFile(file, "Docker's reference store", 64 * 1024 * 1024);
  if (bytes === undefined) return {};
  const json = parseJson(bytes, (problem) => damaged(file, problem));
  const repositories = (json as { Repositories?: unknown } | null)?.Repositories ?? {};
  const isRefs = (refs: unknown) => typeof refs === 'object' && refs !== null && Object.values(refs).every((id) => typeof id === 'string');
  if (typeof repositories !== 'object' || repositories === null || !Object.values(repositories).every(isRefs)) {
    throw damaged(file, 'does not map repositories to references and image IDs');
  }
  return repositories as Repositories;
}

/** The image ID a reference names in a reference store, under the familiar or the full name. */
function lookUp(repositories: Repositories, reference: DockerRootReference): string | undefined {
  for (const name of reference.names) {
    const refs = repositories[name];
    if (refs === undefined) continue;
    if (reference.tag === undefined && reference.digest === undefined) {
      // Every tag is asked for: any tag of the repository will do.
      const tagged = Object.keys(refs).find((ref) => ref.startsWith(`${name}:`));
      if (tagged !== undefined) return refs[tagged];
      continue;
    }
    const key = reference.digest !== undefined ? `${name}@${reference.digest}` : `${name}:${reference.tag}`;
    const id = refs[key];
    if (id !== undefined) return id;
  }
  return undefined;
}

function notFound(reference: DockerRootReference, drivers: readonly Driver[], options: ReadDockerRootOptions): SourceError {
  const wanted = reference.digest !== undefined ? `${reference.familiar}@${reference.digest}` : `${reference.familiar}${reference.tag !== undefined ? `:${reference.tag}` : ''}`;
  const known = [...new Set(drivers.flatMap((driver) => Object.values(driver.repositories).flatMap((refs) => Object.keys(refs))))]
    .filter((ref) => !ref.includes('@'))
    .sort();
  const listed = known.slice(0, NAMES_SHOWN).join(', ') + (known.length > NAMES_SHOWN ? ` and ${known.length - NAMES_SHOWN} more` : '');
  const where = drivers.length > 0 ? drivers.map((driver) => driver.file).join(', ') : join(options.dataRoot, 'image');
  return new SourceNotFoundError(where,
    `no image ${wanted} in ${where}; ${known.length > 0 ? `it has ${listed}` : 'it has no tagged images'}`,
  );
}

/** The images to read: the one named, or with allTags one per image ID of the repository, with its tags. */
function select(driver: Driver, reference: DockerRootReference, options: ReadDockerRootOptions): Selection[] {
  const check = (id: string): Digest => {
    if (!isDigest(id) || !id.startsWith('sha256:')) throw damaged(driver.file, `maps ${reference.familiar} to "${id.slice(0, 80)}", not an image ID`);
    return id;
  };
  if (!options.allTags) {
    const id = lookUp(driver.repositories, reference);
    if (id === undefined) throw notFound(reference, [driver], options);
    return [{ imageId: check(id), tags: reference.tag !== undefined ? [reference.tag] : [], source: options.source }];
  }

  const byImage = new Map<Digest, Selection>();
  for (const name of reference.names) {
    for (const [ref, id] of Object.entries(driver.repositories[name] ?? {})) {
      if (ref.includes('@') || !ref.startsWith(`${name}:`)) continue;
      const tag = ref.slice(name.length + 1);
      const imageId = check(id);
      const selection = byImage.get(imageId) ?? { imageId, tags: [], source: `docker-root:${reference.familiar}:${tag}` };
      if (!selection.tags.includes(tag)) selection.tags.push(tag);
      byImage.set(imageId, selection);
    }
  }
  if (byImage.size === 0) throw notFound(reference, [driver], options);
  return [...byImage.values()];
}

async function readImage(driver: Driver, selection: Selection, layers: Map<Digest, Promise<BlobSource>>, options: ReadDockerRootOptions): Promise<ImageRecord> {
  const { imageId, tags, source } = selection;
  const configPath = join(driver.dir, 'imagedb', 'content', 'sha256', splitDigest(imageId).hex);
  const bytes = await readMetadataFile(configPath, `the config of ${source}`);
  if (bytes === undefined) {
    throw new InvalidSourceError(configPath, `${driver.file} names image ${imageId} for ${source}, but its config ${configPath} is missing: the Docker data root is damaged; pull or load the image again`);
  }
  verifyDigest(bytes, imageId, configPath);
  const diffIds = diffIdsOf(bytes, configPath);

  const stored = await readLayerChain(join(driver.dir, 'layerdb'), diffIds, configPath);
  let top: LayerLink | undefined;
  for (const layer of stored) {
    const parent = top;
    let blob = layers.get(layer.chainId);
    if (blob === undefined) {
      blob = layerSource(driver, layer, options);
      layers.set(layer.chainId, blob);
    }
    top = { id: layer.chainId, blob: await blob, parent: () => Promise.resolve(parent) };
  }

  const config: BlobSource = {
    key: imageId,
    role: 'config',
    mediaType: MediaType.dockerConfig,
    digest: imageId,
    size: bytes.length,
    form: 'stored',
    origin: configPath,
    // The bytes already read and verified are the ones pushed: nothing can change them in between.
    open: (openOptions) => {
      openOptions?.signal?.throwIfAborted();
      return Promise.resolve(Readable.from(bytes, { objectMode: false }));
    },
  };
  return { kind: 'image', source, tags, config, layers: { kind: 'chain', top } };
}

function diffIdsOf(bytes: Buffer, configPath: string): Digest[] {
  const config = parseJson(bytes, (problem) => damaged(configPath, problem));
  const rootfs = (config as { rootfs?: { type?: unknown; diff_ids?: unknown } } | null)?.rootfs;
  if (rootfs?.type !== 'layers' || !Array.isArray(rootfs.diff_ids)) throw damaged(configPath, 'has no rootfs of type "layers" with a diff_ids list');
  return rootfs.diff_ids.map((id, i) => {
    if (!isDigest(id) || !id.startsWith('sha256:')) throw damaged(configPath, `has diff ID ${i + 1} ${JSON.stringify(id)}, not a sha256 digest`);
    return id;
  });
}

/**
 * A layer as an uncompressed blob whose `open()` rebuilds its tar. Its tar-split is read through once
 * now: to refuse a damaged one before anything is pushed, and to learn the tar's size for progress.
 */
async function layerSource(driver: Driver, layer: StoredLayer, options: ReadDockerRootOptions): Promise<BlobSource> {
  const origin = layer.dir;
  const filesDir = LAYER_FILES[driver.name]!(options.dataRoot, layer.cacheId);
  const filesStats = await stat(filesDir).catch((err: unknown) => {
    if (!isNotFound(err)) throw err;
    throw new InvalidSourceError(filesDir, `the files of layer ${origin} (${driver.name} cache id ${layer.cacheId}) are missing: ${filesDir} does not exist; pull or load the image into Docker again`);
  });
  if (!filesStats.isDirectory()) throw damaged(filesDir, `(the files of layer ${origin}) is not a directory`);

  const tarSplit = join(layer.dir, 'tar-split.json.gz');
  const size = await tarSizeOf(readTarSplitEntries(tarSplit, options.tarSplitLimits), tarSplit, origin).catch((err: unknown) => {
    if (!isNotFound(err)) throw err;
    throw new InvalidSourceError(tarSplit,
      `layer ${origin} has no tar-split.json.gz, so its exact tar cannot be rebuilt from the data root; push docker-daemon:NAME:TAG through the daemon instead`,
    );
  });
  const hints = await readDistributionHints(driver.dir, layer.diffId, options.logger);
  const files = layerFiles(filesDir, origin);
  const hinted: TarSplitFiles = {
    open: (name) => files.open(name).catch((err: unknown) => Promise.reject(withPermissionHint(err, options.source))),
  };

  return {
    key: layer.diffId,
    role: 'layer',
    mediaType: MediaType.dockerLayer,
    diffId: layer.diffId,
    size,
    form: 'uncompressed',
    origin,
    ...(hints.length > 0 && { hints }),
    open: (openOptions) => {
      const signal = openOptions?.signal;
      signal?.throwIfAborted();
      return Promise.resolve(
        assembleTarSplit(withHint(readTarSplitEntries(tarSplit, options.tarSplitLimits, signal), options.source), hinted, {
          origin,
          ...(signal !== undefined && { signal }),
        }),
      );
    },
  };
}

/** The size of the tar a tar-split rebuilds, checking every file name it would read on the way. */
async function tarSizeOf(entries: AsyncIterable<TarSplitEntry>, tarSplit: string, origin: string): Promise<number> {
  let size = 0;
  for await (const entry of entries) {
    if (entry.kind === 'segment') {
      size += entry.bytes.length;
    } else if (entry.size > 0) {
      if (layerRelativePath(entry.name) === undefined) {
        throw new InvalidSourceError(tarSplit,
          `${tarSplit} names the file "${displayName(entry.name.toString('latin1'))}", which is outside layer ${origin}: the tar-split metadata is damaged or crafted; rxpush refuses to read it`,
        );
      }
      size += entry.size;
    }
  }
  return size;
}

async function* withHint<T>(source: AsyncGenerator<T>, sourceName: string): AsyncGenerator<T> {
  try {
    yield* source;
  } catch (err) {
    throw withPermissionHint(err, sourceName);
  }
}
