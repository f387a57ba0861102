/** Media types rxpush reads and writes. */
export const MediaType = {
  ociManifest: 'application/vnd.oci.image.manifest.v1+json',
  ociIndex: 'application/vnd.oci.image.index.v1+json',
  ociConfig: 'application/vnd.oci.image.config.v1+json',
  ociLayer: 'application/vnd.oci.image.layer.v1.tar',
  ociLayerGzip: 'application/vnd.oci.image.layer.v1.tar+gzip',
  ociLayerZstd: 'application/vnd.oci.image.layer.v1.tar+zstd',
  ociLayerNondistributableGzip: 'application/vnd.oci.image.layer.nondistributable.v1.tar+gzip',
  dockerManifest: 'application/vnd.docker.distribution.manifest.v2+json',
  dockerManifestList: 'application/vnd.docker.distribution.manifest.list.v2+json',
  dockerConfig: 'application/vnd.docker.container.image.v1+json',
  dockerLayer: 'application/vnd.docker.image.rootfs.diff.tar',
  dockerLayerGzip: 'application/vnd.docker.image.rootfs.diff.tar.gzip',
  dockerForeignLayerGzip: 'application/vnd.docker.image.rootfs.foreign.diff.tar.gzip',
  dockerSchema1Signed: 'application/vnd.docker.distribution.manifest.v1+prettyjws',
  dockerSchema1: 'application/vnd.docker.distribution.manifest.v1+json',
} as const;

/** The manifest formats rxpush can convert between. */
export type ManifestFormat = 'oci' | 'docker';

/**
 * The formats a push can write (`--format`): the two above, or Docker schema 1, signed as a JWS with the
 * user's key (the registries of 2015).
 */
export type PushFormat = ManifestFormat | 'schema1';

/** True for the media types of a single-image manifest (OCI or Docker schema 2). */
export function isImageManifestType(mediaType: string): boolean {
  return mediaType === MediaType.ociManifest || mediaType === MediaType.dockerManifest;
}

/** True for the media types of an index or manifest list. */
export function isIndexType(mediaType: string): boolean {
  return mediaType === MediaType.ociIndex || mediaType === MediaType.dockerManifestList;
}

/** The compression a layer media type implies. */
export function layerCompression(mediaType: string): 'gzip' | 'zstd' | 'none' | undefined {
  if (mediaType.endsWith('+gzip') || mediaType.endsWith('.tar.gzip')) return 'gzip';
  if (mediaType.endsWith('+zstd')) return 'zstd';
  if (mediaType.endsWith('.tar')) return 'none';
  return undefined;
}

/**
 * The media type of a layer once gzipped: Docker's family stays Docker's, anything else becomes OCI's.
 *
 * @example gzipLayerMediaType('application/vnd.docker.image.rootfs.diff.tar') // '…diff.tar.gzip'
 */
export function gzipLayerMediaType(mediaType: string): string {
  return mediaType.startsWith('application/vnd.docker.') ? MediaType.dockerLayerGzip : MediaType.ociLayerGzip;
}
