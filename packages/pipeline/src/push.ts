import { checkBlobs, defaultCacheDir, DigestCache, rememberBlobs } from '@rxpush/blob-checker';
import { assertNamesRepository, fromAbortable, isValidTag, parseReference, printable, ReferenceFormatError, silentLogger, TAG_RULE, UsageError, type ImageRecord, type Logger, type PushEvent, type SourceRecord } from '@rxpush/core';
import { readImages, spoolArchive, type SpooledSource } from '@rxpush/graph-reader';
import { walkLayers } from '@rxpush/layer-walker';
import { assertKeyFits, pushManifests, signManifests } from '@rxpush/manifest-signer';
import { createRegistryClient, type RegistryClient } from '@rxpush/registry-client';
import { fileSessionStore, uploadBlobs, type SessionKey, type SessionStore } from '@rxpush/uploader';
import { catchError, defer, finalize, identity, map, mergeMap, pipe, tap, throwError, type Observable, type OperatorFunction } from 'rxjs';

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
 * A `docker://` source is copied registry to registry (`rxpush copy`): blobs stream from the source registry
 * into the destination, never to disk, each checked against its digest; blobs the destination has are never
 * fetched, a destination on the same registry mounts them, and manifests keep their digests unless `format`
 * converts them. The source registry gets its own client (`sourceRegistry`).
 *
 * With `dryRun` nothing is written: a blob the registry has is `exists`, one it could mount is `mounted` with
 * `dryRun: true`, and one that would be uploaded is `waiting` followed by its `blob` task, never opened; the
 * `image` records carry the tags that would be pushed; no `manifest-pushed` is emitted.
 *
 * @example
 * push({ source: 'oci:./image:latest', destination: 'localhost:5000/app:1.0' }).subscribe(console.log)
 */
export function push(options: PushOptions): Observable<PushEvent> {
  return defer(() => {
    const destination = parseReference(options.destination);
    assertNamesRepository(options.destination, 'destination');
    if (options.source.startsWith('docker://')) assertNamesRepository(options.source, 'source');
    if (destination.digest !== undefined) {
      throw new UsageError(`destination ${options.destination} has a digest; push to a tag (REGISTRY/REPO:TAG) instead`);
    }
    // A key that cannot sign, or a schema 1 push without one, fails before anything is read or sent.
    if (options.format === 'schema1' && options.signKey === undefined) {
      throw new UsageError('a Docker schema 1 manifest must be signed: give --sign-key FILE (rxpush keygen makes one)');
    }
    if (options.signKey !== undefined) assertKeyFits(options.signKey, options.format === 'schema1' ? 'schema1' : 'cosign');
    if (options.compression === 'zstd' && (options.format === 'docker' || options.format === 'schema1')) {
      throw new UsageError(`--compression zstd needs an OCI manifest (Docker's ${options.format === 'docker' ? 'schema 2' : 'schema 1'} has no zstd layer type); use --format oci, or --compression gzip`);
    }
    const logger = options.logger ?? silentLogger;
    // The source's client first: it checks the source reference and its own TLS files before anything opens.
    const sourceClient = registrySourceClient(options, logger);
    let client: RegistryClient;
    try {
      client = createRegistryClient({
        registry: destination.registry,
        logger,
        ...pick(options, ['credentials', 'authfile', 'dockerConfigDir', 'caFile', 'certDir', 'certsRoot', 'tlsVerify', 'plainHttp', 'timeouts', 'retry', 'dispatcher', 'auth']),
      });
    } catch (error) {
      void sourceClient?.close();
      throw error;
    }
    const target = { client, repository: destination.repository, logger };
    const cache = options.cacheDir === false ? undefined : new DigestCache(options.cacheDir ?? defaultCacheDir(), { logger });
    // Kept beside the digest cache, so a push broken off resumes its chunked uploads in the next run.
    const sessions = options.cacheDir !== false && options.resume !== false ? countedSessions(fileSessionStore(options.cacheDir ?? defaultCacheDir(), { logger })) : undefined;

    // An archive that is a pipe or gzip-compressed is read from a plain copy, removed when the push ends.
    let spooled: SpooledSource | undefined;
    return fromAbortable(async (signal) => {
      const ready = await spoolArchive(options.source, { logger, signal });
      // Unsubscribed as the copy was done: nobody will release it but this.
      if (signal.aborted) await ready.release();
      signal.throwIfAborted();
      return (spooled = ready);
    }).pipe(
      mergeMap((ready) =>
        readImages(ready.source, {
          ...(sourceClient !== undefined && { registryClient: sourceClient }),
          ...(options.platform !== undefined && { platform: options.platform }),
          ...(options.allTags !== undefined && { allTags: options.allTags }),
          ...(options.dataRoot !== undefined && { dataRoot: options.dataRoot }),
          ...(options.storageDriver !== undefined && { storageDriver: options.storageDriver }),
          ...(options.timeouts?.engine !== undefined && { engineIdleTimeoutMs: options.timeouts.engine }),
          logger,
        }),
      ),
      retag(destinationTags(options, destination.tag)),
      walkLayers(),
      checkBlobs({
        ...target,
        ...(cache !== undefined && { cache }),
        ...(options.compression !== undefined && { compression: options.compression }),
        ...(options.dryRun === true && { dryRun: true }),
      }),
      options.dryRun === true ? releaseBlobs() : write(options, target, cache, sessions),
      // A failure of reading an archive's copy names the archive given, not the copy.
      catchError((error: unknown) => throwError(() => spooled?.named(error) ?? error)),
      finalize(() => {
        // The client lets the session cancels of an unsubscribed push go out before it closes its dispatcher.
        void client.close();
        void sourceClient?.close();
        void spooled?.release();
        // The uploads' own teardown ran first: what is still stored now is what the next run can resume.
        if (sessions !== undefined) options.onSessionsKept?.(sessions.open.size);
      }),
    );
  });
}

/** A session store that also knows which sessions are stored now (saved and not forgotten since). */
function countedSessions(store: SessionStore): SessionStore & { readonly open: ReadonlySet<string> } {
  const open = new Set<string>();
  const id = (key: SessionKey): string => `${key.registry}\0${key.repository}\0${key.blob}`;
  return {
    open,
    load: (key) => store.load(key),
    save(key, session) {
      open.add(id(key));
      return store.save(key, session);
    },
    forget(key) {
      open.delete(id(key));
      return store.forget(key);
    },
    release: (key) => store.release?.(key),
  };
}

/**
 * The client of a `docker://` source's registry, built apart from the destination's: its own credentials
 * and TLS options, so neither registry is ever sent the other's credentials, even when both are one host.
 */
function registrySourceClient(options: PushOptions, logger: Logger): RegistryClient | undefined {
  if (!options.source.startsWith('docker://')) {
    if (options.sourceRegistry !== undefined) throw new UsageError(`the source registry options (--src-*) are for docker:// sources; ${options.source} is not in a registry`);
    return undefined;
  }
  let registry: string;
  try {
    ({ registry } = parseReference(options.source));
  } catch (error) {
    if (error instanceof ReferenceFormatError) throw new UsageError(`source ${options.source}: ${error.message.replace(/; expected .*$/, '')}; use docker://REGISTRY/REPO[:TAG]`);
    throw error;
  }
  return createRegistryClient({
    registry,
    logger,
    ...pick(options, ['dockerConfigDir', 'certsRoot', 'timeouts', 'retry']),
    ...pick(options.sourceRegistry ?? {}, ['credentials', 'authfile', 'caFile', 'certDir', 'tlsVerify', 'plainHttp', 'dispatcher', 'auth']),
  });
}

/** What a push writes: the blobs the registry lacks, the digest cache, the manifests. */
function write(
  options: PushOptions,
  target: { client: RegistryClient; repository: string; logger: Logger },
  cache: DigestCache | undefined,
  sessions: SessionStore | undefined,
): OperatorFunction<PushEvent, PushEvent> {
  const { client, repository } = target;
  return pipe(
    uploadBlobs({
      ...target,
      ...(options.concurrency !== undefined && { concurrency: options.concurrency }),
      ...(options.uploadLimiter !== undefined && { limiter: options.uploadLimiter }),
      ...(options.compression !== undefined && { compression: options.compression }),
      ...(options.compressionLevel !== undefined && { compressionLevel: options.compressionLevel }),
      ...(options.chunkSize !== undefined && { chunkSize: options.chunkSize }),
      ...(sessions !== undefined && { sessions }),
    }),
    cache ? rememberBlobs({ cache, registry: client.registry, repository }) : identity,
    pushManifests({
      ...target,
      ...formatOption(options),
      ...(options.format === 'schema1' && options.signKey !== undefined && { signKey: options.signKey }),
    }),
    options.signKey !== undefined && options.format !== 'schema1'
      ? signManifests({ ...target, key: options.signKey, ...(options.signChildren !== undefined && { signChildren: options.signChildren }) })
      : identity,
  );
}

/** The format asked for; with zstd layers, which only OCI manifests can name, OCI unless asked otherwise. */
function formatOption(options: PushOptions): { format?: NonNullable<PushOptions['format']> } {
  const format = options.format ?? (options.compression === 'zstd' ? 'oci' : undefined);
  return format === undefined ? {} : { format };
}

/** A dry run's end: blobs to upload are told they will not be read, and every event passes on. */
function releaseBlobs(): OperatorFunction<PushEvent, PushEvent> {
  return tap((event) => {
    if (event.type === 'blob') event.blob.release?.();
  });
}

/** The options of `options` named in `keys` that are set, for passing on under exactOptionalPropertyTypes. */
function pick<T extends object, K extends keyof T>(options: T, keys: readonly K[]): Partial<Pick<T, K>> {
  return Object.fromEntries(keys.filter((key) => options[key] !== undefined).map((key) => [key, options[key]])) as Partial<Pick<T, K>>;
}

/** How image records get their destination tags: kept (all tags) or replaced by the ones asked for. */
function destinationTags(options: PushOptions, destinationTag: string | undefined): (record: SourceRecord) => readonly string[] {
  const extra = options.tags ?? [];
  if (options.allTags) {
    if (destinationTag !== undefined || extra.length > 0) {
      throw new UsageError('--all-tags pushes every tag of the source under its own name; drop the destination tag and --tag');
    }
    return (record) => record.tags.map((tag) => sourceTag(tag, `push that image by itself, with SOURCE naming it and DEST a tag of yours`));
  }
  return (record) => [...new Set([destinationTag ?? sourceTag(record.tags[0] ?? 'latest', `give ${options.destination} a tag (${options.destination}:TAG)`), ...extra])];
}

/**
 * A tag taken from the source, checked before anything is sent: an OCI layout's ref name may hold `+`, `/` or
 * `:` (`1.0+build`), which no registry takes; found at the manifest PUT, the blobs would already be up.
 */
function sourceTag(tag: string, fix: string): string {
  if (isValidTag(tag)) return tag;
  throw new UsageError(`the source's tag "${printable(tag)}" is not a valid registry tag: ${TAG_RULE}; ${fix}`);
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
