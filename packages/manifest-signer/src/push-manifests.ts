import {
  BlobNotVerifiedError,
  fromAbortable,
  MediaType,
  RegistryError,
  sha256Digest,
  silentLogger,
  UnsupportedError,
  UsageError,
  type Descriptor,
  type ImageRecord,
  type Logger,
  type PushEvent,
  type PushFormat,
  type RawManifest,
  type RetryingEvent,
  type SourceRecord,
} from '@rxpush/core';
import type { RegistryClient, RequestOptions } from '@rxpush/registry-client';
import { concatWith, defer, EMPTY, mergeMap, of, throwError, type Observable, type OperatorFunction } from 'rxjs';

import { buildIndex, buildManifest } from './build-manifest.js';
import { signSchema1 } from './jws.js';
import { putManifestRechecked } from './put-manifest-rechecked.js';
import { putSmallBlob, readSmallBlob } from './small-blobs.js';
import { buildSchema1, EMPTY_LAYER } from './schema1.js';
import { jwsAlgorithm, type SigningKey } from './signing-key.js';

/** The OCI spec's suggested limit, which registries enforce: a larger manifest is refused before it is sent. */
const MANIFEST_LIMIT = 4 * 1024 * 1024;
/** Image configs are read back from the registry to build schema 1 manifests; none is anywhere near this. */
const CONFIG_LIMIT = 8 * 1024 * 1024;

/** Options of {@link pushManifests}. */
export interface PushManifestsOptions {
  readonly client: RegistryClient;
  readonly repository: string;
  /**
   * Rewrite manifests to this format; default: the source's own format (Docker schema 2 when it has none).
   * `schema1` writes one Docker schema 1 manifest per tag, signed with `signKey`.
   */
  readonly format?: PushFormat;
  /** The key that signs schema 1 manifests (required with `format: 'schema1'`; other formats are signed by signManifests). */
  readonly signKey?: SigningKey;
  readonly logger?: Logger;
}

/**
 * PUTs each image's manifest once every blob it names is verified in the registry.
 *
 * Holds each `image` event until `blob-ready` events have covered its config and layers (in any order,
 * across images), then emits `manifest` and, for every tag, `manifest-pushed` after the registry answered
 * with the digest rxpush computed. An index pushes its images by digest first, then itself per tag.
 * Other events pass through.
 *
 * A PUT refused in a way that concurrent pushes can cause (the reference registry's DIGEST_INVALID or
 * MANIFEST_BLOB_UNKNOWN while another client links a blob) is retried a few times, emitting `retrying`,
 * but only after every blob of the manifest is HEADed and found with its size, and only for a manifest
 * whose digest rxpush computed from its bytes.
 *
 * Fails when the registry rejects a manifest or answers with another digest, and when the stream
 * ends with an image whose blobs never became ready: no manifest is ever PUT over missing blobs.
 *
 * @example
 * source$.pipe(walkLayers(), checkBlobs(dest), uploadBlobs(dest), pushManifests({ client, repository: 'app' }))
 */
export function pushManifests(options: PushManifestsOptions): OperatorFunction<PushEvent, PushEvent> {
  const logger = (options.logger ?? silentLogger).child({ pkg: 'manifest-signer' });
  if (options.format === 'schema1') {
    if (options.signKey === undefined) throw new UsageError('a Docker schema 1 manifest must be signed: give --sign-key FILE (rxpush keygen makes one)');
    jwsAlgorithm(options.signKey);
  }
  return (source) =>
    defer(() => {
      const ready = new Map<string, Descriptor>();
      const waiting = new Set<SourceRecord>();

      const takeComplete = (): SourceRecord[] => {
        const complete = [...waiting].filter((record) => keysOf(record).every((key) => ready.has(key)));
        for (const record of complete) waiting.delete(record);
        return complete;
      };

      const onEvent = (event: PushEvent): Observable<PushEvent> => {
        if (event.type === 'image') {
          if (options.format === 'schema1' && event.image.kind === 'index') {
            return throwError(
              () =>
                new UnsupportedError(
                  `${event.image.source} is an index of ${event.image.kind === 'index' ? event.image.manifests.length : 0} images, and a schema 1 manifest holds one image: push one platform's image, or push the index with --format oci`,
                ),
            );
          }
          waiting.add(event.image);
        }
        else if (event.type === 'blob-ready') ready.set(event.key, event.descriptor);
        else return of(event);
        const complete = takeComplete();
        if (complete.length === 0) return of(event);
        return of(event).pipe(
          concatWith(...complete.map((record) => pushRecord(record, (key) => ready.get(key) as Descriptor, options, logger))),
        );
      };

      const leftOver = defer(() =>
        waiting.size === 0
          ? EMPTY
          : throwError(
              () =>
                new BlobNotVerifiedError(
                  `not pushing ${[...waiting].map((r) => r.source).join(', ')}: ${missingKeys(waiting, ready).join(', ')} never reached the registry`,
                ),
            ),
      );
      return source.pipe(mergeMap(onEvent), concatWith(leftOver));
    });
}

function keysOf(record: SourceRecord): string[] {
  if (record.kind === 'index') return record.manifests.flatMap(keysOf);
  const layers = record.layers.kind === 'list' ? record.layers.layers : [];
  return [record.config.key, ...layers.map((layer) => layer.key)];
}

function blobsOf(record: ImageRecord, descriptors: (key: string) => Descriptor): Descriptor[] {
  return keysOf(record).map(descriptors);
}

function missingKeys(records: ReadonlySet<SourceRecord>, ready: ReadonlyMap<string, Descriptor>): string[] {
  return [...new Set([...records].flatMap(keysOf).filter((key) => !ready.has(key)))];
}

function pushRecord(
  record: SourceRecord,
  descriptors: (key: string) => Descriptor,
  options: PushManifestsOptions,
  logger: Logger,
): Observable<PushEvent> {
  return fromAbortable<PushEvent[]>(async (signal, emit) => {
    const events: PushEvent[] = [];
    const request = { signal, onRetry: (retrying: RetryingEvent) => emit([retrying]) };
    if (options.format === 'schema1' && record.kind === 'image') {
      await pushSchema1(record, descriptors, options, request, events, logger);
      return events;
    }
    let manifest: RawManifest;
    if (record.kind === 'index') {
      const children = new Map<string, RawManifest>();
      for (const child of record.manifests) {
        const built = buildManifest(child, descriptors, schema2Format(options));
        // Children go up by digest only, and quietly: the tags, and the final word, belong to the index.
        await put(child, built, [], blobsOf(child, descriptors), options, request, events, logger, false);
        if (child.manifest) children.set(child.manifest.digest, built);
      }
      manifest = buildIndex(record, children, schema2Format(options));
    } else {
      manifest = buildManifest(record, descriptors, schema2Format(options));
    }
    // An index names manifests, not blobs: it is never retried.
    await put(record, manifest, record.tags, record.kind === 'index' ? [] : blobsOf(record, descriptors), options, request, events, logger, true);
    return events;
  }).pipe(mergeMap((events) => events));
}

async function put(
  record: SourceRecord | ImageRecord,
  manifest: RawManifest,
  tags: readonly string[],
  blobs: readonly Descriptor[],
  options: PushManifestsOptions,
  request: RequestOptions,
  events: PushEvent[],
  logger: Logger,
  announce: boolean,
): Promise<void> {
  const { client, repository } = options;
  if (manifest.bytes.byteLength > MANIFEST_LIMIT) {
    throw new UnsupportedError(
      `the manifest of ${record.source} is ${manifest.bytes.byteLength} bytes; registries refuse manifests over 4 MiB, push fewer layers${manifest.mediaType === MediaType.dockerSchema1Signed ? ' or use --format oci' : ''}`,
    );
  }
  events.push({
    type: 'manifest',
    source: record.source,
    tags,
    mediaType: manifest.mediaType,
    digest: manifest.digest,
    bytes: manifest.bytes,
    ...(!announce && { child: true }),
  });
  for (const reference of tags.length > 0 ? tags : [manifest.digest]) {
    // The client checks that the registry stored what was sent (the request named in its error).
    const send = () => putOne(client, repository, reference, manifest, request);
    const { referrersTag } = await putManifestRechecked(manifest, { client, repository, reference, blobs, request, logger }, send);
    logger.debug({ reference, digest: manifest.digest, ...(referrersTag !== undefined && { referrersTag }) }, 'manifest pushed');
    if (!announce) continue;
    events.push({
      type: 'manifest-pushed',
      registry: client.registry,
      repository,
      ...(reference !== manifest.digest && { tag: reference }),
      digest: manifest.digest,
      size: manifest.bytes.byteLength,
      mediaType: manifest.mediaType,
      ...(referrersTag !== undefined && { referrersTag }),
    });
  }
}

/** The schema 2 format to convert to: none for schema 1 (which never reaches buildManifest). */
function schema2Format(options: PushManifestsOptions): 'oci' | 'docker' | undefined {
  return options.format === 'schema1' ? undefined : options.format;
}

/** PUTs one manifest, turning a registry's refusal of schema 1 into what to do about it. */
async function putOne(
  client: RegistryClient,
  repository: string,
  reference: string,
  manifest: RawManifest,
  request: RequestOptions,
): Promise<{ digest: string | undefined; referrersTag?: string }> {
  const schema1 = manifest.mediaType === MediaType.dockerSchema1Signed;
  try {
    // A registry without schema 1 answers 500 UNKNOWN (the reference registry does), which retrying cannot change.
    return await client.putManifest(repository, reference, manifest, { ...request, ...(schema1 && { retries: 0 }) });
  } catch (error) {
    if (schema1 && error instanceof RegistryError && (error.status === 415 || error.status === 500 || (error.status === 400 && /schema ?1|schema v1|v1 manifest/i.test(error.message)))) {
      throw new UnsupportedError(
        `${error.message}: the registry refuses Docker schema 1 manifests (the reference registry takes them only with compatibility.schema1.enabled); push with --format oci`,
      );
    }
    throw error;
  }
}

/**
 * A Docker schema 1 push, as Docker's own was: for each tag, a manifest built from the image config (read
 * back from the registry, where it is verified by now), signed with the user's key, then PUT. The empty tar
 * that `empty_layer` entries name is uploaded first when one does.
 */
async function pushSchema1(
  record: ImageRecord,
  descriptors: (key: string) => Descriptor,
  options: PushManifestsOptions,
  request: RequestOptions & { signal: AbortSignal },
  events: PushEvent[],
  logger: Logger,
): Promise<void> {
  const { client, repository } = options;
  const key = options.signKey!;
  const configDescriptor = descriptors(record.config.key);
  const config = await readConfig(client, repository, configDescriptor, request);
  if (record.layers.kind !== 'list') throw new Error(`layers of ${record.source} must be walked before the manifest is built`);
  const layers = record.layers.layers.map((layer) => descriptors(layer.key));
  for (const tag of record.tags.length > 0 ? record.tags : ['']) {
    const unsigned = buildSchema1(config, layers, { name: repository, tag });
    if (unsigned.needsEmptyLayer) await putSmallBlob(client, repository, EMPTY_LAYER, request);
    const manifest = await signSchema1(unsigned.payload, key);
    events.push({
      type: 'signed-manifest',
      digest: manifest.digest,
      signature: sha256Digest(manifest.bytes),
      scheme: 'schema1',
      keyId: key.keyId,
      tags: tag === '' ? [] : [tag],
    });
    logger.debug({ tag, digest: manifest.digest, keyId: key.keyId }, 'schema 1 manifest signed');
    // Its digest covers the payload, not the signed bytes: not one rxpush can prove, so never retried.
    await put(record, manifest, tag === '' ? [] : [tag], [], options, request, events, logger, true);
  }
}

async function readConfig(client: RegistryClient, repository: string, config: Descriptor, request: RequestOptions): Promise<Uint8Array> {
  const bytes = await readSmallBlob(client, repository, config.digest, CONFIG_LIMIT, request);
  if (bytes === undefined) {
    throw new BlobNotVerifiedError(`the image config ${config.digest} read back from ${client.registry}/${repository} is over 8 MiB or does not match its digest; push again`);
  }
  return bytes;
}
