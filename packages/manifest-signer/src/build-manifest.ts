import {
  MediaType,
  sha256Digest,
  UnsupportedError,
  type Descriptor,
  type ImageRecord,
  type IndexRecord,
  type ManifestFormat,
  type RawManifest,
} from '@rxpush/core';

// Blob media types with a twin in the other format; a type missing here cannot change format.
const TO_DOCKER: Readonly<Record<string, string>> = {
  [MediaType.ociConfig]: MediaType.dockerConfig,
  [MediaType.ociLayerGzip]: MediaType.dockerLayerGzip,
  [MediaType.ociLayer]: MediaType.dockerLayer,
  [MediaType.ociLayerNondistributableGzip]: MediaType.dockerForeignLayerGzip,
  [MediaType.ociManifest]: MediaType.dockerManifest,
  [MediaType.ociIndex]: MediaType.dockerManifestList,
};
const TO_OCI: Readonly<Record<string, string>> = Object.fromEntries(Object.entries(TO_DOCKER).map(([oci, docker]) => [docker, oci]));

/** The format a manifest or index media type belongs to. */
export function formatOf(mediaType: string): ManifestFormat | undefined {
  if (mediaType.startsWith('application/vnd.oci.')) return 'oci';
  if (mediaType.startsWith('application/vnd.docker.')) return 'docker';
  return undefined;
}

/**
 * The media type `mediaType` has in `format`.
 *
 * @throws {UnsupportedError} when the type has no twin there (zstd layers have none in Docker's format).
 */
export function convertMediaType(mediaType: string, format: ManifestFormat): string {
  const current = formatOf(mediaType);
  if (current === format || current === undefined) return mediaType;
  const converted = (format === 'docker' ? TO_DOCKER : TO_OCI)[mediaType];
  if (converted === undefined) {
    throw new UnsupportedError(`${mediaType} has no ${format === 'docker' ? 'Docker schema 2' : 'OCI'} equivalent; push with --format ${current}`);
  }
  return converted;
}

/**
 * The manifest to push for an image whose blobs are in the registry under `descriptors`.
 * The source's own manifest is reused byte for byte when neither the format nor any blob changed,
 * so the pushed digest equals the source's.
 *
 * @throws {UnsupportedError} when a blob type cannot be written in the format asked for.
 * @example buildManifest(image, (key) => ready.get(key)!, 'docker')
 */
export function buildManifest(image: ImageRecord, descriptors: (key: string) => Descriptor, format?: ManifestFormat): RawManifest {
  const target = format ?? (image.manifest ? formatOf(image.manifest.mediaType) : undefined) ?? 'docker';
  const config = descriptors(image.config.key);
  if (image.layers.kind !== 'list') throw new Error(`layers of ${image.source} must be walked before the manifest is built`);
  const layers = image.layers.layers.map((layer) => descriptors(layer.key));

  if (image.manifest && formatOf(image.manifest.mediaType) === target && sameBlobs(image.manifest, config, layers)) {
    return image.manifest;
  }
  const mediaType = target === 'docker' ? MediaType.dockerManifest : MediaType.ociManifest;
  const document = {
    schemaVersion: 2,
    mediaType,
    config: convert(config, target),
    layers: layers.map((layer) => convert(layer, target)),
    ...(target === 'oci' && image.annotations !== undefined && { annotations: image.annotations }),
  };
  return toRaw(document, mediaType);
}

/**
 * The index (or Docker manifest list) to push once its images are pushed as `children`
 * (keyed by the digest the source's index names them by). Reused byte for byte when nothing changed.
 *
 * @example buildIndex(record, new Map([[oldDigest, pushedManifest]]), 'oci')
 */
export function buildIndex(record: IndexRecord, children: ReadonlyMap<string, RawManifest>, format?: ManifestFormat): RawManifest {
  const target = format ?? formatOf(record.index.mediaType) ?? 'oci';
  const unchanged = [...children].every(([digest, manifest]) => manifest.digest === digest);
  if (unchanged && formatOf(record.index.mediaType) === target) return record.index;

  const stored = JSON.parse(Buffer.from(record.index.bytes).toString('utf8')) as { manifests?: Descriptor[]; annotations?: Record<string, string> };
  const mediaType = target === 'docker' ? MediaType.dockerManifestList : MediaType.ociIndex;
  const document = {
    schemaVersion: 2,
    mediaType,
    manifests: (stored.manifests ?? []).map((entry) => {
      const pushed = children.get(entry.digest);
      if (!pushed) return convert(entry, target);
      return { ...entry, mediaType: pushed.mediaType, digest: pushed.digest, size: pushed.bytes.byteLength };
    }),
    ...(target === 'oci' && stored.annotations !== undefined && { annotations: stored.annotations }),
  };
  return toRaw(document, mediaType);
}

function convert(descriptor: Descriptor, format: ManifestFormat): Descriptor {
  const { annotations, ...rest } = descriptor;
  // Docker schema 2 descriptors have no annotations field worth keeping; OCI keeps them.
  return { ...rest, mediaType: convertMediaType(descriptor.mediaType, format), ...(format === 'oci' && annotations !== undefined && { annotations }) };
}

function sameBlobs(manifest: RawManifest, config: Descriptor, layers: readonly Descriptor[]): boolean {
  const stored = JSON.parse(Buffer.from(manifest.bytes).toString('utf8')) as { config?: Descriptor; layers?: Descriptor[] };
  return (
    stored.config?.digest === config.digest &&
    stored.layers?.length === layers.length &&
    stored.layers.every((layer, i) => layer.digest === layers[i]?.digest && layer.mediaType === layers[i]?.mediaType)
  );
}

function toRaw(document: object, mediaType: string): RawManifest {
  const bytes = Buffer.from(JSON.stringify(document, null, 3));
  return { bytes, mediaType, digest: sha256Digest(bytes) };
}
