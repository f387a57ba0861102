/**
 * Deterministic, real container images for tests, the demo and benchmarks, built
 * without Docker: real tar layers, gzipped, a real config and manifest, laid out
 * as an OCI image layout directory that skopeo, dockerd and rxpush all read.
 *
 * CLI: `node --import tsx tools/fixtures.ts DIR [--layers N] [--size BYTES]
 *       [--files N] [--tag T] [--format oci|docker] [--seed S]`
 */
import { createCipheriv, createHash, randomUUID } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { mkdir, rename, rm, stat, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { createGzip } from 'node:zlib';
import tar from 'tar-stream';

/** One layer: `files` files of `fileSize` pseudo-random bytes derived from `seed`. */
export interface LayerSpec {
  files: number;
  fileSize: number;
  seed: string;
}

export interface ImageSpec {
  tags: string[];
  layers: LayerSpec[];
}

export interface MakeOciLayoutOptions {
  images?: ImageSpec[];
  /**
   * `oci` (default) writes OCI media types; `docker` writes Docker schema 2 media types
   * (as `buildx --output type=oci,oci-mediatypes=false` does). skopeo 1.9 reads only
   * OCI-typed manifests from a layout, so use `oci` for anything skopeo must read.
   */
  format?: 'oci' | 'docker';
  /** zlib level of the layers (default zlib's, 6); the benchmark's random layers use 0: as large, much faster to make. */
  gzipLevel?: number;
}

export interface FixtureImage {
  tags: string[];
  manifestDigest: string;
  manifestSize: number;
  manifestMediaType: string;
  configDigest: string;
  configSize: number;
  layerDigests: string[];
  layerSizes: number[];
  diffIds: string[];
}

export interface OciLayoutFixture {
  dir: string;
  images: FixtureImage[];
}

const MEDIA = {
  oci: {
    manifest: 'application/vnd.oci.image.manifest.v1+json',
    config: 'application/vnd.oci.image.config.v1+json',
    layer: 'application/vnd.oci.image.layer.v1.tar+gzip',
  },
  docker: {
    manifest: 'application/vnd.docker.distribution.manifest.v2+json',
    config: 'application/vnd.docker.container.image.v1+json',
    layer: 'application/vnd.docker.image.rootfs.diff.tar.gzip',
  },
} as const;

const INDEX_MEDIA_TYPE = 'application/vnd.oci.image.index.v1+json';
// A fixed timestamp keeps tar headers, configs and so digests identical across runs.
const EPOCH = new Date('2020-01-01T00:00:00Z');
const CHUNK = 1024 * 1024;

const DEFAULT_IMAGES: ImageSpec[] = [
  {
    tags: ['latest'],
    layers: [
      { files: 2, fileSize: 4096, seed: 'base' },
      { files: 3, fileSize: 16 * 1024, seed: 'app' },
      { files: 1, fileSize: 1024, seed: 'config' },
    ],
  },
];

/**
 * Writes an OCI image layout with the given images into `dir` (created if missing).
 * Identical layer specs (same seed, count and size) produce the same blob, written once.
 *
 * @example
 * const { images } = await makeOciLayout('/tmp/img');
 * // skopeo copy oci:/tmp/img:latest docker://127.0.0.1:5000/x:latest
 */
export async function makeOciLayout(dir: string, options: MakeOciLayoutOptions = {}): Promise<OciLayoutFixture> {
  const media = MEDIA[options.format ?? 'oci'];
  const images = options.images ?? DEFAULT_IMAGES;
  const blobDir = join(dir, 'blobs', 'sha256');
  await mkdir(blobDir, { recursive: true });

  const layerCache = new Map<string, Promise<LayerResult>>();
  const layerOf = (spec: LayerSpec): Promise<LayerResult> => {
    const key = JSON.stringify([spec.seed, spec.files, spec.fileSize]);
    let pending = layerCache.get(key);
    if (!pending) {
      pending = writeLayer(blobDir, spec, options.gzipLevel);
      layerCache.set(key, pending);
    }
    return pending;
  };

  const out: FixtureImage[] = [];
  const indexEntries: object[] = [];
  for (const image of images) {
    // Sequential on purpose: layers are CPU-bound (gzip) and this keeps memory flat.
    const layers: LayerResult[] = [];
    for (const spec of image.layers) layers.push(await layerOf(spec));

    const config = {
      architecture: 'amd64',
      os: 'linux',
      created: EPOCH.toISOString(),
      config: {
        Env: ['PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'],
        Cmd: ['/bin/sh'],
        WorkingDir: '/',
      },
      rootfs: { type: 'layers', diff_ids: layers.map((l) => l.diffId) },
      history: image.layers.map((spec) => ({
        created: EPOCH.toISOString(),
        created_by: `rxpush fixture: ${spec.files} files of ${spec.fileSize} bytes, seed ${JSON.stringify(spec.seed)}`,
      })),
    };
    const configBlob = await writeJsonBlob(blobDir, config);

    const manifest = {
      schemaVersion: 2,
      mediaType: media.manifest,
      config: { mediaType: media.config, digest: configBlob.digest, size: configBlob.size },
      layers: layers.map((l) => ({ mediaType: media.layer, digest: l.digest, size: l.size })),
    };
    const manifestBlob = await writeJsonBlob(blobDir, manifest);

    for (const tag of image.tags) {
      indexEntries.push({
        mediaType: media.manifest,
        digest: manifestBlob.digest,
        size: manifestBlob.size,
        annotations: { 'org.opencontainers.image.ref.name': tag },
        platform: { architecture: 'amd64', os: 'linux' },
      });
    }
    out.push({
      tags: [...image.tags],
      manifestDigest: manifestBlob.digest,
      manifestSize: manifestBlob.size,
      manifestMediaType: media.manifest,
      configDigest: configBlob.digest,
      configSize: configBlob.size,
      layerDigests: layers.map((l) => l.digest),
      layerSizes: layers.map((l) => l.size),
      diffIds: layers.map((l) => l.diffId),
    });
  }

  await writeFile(join(dir, 'oci-layout'), JSON.stringify({ imageLayoutVersion: '1.0.0' }));
  await writeFile(
    join(dir, 'index.json'),
    JSON.stringify({ schemaVersion: 2, mediaType: INDEX_MEDIA_TYPE, manifests: indexEntries }),
  );
  return { dir, images: out };
}

type TarSink = ReturnType<tar.Pack['entry']>;

interface LayerResult {
  digest: string;
  size: number;
  diffId: string;
}

async function writeJsonBlob(blobDir: string, value: unknown): Promise<{ digest: string; size: number }> {
  const bytes = Buffer.from(JSON.stringify(value));
  const digest = `sha256:${createHash('sha256').update(bytes).digest('hex')}`;
  await writeFile(join(blobDir, digest.slice('sha256:'.length)), bytes);
  return { digest, size: bytes.length };
}

/** A pass-through that hashes and counts what flows by. */
function hashTap(): Transform & { digest(): string; bytes(): number } {
  const hash = createHash('sha256');
  let count = 0;
  const tap = new Transform({
    transform(chunk: Buffer, _enc, cb) {
      hash.update(chunk);
      count += chunk.length;
      cb(null, chunk);
    },
  });
  return Object.assign(tap, {
    digest: () => `sha256:${hash.digest('hex')}`,
    bytes: () => count,
  });
}

/**
 * Streams one layer to disk: tar → hash (diff ID) → gzip → hash (digest) → file,
 * so a layer of any size needs only a few MiB of memory.
 */
async function writeLayer(blobDir: string, spec: LayerSpec, level: number | undefined): Promise<LayerResult> {
  const pack = tar.pack();
  const diffTap = hashTap();
  const blobTap = hashTap();
  const tmp = join(blobDir, `.tmp-${randomUUID()}`);
  const written = pipeline(pack, diffTap, createGzip({ chunkSize: CHUNK, ...(level !== undefined && { level }) }), blobTap, createWriteStream(tmp));

  const slug = spec.seed.replace(/[^A-Za-z0-9._-]/g, '_') || 'layer';
  const fileHeader = { mode: 0o644, uid: 0, gid: 0, uname: '', gname: '', mtime: EPOCH };
  try {
    await addEntry(pack, { ...fileHeader, name: 'data/', type: 'directory', mode: 0o755 });
    await addEntry(pack, { ...fileHeader, name: `data/${slug}/`, type: 'directory', mode: 0o755 });
    for (let i = 0; i < spec.files; i++) {
      const name = `data/${slug}/file-${String(i).padStart(4, '0')}.bin`;
      const entry = pack.entry({ ...fileHeader, name, size: spec.fileSize, type: 'file' });
      const done = entryDone(entry);
      await writeRandom(entry, `${spec.seed}\0${i}`, spec.fileSize);
      entry.end(undefined); // streamx types want an argument; undefined writes nothing
      await done;
    }
    pack.finalize();
    await written;
  } catch (err) {
    pack.destroy(err as Error);
    await written.catch(() => {});
    await rm(tmp, { force: true });
    throw err;
  }

  const digest = blobTap.digest();
  const target = join(blobDir, digest.slice('sha256:'.length));
  if (await exists(target)) await rm(tmp, { force: true });
  else await rename(tmp, target);
  return { digest, size: blobTap.bytes(), diffId: diffTap.digest() };
}

function addEntry(pack: tar.Pack, header: Partial<tar.Header> & { name: string }): Promise<void> {
  return new Promise((ok, fail) => {
    pack.entry(header, (err) => (err ? fail(err) : ok()));
  });
}

function entryDone(entry: TarSink): Promise<void> {
  return new Promise((ok, fail) => {
    entry.once('finish', () => ok());
    entry.once('close', () => ok());
    entry.once('error', fail);
  });
}

/** AES-CTR over zeros: fast, seekless, deterministic pseudo-random bytes for a seed. */
async function writeRandom(entry: TarSink, seed: string, size: number): Promise<void> {
  const key = createHash('sha256').update(seed).digest().subarray(0, 16);
  const cipher = createCipheriv('aes-128-ctr', key, Buffer.alloc(16));
  const zeros = Buffer.alloc(Math.min(CHUNK, Math.max(size, 1)));
  let left = size;
  while (left > 0) {
    const n = Math.min(left, zeros.length);
    const chunk = cipher.update(n === zeros.length ? zeros : zeros.subarray(0, n));
    left -= n;
    if (!entry.write(chunk)) {
      await new Promise<void>((ok) => entry.once('drain', () => ok()));
    }
  }
}

async function exists(path: string): Promise<boolean> {
  return stat(path).then(
    () => true,
    () => false,
  );
}

async function main(argv: string[]): Promise<void> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      layers: { type: 'string', default: '3' },
      size: { type: 'string', default: String(64 * 1024) },
      files: { type: 'string' },
      tag: { type: 'string', multiple: true },
      format: { type: 'string', default: 'oci' },
      seed: { type: 'string', default: 'fixture' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  const dir = positionals[0];
  if (values.help || !dir) {
    console.error(
      'usage: node --import tsx tools/fixtures.ts DIR [--layers N] [--size BYTES-PER-LAYER] [--files N-PER-LAYER] [--tag T]... [--format oci|docker] [--seed S]',
    );
    process.exitCode = dir ? 0 : 2;
    return;
  }
  const layerCount = Number(values.layers);
  const size = Number(values.size);
  // Files of at most 8 MiB each, so big layers look like real ones (many files), unless told.
  const files = values.files ? Number(values.files) : Math.max(1, Math.ceil(size / (8 * CHUNK)));
  if (![layerCount, size, files].every((n) => Number.isInteger(n) && n >= 0) || files < 1) {
    console.error('fixtures: --layers, --size and --files must be non-negative integers (--files at least 1)');
    process.exitCode = 2;
    return;
  }
  if (values.format !== 'oci' && values.format !== 'docker') {
    console.error(`fixtures: --format must be oci or docker, not ${values.format}`);
    process.exitCode = 2;
    return;
  }
  const fileSize = Math.ceil(size / files);
  const layers = Array.from({ length: layerCount }, (_, i) => ({ files, fileSize, seed: `${values.seed}-${i}` }));
  const result = await makeOciLayout(resolve(dir), {
    images: [{ tags: values.tag ?? ['latest'], layers }],
    format: values.format,
  });
  console.log(JSON.stringify(result, null, 2));
}

if (process.argv[1] && import.meta.url === pathToFileURL(resolve(process.argv[1])).href) {
  main(process.argv.slice(2)).catch((err: unknown) => {
    console.error(`fixtures: ${err instanceof Error ? err.message : String(err)}`);
    process.exitCode = 1;
  });
}
