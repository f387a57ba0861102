import { createHash } from 'node:crypto';

import { layerCompression, UnsupportedError, type Descriptor, type Digest } from '@rxpush/core';

import { goMarshal, goString, goTime, RawJson, rawMembers } from './go-json.js';

/**
 * The gzipped empty tar Docker names for layers that change nothing (`empty_layer` history entries),
 * byte for byte as Docker's distribution code has it.
 */
export const EMPTY_LAYER = Uint8Array.from([31, 139, 8, 0, 0, 9, 110, 136, 0, 255, 98, 24, 5, 163, 96, 20, 140, 88, 0, 8, 0, 0, 255, 255, 46, 175, 181, 239, 0, 4, 0, 0]);
/** The digest of {@link EMPTY_LAYER}. */
export const EMPTY_LAYER_DIGEST: Digest = 'sha256:a3ed95caeb02ffe68cdd9fd84406680ae93d633cb16422d00e8a7c22955b46d4';

/** What a schema 1 manifest is made of, besides the image config. */
export interface Schema1Target {
  /** The repository, as the registry names it (`library/app`, no registry host): the registry checks it. */
  readonly name: string;
  /** The tag the manifest is for (schema 1 names its tag; one manifest per tag). */
  readonly tag: string;
}

/** An unsigned schema 1 manifest: the JSON payload a JWS then signs, and what it needs in the registry. */
export interface Schema1Payload {
  readonly payload: Uint8Array;
  /** The digest the registry gives the signed manifest: of this payload, without signatures. */
  readonly digest: Digest;
  /** True when an `empty_layer` entry names {@link EMPTY_LAYER}, which must then be in the registry too. */
  readonly needsEmptyLayer: boolean;
}

interface ConfigHistory {
  readonly created?: unknown;
  readonly author?: unknown;
  readonly created_by?: unknown;
  readonly comment?: unknown;
  readonly empty_layer?: unknown;
}

/**
 * The Docker schema 1 manifest Docker's push wrote for an image (distribution's config manifest builder):
 * one `fsLayers`/`history` entry per config history entry, top first; v1 IDs chained from the layer digests
 * (`sha256(blobsum-hex + " " + parent)`), `parent` links, `throwaway` and the empty tar for empty layers, and the
 * config itself (minus `rootfs` and `history`, plus `id` and `parent`) as the top entry's v1Compatibility.
 * Written as Go's `json.MarshalIndent(m, "", "   ")`, which is what libtrust then signs.
 *
 * A config without history (some tools omit it) is read as one history entry per layer, created when the image was.
 *
 * @throws {UnsupportedError} when the config's history does not name the image's layers, or a layer is
 *   zstd-compressed or foreign (schema 1 knows neither).
 * @example buildSchema1(configBytes, layerDescriptors, { name: 'library/app', tag: '1.0' })
 */
export function buildSchema1(config: Uint8Array, layers: readonly Descriptor[], target: Schema1Target): Schema1Payload {
  const configText = Buffer.from(config).toString('utf8');
  let document: { architecture?: unknown; history?: unknown; created?: unknown; rootfs?: { diff_ids?: unknown } };
  let members: Map<string, RawJson>;
  try {
    document = JSON.parse(configText) as typeof document;
    members = rawMembers(configText);
  } catch (error) {
    throw new UnsupportedError(`the image config is not a JSON object (${(error as Error).message}); it cannot become a schema 1 manifest, push with --format docker`);
  }
  for (const layer of layers) {
    if (layerCompression(layer.mediaType) === 'zstd' || (layer.urls?.length ?? 0) > 0) {
      throw new UnsupportedError(`layer ${layer.digest} (${layer.mediaType}) cannot be named by a schema 1 manifest, which knows only gzip layers in the registry; push with --format oci`);
    }
  }
  const history: ConfigHistory[] =
    Array.isArray(document.history) && document.history.length > 0
      ? (document.history as ConfigHistory[])
      : layers.map(() => ({ created: document.created }));
  const nonEmpty = history.filter((entry) => entry.empty_layer !== true).length;
  if (nonEmpty !== layers.length) {
    throw new UnsupportedError(
      `the image config's history names ${nonEmpty} layer(s) but the image has ${layers.length}; Docker could not write a schema 1 manifest for it either, push with --format docker`,
    );
  }

  const fsLayers: { blobSum: Digest }[] = [];
  const v1: string[] = [];
  let parent = '';
  let next = 0;
  let needsEmptyLayer = false;
  const blobSumOf = (entry: ConfigHistory): Digest => {
    if (entry.empty_layer === true) {
      needsEmptyLayer = true;
      return EMPTY_LAYER_DIGEST;
    }
    return layers[next++]!.digest;
  };

  for (const entry of history.slice(0, -1)) {
    const blobSum = blobSumOf(entry);
    const id = sha256Hex(`${hex(blobSum)} ${parent}`);
    // Field order and omissions are those of Docker's v1Compatibility struct.
    v1.push(
      goMarshal({
        id,
        parent: parent === '' ? undefined : parent,
        comment: nonEmptyString(entry.comment),
        created: new RawJson(goString(goTime(entry.created))),
        container_config: { Cmd: [typeof entry.created_by === 'string' ? entry.created_by : ''] },
        author: nonEmptyString(entry.author),
        throwaway: entry.empty_layer === true ? true : undefined,
      }),
    );
    fsLayers.push({ blobSum });
    parent = id;
  }
  const top = history.at(-1)!;
  const topBlobSum = blobSumOf(top);
  const topId = sha256Hex(`${hex(topBlobSum)} ${parent} ${configText}`);
  members.delete('rootfs');
  members.delete('history');
  members.set('id', new RawJson(goString(topId)));
  if (parent !== '') members.set('parent', new RawJson(goString(parent)));
  if (top.empty_layer === true) members.set('throwaway', new RawJson('true'));
  // Go writes a map's keys sorted.
  const topEntry = goMarshal(new Map([...members].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))));
  fsLayers.push({ blobSum: topBlobSum });
  v1.push(topEntry);

  const manifest = {
    schemaVersion: 1,
    name: target.name,
    tag: target.tag,
    architecture: typeof document.architecture === 'string' ? document.architecture : '',
    fsLayers: fsLayers.reverse(),
    history: v1.reverse().map((v1Compatibility) => ({ v1Compatibility })),
  };
  const payload = Buffer.from(goMarshal(manifest, '   '));
  return { payload, digest: `sha256:${createHash('sha256').update(payload).digest('hex')}`, needsEmptyLayer };
}

function sha256Hex(text: string): string {
  return createHash('sha256').update(text).digest('hex');
}

function hex(digest: Digest): string {
  return digest.slice(digest.indexOf(':') + 1);
}

function nonEmptyString(value: unknown): string | undefined {
  return typeof value === 'string' && value !== '' ? value : undefined;
}
