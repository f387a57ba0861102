import { checkBlobs, defaultCacheDir, DigestCache, rememberBlobs } from '@rxpush/blob-checker';
import { parseReference, silentLogger, UsageError, type ImageRecord, type Logger, type PushEvent, type RetryingEvent, type SourceRecord } from '@rxpush/core';
import { readImages } from '@rxpush/graph-reader';
import { walkLayers } from '@rxpush/layer-walker';
import { pushManifests } from '@rxpush/manifest-signer';
import { createAuthenticator, createDispatcher, RegistryClient, resolveCredentials, type Authenticator } from '@rxpush/registry-client';
import { uploadBlobs } from '@rxpush/uploader';
import type { Dispatcher } from 'undici';
import { defer, finalize, identity, map, merge, Subject, type Observable, type OperatorFunction } from 'rxjs';

import type { PushOptions } from './options.js';

/**
 * Pushes an image from a source to a registry: the ready-made composition of rxpush's operators.
 *
 * Nothing happens until subscription. Emits progress events (`preparing`, `waiting`, `exists`, `pushing`,
 * `pushed`, …) as they happen and, last, one `manifest-pushed` per tag. Unsubscribing aborts every
 * request in flight.
 *
 * Fails with core's typed errors: `UsageError` for bad options, `SourceError` and friends for a broken
 * source, `RegistryError`/`RegistryUnreachableError` for the registry. No manifest is PUT unless every
 * blob it names is verified in the registry.
 *
 * @example
 * push({ source: 'oci:./image:latest', destination: 'localhost:5000/app:1.0' }).subscribe(console.log)
 */
export function push(options: PushOptions): Observable<PushEvent> {
  return defer(() => {
    const destination = parseReference(options.destination);
    if (destination.digest !== undefined) {
      throw new UsageError(`destination ${options.destination} has a digest; push to a tag (REGISTRY/REPO:TAG) instead`);
    }
    const logger = options.logger ?? silentLogger;
    // Retries of single requests happen inside the client, outside the stream: a Subject brings them into it.
    const retries = new Subject<RetryingEvent>();
    const timeouts = options.timeouts ?? {};
    const { dispatcher, auth, ownsDispatcher } = connection(options, destination.registry, logger);
    const client = new RegistryClient({
      registry: destination.registry,
      logger,
      onRetry: (event) => retries.next(event),
      ...(options.retry !== undefined && { retry: options.retry }),
      ...(timeouts.connect !== undefined && { connectTimeout: timeouts.connect }),
      ...(timeouts.headers !== undefined && { headersTimeout: timeouts.headers }),
      ...(timeouts.body !== undefined && { bodyTimeout: timeouts.body }),
      ...(options.plainHttp !== undefined && { plainHttp: options.plainHttp }),
      dispatcher,
      auth,
    });
    const target = { client, repository: destination.repository, logger };
    const cache = options.cacheDir === false ? undefined : new DigestCache(options.cacheDir ?? defaultCacheDir());

    const events = readImages(options.source, {
      ...(options.allTags !== undefined && { allTags: options.allTags }),
      ...(options.dataRoot !== undefined && { dataRoot: options.dataRoot }),
      ...(options.storageDriver !== undefined && { storageDriver: options.storageDriver }),
      logger,
    }).pipe(
      retag(destinationTags(options, destination.tag)),
      walkLayers(),
      checkBlobs({
        ...target,
        ...(cache !== undefined && { cache }),
        ...(options.compression !== undefined && { compression: options.compression }),
      }),
      uploadBlobs({
        ...target,
        ...(options.concurrency !== undefined && { concurrency: options.concurrency }),
        ...(options.compression !== undefined && { compression: options.compression }),
        ...(options.chunkSize !== undefined && { chunkSize: options.chunkSize }),
        ...(options.retry !== undefined && { retry: options.retry }),
      }),
      cache ? rememberBlobs({ cache, registry: client.registry, repository: destination.repository, logger }) : identity,
      pushManifests({ ...target, ...(options.format !== undefined && { format: options.format }) }),
      finalize(() => {
        retries.complete();
        // The client first lets the session cancels of an unsubscribed push go out; only then may the dispatcher close.
        void client.close().then(() => (ownsDispatcher ? dispatcher.close() : undefined));
      }),
    );
    return merge(retries, events);
  });
}

/**
 * The dispatcher (TLS: system CAs, --ca-file, certs.d, --tls-verify) and authenticator (credentials looked
 * up only when the registry asks) for the destination registry.
 */
function connection(options: PushOptions, registry: string, logger: Logger): { dispatcher: Dispatcher; auth: Authenticator; ownsDispatcher: boolean } {
  const tls = [options.tlsVerify === false && 'tlsVerify', options.caFile !== undefined && 'caFile', options.certDir !== undefined && 'certDir'].filter(Boolean);
  if (options.dispatcher !== undefined && tls.length > 0) {
    throw new UsageError(`${tls.join(', ')} cannot be used with a dispatcher of your own: set the TLS options on that dispatcher instead`);
  }
  const dispatcher =
    options.dispatcher ??
    createDispatcher({
      registry,
      logger,
      ...(options.tlsVerify !== undefined && { tlsVerify: options.tlsVerify }),
      ...(options.caFile !== undefined && { caFile: options.caFile }),
      ...(options.certDir !== undefined && { certDir: options.certDir }),
      ...(options.certsRoot !== undefined && { certsRoot: options.certsRoot }),
      ...(options.timeouts?.connect !== undefined && { connectTimeout: options.timeouts.connect }),
    });
  const explicit = options.credentials;
  const auth =
    options.auth ??
    createAuthenticator({
      registry,
      dispatcher,
      logger,
      credentials: () =>
        resolveCredentials({
          registry,
          logger,
          ...(explicit !== undefined && {
            explicit: { username: explicit.username, password: explicit.password, source: explicit.source ?? 'the credentials option' },
          }),
          ...(options.authfile !== undefined && { authfile: options.authfile }),
          ...(options.dockerConfigDir !== undefined && { dockerConfigDir: options.dockerConfigDir }),
        }),
    });
  return { dispatcher, auth, ownsDispatcher: options.dispatcher === undefined };
}

/** How image records get their destination tags: kept (all tags) or replaced by the ones asked for. */
function destinationTags(options: PushOptions, destinationTag: string | undefined): (record: SourceRecord) => readonly string[] {
  const extra = options.tags ?? [];
  if (options.allTags) {
    if (destinationTag !== undefined || extra.length > 0) {
      throw new UsageError('--all-tags pushes every tag of the source under its own name; drop the destination tag and --tag');
    }
    return (record) => record.tags;
  }
  return (record) => [...new Set([destinationTag ?? record.tags[0] ?? 'latest', ...extra])];
}

/**
 * Renames the tags of every image a source emits, leaving all other events alone.
 *
 * @example readImages('oci:./layout').pipe(retag(() => ['v1', 'latest']))
 */
export function retag(tagsFor: (record: SourceRecord) => readonly string[]): OperatorFunction<PushEvent, PushEvent> {
  return map((event) => (event.type === 'image' ? { ...event, image: withTags(event.image, tagsFor(event.image)) } : event));
}

function withTags(record: SourceRecord, tags: readonly string[]): SourceRecord {
  return record.kind === 'image' ? ({ ...record, tags } satisfies ImageRecord) : { ...record, tags };
}
