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
  type SourceRecord,
} from '@rxpush/core';
import { readImages, spoolArchive } from '@rxpush/graph-reader';
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
          readImages(spooled.source, { logger, ...(dataRoot !== undefined && { dataRoot }), ...(storageDriver !== undefined && { storageDriver }) }).pipe(toArray()),
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
        found = await inspectRemote(client, reference.repository, reference.digest ?? reference.tag ?? 'latest', configOnly || !raw);
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
    if (found.config === undefined) throw new UnsupportedError(`${found.name} is an index, which has no config; inspect one of its images`);
    return `${JSON.stringify(found.config, null, 2)}\n`;
  }
  const manifest = found.bytes === undefined ? null : (JSON.parse(Buffer.from(found.bytes).toString('utf8')) as unknown);
  return `${JSON.stringify({ name: found.name, mediaType: found.mediaType ?? null, digest: found.digest ?? null, manifest, ...(found.config !== undefined && { config: found.config }) }, null, 2)}\n`;
}

async function inspectLocal(name: string, record: SourceRecord, withConfig: boolean): Promise<Inspected> {
  const stored = record.kind === 'index' ? record.index : record.manifest;
  const base = { name, ...(stored !== undefined && { mediaType: stored.mediaType, digest: stored.digest, bytes: stored.bytes }) };
  if (record.kind === 'index' || !withConfig) return base;
  const origin = record.config.origin;
  return { ...base, config: parseConfig(await readLocalConfig(record), origin) };
}

async function readLocalConfig(record: ImageRecord): Promise<Buffer> {
  // A source that streams its blobs in its own order (docker save) may skip the layers: none is read here.
  if (record.layers.kind === 'list') for (const layer of record.layers.layers) layer.release?.();
  return readAll(await record.config.open(), record.config.origin, record.config.digest);
}

async function inspectRemote(client: RegistryClient, repository: string, reference: string, withConfig: boolean): Promise<Inspected> {
  const name = `${client.registry}/${repository}${reference.includes(':') ? `@${reference}` : `:${reference}`}`;
  const manifest = await client.getManifest(repository, reference, { accept: ACCEPT }).catch((error: unknown) => {
    if (!(error instanceof RegistryError) || error.status !== 404) throw error;
    // The client's message up to its hint (`GET https://r/v2/app/manifests/1 → 404 MANIFEST_UNKNOWN: …`), then what to do.
    throw new SourceNotFoundError(name, `no image ${name} in the registry (${error.message.split('; ')[0]}); check the repository and tag`, { cause: error });
  });
  // Even --raw prints only what is a manifest: a proxy's login page under the manifest's address is not one.
  const document = manifestDocument(manifest, name, client.registry);
  const base = { name, mediaType: manifest.mediaType, digest: manifest.digest, bytes: manifest.bytes };
  if (!withConfig || isIndexType(manifest.mediaType)) return base;
  if (manifest.mediaType === MediaType.dockerSchema1Signed || manifest.mediaType === MediaType.dockerSchema1) {
    // Schema 1 has no config blob: its top history entry is the config, as Docker wrote it.
    const top = (document as { history?: { v1Compatibility?: unknown }[] }).history?.[0]?.v1Compatibility;
    return typeof top === 'string' ? { ...base, config: parseConfig(Buffer.from(top), `${name} history[0].v1Compatibility`) } : base;
  }
  const digest = parseDigest((document as { config?: { digest?: unknown } }).config?.digest, `config digest in the manifest of ${name}`);
  const origin = `${name} config ${digest}`;
  const body = await client.getBlob(repository, digest).catch((error: unknown) => {
    if (!(error instanceof RegistryError) || error.status !== 404) throw error;
    throw new SourceNotFoundError(name, `the manifest of ${name} names the config ${digest}, which the registry does not have (${error.message.split('; ')[0]}); the image is incomplete there`, { cause: error });
  });
  return { ...base, config: parseConfig(await readAll(body, origin, digest), origin) };
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
