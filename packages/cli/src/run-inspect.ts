import type { Readable } from 'node:stream';

import {
  assertNamesRepository,
  DigestMismatchError,
  InvalidSourceError,
  isImageManifestType,
  isIndexType,
  isPushError,
  jsonSyntaxReason,
  MediaType,
  parseDigest,
  parseReference,
  printable,
  RegistryError,
  sha256Digest,
  SourceNotFoundError,
  UnsupportedError,
  UsageError,
  type Digest,
  type ImageRecord,
  type Platform,
  type SourceRecord,
} from '@rxpush/core';
import { checkImagePlatform, findPlatform, parseIndex, parsePlatform, platformText, readImages, spoolArchive } from '@rxpush/graph-reader';
import { createRegistryClient, readBody, type RawManifest, type RegistryClient } from '@rxpush/registry-client';
import { firstValueFrom, toArray } from 'rxjs';

import { helpFor, type RawArgs } from './parse-args.js';
import type { TextSink } from './progress/renderer.js';
import { last, registryCommand } from './push-command.js';
import { fail } from './fail.js';
import { clientOptions, commandCredentials, commandLogger } from './run-push.js';

/** Configs are small JSON documents; a larger one is refused rather than buffered. */
const CONFIG_LIMIT = 8 * 1024 * 1024;
const LOCAL = /^(oci|oci-archive|docker-archive|docker-daemon|docker-root):/;
const ACCEPT = [MediaType.ociManifest, MediaType.ociIndex, MediaType.dockerManifest, MediaType.dockerManifestList, MediaType.dockerSchema1Signed, MediaType.dockerSchema1];

/** What inspect found, before it is printed. */
interface Inspected {
  readonly name: string;
  readonly mediaType?: string;
  readonly digest?: string;
  /** The manifest bytes as stored; undefined for sources that store none (docker-archive, docker-root, docker-daemon). */
  readonly bytes?: Uint8Array;
  readonly config?: unknown;
  /** Of an index: the platforms of its images, for the message that asks to pick one. */
  readonly offers?: string;
}

/**
 * The `rxpush inspect` handler: prints the manifest (or index) and config of a local source or a registry
 * image as JSON; `--raw` the manifest bytes exactly as stored, `--config` the config alone. Exit 0, 1 failed, 2 usage.
 *
 * @example process.exitCode = await runInspect({ REF: 'oci:./image:latest' }, { stdout, stderr })
 */
export async function runInspect(args: RawArgs, io: { stdout: TextSink; stderr: TextSink; stdin?: Readable }): Promise<number> {
  let logLevel: ReturnType<typeof registryCommand>['logLevel'] = 'warn';
  try {
    const ref = last(args['REF']);
    if (ref === undefined || ref === '') throw new UsageError('missing SOURCE or DEST');
    const raw = args['raw'] === true;
    const configOnly = args['config'] === true;
    if (raw && configOnly) throw new UsageError('give --raw (the manifest bytes) or --config (the config), not both');
    const platformArg = last(args['platform']);
    const platform = platformArg === undefined ? undefined : parsePlatform(platformArg);
    const command = registryCommand(args);
    logLevel = command.logLevel;
    const logger = commandLogger(command.logLevel, command.logFormat, io.stderr);
    let found: Inspected;
    if (LOCAL.test(ref)) {
      const dataRoot = last(args['data-root']);
      const storageDriver = last(args['storage-driver']);
      // A piped or gzip-compressed archive is read from a plain copy, as a push reads it.
      const spooled = await spoolArchive(ref, { logger });
      try {
        const events = await firstValueFrom(
          readImages(spooled.source, {
            logger,
            ...(dataRoot !== undefined && { dataRoot }),
            ...(storageDriver !== undefined && { storageDriver }),
            ...(platformArg !== undefined && { platform: platformArg }),
          }).pipe(toArray()),
        );
        const record = events.find((event) => event.type === 'image')?.image;
        if (record === undefined) throw new SourceNotFoundError(ref, `${ref} holds no image`);
        found = await inspectLocal(ref, record, configOnly || !raw);
      } catch (error) {
        throw spooled.named(error);
      } finally {
        await spooled.release();
      }
    } else {
      assertNamesRepository(ref, 'reference');
      const reference = parseReference(ref);
      const credentials = await commandCredentials(command.credentials, io.stdin ?? process.stdin);
      const client = createRegistryClient({ registry: reference.registry, logger, ...clientOptions(command, credentials) });
      try {
        found = await inspectRemote(client, reference.repository, reference.digest ?? reference.tag ?? 'latest', configOnly || !raw, platform);
      } finally {
        await client.close();
      }
    }
    io.stdout.write(render(found, raw, configOnly));
    return 0;
  } catch (error) {
    return fail(error, io.stderr, logLevel, helpFor('inspect'));
  }
}

function render(found: Inspected, raw: boolean, configOnly: boolean): string {
  if (raw) {
    if (found.bytes === undefined) throw new UnsupportedError(`${found.name} stores no manifest (rxpush builds one as it pushes); inspect it without --raw`);
    return Buffer.from(found.bytes).toString('utf8');
  }
  if (configOnly) {
    if (found.config === undefined) {
      const pick = found.offers !== undefined && found.offers !== '' ? `pick one of its images with --platform (it offers ${found.offers})` : 'inspect one of its images by digest';
      throw new UnsupportedError(`${found.name} is an index, which has no config; ${pick}`);
    }
    return `${JSON.stringify(found.config, null, 2)}\n`;
  }
  const manifest = found.bytes === undefined ? null : (JSON.parse(Buffer.from(found.bytes).toString('utf8')) as unknown);
  return `${JSON.stringify({ name: found.name, mediaType: found.mediaType ?? null, digest: found.digest ?? null, manifest, ...(found.config !== undefined && { config: found.config }) }, null, 2)}\n`;
}

async function inspectLocal(name: string, record: SourceRecord, withConfig: boolean): Promise<Inspected> {
  const stored = record.kind === 'index' ? record.index : record.manifest;
  const base = { name, ...(stored !== undefined && { mediaType: stored.mediaType, digest: stored.digest, bytes: stored.bytes }) };
  if (record.kind === 'index') return { ...base, offers: offers(record.manifests.map((image) => image.platform)) };
  if (!withConfig) return base;
  const origin = record.config.origin;
  return { ...base, config: parseConfig(await readLocalConfig(record), origin) };
}

async function readLocalConfig(record: ImageRecord): Promise<Buffer> {
  // A source that streams its blobs in its own order (docker save) may skip the layers: none is read here.
  if (record.layers.kind === 'list') for (const layer of record.layers.layers) layer.release?.();
  return readAll(await record.config.open(), record.config.origin, record.config.digest);
}

/**
 * A registry image's manifest and, when asked, its config, both checked. With `platform`, of an index the
 * image for that platform (fetched by digest, which the client checks, and against the index's size), and
 * of a single image its config must name that platform, as copy --platform has it.
 */
async function inspectRemote(client: RegistryClient, repository: string, reference: string, withConfig: boolean, platform: Platform | undefined): Promise<Inspected> {
  const name = `${client.registry}/${repository}${reference.includes(':') ? `@${reference}` : `:${reference}`}`;
  let manifest = await getManifest(client, repository, reference, name, `no image ${name} in the registry`, 'check the repository and tag');
  // Even --raw prints only what is a manifest: a proxy's login page under the manifest's address is not one.
  let document = manifestDocument(manifest, name, client.registry);
  /** Set for a single image, whose config must then name `platform`; an image picked from an index is of it. */
  let singleOf = platform;
  if (isIndexType(manifest.mediaType)) {
    // The registry source's own check of an index: its descriptors, digests and platforms.
    const { manifests: entries } = parseIndex(manifest.bytes, `the index of ${name}`, [manifest.mediaType], (file, problem) => new InvalidSourceError(name, `${file} ${problem}; the registry holds a damaged index`));
    const offered = offers(entries.map((entry) => entry.platform));
    if (platform === undefined) return { name, mediaType: manifest.mediaType, digest: manifest.digest, bytes: manifest.bytes, offers: offered };
    const entry = findPlatform(entries, platform);
    const wanted = platformText(platform);
    if (entry === undefined) throw new SourceNotFoundError(name, `${name} has no image for ${wanted}; its index offers ${offered || 'no platforms'}`);
    manifest = await getManifest(client, repository, entry.digest, name, `the index of ${name} names ${entry.digest} for ${wanted}, which the registry does not have`, 'the index is incomplete there');
    if (manifest.bytes.length !== entry.size) {
      throw new InvalidSourceError(name, `the index of ${name} says its ${wanted} image ${entry.digest} is ${entry.size} bytes, but the registry's is ${manifest.bytes.length}; the index is damaged there`);
    }
    document = manifestDocument(manifest, `${name} (${wanted})`, client.registry);
    if (isIndexType(manifest.mediaType)) throw new UnsupportedError(`the index of ${name} lists another index for ${wanted}; inspect ${entry.digest} itself`);
    singleOf = undefined;
  }
  const base = { name, mediaType: manifest.mediaType, digest: manifest.digest, bytes: manifest.bytes };
  // The config is read for --raw too when it has to say the platform.
  if (!withConfig && singleOf === undefined) return base;
  const config = await remoteConfig(client, repository, manifest, document, name);
  if (config === undefined) return base;
  if (singleOf !== undefined) checkImagePlatform(config.bytes, singleOf, name);
  return withConfig ? { ...base, config: parseConfig(config.bytes, config.origin) } : base;
}

/** A manifest by tag or digest (the client checks a digest against the bytes); a 404 says what is `missing` and what to do. */
async function getManifest(client: RegistryClient, repository: string, reference: string, name: string, missing: string, todo: string): Promise<RawManifest> {
  return client.getManifest(repository, reference, { accept: ACCEPT }).catch((error: unknown) => {
    if (!(error instanceof RegistryError) || error.status !== 404) throw error;
    // The client's message up to its hint (`GET https://r/v2/app/manifests/1 → 404 MANIFEST_UNKNOWN: …`), then what to do.
    throw new SourceNotFoundError(name, `${missing} (${error.message.split('; ')[0]}); ${todo}`, { cause: error });
  });
}

/** An image manifest's config bytes, checked against its digest; for schema 1, its top history entry. */
async function remoteConfig(client: RegistryClient, repository: string, manifest: RawManifest, document: object, name: string): Promise<{ bytes: Buffer; origin: string } | undefined> {
  if (manifest.mediaType === MediaType.dockerSchema1Signed || manifest.mediaType === MediaType.dockerSchema1) {
    // Schema 1 has no config blob: its top history entry is the config, as Docker wrote it.
    const top = (document as { history?: { v1Compatibility?: unknown }[] }).history?.[0]?.v1Compatibility;
    return typeof top === 'string' ? { bytes: Buffer.from(top), origin: `${name} history[0].v1Compatibility` } : undefined;
  }
  const digest = parseDigest((document as { config?: { digest?: unknown } }).config?.digest, `config digest in the manifest of ${name}`);
  const origin = `${name} config ${digest}`;
  const body = await client.getBlob(repository, digest).catch((error: unknown) => {
    if (!(error instanceof RegistryError) || error.status !== 404) throw error;
    throw new SourceNotFoundError(name, `the manifest of ${name} names the config ${digest}, which the registry does not have (${error.message.split('; ')[0]}); the image is incomplete there`, { cause: error });
  });
  return { bytes: await readAll(body, origin, digest), origin };
}

/** `linux/amd64, linux/arm64/v8`: the platforms an index names, for messages. */
function offers(platforms: readonly (Platform | undefined)[]): string {
  return [...new Set(platforms.filter((platform) => platform !== undefined).map((platform) => printable(platformText(platform))))].join(', ');
}

/** The media types inspect shows: images and indexes, Docker's and OCI's, schema 1 included. */
function isManifestType(mediaType: string): boolean {
  return isImageManifestType(mediaType) || isIndexType(mediaType) || mediaType === MediaType.dockerSchema1Signed || mediaType === MediaType.dockerSchema1;
}

/** A fetched manifest's JSON object, once its media type and bytes say it is one. */
function manifestDocument(manifest: RawManifest, name: string, registry: string): object {
  const what = `the manifest of ${name}`;
  const notOne = `is ${registry} a registry (a proxy or login page may answer in its place)?`;
  if (!isManifestType(manifest.mediaType)) {
    throw new InvalidSourceError(name, `${what} came as ${printable(manifest.mediaType)}, not an image manifest or index; ${notOne}`);
  }
  const text = Buffer.from(manifest.bytes).toString('utf8');
  let document: unknown;
  try {
    document = JSON.parse(text);
  } catch (error) {
    throw new InvalidSourceError(name, `${what} is not JSON (${jsonSyntaxReason(error, text)}); ${notOne}`);
  }
  if (typeof document !== 'object' || document === null || Array.isArray(document)) throw new InvalidSourceError(name, `${what} is not a JSON object; ${notOne}`);
  return document;
}

/** A config's JSON, or a failure that names it (the bytes are checked against the digest before). */
function parseConfig(bytes: Buffer, origin: string): unknown {
  const text = bytes.toString('utf8');
  try {
    return JSON.parse(text) as unknown;
  } catch (error) {
    throw new InvalidSourceError(origin, `${origin} is not JSON (${jsonSyntaxReason(error, text)}), so it is no image config`);
  }
}

/** A config whole, checked against its digest: what inspect prints is what the manifest names. */
async function readAll(stream: Readable, origin: string, digest: Digest | undefined): Promise<Buffer> {
  const { bytes, complete } = await readBody(stream, CONFIG_LIMIT).catch((error: unknown) => {
    if (isPushError(error)) throw error;
    // A connection closed part-way: undici's bare "other side closed" would be the whole message.
    throw new InvalidSourceError(origin, `${origin}: reading it broke off (${(error as Error).message}); try again`, { cause: error });
  });
  if (!complete) throw new UnsupportedError(`${origin} is over 8 MiB; rxpush does not read configs that large`);
  const actual = sha256Digest(bytes);
  if (digest !== undefined && digest.startsWith('sha256:') && actual !== digest) {
    throw new DigestMismatchError(digest, actual, origin, { message: `${origin}: its bytes hash to ${actual}, not ${digest}; the source (or a proxy in front of it) changed it` });
  }
  return bytes;
}
