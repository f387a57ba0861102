import {
  BlobNotVerifiedError,
  fromAbortable,
  silentLogger,
  type Descriptor,
  type ImageRecord,
  type Logger,
  type ManifestFormat,
  type PushEvent,
  type RawManifest,
  type RetryingEvent,
  type SourceRecord,
} from '@rxpush/core';
import type { RegistryClient, RequestOptions } from '@rxpush/registry-client';
import { concatWith, defer, EMPTY, mergeMap, of, throwError, type Observable, type OperatorFunction } from 'rxjs';

import { buildIndex, buildManifest } from './build-manifest.js';

/** Options of {@link pushManifests}. */
export interface PushManifestsOptions {
  readonly client: RegistryClient;
  readonly repository: string;
  /** Rewrite manifests to this format; default: the source's own format (Docker schema 2 when it has none). */
  readonly format?: ManifestFormat;
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
 * Fails when the registry rejects a manifest or answers with another digest, and when the stream
 * ends with an image whose blobs never became ready: no manifest is ever PUT over missing blobs.
 *
 * @example
 * source$.pipe(walkLayers(), checkBlobs(dest), uploadBlobs(dest), pushManifests({ client, repository: 'app' }))
 */
export function pushManifests(options: PushManifestsOptions): OperatorFunction<PushEvent, PushEvent> {
  const logger = (options.logger ?? silentLogger).child({ pkg: 'manifest-signer' });
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
        if (event.type === 'image') waiting.add(event.image);
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
    let manifest: RawManifest;
    if (record.kind === 'index') {
      const children = new Map<string, RawManifest>();
      for (const child of record.manifests) {
        const built = buildManifest(child, descriptors, options.format);
        // Children go up by digest only, and quietly: the tags, and the final word, belong to the index.
        await put(child, built, [], options, request, events, logger, false);
        if (child.manifest) children.set(child.manifest.digest, built);
      }
      manifest = buildIndex(record, children, options.format);
    } else {
      manifest = buildManifest(record, descriptors, options.format);
    }
    await put(record, manifest, record.tags, options, request, events, logger, true);
    return events;
  }).pipe(mergeMap((events) => events));
}

async function put(
  record: SourceRecord | ImageRecord,
  manifest: RawManifest,
  tags: readonly string[],
  options: PushManifestsOptions,
  request: RequestOptions,
  events: PushEvent[],
  logger: Logger,
  announce: boolean,
): Promise<void> {
  const { client, repository } = options;
  events.push({ type: 'manifest', source: record.source, tags, mediaType: manifest.mediaType, digest: manifest.digest, bytes: manifest.bytes });
  for (const reference of tags.length > 0 ? tags : [manifest.digest]) {
    // The client checks that the registry stored what was sent (the request named in its error).
    await client.putManifest(repository, reference, manifest, request);
    logger.debug({ reference, digest: manifest.digest }, 'manifest pushed');
    if (!announce) continue;
    events.push({
      type: 'manifest-pushed',
      registry: client.registry,
      repository,
      ...(reference !== manifest.digest && { tag: reference }),
      digest: manifest.digest,
      size: manifest.bytes.byteLength,
      mediaType: manifest.mediaType,
    });
  }
}
