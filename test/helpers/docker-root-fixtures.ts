/**
 * Images for the docker-root: end-to-end tests, loaded into a test dockerd: two tags of a generated
 * image sharing a base layer (through skopeo's docker-archive), a layer with every tricky kind of
 * entry (hard and symbolic links, an empty directory, a PAX long name, whiteouts) on a base it
 * changes, and a Docker Hub name Docker stores in its short form.
 */
import { createHash } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';

import tar from 'tar-stream';

import { buildTar, TRICKY_LAYER, type TarEntrySpec } from '../../packages/graph-reader/test/tar-splits.ts';
import type { RunningDockerd } from '../../tools/dockerd.ts';
import { makeOciLayout } from '../../tools/fixtures.ts';
import { skopeoCopy } from './skopeo.ts';

const sha256 = (bytes: Buffer | string) => `sha256:${createHash('sha256').update(bytes).digest('hex')}`;

/** What the tricky layer changes: a file it whites out and a directory it makes opaque. */
const TRICKY_BASE: TarEntrySpec[] = [
  { type: 'directory', name: 'data/' },
  { type: 'file', name: 'data/gone.txt', content: 'whited out by the next layer\n' },
  { type: 'directory', name: 'data/opaque/' },
  { type: 'file', name: 'data/opaque/old.txt', content: 'hidden by the opaque marker\n' },
];

/** The references loadFixtures loads; `fix/app:v1` and `plain:latest` are one image. */
export const FIXTURE_REFS = ['fix/app:v1', 'fix/app:v2', 'fix/tricky:v1', 'plain:latest'] as const;

/** An image as `docker image inspect` shows it: its ID and RootFS layers (diff IDs). */
export interface InspectedImage {
  readonly id: string;
  readonly layers: string[];
}

export async function inspectImage(engine: RunningDockerd, ref: string): Promise<InspectedImage> {
  const { stdout } = await engine.docker(['image', 'inspect', '--format', '{{json .RootFS.Layers}} {{.Id}}', ref]);
  const [layers, id] = stdout.trim().split(' ');
  return { layers: JSON.parse(layers!) as string[], id: id! };
}

/**
 * Loads the fixture images into `engine` (files under `work`) and returns how Docker sees each of
 * FIXTURE_REFS. The files of the generated image are `data/root-app/file-000N.bin` in the top layer
 * of `fix/app:v1`.
 */
export async function loadFixtures(engine: RunningDockerd, work: string): Promise<Map<string, InspectedImage>> {
  const layout = await makeOciLayout(join(work, 'layout'), {
    images: [
      { tags: ['v1'], layers: [{ files: 2, fileSize: 50_000, seed: 'root-base' }, { files: 3, fileSize: 20_000, seed: 'root-app' }] },
      { tags: ['v2'], layers: [{ files: 2, fileSize: 50_000, seed: 'root-base' }, { files: 1, fileSize: 10_000, seed: 'root-v2' }] },
    ],
  });
  for (const tag of ['v1', 'v2']) {
    const archive = join(work, `app-${tag}.tar`);
    await skopeoCopy(`oci:${layout.dir}:${tag}`, `docker-archive:${archive}:fix/app:${tag}`);
    await engine.docker(['load', '-i', archive]);
  }
  const tricky = join(work, 'tricky.tar');
  await dockerArchive(tricky, 'fix/tricky:v1', [await buildTar(TRICKY_BASE), await buildTar(TRICKY_LAYER)]);
  await engine.docker(['load', '-i', tricky]);
  await engine.docker(['tag', 'fix/app:v1', 'plain']);
  const seen = new Map<string, InspectedImage>();
  for (const ref of FIXTURE_REFS) seen.set(ref, await inspectImage(engine, ref));
  return seen;
}

/** A `docker save` archive of one image with these layer tars, as `docker load` reads it. */
async function dockerArchive(path: string, repoTag: string, layers: Buffer[]): Promise<void> {
  const config = Buffer.from(
    JSON.stringify({
      architecture: 'amd64',
      os: 'linux',
      config: { Cmd: ['/bin/sh'] },
      rootfs: { type: 'layers', diff_ids: layers.map((layer) => sha256(layer)) },
      history: layers.map(() => ({ created: '2020-01-01T00:00:00Z', created_by: 'rxpush docker-root test' })),
    }),
  );
  const configName = `${sha256(config).slice('sha256:'.length)}.json`;
  const layerNames = layers.map((_, i) => `layer-${i}/layer.tar`);
  const files: [string, Buffer][] = [
    ...layers.map((layer, i): [string, Buffer] => [layerNames[i]!, layer]),
    [configName, config],
    ['manifest.json', Buffer.from(JSON.stringify([{ Config: configName, RepoTags: [repoTag], Layers: layerNames }]))],
  ];
  const pack = tar.pack();
  const chunks: Buffer[] = [];
  pack.on('data', (chunk) => void chunks.push(chunk as Buffer));
  const ended = new Promise<void>((ok) => pack.on('end', () => ok()));
  for (const [name, content] of files) pack.entry({ name }, content);
  pack.finalize();
  await ended;
  await writeFile(path, Buffer.concat(chunks));
}
