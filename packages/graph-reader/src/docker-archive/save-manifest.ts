import type { Descriptor, Digest } from '@rxpush/core';
import { InvalidSourceError, SourceError, SourceNotFoundError, UsageError, isDigest, parseReference } from '@rxpush/core';

import { V1_ID } from './save-v1.js';
import { isJsonObject as isObject, parseJson } from '../shared/json.js';
import { parseDescriptor } from '../oci/documents.js';

/** One image of a `docker save` archive's manifest.json. */
export interface SaveManifestEntry {
  readonly index: number;
  /** The config's member name, checked and normalised. */
  readonly config: string;
  readonly repoTags: readonly string[];
  /** The layer tars' member names, base first. */
  readonly layers: readonly string[];
  /** Where foreign layers (Windows base layers) live, by diff ID. */
  readonly layerSources: ReadonlyMap<Digest, Descriptor>;
}

/** A tag of the legacy `repositories` file: `{"NAME": {"TAG": "<top layer id>"}}`. */
export interface LegacyTag {
  readonly repoTag: string;
  readonly id: string;
}

/** Which image of a `docker save` archive the user chose: `NAME:TAG`, `@INDEX` (as skopeo), or none. */
export type SaveSelector = { readonly kind: 'tag'; readonly repoTag: string } | { readonly kind: 'index'; readonly index: number } | undefined;

/** What messages and checks need about the archive being read. */
export interface SaveContext {
  /** The source as the user gave it. */
  readonly source: string;
  /** The archive (or stream) as messages name it. */
  readonly archive: string;
}

/** Reads manifest.json: `[{Config, RepoTags, Layers, LayerSources?, Parent?}]`. */
export function parseSaveManifest(bytes: Uint8Array, file: string): SaveManifestEntry[] {
  const json = parseJson(bytes, (problem) => invalid(file, problem));
  if (!Array.isArray(json)) throw invalid(file, 'is not a JSON array of images');
  return json.map((item: unknown, index): SaveManifestEntry => {
    const where = `entry ${index}`;
    if (!isObject(item)) throw invalid(file, `has ${where} that is not an object`);
    if (typeof item.Config !== 'string') throw invalid(file, `has ${where} without a "Config" file name`);
    if (!Array.isArray(item.Layers) || !item.Layers.every((layer) => typeof layer === 'string')) throw invalid(file, `has ${where} without a "Layers" list of file names`);
    const repoTags = item.RepoTags ?? [];
    if (!Array.isArray(repoTags) || !repoTags.every((tag) => typeof tag === 'string')) throw invalid(file, `has ${where} whose "RepoTags" is not a list of strings`);
    const layerSources = new Map<Digest, Descriptor>();
    if (item.LayerSources !== undefined && item.LayerSources !== null) {
      if (!isObject(item.LayerSources)) throw invalid(file, `has ${where} whose "LayerSources" is not an object`);
      for (const [diffId, descriptor] of Object.entries(item.LayerSources)) {
        if (!isDigest(diffId)) throw invalid(file, `has ${where} with LayerSources key "${diffId}", not a diff ID`);
        layerSources.set(diffId, parseDescriptor(descriptor, file, `${where} LayerSources ${diffId}`));
      }
    }
    return {
      index,
      config: memberName(item.Config, file, `${where} "Config"`),
      repoTags,
      layers: (item.Layers as string[]).map((layer, i) => memberName(layer, file, `${where} "Layers"[${i}]`)),
      layerSources,
    };
  });
}

/** Reads the legacy `repositories` file: `{"NAME": {"TAG": "<top layer id>"}}`. */
export function parseRepositories(bytes: Uint8Array, file: string): LegacyTag[] {
  const json = parseJson(bytes, (problem) => invalid(file, problem));
  if (!isObject(json)) throw invalid(file, 'is not a JSON object of repositories');
  const tags: LegacyTag[] = [];
  for (const [name, byTag] of Object.entries(json)) {
    if (!isObject(byTag)) throw invalid(file, `has repository "${name}" that is not an object of tags`);
    for (const [tag, id] of Object.entries(byTag)) {
      // The ID names a directory of the archive: only a v1 ID may.
      if (typeof id !== 'string' || !V1_ID.test(id)) throw invalid(file, `has ${name}:${tag} pointing to ${JSON.stringify(id)}, not a layer ID of 64 hex digits`);
      tags.push({ repoTag: `${name}:${tag}`, id });
    }
  }
  return tags;
}

/**
 * Checks a file name that manifest.json gives and normalises it (no `./`, no doubled slashes). A name
 * that is absolute or climbs out with `..` is refused: it would name a file outside the archive.
 */
export function memberName(name: string, file: string, where: string): string {
  if (name.startsWith('/') || name.split('/').includes('..')) {
    throw new InvalidSourceError(file, `${file} has ${where} "${name}", which leads outside the archive; rxpush refuses it: re-create the archive with docker save`);
  }
  const normal = name
    .split('/')
    .filter((part) => part !== '' && part !== '.')
    .join('/');
  if (normal === '') throw invalid(file, `has ${where} "${name}", which names no file`);
  return normal;
}

/**
 * Chooses the images to push among those an archive holds, each with the tags it is pushed as (the tag
 * part of its `NAME:TAG`): the one the selector names; without one, the only image; with `allTags`,
 * every tagged image.
 */
export function selectImages<T>(
  candidates: readonly { readonly image: T; readonly repoTags: readonly string[] }[],
  selector: SaveSelector,
  allTags: boolean,
  context: SaveContext,
): { image: T; tags: string[] }[] {
  const { source, archive } = context;
  const listed = candidates.flatMap((c) => c.repoTags);
  const available = listed.length > 0 ? `it has ${listed.join(', ')}` : 'it has no tagged images';

  if (allTags) {
    if (selector !== undefined) throw new UsageError(`source ${source} names an image but all tags were asked for; drop the image name or --all-tags`);
    const owner = new Map<string, string>();
    const chosen = candidates.flatMap((candidate) => {
      const tags = [...new Set(candidate.repoTags.map(tagOf))];
      for (const [i, tag] of tags.entries()) {
        const other = owner.get(tag);
        if (other !== undefined) {
          throw new UsageError(`${archive} has two images tagged ${tag} (${other} and ${candidate.repoTags[i] ?? tag}); --all-tags would push both as ${tag}: push them one at a time as ${source}:NAME:TAG`);
        }
        owner.set(tag, candidate.repoTags.find((repoTag) => tagOf(repoTag) === tag) ?? tag);
      }
      return tags.length > 0 ? [{ image: candidate.image, tags }] : [];
    });
    if (chosen.length === 0) throw new InvalidSourceError(archive, `${archive} has no tagged images to push with --all-tags; push one as ${source}:@INDEX`);
    return chosen;
  }

  if (selector?.kind === 'tag') {
    const wanted = familiar(selector.repoTag);
    const found = candidates.find((c) => c.repoTags.some((repoTag) => familiar(repoTag) === wanted));
    if (found === undefined) throw new SourceNotFoundError(archive, `no image ${selector.repoTag} in ${archive}; ${available}`);
    return [{ image: found.image, tags: [tagOf(selector.repoTag)] }];
  }
  if (selector?.kind === 'index') {
    const found = candidates[selector.index];
    if (found === undefined) throw new SourceNotFoundError(archive, `${archive} has ${candidates.length} image(s), so there is no image @${selector.index} (they count from @0)`);
    return [{ image: found.image, tags: [...new Set(found.repoTags.map(tagOf))] }];
  }

  const [only, ...others] = candidates;
  if (only === undefined) throw new InvalidSourceError(archive, `${archive} holds no images`);
  if (others.length > 0) {
    throw new InvalidSourceError(archive, `${archive} holds ${candidates.length} images; choose one as ${source}:NAME:TAG or push them all with --all-tags (${available})`);
  }
  return [{ image: only.image, tags: [...new Set(only.repoTags.map(tagOf))] }];
}

/** The tag of `NAME:TAG` (the part after the last colon that follows the last slash). */
export function tagOf(repoTag: string): string {
  const colon = repoTag.lastIndexOf(':');
  return colon > repoTag.lastIndexOf('/') ? repoTag.slice(colon + 1) : 'latest';
}

/** `NAME:TAG` as Docker shows it (`app:1` for `docker.io/library/app:1`), so either spelling finds the image. */
function familiar(repoTag: string): string {
  try {
    const ref = parseReference(repoTag);
    const name = ref.registry === 'docker.io' ? ref.repository.replace(/^library\//, '') : `${ref.registry}/${ref.repository}`;
    return `${name}:${ref.tag ?? 'latest'}`;
  } catch {
    return repoTag;
  }
}

function invalid(file: string, problem: string): SourceError {
  return new InvalidSourceError(file, `${file} ${problem}; the archive is damaged or was not written by docker save`);
}
