/**
 * Builds small `docker save` archives for tests, in both forms docker save has written: the current one
 * (manifest.json, `<hex>.json` config, `<v1 id>/layer.tar`) and the legacy one (per-layer directories
 * with `json` and `VERSION`, and a `repositories` file). Members are written in name order, as Docker's
 * archiver walks its export directory. `edit` lets a test damage the entries before they are packed.
 */
import { createHash } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import { buffer } from 'node:stream/consumers';

import tar from 'tar-stream';

export interface TarEntry {
  name: string;
  type?: 'file' | 'directory' | 'symlink' | 'link';
  data?: Buffer | string;
  linkname?: string;
}

export interface SaveImageSpec {
  repoTags: string[];
  /** Each layer: file path → content. */
  layers: Record<string, string>[];
}

export interface SaveImageFixture {
  repoTags: string[];
  diffIds: string[];
  layerSizes: number[];
  /** The layer directories (v1 IDs), base first. */
  layerIds: string[];
  /** The config as stored (current form) or as docker load makes it (legacy: not known here). */
  config?: Buffer;
  configDigest?: string;
}

export interface DockerSaveFixture {
  path: string;
  images: SaveImageFixture[];
}

const EPOCH = new Date('2020-01-01T00:00:00Z');

export const sha256 = (bytes: Buffer | string): string => `sha256:${createHash('sha256').update(bytes).digest('hex')}`;
const hex = (digest: string): string => digest.slice('sha256:'.length);

/** A tar made of `entries`, in memory (test archives are a few KiB). */
export async function packTar(entries: readonly TarEntry[]): Promise<Buffer> {
  const pack = tar.pack();
  const done = buffer(pack);
  for (const entry of entries) {
    const type = entry.type ?? 'file';
    const header = { name: entry.name, mtime: EPOCH, mode: type === 'directory' ? 0o755 : 0o644, type, ...(entry.linkname !== undefined && { linkname: entry.linkname }) };
    await new Promise<void>((ok, fail) => {
      const done = (err?: Error | null): void => (err ? fail(err) : ok());
      if (type === 'file') pack.entry(header, entry.data ?? '', done);
      else pack.entry(header, done);
    });
  }
  pack.finalize();
  return done;
}

/** A layer tar holding `files`. */
export function layerTar(files: Record<string, string>): Promise<Buffer> {
  return packTar(Object.entries(files).map(([name, data]) => ({ name, data })));
}

/** A `docker save` archive of the current form (manifest.json) at `path`. */
export async function makeDockerSave(
  path: string,
  options: { images: SaveImageSpec[]; edit?: (entries: TarEntry[]) => TarEntry[] | void },
): Promise<DockerSaveFixture> {
  const entries = new Map<string, TarEntry>();
  const manifest: unknown[] = [];
  const repositories: Record<string, Record<string, string>> = {};
  const images: SaveImageFixture[] = [];
  const layerPaths = new Map<string, string>();

  for (const spec of options.images) {
    const tars = await Promise.all(spec.layers.map(layerTar));
    const diffIds = tars.map(sha256);
    const config = Buffer.from(
      JSON.stringify({
        architecture: 'amd64',
        os: 'linux',
        config: { Cmd: ['/bin/sh'], Env: ['PATH=/usr/bin:/bin'] },
        created: EPOCH.toISOString(),
        rootfs: { type: 'layers', diff_ids: diffIds },
        history: diffIds.map((_, i) => ({ created: EPOCH.toISOString(), created_by: `layer ${i}` })),
      }),
    );
    const configDigest = sha256(config);
    const layerIds: string[] = [];
    let parent: string | undefined;
    let chainId: string | undefined;
    for (const [i, layer] of tars.entries()) {
      chainId = chainId === undefined ? diffIds[i] : sha256(`${chainId} ${diffIds[i]}`);
      const { id, json } = v1Layer(chainId ?? '', parent, i === tars.length - 1 ? { created: EPOCH.toISOString(), config: { Cmd: ['/bin/sh'] }, architecture: 'amd64' } : undefined);
      layerIds.push(id);
      entries.set(`${id}`, { name: `${id}`, type: 'directory' });
      entries.set(`${id}/VERSION`, { name: `${id}/VERSION`, data: '1.0' });
      entries.set(`${id}/json`, { name: `${id}/json`, data: json });
      // Like docker save: a layer seen before becomes a link to its first copy.
      const first = layerPaths.get(diffIds[i] ?? '');
      if (first === `${id}/layer.tar`) {
        // The same layer directory in another image: written once.
      } else if (first !== undefined) entries.set(`${id}/layer.tar`, { name: `${id}/layer.tar`, type: 'symlink', linkname: `../${first}` });
      else {
        entries.set(`${id}/layer.tar`, { name: `${id}/layer.tar`, data: layer });
        layerPaths.set(diffIds[i] ?? '', `${id}/layer.tar`);
      }
      parent = id;
    }
    entries.set(`${hex(configDigest)}.json`, { name: `${hex(configDigest)}.json`, data: config });
    manifest.push({ Config: `${hex(configDigest)}.json`, RepoTags: spec.repoTags, Layers: layerIds.map((id) => `${id}/layer.tar`) });
    for (const repoTag of spec.repoTags) {
      const colon = repoTag.lastIndexOf(':');
      (repositories[repoTag.slice(0, colon)] ??= {})[repoTag.slice(colon + 1)] = layerIds.at(-1) ?? '';
    }
    images.push({ repoTags: spec.repoTags, diffIds, layerSizes: tars.map((t) => t.length), layerIds, config, configDigest });
  }
  entries.set('manifest.json', { name: 'manifest.json', data: JSON.stringify(manifest) });
  entries.set('repositories', { name: 'repositories', data: JSON.stringify(repositories) });
  await writeArchive(path, [...entries.values()], options.edit);
  return { path, images };
}

const EMPTY_CONTAINER_CONFIG = { Hostname: '', Env: null, Cmd: null, Image: '', Volumes: null, WorkingDir: '', Entrypoint: null, Labels: null };

/**
 * A layer directory's name and json as Docker 20.10's docker save writes them: the ID is the sha256 of
 * the JSON (keys sorted) without `id`, with `layer_id` (the chain ID) and `parent` (sha256:…) added,
 * and the saved JSON adds `os`, which only the top layer's ID covers.
 */
export function v1Layer(chainId: string, parent: string | undefined, top?: Record<string, unknown>): { id: string; json: string } {
  const fields: Record<string, unknown> = { created: '1970-01-01T00:00:00Z', container_config: EMPTY_CONTAINER_CONFIG, ...top, ...(top !== undefined && { os: 'linux' }) };
  const input: Record<string, unknown> = { ...fields, layer_id: chainId, ...(parent !== undefined && { parent: `sha256:${parent}` }) };
  const id = hex(sha256(JSON.stringify(Object.fromEntries(Object.keys(input).sort().map((key) => [key, input[key]])))));
  return { id, json: JSON.stringify({ id, ...(parent !== undefined && { parent }), ...fields, os: 'linux' }) };
}

export interface LegacyImageSpec extends SaveImageSpec {
  /** The Docker version the layer JSON says wrote it (default 1.9.1: no re-marshalling on load). */
  dockerVersion?: string;
}

/**
 * A legacy `docker save` archive (Docker before 1.10) at `path`: per-layer directories whose `json` gives
 * the `parent`, a `repositories` file, and no manifest.json. Images listed later may share a prefix of
 * layers with earlier ones (same contents in the same order), as a real legacy graph does.
 */
export async function makeLegacyDockerSave(
  path: string,
  options: { images: LegacyImageSpec[]; edit?: (entries: TarEntry[]) => TarEntry[] | void },
): Promise<DockerSaveFixture> {
  const entries = new Map<string, TarEntry>();
  const repositories: Record<string, Record<string, string>> = {};
  const images: SaveImageFixture[] = [];
  for (const spec of options.images) {
    const tars = await Promise.all(spec.layers.map(layerTar));
    const diffIds = tars.map(sha256);
    const layerIds: string[] = [];
    let parent: string | undefined;
    for (const [i, layer] of tars.entries()) {
      const top = i === tars.length - 1;
      const id = hex(sha256(`legacy ${parent ?? ''} ${diffIds[i]}`));
      const json = {
        id,
        ...(parent !== undefined && { parent }),
        created: `2020-01-0${(i % 9) + 1}T00:00:00.500000000Z`,
        container_config: { Cmd: ['/bin/sh', '-c', `#(nop) ADD file ${i} in / <&>`] },
        docker_version: spec.dockerVersion ?? '1.9.1',
        ...(i === 0 && { author: 'rxpush tests' }),
        ...(top && { config: { Cmd: ['/bin/sh'], Env: ['PATH=/usr/bin:/bin'] }, comment: 'top' }),
        architecture: 'amd64',
        os: 'linux',
        Size: layer.length,
      };
      layerIds.push(id);
      entries.set(`${id}`, { name: `${id}`, type: 'directory' });
      entries.set(`${id}/VERSION`, { name: `${id}/VERSION`, data: '1.0' });
      entries.set(`${id}/json`, { name: `${id}/json`, data: JSON.stringify(json) });
      entries.set(`${id}/layer.tar`, { name: `${id}/layer.tar`, data: layer });
      parent = id;
    }
    for (const repoTag of spec.repoTags) {
      const colon = repoTag.lastIndexOf(':');
      (repositories[repoTag.slice(0, colon)] ??= {})[repoTag.slice(colon + 1)] = layerIds.at(-1) ?? '';
    }
    images.push({ repoTags: spec.repoTags, diffIds, layerSizes: tars.map((t) => t.length), layerIds });
  }
  entries.set('repositories', { name: 'repositories', data: JSON.stringify(repositories) });
  await writeArchive(path, [...entries.values()], options.edit);
  return { path, images };
}

async function writeArchive(path: string, entries: TarEntry[], edit?: (entries: TarEntry[]) => TarEntry[] | void): Promise<void> {
  const sorted = entries.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  await writeFile(path, await packTar(edit?.(sorted) ?? sorted));
}

/** Finds an entry by name, for edits. */
export function entry(entries: TarEntry[], name: string): TarEntry {
  const found = entries.find((e) => e.name === name);
  if (found === undefined) throw new Error(`no entry ${name}; have ${entries.map((e) => e.name).join(', ')}`);
  return found;
}
