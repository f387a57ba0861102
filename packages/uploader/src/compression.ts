import type { Transform } from 'node:stream';
import * as zlib from 'node:zlib';

import { gzipLayerMediaType, MediaType, UnsupportedError, type BlobSource } from '@rxpush/core';

import { gzipLayer } from './compress/gzip-layer.js';

/** How an uncompressed layer is compressed on the way up; `false`: it is sent as it is. */
export type LayerCompression = false | 'gzip' | 'zstd';

const ONE_MIB = 1024 * 1024;

/** zlib's zstd streams, in Node 22.15+ and 23.8+ (not in the Node 20 types this builds with). */
type ZstdZlib = { createZstdCompress?: (options?: { chunkSize?: number; params?: Record<number, number> }) => Transform };
const createZstdCompress = (zlib as ZstdZlib).createZstdCompress;

/** True when this Node.js can compress with zstd. */
export const zstdAvailable = typeof createZstdCompress === 'function';

/**
 * Refuses, before anything is sent, a compression this Node.js cannot do.
 *
 * @throws {UnsupportedError} for zstd on a Node.js without zlib's zstd streams.
 */
export function assertCompression(compression: 'gzip' | 'zstd' | 'none' | undefined): void {
  if (compression === 'zstd' && !zstdAvailable) {
    throw new UnsupportedError(
      `zstd compression needs Node.js 22.15 or newer (zlib's zstd streams), and this is Node.js ${process.versions.node}; upgrade Node.js, or use --compression gzip or none`,
    );
  }
}

/** What a blob is compressed with on the way: only uncompressed layers are, and only if asked. */
export function layerCompressionOf(blob: BlobSource, compression: 'gzip' | 'zstd' | 'none' | undefined): LayerCompression {
  if (blob.form !== 'uncompressed' || compression === 'none') return false;
  return compression ?? 'gzip';
}

/** A compressing stream: gzip (gzipLayer, at `gzipLevel` or its default), or zstd at its default level 3, 1 MiB chunks. */
export function compressor(kind: 'gzip' | 'zstd', gzipLevel?: number): Transform {
  if (kind === 'gzip') return gzipLayer(gzipLevel === undefined ? {} : { level: gzipLevel });
  if (createZstdCompress === undefined) throw new UnsupportedError(`zstd compression is not available on Node.js ${process.versions.node}`);
  return createZstdCompress({ chunkSize: ONE_MIB });
}

/**
 * The media type a blob is pushed as. A gzipped layer stays in its family (Docker's or OCI's); a zstd
 * layer can only be OCI's, as Docker schema 2 has no zstd layer type.
 */
export function mediaTypeFor(blob: BlobSource, compression: LayerCompression): string {
  if (compression === false || blob.role === 'config') return blob.mediaType;
  return compression === 'zstd' ? MediaType.ociLayerZstd : gzipLayerMediaType(blob.mediaType);
}
