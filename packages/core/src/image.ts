import type { FileHandle } from 'node:fs/promises';
import type { Readable } from 'node:stream';

import type { Descriptor, Platform } from './descriptor.js';
import type { Digest } from './digest.js';

/** What a reader of a blob may pass when it opens one. */
export interface OpenOptions {
  /** Aborts the read (and whatever request it feeds) when the push is cancelled. */
  readonly signal?: AbortSignal;
  /**
   * Told the number of bytes the stream will yield, by a source that learns it only as it reaches them
   * (a `docker save` stream names each layer's size in the tar header before its bytes), so progress can
   * show a total; called before the first byte.
   */
  readonly onSize?: (size: number) => void;
  /**
   * Told before each retry of a request the source makes to read the blob (a `docker://` source GETs it
   * from its registry), so the push can show that the blob is retrying rather than stalled.
   */
  readonly onRetry?: (event: { readonly type: 'retrying'; readonly attempt: number; readonly delayMs: number; readonly reason: string }) => void;
}

/**
 * One blob of an image as a source offers it: described up front, its bytes opened lazily
 * (only when the uploader needs them) and streamed once.
 */
export interface BlobSource {
  /** The blob's identity within one push: its digest when known, else its uncompressed diff ID. */
  readonly key: string;
  readonly role: 'config' | 'layer';
  /** The media type as the source records it (OCI or Docker). */
  readonly mediaType: string;
  /** The digest of the bytes as pushed, when the source knows it. */
  readonly digest?: Digest;
  /**
   * The size in bytes when the source knows it: of the blob as pushed (`stored`),
   * or of the uncompressed tar (`uncompressed`, for progress totals).
   */
  readonly size?: number;
  /** The digest of the uncompressed layer tar (the config's rootfs diff ID), when known. */
  readonly diffId?: Digest;
  /**
   * `stored`: `open()` yields the blob exactly as pushed. `uncompressed`: `open()` yields a layer tar
   * that the uploader compresses as configured, learning the digest while it streams.
   */
  readonly form: 'stored' | 'uncompressed';
  /** Where the bytes come from (a file path, an archive member), for error messages. */
  readonly origin: string;
  /**
   * What to do when the bytes read are not what the image says (another size or digest), for the message's end;
   * default `the source is corrupt, re-export the image`, which fits local sources. A registry source says that
   * the registry sent other bytes, and to copy again.
   */
  readonly remedy?: string;
  readonly urls?: readonly string[];
  readonly annotations?: Readonly<Record<string, string>>;
  /**
   * Compressed digests this layer is already known under, and where (Docker's distribution metadata):
   * the blob checker tries them before compressing anything.
   */
  readonly hints?: readonly BlobHint[];
  /** Opens the bytes as a stream; each call starts a fresh read. */
  open(options?: OpenOptions): Promise<Readable>;
  /**
   * For a blob whose bytes are a file, or a range of one (an OCI layout's `blobs/`, a member of an archive): the
   * file, opened and checked as `open()` checks it, for a reader that reads it into buffers of its own and reuses
   * them (the uploader); a stream allocates a buffer per read. The bytes are the `size` from {@link fileOffset} on.
   * The caller closes the handle. Absent: only `open()` reads the bytes.
   */
  openFile?(options?: OpenOptions): Promise<FileHandle>;
  /** Where the bytes start in the file {@link openFile} opens (default 0); set only with `openFile` and `size`. */
  readonly fileOffset?: number;
  /**
   * True when the bytes come from one stream the source shares among its blobs and reads in its own order
   * (a `docker save` over the API): the uploader then opens all such blobs at once on the first attempt, since a
   * blob queued behind a concurrency limit would stall the shared stream. A retry calls `release()` first; the
   * source's `open()` then reads the blob from a stream of its own.
   */
  readonly sequential?: boolean;
  /**
   * Tells the source that this push will not read the bytes from its shared stream (the registry has them, or the
   * upload broke and its retry opens them again), so a source that reads one sequential stream (a `docker save`
   * over the API) can skip past them instead of waiting.
   */
  release?(): void;
}

/** A compressed digest a layer was pushed or pulled as, and the registry and repository that hold it. */
export interface BlobHint {
  readonly digest: Digest;
  /** host[:port] as in image references (`docker.io` for Docker Hub). */
  readonly registry?: string;
  readonly repository?: string;
}

/** A link of a layer chain given by parent pointers (Docker's graph): the walker follows `parent()` to the base. */
export interface LayerLink {
  /** The link's identity (chain ID or legacy layer ID), used to detect loops. */
  readonly id: string;
  readonly blob: BlobSource;
  /** The next layer down, or undefined at the base. */
  parent(): Promise<LayerLink | undefined>;
}

/** The layers of an image: an ordered list (base first), or the top of a parent chain. */
export type LayerList =
  | { readonly kind: 'list'; readonly layers: readonly BlobSource[] }
  | { readonly kind: 'chain'; readonly top: LayerLink | undefined };

/** A manifest as bytes, pushed byte-exact when rxpush does not rewrite it. */
export interface RawManifest {
  readonly bytes: Uint8Array;
  readonly mediaType: string;
  readonly digest: Digest;
}

/** One image read from a source. */
export interface ImageRecord {
  readonly kind: 'image';
  /** The source it came from, as the user named it (e.g. `oci:./layout:latest`). */
  readonly source: string;
  /** The tags to push it as; the pipeline may rename them. Empty: push by digest only. */
  readonly tags: readonly string[];
  readonly config: BlobSource;
  readonly layers: LayerList;
  /** The manifest as the source stores it, when it has one. */
  readonly manifest?: RawManifest;
  readonly platform?: Platform;
  /** Annotations to carry into a built manifest. */
  readonly annotations?: Readonly<Record<string, string>>;
}

/** A multi-platform image: an index (or Docker manifest list) and the images it names. */
export interface IndexRecord {
  readonly kind: 'index';
  readonly source: string;
  readonly tags: readonly string[];
  readonly manifests: readonly ImageRecord[];
  /** Entries of the index that are not images rxpush pushes (kept as descriptors only if already in the registry). */
  readonly index: RawManifest;
}

/** What a source emits: one image or one index. */
export type SourceRecord = ImageRecord | IndexRecord;


/**
 * The descriptor a manifest lists for a blob once its final digest and size are known;
 * `mediaType` overrides the source's when the uploader changed the bytes (compression).
 *
 * @example blobDescriptor(blob, 'sha256:…', 1234)
 */
export function blobDescriptor(blob: BlobSource, digest: Digest, size: number, mediaType = blob.mediaType): Descriptor {
  return {
    mediaType,
    digest,
    size,
    ...(blob.urls !== undefined && { urls: blob.urls }),
    ...(blob.annotations !== undefined && { annotations: blob.annotations }),
  };
}
