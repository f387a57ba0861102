import type { Digest } from '@rxpush/core';
import { sha256Digest } from '@rxpush/core';

import { parseJsonObject, type JsonObject } from '../shared/json.js';
import { goObject, goString, goTime, rawMembers, versionLessThan } from './go-json.js';

/** A legacy (v1) layer ID: 64 lowercase hex, the name of a layer's directory in a `docker save` archive. */
export const V1_ID = /^[a-f0-9]{64}$/;

/** What a layer's `json` (Docker's v1 image JSON) says about where it sits in a chain. */
export interface V1LayerJson {
  /** The raw text, for config synthesis and ID checks. */
  readonly text: string;
  /** The same, parsed once. */
  readonly fields: JsonObject;
  readonly id: string | undefined;
  readonly parent: string | undefined;
}

/**
 * Reads a v1 layer `json`. Throws a message (for the caller to wrap with the file's name) when it is
 * not a JSON object or its `id`/`parent` are not v1 IDs.
 */
export function parseV1LayerJson(bytes: Uint8Array): V1LayerJson {
  const text = Buffer.from(bytes).toString('utf8');
  const json = parseJsonObject(text, (problem) => new Error(problem));
  const id = json.id;
  const parent = json.parent;
  if (id !== undefined && (typeof id !== 'string' || !V1_ID.test(id))) throw new Error(`has "id" ${JSON.stringify(id)}, not a layer ID of 64 hex digits`);
  if (parent !== undefined && parent !== '' && (typeof parent !== 'string' || !V1_ID.test(parent))) {
    throw new Error(`has "parent" ${JSON.stringify(parent)}, not a layer ID of 64 hex digits`);
  }
  return { text, fields: json, id, parent: parent === '' ? undefined : parent };
}

/**
 * Which layer of an image (index into `chain`) a `<v1 id>/json` of a `docker save` stream describes, or
 * undefined when none. Docker names each layer directory by a v1 ID it computes from that layer's JSON,
 * its chain ID and its parent's ID (image/v1 CreateID); recomputing it for each candidate position tells
 * which layer a directory holds before its layer.tar arrives. The saved JSON carries `os` that the ID
 * was computed without, except on the top layer, so both are tried.
 */
export function v1LayerIndex(layer: V1LayerJson, chain: readonly Digest[]): number | undefined {
  if (layer.id === undefined) return undefined;
  const members = rawMembers(layer.text);
  members.delete('id');
  if (layer.parent !== undefined) members.set('parent', goString(`sha256:${layer.parent}`));
  const withoutOs = new Map(members);
  withoutOs.delete('os');
  for (const [i, chainId] of chain.entries()) {
    // Only the base layer has no parent.
    if ((i === 0) !== (layer.parent === undefined)) continue;
    for (const variant of [withoutOs, members]) {
      const candidate = new Map(variant).set('layer_id', goString(chainId));
      if (sha256Digest(goObject(candidate)) === `sha256:${layer.id}`) return i;
    }
  }
  return undefined;
}

// Docker older than 1.8.3 wrote v1 JSON with blank fields; docker load re-marshals those through its
// V1Image struct (image/v1 MakeConfigFromV1Config), which keeps only these keys.
const V1_IMAGE_KEYS = ['id', 'parent', 'comment', 'created', 'container', 'container_config', 'docker_version', 'author', 'config', 'architecture', 'variant', 'os', 'Size'];
const NO_FALLBACK_MIN_VERSION = '1.8.3';

/**
 * The image config Docker's `docker load` makes for a legacy image (image/v1 MakeConfigFromV1Config):
 * the top layer's v1 JSON without its v1 fields, plus `rootfs` (the diff IDs) and `history` (one entry
 * per layer, from each layer's JSON). `layers` are base first. For JSON written by Docker 1.8.3 or later
 * the bytes, and so the image ID, are the ones docker load computes; for older JSON Docker also
 * re-marshals nested objects through its structs, which is not reproduced (the config is equivalent).
 *
 * Throws a message naming the layer when a JSON cannot be read as Docker reads it.
 */
export function legacyConfig(layers: readonly V1LayerJson[], diffIds: readonly Digest[]): Buffer {
  const top = layers.at(-1);
  if (top === undefined) throw new Error('the image has no layers');
  const json = top.fields;
  const version = typeof json.docker_version === 'string' ? json.docker_version : '';
  let members = rawMembers(top.text);
  if (versionLessThan(version, NO_FALLBACK_MIN_VERSION)) {
    members = new Map([...members].filter(([key]) => V1_IMAGE_KEYS.includes(key)));
    members.set('created', goTimeOrThrow(json.created, top));
  }
  for (const key of ['id', 'parent', 'Size', 'parent_id', 'layer_id', 'throwaway']) members.delete(key);
  members.set('rootfs', `{"type":"layers","diff_ids":[${diffIds.map(goString).join(',')}]}`);
  members.set('history', `[${layers.map(historyEntry).join(',')}]`);
  return Buffer.from(goObject(members));
}

/** image/v1 HistoryFromConfig: created, author, the container's command, comment; empty strings left out. */
function historyEntry(layer: V1LayerJson): string {
  const json = layer.fields;
  const containerConfig = json.container_config as { Cmd?: unknown } | null | undefined;
  const cmd = containerConfig?.Cmd;
  // Docker's strslice reads a command given as one string too.
  const createdBy = typeof cmd === 'string' ? cmd : Array.isArray(cmd) ? cmd.map(String).join(' ') : '';
  const fields = [`"created":${goTimeOrThrow(json.created, layer)}`];
  for (const [key, value] of [
    ['author', json.author],
    ['created_by', createdBy],
    ['comment', json.comment],
  ] as const) {
    if (typeof value === 'string' && value !== '') fields.push(`"${key}":${goString(value)}`);
  }
  return `{${fields.join(',')}}`;
}

function goTimeOrThrow(value: unknown, layer: V1LayerJson): string {
  const time = goTime(value);
  if (time === undefined) throw new Error(`layer ${layer.id ?? '?'} has "created" ${JSON.stringify(value)}, not an RFC 3339 time`);
  return time;
}

