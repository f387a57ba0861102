export { isDigest, parseDigest, splitDigest, shortId, sha256Digest } from './digest.js';
export type { Digest } from './digest.js';
export { MediaType, gzipLayerMediaType, isImageManifestType, isIndexType, layerCompression } from './media-types.js';
export type { ManifestFormat, PushFormat } from './media-types.js';
export type { Descriptor, Platform } from './descriptor.js';
export { assertNamesRepository, parseReference, formatReference, isValidRepository, isValidTag, TAG_RULE } from './reference.js';
export type { ImageReference } from './reference.js';
export type { Logger } from './logger.js';
export { silentLogger } from './logger.js';
export type { BlobHint, BlobSource, LayerLink, LayerList, OpenOptions, RawManifest, ImageRecord, IndexRecord, SourceRecord } from './image.js';
export { blobDescriptor } from './image.js';
export { isEvent } from './events.js';
export type {
  PushEvent,
  PushEventType,
  ProgressEvent,
  ImageEvent,
  BlobEvent,
  BlobReadyEvent,
  ManifestEvent,
  SignedManifestEvent,
  ManifestPushedEvent,
  BlobProgress,
  PreparingEvent,
  WaitingEvent,
  ExistsEvent,
  MountedEvent,
  PushingEvent,
  PushedEvent,
  RetryingEvent,
} from './events.js';
export {
  PushError,
  UsageError,
  ReferenceFormatError,
  DigestFormatError,
  SourceError,
  SourceNotFoundError,
  InvalidSourceError,
  BlobMissingError,
  DigestMismatchError,
  UnsupportedError,
  RegistryError,
  UnauthorizedError,
  DeniedError,
  InvalidResponseError,
  RegistryUnreachableError,
  TimeoutError,
  TlsError,
  TlsConfigError,
  BlobNotVerifiedError,
  CancelledError,
  KeyError,
  NotSignedError,
  VerifyError,
  isPushError,
} from './errors.js';
export type { PushErrorCode, RetryFacts, VerifyFailure } from './errors.js';
export { fromAbortable } from './from-abortable.js';
export { jsonSyntaxReason, oneLine, printable } from './printable.js';
export { makeDirectory } from './make-directory.js';
export { fileReason } from './file-reason.js';
