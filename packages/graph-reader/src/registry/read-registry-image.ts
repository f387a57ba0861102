import { PassThrough, Readable } from 'node:stream';

import type { BlobSource, Descriptor, Digest, ImageRecord, ImageReference, IndexRecord, Logger, Platform, RawManifest, SourceRecord } from '@rxpush/core';
import {
  InvalidSourceError,
  MediaType,
  ReferenceFormatError,
  RegistryError,
  SourceError,
  SourceNotFoundError,
  UnsupportedError,
  UsageError,
  isImageManifestType,
  isIndexType,
  isPushError,
  parseReference,
} from '@rxpush/core';
import { readBody, type RegistryClient } from '@rxpush/registry-client';

import { parseIndex, parseManifest, type InvalidDocument } from '../oci/documents.js';
import { checkImagePlatform, findPlatform, platformText } from '../shared/platform.js';

/** How to read an image from a registry; `source` is the whole source string as the user gave it. */
export interface ReadRegistryImageOptions {
  readonly source: string;
  readonly allTags: boolean;
  readonly logger: Logger;
  /** The client of the registry the source names, with that registry's own credentials and TLS settings. */
  readonly client: RegistryClient;
  /** Of a multi-platform image, read only this platform's (`--platform`); without it the index is read whole. */
  readonly platform?: Platform | undefined;
}

const ONE_MIB = 1024 * 1024;
/** An image config larger than this is not read for its platform (real ones are kilobytes). */
const CONFIG_LIMIT = 4 * ONE_MIB;

/** What a registry may answer a manifest GET with that rxpush reads. */
const ACCEPT = [MediaType.ociManifest, MediaType.ociIndex, MediaType.dockerManifest, MediaType.dockerManifestList];

/**
 * Reads `REGISTRY/REPO[:TAG|@DIGEST]` from a registry (`docker://REF`) through the client it is given.
 *
 * Only manifests are fetched here (an index and, for a copy of it whole, each of its images, by digest,
 * which the client checks against the bytes); each blob becomes a source that streams it from the registry
 * when the uploader opens it, never to disk, and which the uploader checks against its digest and size as
 * it goes. Blobs the destination already has are never opened. Each blob carries a hint that this
 * repository holds it, so that a copy within one registry mounts it instead of sending it. Manifests are
 * pushed as read, so their digests stay the same unless a format conversion is asked for.
 *
 * Fails with `SourceError` naming the image and registry: not found, credentials refused, an answer that is
 * not a manifest, a platform the index lacks, a blob gone from the registry; `UnsupportedError` for
 * schema 1 manifests and nested indexes.
 */
export async function readRegistryImage(reference: string, options: ReadRegistryImageOptions): Promise<SourceRecord[]> {
  const { source, client, logger } = options;
  const ref = parseSourceReference(reference, source);
  if (ref.registry !== client.registry) {
    throw new UsageError(`source ${source} is in ${ref.registry}, but the registry client given for it is for ${client.registry}`);
  }
  const image = new RegistryImage(ref, options);
  if (options.allTags) {
    if (ref.tag !== undefined || ref.digest !== undefined) {
      throw new UsageError(`source ${source} names one image (${ref.tag ?? ref.digest}) but all tags were asked for; drop it or --all-tags`);
    }
    const tags = await image.call(() => client.listTags(ref.repository), 'manifest');
    if (tags.length === 0) throw new SourceNotFoundError(source, `${source}: ${ref.registry} has no tags in ${ref.repository}`);
    // Tags of one manifest become one record pushed once under all of them.
    const byDigest = new Map<Digest, { manifest: RawManifest; tags: string[] }>();
    for (const tag of tags) {
      const manifest = await image.manifest(tag);
      const entry = byDigest.get(manifest.digest) ?? { manifest, tags: [] };
      entry.tags.push(tag);
      byDigest.set(manifest.digest, entry);
    }
    const records: SourceRecord[] = [];
    for (const { manifest, tags: named } of byDigest.values()) records.push(await image.record(manifest, named, `docker://${ref.registry}/${ref.repository}:${named[0]}`));
    logger.debug({ registry: ref.registry, repository: ref.repository, tags: tags.length, images: records.length }, 'registry image read');
    return records;
  }
  const manifest = await image.manifest(ref.digest ?? ref.tag ?? 'latest');
  const record = await image.record(manifest, ref.tag !== undefined ? [ref.tag] : ref.digest === undefined ? ['latest'] : [], source);
  logger.debug({ registry: ref.registry, repository: ref.repository, digest: manifest.digest, kind: record.kind }, 'registry image read');
  return [record];
}

function parseSourceReference(reference: string, source: string): ImageReference {
  try {
    return parseReference(reference);
  } catch (err) {
    if (err instanceof ReferenceFormatError) throw new UsageError(`source ${source}: ${err.message.replace(/; expected .*$/, '')}; use docker://REGISTRY/REPO[:TAG]`);
    throw err;
  }
}

/** One repository of the source registry, read for one source. */
class RegistryImage {
  readonly #ref: ImageReference;
  readonly #options: ReadRegistryImageOptions;
  /** Bad documents name the manifest and say whose they are. */
  readonly #invalid: InvalidDocument;

  constructor(ref: ImageReference, options: ReadRegistryImageOptions) {
    this.#ref = ref;
    this.#options = options;
    this.#invalid = (file, problem) =>
      new InvalidSourceError(options.source, `${options.source}: ${file} ${problem}; ${ref.registry} holds a damaged manifest, push the image there again`);
  }

  /** A manifest or index by tag or digest (the client checks a digest against the bytes). */
  async manifest(reference: string): Promise<RawManifest> {
    const { registry, repository } = this.#ref;
    const manifest = await this.call(() => this.#options.client.getManifest(repository, reference, { accept: ACCEPT }), 'manifest');
    const { mediaType } = manifest;
    if (mediaType.includes('signed+json') || mediaType === 'application/vnd.docker.distribution.manifest.v1+json') {
      throw new UnsupportedError(`${this.#options.source}: ${registry} serves ${repository}:${reference} as a Docker schema 1 manifest; rxpush copies schema 2 and OCI images only`);
    }
    if (!isImageManifestType(mediaType) && !isIndexType(mediaType)) {
      throw new InvalidSourceError(this.#options.source,
        `${this.#options.source}: ${registry} answered GET /v2/${repository}/manifests/${reference} with ${mediaType}, not an image manifest or index; is ${registry} a registry (a proxy or login page may answer in its place)?`,
      );
    }
    return manifest;
  }

  /** The record of a manifest: an image, an index read whole, or the one image of an index the platform selects. */
  async record(manifest: RawManifest, tags: string[], source: string): Promise<SourceRecord> {
    const { platform } = this.#options;
    if (isImageManifestType(manifest.mediaType)) {
      const image = this.#image(manifest, tags, source, undefined);
      return platform === undefined ? image : await this.#checkPlatform(image, platform, source);
    }
    const where = this.#where(manifest.digest);
    const index = parseIndex(manifest.bytes, where, [manifest.mediaType], this.#invalid);
    if (platform !== undefined) {
      const chosen = findPlatform(index.manifests, platform);
      if (chosen === undefined) {
        const offered = index.manifests.map((entry) => platformText(entry.platform)).join(', ');
        throw new SourceNotFoundError(source, `${source} has no image for ${platformText(platform)}; its index ${manifest.digest} in ${this.#ref.registry} offers ${offered}`);
      }
      return this.#image(await this.#child(chosen, source), tags, source, chosen);
    }
    const manifests: ImageRecord[] = [];
    for (const entry of index.manifests) manifests.push(await this.#image(await this.#child(entry, source), [], source, entry));
    const record: IndexRecord = { kind: 'index', source, tags, manifests, index: manifest };
    return record;
  }

  /**
   * `--platform` for a tag that names one image: its config (fetched here, it is small) must say that platform.
   * The image is given back with the bytes read kept as its config's source, so that the push does not fetch
   * them a second time; the uploader checks them against the digest as it does any blob.
   */
  async #checkPlatform(image: ImageRecord, wanted: Platform, source: string): Promise<ImageRecord> {
    const { bytes, complete } = await readBody(await image.config.open(), CONFIG_LIMIT);
    if (!complete) return image;
    checkImagePlatform(bytes, wanted, source);
    return { ...image, config: { ...image.config, open: () => Promise.resolve(Readable.from([bytes], { objectMode: false })) } };
  }

  async #child(entry: Descriptor, source: string): Promise<RawManifest> {
    if (!isImageManifestType(entry.mediaType)) {
      throw new UnsupportedError(`${source}: its index lists ${entry.digest} as ${entry.mediaType}; rxpush copies indexes of image manifests only`);
    }
    const child = await this.manifest(entry.digest);
    if (child.bytes.length !== entry.size) {
      throw this.#invalid(this.#where(entry.digest), `is ${child.bytes.length} bytes, but its index says ${entry.size}`);
    }
    return child;
  }

  #image(manifest: RawManifest, tags: string[], source: string, entry: Descriptor | undefined): ImageRecord {
    const document = parseManifest(manifest.bytes, this.#where(manifest.digest), manifest.mediaType, this.#invalid);
    const count = document.layers.length;
    return {
      kind: 'image',
      source,
      tags,
      config: this.#blob(document.config, 'config', `${source} config (${document.config.digest})`),
      layers: { kind: 'list', layers: document.layers.map((layer, i) => this.#blob(layer, 'layer', `${source} layer ${i + 1} of ${count} (${layer.digest})`)) },
      manifest,
      ...(entry?.platform !== undefined && { platform: entry.platform }),
      ...(document.annotations !== undefined && { annotations: document.annotations }),
    };
  }

  /** A blob that streams from the source registry when opened; the uploader checks it against `descriptor`. */
  #blob(descriptor: Descriptor, role: 'config' | 'layer', origin: string): BlobSource {
    const { client } = this.#options;
    const { registry, repository } = this.#ref;
    return {
      key: descriptor.digest,
      role,
      mediaType: descriptor.mediaType,
      digest: descriptor.digest,
      size: descriptor.size,
      form: 'stored',
      origin,
      remedy: `${registry} sent other bytes than the manifest names (it, or a proxy in front of it, changed them); nothing was tagged at the destination, copy again`,
      ...(descriptor.urls !== undefined && { urls: descriptor.urls }),
      ...(descriptor.annotations !== undefined && { annotations: descriptor.annotations }),
      // Where the blob is: a destination on the same registry mounts it from here instead of receiving it.
      hints: [{ digest: descriptor.digest, registry, repository }],
      open: async (options) => {
        const body = await this.call(
          () =>
            client.getBlob(repository, descriptor.digest, {
              ...(options?.signal !== undefined && { signal: options.signal }),
              ...(options?.onRetry !== undefined && { onRetry: options.onRetry }),
            }),
          'blob',
          origin,
        );
        return this.#named(body, origin);
      },
    };
  }

  /**
   * The body of a blob, its failure (the connection closed part-way: a blob deleted while being sent)
   * becoming one that names the blob, the image and the registry. Backpressure passes through untouched.
   */
  #named(body: Readable, origin: string): Readable {
    const { registry } = this.#ref;
    const out = new PassThrough({ highWaterMark: ONE_MIB });
    body.once('error', (error) => {
      if (error.name === 'AbortError' || isPushError(error)) out.destroy(error);
      else {
        out.destroy(
          new InvalidSourceError(this.#options.source, `${origin}: ${registry} broke off sending it (${error.message}); it may have been deleted from the source while copying; nothing was tagged at the destination, copy again`, {
            cause: error,
          }),
        );
      }
    });
    // A reader that stops (the push failed or was cancelled) must not leave the request open.
    out.once('close', () => {
      if (!body.readableEnded) body.destroy();
    });
    body.pipe(out);
    return out;
  }

  #where(digest: Digest): string {
    return `manifest ${digest}`;
  }

  /**
   * Runs a request of the source client, turning its failure into one naming the image and the registry,
   * with what to do: the client's own hints speak of the destination's options.
   */
  async call<T>(request: () => Promise<T>, what: 'manifest' | 'blob', origin = this.#options.source): Promise<T> {
    try {
      return await request();
    } catch (error) {
      throw this.#failure(error, what, origin);
    }
  }

  #failure(error: unknown, what: 'manifest' | 'blob', origin: string): unknown {
    if (!isPushError(error) || error.code === 'CANCELLED' || error instanceof SourceError) return error;
    const { source } = this.#options;
    const { registry, repository } = this.#ref;
    // The client's message up to its hint: `GET https://r/v2/app/manifests/1 → 404 MANIFEST_UNKNOWN`.
    const reason = error.message.split('; ')[0];
    if (error instanceof RegistryError && error.status === 404) {
      return what === 'manifest'
        ? new SourceNotFoundError(source, `${source}: ${registry} has no such image (${reason}); check the repository and tag`, { cause: error })
        : new SourceNotFoundError(source, `${origin} is gone from ${registry} (${reason}): it was deleted while copying; nothing was tagged at the destination, copy again`, { cause: error });
    }
    // Refused, or no token that allows the pull, or credentials that cannot be read: the source wants its own.
    if (error.code === 'UNAUTHORIZED' || error.code === 'DENIED' || error.code === 'INSUFFICIENT_SCOPE' || error.code === 'CREDENTIALS') {
      return new SourceNotFoundError(source,
        `${source}: ${registry} does not let rxpush pull ${repository} (${reason}); the source registry needs its own credentials: --src-creds USER:PASS, --src-authfile PATH or docker login ${registry}`,
        { cause: error },
      );
    }
    return new SourceNotFoundError(source, `${origin}: reading it from ${registry} failed: ${error.message}`, { cause: error });
  }
}
