import type { Descriptor } from './descriptor.js';
import type { Digest } from './digest.js';
import type { BlobSource, SourceRecord } from './image.js';

/** An image (or index) read from a source; the layer walker turns it into blob tasks. */
export interface ImageEvent {
  readonly type: 'image';
  readonly image: SourceRecord;
}

/** One blob to get into the registry: checked by the blob checker, uploaded by the uploader. */
export interface BlobEvent {
  readonly type: 'blob';
  readonly blob: BlobSource;
}

/** A blob is verified in the registry under `descriptor`; manifests wait for these. */
export interface BlobReadyEvent {
  readonly type: 'blob-ready';
  /** The `key` of the BlobSource this settles. */
  readonly key: string;
  readonly descriptor: Descriptor;
  /** The uncompressed diff ID, when known (for caches and configs). */
  readonly diffId?: Digest;
}

/** A manifest built (or taken as stored) and about to be PUT. */
export interface ManifestEvent {
  readonly type: 'manifest';
  readonly source: string;
  readonly tags: readonly string[];
  readonly mediaType: string;
  readonly digest: Digest;
  readonly bytes: Uint8Array;
  /** True for an image pushed as part of an index (by digest; the tags belong to the index). */
  readonly child?: boolean;
}

/**
 * A manifest signature was made (and pushed where the format keeps signatures apart); it comes before the
 * `manifest-pushed` events of that manifest.
 */
export interface SignedManifestEvent {
  readonly type: 'signed-manifest';
  /** The digest of the manifest signed. */
  readonly digest: Digest;
  /** What holds the signature: the `.sig` manifest (cosign), or the signed schema 1 manifest's own bytes (JWS). */
  readonly signature: Digest;
  /** `cosign`: a detached signature under the tag `sha256-<hex>.sig`; `schema1`: a JWS inside the manifest. */
  readonly scheme: 'cosign' | 'schema1';
  /** The signing key's libtrust key ID (`ABCD:EFGH:…`), as Docker names keys. */
  readonly keyId: string;
  /** The tags the signed manifest is pushed as (none for an index's child or a push by digest). */
  readonly tags: readonly string[];
  /** cosign: the tag the signature is stored under. */
  readonly signatureTag?: string;
  /** cosign: the digest of the referrer (OCI 1.1 `subject`) manifest, when the registry keeps referrers. */
  readonly referrer?: Digest;
}

/** The final emission per tag (or one, with no tag, for a push by digest). */
export interface ManifestPushedEvent {
  readonly type: 'manifest-pushed';
  readonly registry: string;
  readonly repository: string;
  readonly tag?: string;
  readonly digest: Digest;
  readonly size: number;
  readonly mediaType: string;
  /**
   * The tag (`sha256-<hex>`) of the referrers index the manifest was listed in: it has a `subject`, and the
   * registry has no referrers API, so rxpush keeps the index the distribution spec's tag schema describes.
   */
  readonly referrersTag?: string;
}

/** Fields every per-blob progress event has. */
export interface BlobProgress {
  /** Docker's short id (12 hex) of the blob key, as progress lines show it. */
  readonly id: string;
  readonly key: string;
  readonly role: 'config' | 'layer';
}

export interface PreparingEvent extends BlobProgress {
  readonly type: 'preparing';
}
export interface WaitingEvent extends BlobProgress {
  readonly type: 'waiting';
}
/** "Layer already exists": the registry has the blob; nothing is sent. */
export interface ExistsEvent extends BlobProgress {
  readonly type: 'exists';
  readonly digest: Digest;
}
/** The registry mounted the blob from another repository it holds it in. */
export interface MountedEvent extends BlobProgress {
  readonly type: 'mounted';
  readonly digest: Digest;
  readonly from: string;
  /** Set in a dry run: `from` holds the blob (HEAD), but no mount was asked for. */
  readonly dryRun?: true;
}
/** Bytes sent so far (throttled). `total` is unknown while compressing on the fly. */
export interface PushingEvent extends BlobProgress {
  readonly type: 'pushing';
  readonly current: number;
  readonly total?: number;
  /** Set on the first event of an upload that goes on from a session an earlier run left: the bytes already there. */
  readonly resumedAt?: number;
}
export interface PushedEvent extends BlobProgress {
  readonly type: 'pushed';
  readonly digest: Digest;
  readonly size: number;
}
/** A request failed in a way worth retrying; the next attempt starts after `delayMs`. */
export interface RetryingEvent {
  readonly type: 'retrying';
  /** The blob's short id, when the retry is about one blob. */
  readonly id?: string;
  readonly attempt: number;
  readonly delayMs: number;
  readonly reason: string;
}

/** Progress states, for display. */
export type ProgressEvent = PreparingEvent | WaitingEvent | ExistsEvent | MountedEvent | PushingEvent | PushedEvent | RetryingEvent;

/** Everything that flows through a push pipeline, discriminated by `type`. */
export type PushEvent =
  | ImageEvent
  | BlobEvent
  | BlobReadyEvent
  | ManifestEvent
  | SignedManifestEvent
  | ManifestPushedEvent
  | ProgressEvent;

/** The event types, for filters. */
export type PushEventType = PushEvent['type'];

/** Narrows an event to one type: `filter(isEvent('manifest-pushed'))`. */
export function isEvent<T extends PushEventType>(type: T): (event: PushEvent) => event is Extract<PushEvent, { type: T }> {
  return (event): event is Extract<PushEvent, { type: T }> => event.type === type;
}
