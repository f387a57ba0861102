import type { Descriptor, Digest, Platform } from '@rxpush/core';
import { InvalidSourceError, MediaType, SourceError, parseDigest } from '@rxpush/core';

import { isJsonObject as isObject, parseJsonObject as parseObject, type JsonObject as Json } from '../shared/json.js';

/** The annotation an OCI layout names its images by. */
export const REF_NAME = 'org.opencontainers.image.ref.name';

/** An OCI image index or Docker manifest list, as far as rxpush reads it. */
export interface IndexDocument {
  readonly manifests: readonly Descriptor[];
}

/** An OCI or Docker schema 2 image manifest, as far as rxpush reads it. */
export interface ManifestDocument {
  readonly config: Descriptor;
  readonly layers: readonly Descriptor[];
  readonly annotations?: Readonly<Record<string, string>>;
}

/**
 * Makes the error for a document (`file`: its name in messages) that does not say what it must; each
 * source says what to do about it in its own words.
 */
export type InvalidDocument = (file: string, problem: string) => SourceError;

/** An OCI layout's {@link InvalidDocument}: re-export the image. */
export function invalidDocument(file: string, problem: string): SourceError {
  return new InvalidSourceError(file, `${file} ${problem}; the layout is damaged or was not written as an OCI image layout, re-export the image`);
}

/** Parses `bytes` as a JSON object of an OCI layout; `file` names it in errors. */
export function parseJsonObject(bytes: Uint8Array, file: string): Json {
  return parseObject(bytes, (problem) => invalidDocument(file, problem));
}

/**
 * Reads an index (index.json, an OCI index or a Docker manifest list). `mediaTypes` are the values its
 * `mediaType` field may have; OCI lets it be absent.
 */
export function parseIndex(bytes: Uint8Array, file: string, mediaTypes: readonly string[], invalid: InvalidDocument = invalidDocument): IndexDocument {
  const json = parseObject(bytes, (problem) => invalid(file, problem));
  checkHeader(json, file, mediaTypes, invalid);
  if (!Array.isArray(json.manifests)) throw invalid(file, 'has no "manifests" array');
  const manifests = json.manifests.map((entry, i) => parseDescriptor(entry, file, `manifests[${i}]`, invalid));
  return { manifests };
}

/** Reads an image manifest whose descriptor said `mediaType`. */
export function parseManifest(bytes: Uint8Array, file: string, mediaType: string, invalid: InvalidDocument = invalidDocument): ManifestDocument {
  const json = parseObject(bytes, (problem) => invalid(file, problem));
  checkHeader(json, file, [mediaType], invalid);
  if (mediaType === MediaType.dockerManifest && json.mediaType === undefined) {
    throw invalid(file, `has no "mediaType"; a Docker schema 2 manifest must say ${MediaType.dockerManifest}`);
  }
  if (json.config === undefined) throw invalid(file, 'has no "config" descriptor');
  const config = parseDescriptor(json.config, file, 'config', invalid);
  if (!Array.isArray(json.layers)) throw invalid(file, 'has no "layers" array');
  const layers = json.layers.map((entry, i) => parseDescriptor(entry, file, `layers[${i}]`, invalid));
  const annotations = parseAnnotations(json.annotations, file, 'annotations', invalid);
  return { config, layers, ...(annotations !== undefined && { annotations }) };
}

function checkHeader(json: Json, file: string, mediaTypes: readonly string[], invalid: InvalidDocument): void {
  if (json.schemaVersion !== 2) throw invalid(file, `has "schemaVersion" ${JSON.stringify(json.schemaVersion) ?? 'missing'}, expected 2`);
  if (json.mediaType !== undefined && !mediaTypes.includes(json.mediaType as string)) {
    throw invalid(file, `has "mediaType" ${JSON.stringify(json.mediaType)}, expected ${mediaTypes.join(' or ')}`);
  }
}

/** Validates a descriptor; its digest is checked here, before anything builds a path from it. */
export function parseDescriptor(value: unknown, file: string, where: string, invalid: InvalidDocument = invalidDocument): Descriptor {
  if (!isObject(value)) throw invalid(file, `has ${where} that is not a descriptor object`);
  if (typeof value.mediaType !== 'string' || value.mediaType === '') throw invalid(file, `has ${where} without a "mediaType"`);
  const digest: Digest = parseDigest(value.digest, `digest of ${where} in ${file}`);
  const size = value.size;
  if (typeof size !== 'number' || !Number.isSafeInteger(size) || size < 0) {
    throw invalid(file, `has ${where} whose "size" is ${JSON.stringify(size) ?? 'missing'}, not a byte count`);
  }
  let urls: string[] | undefined;
  if (value.urls !== undefined) {
    if (!Array.isArray(value.urls) || !value.urls.every((url) => typeof url === 'string')) throw invalid(file, `has ${where} whose "urls" is not a list of strings`);
    urls = value.urls as string[];
  }
  const annotations = parseAnnotations(value.annotations, file, `${where}.annotations`, invalid);
  const platform = parsePlatform(value.platform, file, `${where}.platform`, invalid);
  return {
    mediaType: value.mediaType,
    digest,
    size,
    ...(urls !== undefined && { urls }),
    ...(annotations !== undefined && { annotations }),
    ...(platform !== undefined && { platform }),
  };
}

function parseAnnotations(value: unknown, file: string, where: string, invalid: InvalidDocument): Record<string, string> | undefined {
  if (value === undefined) return undefined;
  if (!isObject(value) || !Object.values(value).every((v) => typeof v === 'string')) {
    throw invalid(file, `has ${where} that is not an object of strings`);
  }
  return value as Record<string, string>;
}

function parsePlatform(value: unknown, file: string, where: string, invalid: InvalidDocument): Platform | undefined {
  if (value === undefined) return undefined;
  if (!isObject(value) || typeof value.architecture !== 'string' || typeof value.os !== 'string') {
    throw invalid(file, `has ${where} without string "architecture" and "os"`);
  }
  return value as unknown as Platform;
}
