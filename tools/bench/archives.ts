/**
 * docker-save archives for the benchmark's compression cases: layers stored uncompressed, as
 * `docker save` writes them, so every pusher has to gzip them on the way.
 */
import { createHash } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { lstat, mkdtemp, readdir, rm, stat } from 'node:fs/promises';
import { dirname, join, relative } from 'node:path';
import { PassThrough } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import tar from 'tar-stream';

const EPOCH = new Date('2020-01-01T00:00:00Z');

export interface ArchiveFixture {
  path: string;
  diffIds: string[];
  /** Bytes of the uncompressed layers. */
  layerSizes: number[];
}

/**
 * Writes a docker-save archive of `layers` layers of about `layerBytes` each, made of the regular files
 * under `root` (sorted, so the same tree gives the same archive): real binaries, libraries and text, as
 * an image built from a distribution would hold.
 */
export async function makeRealFilesArchive(path: string, options: { root: string; layers: number; layerBytes: number }): Promise<ArchiveFixture> {
  const work = await mkdtemp(join(dirname(path), '.layers-'));
  try {
    // Files up to a quarter of a layer, so no layer grows much past its size.
    const files = walk(options.root, Math.floor(options.layerBytes / 4));
    const layerFiles: string[] = [];
    const diffIds: string[] = [];
    const layerSizes: number[] = [];
    let next = await files.next();
    for (let i = 0; i < options.layers && !next.done; i++) {
      const file = join(work, `layer-${i}.tar`);
      const pack = tar.pack();
      const hash = createHash('sha256');
      let size = 0;
      const counted = new PassThrough();
      counted.on('data', (chunk: Buffer) => {
        hash.update(chunk);
        size += chunk.length;
      });
      const written = pipeline(pack, counted, createWriteStream(file));
      let content = 0;
      while (!next.done && content < options.layerBytes) {
        const { path: source, size: bytes } = next.value;
        const entry = pack.entry({ name: relative(options.root, source), size: bytes, mode: 0o644, mtime: EPOCH, uid: 0, gid: 0 });
        await pipeline(createReadStream(source), entry);
        content += bytes;
        next = await files.next();
      }
      pack.finalize();
      await written;
      layerFiles.push(file);
      diffIds.push(`sha256:${hash.digest('hex')}`);
      layerSizes.push(size);
    }
    if (layerFiles.length < options.layers) throw new Error(`${options.root} holds too few files for ${options.layers} layers of ${options.layerBytes} bytes`);
    await packArchive(path, layerFiles, diffIds);
    return { path, diffIds, layerSizes };
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}

/** Regular files under `root`, depth first in name order, each smaller than `maxBytes`. */
async function* walk(root: string, maxBytes: number): AsyncGenerator<{ path: string; size: number }> {
  let names: string[];
  try {
    names = (await readdir(root)).sort();
  } catch {
    return;
  }
  for (const name of names) {
    const path = join(root, name);
    const info = await lstat(path).catch(() => undefined);
    if (info?.isDirectory()) yield* walk(path, maxBytes);
    else if (info?.isFile() && info.size > 0 && info.size < maxBytes) yield { path, size: info.size };
  }
}

/** The archive itself: a config naming the diff IDs, manifest.json, and each layer as LAYER/layer.tar. */
async function packArchive(path: string, layerFiles: string[], diffIds: string[]): Promise<void> {
  const config = Buffer.from(
    JSON.stringify({
      architecture: 'amd64',
      os: 'linux',
      created: EPOCH.toISOString(),
      config: { Cmd: ['/bin/sh'] },
      rootfs: { type: 'layers', diff_ids: diffIds },
      history: diffIds.map((_, i) => ({ created: EPOCH.toISOString(), created_by: `bench layer ${i}` })),
    }),
  );
  const configName = `${createHash('sha256').update(config).digest('hex')}.json`;
  const layerNames = diffIds.map((id) => `${id.slice('sha256:'.length)}/layer.tar`);
  const manifest = Buffer.from(JSON.stringify([{ Config: configName, RepoTags: ['bench/archive:latest'], Layers: layerNames }]));

  const pack = tar.pack();
  const written = pipeline(pack, createWriteStream(path));
  const add = async (name: string, data: Buffer) => new Promise<void>((ok, fail) => pack.entry({ name, mtime: EPOCH, mode: 0o644 }, data, (err) => (err ? fail(err) : ok())));
  await add(configName, config);
  for (const [i, file] of layerFiles.entries()) {
    const { size } = await stat(file);
    await pipeline(createReadStream(file), pack.entry({ name: layerNames[i] ?? '', size, mode: 0o644, mtime: EPOCH }));
  }
  await add('manifest.json', manifest);
  pack.finalize();
  await written;
}
