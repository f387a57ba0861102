/**
 * The tools the benchmark compares: each pushes an OCI layout fixture to a registry
 * as `bench/x:latest`, measured by measureCommand.
 */
import { existsSync, readFileSync } from 'node:fs';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';

import { startDockerd, type RunningDockerd } from '../dockerd.ts';
import type { FixtureImage } from '../fixtures.ts';
import type { RunningRegistry } from '../registry.ts';
import { measureCommand, peakRssMb, processCpuSeconds, resetPeakRss, type Measurement } from './measure-command.ts';

const ROOT = resolve(import.meta.dirname, '..', '..');
const RXPUSH = join(ROOT, 'packages', 'cli', 'bin', 'rxpush.js');
// Debian's docker client, matching the daemon's API version (another `docker` may be first on PATH).
const DOCKER = '/usr/bin/docker';
export const REPOSITORY = 'bench/x';
export const TAG = 'latest';

/** One generated image: an OCI layout holding it under the tag `latest`, or a docker-save archive. */
export interface BenchImage {
  name: string;
  /** The source as rxpush and skopeo name it: `oci:DIR:latest` or `docker-archive:PATH`. */
  source: string;
  /** The OCI layout, for OCI images: the curl floor and docker push read its blobs. */
  layoutDir?: string;
  fixture?: FixtureImage;
  /** The diff IDs the pushed config must list, and every pushed layer must gunzip to. */
  diffIds: string[];
  /** The layer digests a push must produce, where they are fixed (stored layers, pushed as they are). */
  layerDigests?: string[];
  /** The image's bytes as the source holds them (layers and config). */
  bytes: number;
}

export interface Pusher {
  readonly name: string;
  /** Whether a push leaves `bench/x:latest` in the registry to be checked (not so for `node -e 0` or `--help`). */
  readonly pushes?: boolean;
  /** Prepares (e.g. starts dockerd and loads the images); resolves a reason when the tool cannot run here. */
  setup(images: BenchImage[]): Promise<string | undefined>;
  /** Drops what the tool remembers of earlier pushes (digest caches), so the next push is a first one. */
  forget(): Promise<void>;
  push(image: BenchImage, registry: RunningRegistry): Promise<Measurement>;
  close(): Promise<void>;
}

export interface PusherOptions {
  timeoutMs: number;
  /** Write V8 CPU profiles of rxpush runs here (`node --cpu-prof`). */
  profileDir?: string;
}

function destination(registry: RunningRegistry): string {
  return `${registry.host}/${REPOSITORY}:${TAG}`;
}

/**
 * `rxpush push` from the built CLI, with a cache directory of its own (`RXPUSH_CACHE_DIR`). forget() empties
 * what it knows of images (digest cache, mount claims, chunk sessions) and keeps `code-cache`, the V8 code
 * cache of the CLI's bundle (tools/bundle/load-bundle.cjs): compiled code, no knowledge of any image, which
 * every run of rxpush but a machine's first has, as a Go tool's binary is compiled once.
 */
export function rxpushPusher(extraArgs: string[], options: PusherOptions): Pusher {
  let cacheDir: string | undefined;
  let forgotten = false;
  return {
    name: ['rxpush', ...extraArgs].join(' '),
    async setup() {
      if (!existsSync(join(ROOT, 'packages', 'cli', 'dist', 'main.js'))) {
        return 'packages/cli/dist is missing: run "npm run build" first';
      }
      cacheDir = await mkdtemp(join(tmpdir(), 'rxpush-bench-cache-'));
      return undefined;
    },
    async forget() {
      if (cacheDir === undefined) throw new Error('rxpush pusher used before setup()');
      for (const entry of await readdir(cacheDir)) {
        if (entry !== 'code-cache') await rm(join(cacheDir, entry), { recursive: true, force: true });
      }
      forgotten = true;
    },
    async push(image, registry) {
      if (cacheDir === undefined || !forgotten) throw new Error('rxpush pusher: call forget() before the first push');
      const profile = options.profileDir ? ['--cpu-prof', '--cpu-prof-dir', options.profileDir] : [];
      return measureCommand(
        process.execPath,
        [...profile, RXPUSH, 'push', image.source, destination(registry), '--progress', 'plain', ...extraArgs],
        { env: { ...process.env, RXPUSH_CACHE_DIR: cacheDir }, timeoutMs: options.timeoutMs },
      );
    },
    async close() {
      if (cacheDir !== undefined) await rm(cacheDir, { recursive: true, force: true });
    },
  };
}

/**
 * `skopeo copy`. Its blob-info cache (/var/lib/containers/cache for root) is the system's and is left
 * alone; it only offers mounts within the same registry, and every registry here is new.
 */
export function skopeoPusher(options: PusherOptions): Pusher {
  return {
    name: 'skopeo copy',
    async setup() {
      return existsSync('/usr/bin/skopeo') ? undefined : '/usr/bin/skopeo is missing: run "node tools/setup.mjs"';
    },
    async forget() {},
    push(image, registry) {
      return measureCommand(
        'skopeo',
        ['copy', '--dest-tls-verify=false', image.source, `docker://${destination(registry)}`],
        { timeoutMs: options.timeoutMs },
      );
    },
    async close() {},
  };
}

/**
 * `docker push` from a private dockerd that `docker load`ed each image: overlay2 storage as on most
 * Docker hosts, vfs where overlay mounts are not allowed. The work happens in dockerd, so its CPU
 * (from /proc) is added to the client's, and its peak RSS is reported.
 */
export function dockerPusher(options: PusherOptions): Pusher {
  let engine: RunningDockerd | undefined;
  let daemonPid: number | undefined;
  let driver: 'overlay2' | 'vfs' | undefined;
  const localName = (image: BenchImage) => `bench/${image.name}:${TAG}`;
  return {
    get name() {
      return driver ? `docker push (${driver})` : 'docker push';
    },
    async setup(images) {
      let started;
      try {
        started = await startDockerd({ storageDriver: 'overlay2' });
        driver = 'overlay2';
      } catch (err) {
        process.stderr.write(`bench: dockerd with overlay2 did not start, trying vfs: ${String(err).split('\n')[0]}\n`);
        started = await startDockerd({ storageDriver: 'vfs' });
        driver = 'vfs';
      }
      if ('skipped' in started) {
        driver = undefined;
        return started.skipped;
      }
      engine = started;
      daemonPid = Number(readFileSync(join(dirname(engine.dataRoot), 'dockerd.pid'), 'utf8').trim());
      const dir = await mkdtemp(join(tmpdir(), 'rxpush-bench-docker-'));
      try {
        for (const image of images) {
          if (image.layoutDir === undefined) continue;
          const archive = join(dir, `${image.name}.tar`);
          await measureCommand('skopeo', ['copy', '-q', `oci:${image.layoutDir}:${TAG}`, `docker-archive:${archive}:${localName(image)}`], {
            timeoutMs: options.timeoutMs,
          });
          await engine.docker(['load', '-i', archive], { timeoutMs: options.timeoutMs });
          await rm(archive, { force: true });
        }
      } finally {
        await rm(dir, { recursive: true, force: true });
      }
      return undefined;
    },
    async forget() {
      // dockerd's record of which compressed digests each layer was pushed as (v2 metadata): without
      // it, as after a fresh `docker load`, it compresses and uploads every layer.
      if (engine && driver) await rm(join(engine.dataRoot, 'image', driver, 'distribution'), { recursive: true, force: true });
    },
    async push(image, registry) {
      if (!engine || daemonPid === undefined) throw new Error('docker pusher used before setup()');
      const target = destination(registry);
      await engine.docker(['tag', localName(image), target]);
      const canResetPeak = await resetPeakRss(daemonPid);
      const before = await processCpuSeconds(daemonPid);
      const client = await measureCommand(DOCKER, ['push', target], {
        env: { ...process.env, DOCKER_HOST: engine.host, DOCKER_CONFIG: engine.configDir },
        timeoutMs: options.timeoutMs,
      });
      const daemonCpu = (await processCpuSeconds(daemonPid)) - before;
      const daemonPeak = canResetPeak ? await peakRssMb(daemonPid) : undefined;
      return { ...client, cpuS: client.cpuS + daemonCpu, peakRssMb: daemonPeak };
    },
    async close() {
      await engine?.stop();
    },
  };
}

/**
 * The floor: the least HTTP work a push needs, done by curl with no hashing, compression or
 * parsing of its own: one HEAD per blob, then for the missing ones a POST each and
 * `PUT Location&digest=` of the file straight from the layout (streamed, `--parallel-max` at once), then
 * the manifest PUT. Four curl processes, each reusing its connections.
 */
export function curlPusher(options: PusherOptions & { parallel: number }): Pusher {
  return {
    name: 'curl floor',
    async setup() {
      return existsSync('/usr/bin/curl') ? undefined : '/usr/bin/curl is missing (Debian package curl)';
    },
    async forget() {},
    async push(image, registry) {
      const { fixture, layoutDir } = image;
      if (fixture === undefined || layoutDir === undefined) throw new Error(`curl floor: image "${image.name}" is no OCI layout`);
      const started = process.hrtime.bigint();
      const base = `${registry.url}/v2/${REPOSITORY}`;
      const digests = [fixture.configDigest, ...fixture.layerDigests];
      const blobFile = (digest: string) => join(layoutDir, 'blobs', 'sha256', digest.slice('sha256:'.length));
      const steps: Measurement[] = [];
      const curl = async (args: string[]) => {
        const m = await measureCommand('curl', ['-s', '--no-progress-meter', '-f', ...args], { timeoutMs: options.timeoutMs });
        steps.push(m);
        return m.stdout.trim().split('\n').filter(Boolean);
      };

      // -f is off for HEAD: a 404 is an answer here.
      const heads = await measureCommand('curl', ['-s', '-I', '-w', '%{http_code}\\n', ...digests.flatMap((d) => ['-o', '/dev/null', `${base}/blobs/${d}`])], {
        timeoutMs: options.timeoutMs,
      });
      steps.push(heads);
      const codes = heads.stdout.trim().split('\n');
      const missing = digests.filter((_, i) => codes[i] !== '200');
      if (missing.length > 0) {
        const locations = await curl(['-d', '', '-w', '%header{location}\\n', ...missing.flatMap(() => ['-o', '/dev/null', `${base}/blobs/uploads/`])]);
        if (locations.length !== missing.length) throw new Error(`curl floor: ${missing.length} upload POSTs gave ${locations.length} Locations`);
        const puts = missing.flatMap((digest, i) => {
          const location = new URL(locations[i] ?? '', registry.url);
          location.searchParams.set('digest', digest);
          return ['-o', '/dev/null', '-T', blobFile(digest), location.href];
        });
        await curl(['-H', 'Expect:', '-H', 'Content-Type: application/octet-stream', '--parallel', '--parallel-max', String(options.parallel), ...puts]);
      }
      const manifest = join(layoutDir, 'blobs', 'sha256', fixture.manifestDigest.slice('sha256:'.length));
      await curl(['-X', 'PUT', '-H', `Content-Type: ${fixture.manifestMediaType}`, '--data-binary', `@${manifest}`, '-o', '/dev/null', `${base}/manifests/${TAG}`]);

      const rss = steps.map((s) => s.peakRssMb).filter((v): v is number => v !== undefined);
      return {
        wallS: Number(process.hrtime.bigint() - started) / 1e9,
        cpuS: steps.reduce((sum, s) => sum + s.cpuS, 0),
        peakRssMb: rss.length === steps.length ? Math.max(...rss) : undefined,
        stdout: '',
        stderr: '',
      };
    },
    async close() {},
  };
}

/** A command that pushes nothing, timed like the pushers: `node -e 0` (Node's own start), `rxpush --help`. */
export function commandPusher(name: string, command: string, args: string[], options: PusherOptions): Pusher {
  return {
    name,
    pushes: false,
    async setup() {
      return undefined;
    },
    async forget() {},
    push() {
      return measureCommand(command, args, { timeoutMs: options.timeoutMs });
    },
    async close() {},
  };
}

/** `rxpush --help` from the built CLI. */
export function rxpushHelpPusher(options: PusherOptions): Pusher {
  return commandPusher('rxpush --help', process.execPath, [RXPUSH, '--help'], options);
}

/**
 * Case (h): `count` pushes of the image at once in one process through the library's push()
 * (tools/bench/library-pushes.mjs), each to its own repository `bench/x-N`; `check` then looks at each.
 */
export function libraryPusher(count: number, options: PusherOptions): Pusher & { readonly repositories: string[] } {
  let cacheRoot: string | undefined;
  const repositories = Array.from({ length: count }, (_, i) => `${REPOSITORY}-${i}`);
  return {
    name: `rxpush push() ×${count}, one process`,
    repositories,
    async setup() {
      cacheRoot = await mkdtemp(join(tmpdir(), 'rxpush-bench-library-'));
      return existsSync(join(ROOT, 'packages', 'pipeline', 'dist', 'index.js')) ? undefined : 'packages/pipeline/dist is missing: run "npm run build" first';
    },
    async forget() {
      if (cacheRoot !== undefined) await rm(join(cacheRoot, 'cache'), { recursive: true, force: true });
    },
    push(image, registry) {
      if (image.layoutDir === undefined || cacheRoot === undefined) throw new Error('library pusher: needs an OCI layout, after setup()');
      return measureCommand(
        process.execPath,
        [join(ROOT, 'tools', 'bench', 'library-pushes.mjs'), image.layoutDir, registry.host, REPOSITORY, TAG, String(count), join(cacheRoot, 'cache')],
        { timeoutMs: options.timeoutMs },
      );
    },
    async close() {
      if (cacheRoot !== undefined) await rm(cacheRoot, { recursive: true, force: true });
    },
  };
}

