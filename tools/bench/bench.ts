/**
 * Benchmarks: pushes the same generated images with rxpush, skopeo and a curl floor (and, when
 * asked, `docker push`), each run to a fresh local registry, and writes tables of medians and
 * ratios (measured in the same run) and where each goal stands to docs/benchmarks.md, with the
 * command that made them.
 *
 * Run after `npm run build`: `npm run bench -- [--quick] [--runs N] [--scale F] [--tools a,b]
 * [--scenarios a,b] [--out FILE] [--timeout S] [--profile DIR]` (see --help). Speed and memory goals
 * live in that document, not in timed tests. A push that fails, or leaves other layers than expected,
 * fails the benchmark.
 */
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { rmSync } from 'node:fs';
import { mkdtemp, stat } from 'node:fs/promises';
import { loadavg, tmpdir } from 'node:os';
import { join, relative, resolve } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { parseArgs, promisify } from 'node:util';
import { createGunzip } from 'node:zlib';

import { makeOciLayout, type LayerSpec } from '../fixtures.ts';
import { startRegistry, type RunningRegistry } from '../registry.ts';
import { makeRealFilesArchive } from './archives.ts';
import { describeMachine } from './describe-machine.ts';
import { killRunningCommands, measurementMethod, processCpuSeconds } from './measure-command.ts';
import {
  commandPusher,
  curlPusher,
  dockerPusher,
  libraryPusher,
  REPOSITORY,
  rxpushHelpPusher,
  rxpushPusher,
  skopeoPusher,
  TAG,
  type BenchImage,
  type Pusher,
} from './pushers.ts';
import { BEGIN, END, renderReport, writeReport, type Goal, type Sample, type ScenarioResult, type ToolResult } from './write-report.ts';

const ROOT = resolve(import.meta.dirname, '..', '..');
const MB = 1_000_000;
const MIB = 1024 * 1024;
// Files of at most 8 MiB, so a big layer looks like a real one (many files).
const MAX_FILE = 8 * MIB;
const LIBRARY_PUSHES = 50;
const execFileAsync = promisify(execFile);

const USAGE = `usage: npm run bench -- [options]   (after npm run build)

  --runs N          measured pushes per tool and case; the report shows medians (default 3; --quick 1)
  --scale F         multiply every layer size by F (default 1; --quick 0.1)
  --quick           --runs 1 --scale 0.1, and print the tables instead of writing docs/benchmarks.md
  --tools LIST      only these tools (comma-separated: rxpush, rxpush-c2, skopeo, curl, docker; default all but
                    rxpush-c2 and docker, which re-gzips every layer for minutes)
  --scenarios LIST  only these cases (comma-separated: a, b, c, d, d2, e, f, h)
  --out FILE        write the report here (default docs/benchmarks.md, unless a push failed or
                    --profile is on; "-" prints it)
  --timeout S       give up on one push after S seconds (default 600)
  --profile DIR     write V8 CPU profiles of the rxpush runs to DIR (node --cpu-prof; slows them)`;

type ToolKey = 'rxpush' | 'rxpush-c2' | 'skopeo' | 'curl' | 'docker' | 'node' | 'help' | 'library';
const TOOL_KEYS = ['rxpush', 'rxpush-c2', 'skopeo', 'curl', 'docker'] as const;
const DEFAULT_TOOLS: readonly string[] = ['rxpush', 'skopeo', 'curl'];

interface Scenario {
  key: string;
  title: string;
  image: string;
  /** push: to an empty registry; second: again, to a registry that has it; command: no registry. */
  kind: 'push' | 'second' | 'command';
  tools: readonly ToolKey[];
  describe(image: BenchImage): string;
  goals: readonly Goal[];
}

const SCENARIOS: Scenario[] = [
  {
    key: 'a',
    title: '(a) OCI layout, 8 × 64 MiB gzip layers',
    image: 'a',
    kind: 'push',
    tools: ['rxpush', 'rxpush-c2', 'skopeo', 'docker', 'curl'],
    describe: (i) => `${i.diffIds.length} gzip layers of incompressible data, ${mb(i.bytes)} in all, to an empty registry.`,
    goals: [{ tool: 'rxpush', metric: 'skopeo', max: 0.65 }, { tool: 'rxpush', metric: 'floor', max: 1.25 }],
  },
  {
    key: 'b',
    title: '(b) OCI layout, 32 × 64 MiB gzip layers',
    image: 'b',
    kind: 'push',
    tools: ['rxpush', 'rxpush-c2', 'skopeo', 'curl'],
    describe: (i) => `${i.diffIds.length} gzip layers, ${mb(i.bytes)} in all: four times (a), so the peak RSS shows whether memory grows with the image.`,
    goals: [{ tool: 'rxpush', metric: 'skopeo', max: 0.55 }, { tool: 'rxpush', metric: 'rss', max: 100 }],
  },
  {
    key: 'c',
    title: '(c) OCI layout, 300 × 64 KiB layers',
    image: 'c',
    kind: 'push',
    tools: ['rxpush', 'rxpush-c2', 'skopeo', 'docker', 'curl'],
    describe: (i) => `${i.diffIds.length} small layers, ${mb(i.bytes)} in all: the cost per blob.`,
    goals: [{ tool: 'rxpush', metric: 'skopeo', max: 0.4 }, { tool: 'rxpush', metric: 'floor', max: 1.3 }],
  },
  {
    key: 'd',
    title: '(d) docker-archive, 8 × 64 MiB uncompressed layers of incompressible data',
    image: 'd',
    kind: 'push',
    tools: ['rxpush', 'skopeo'],
    describe: (i) =>
      `(a)'s image as \`docker save\` writes it (skopeo made the archive): ${i.diffIds.length} uncompressed layers, ${mb(i.bytes)}, which every tool must gzip on the way. Random data: compression cannot win anything.`,
    goals: [{ tool: 'rxpush', metric: 'skopeo', max: 0.85 }],
  },
  {
    key: 'd2',
    title: "(d′) docker-archive, 8 × 64 MiB uncompressed layers of real files",
    image: 'd2',
    kind: 'push',
    tools: ['rxpush', 'skopeo'],
    describe: (i) =>
      `${i.diffIds.length} uncompressed layers of the regular files under /usr/lib (name order), ${mb(i.bytes)}: binaries, libraries and text as in a real image. The pushed MB column is what compression made of it.`,
    goals: [{ tool: 'rxpush', metric: 'skopeo', max: 0.85 }, { tool: 'rxpush', metric: 'size', max: 1.05 }],
  },
  {
    key: 'e',
    title: '(e) second push, whole process',
    image: 'a',
    kind: 'second',
    tools: ['rxpush', 'skopeo', 'docker', 'curl', 'node'],
    describe: (i) =>
      `(a)'s image (${mb(i.bytes)}) again, to a registry that already has it: each tool pushed it once, unmeasured, then each measured run pushes it again. Only HEADs and the manifest PUT are needed: what is left is start-up. \`node -e 0\` is Node's own start.`,
    goals: [{ tool: 'rxpush', metric: 'skopeo', max: 3 }],
  },
  {
    key: 'f',
    title: '(f) rxpush --help',
    image: 'none',
    kind: 'command',
    tools: ['help', 'node'],
    describe: () => 'Start-up alone: the command line parsed and the help text printed.',
    goals: [{ tool: 'rxpush --help', metric: 'wall', max: 0.08 }],
  },
  {
    key: 'h',
    title: `(h) ${LIBRARY_PUSHES} pushes at once in one process (library)`,
    image: 'h',
    kind: 'push',
    tools: ['library'],
    describe: (i) =>
      `${LIBRARY_PUSHES} push() calls of one OCI image (${i.diffIds.length} layers, ${mb(i.bytes)}) at once in one Node process (tools/bench/library-pushes.mjs), each to its own repository of one registry: ${mb(i.bytes * LIBRARY_PUSHES)} uploaded.`,
    goals: [{ tool: `rxpush push() ×${LIBRARY_PUSHES}, one process`, metric: 'rss', max: 200 }],
  },
];

const loadAverages: number[] = [];
// What a Ctrl-C must stop, in order: running pushes, then registries, then the tools (dockerd).
const liveRegistries = new Set<RunningRegistry>();
const livePushers: Pusher[] = [];
let stopping = false;
/** Layer digests whose blobs were read back from a registry and gunzipped to their diff IDs. */
const verifiedLayers = new Set<string>();

function layers(count: number, sizeBytes: number, seed: string): LayerSpec[] {
  const size = Math.max(1, Math.round(sizeBytes));
  const files = Math.max(1, Math.ceil(size / MAX_FILE));
  return Array.from({ length: count }, (_, i) => ({ files, fileSize: Math.ceil(size / files), seed: `${seed}-${i}` }));
}

function log(message: string): void {
  process.stderr.write(`bench: ${message}\n`);
}

/** Makes the images the chosen cases push (only those). */
async function makeImages(names: Set<string>, work: string, scale: number): Promise<Map<string, BenchImage>> {
  const images = new Map<string, BenchImage>();
  const oci = async (name: string, specs: LayerSpec[]): Promise<BenchImage> => {
    log(`generating image "${name}": ${specs.length} layers of ${mb(specs[0] ? specs[0].files * specs[0].fileSize : 0)}`);
    const layoutDir = join(work, name);
    // Stored gzip (level 0): random data does not compress anyway, and level 6 would take minutes to make.
    const { images: [fixture] } = await makeOciLayout(layoutDir, { images: [{ tags: [TAG], layers: specs }], gzipLevel: 0 });
    if (!fixture) throw new Error(`makeOciLayout wrote no image for "${name}"`);
    const bytes = fixture.layerSizes.reduce((a, b) => a + b, 0) + fixture.configSize;
    return { name, source: `oci:${layoutDir}:${TAG}`, layoutDir, fixture, diffIds: fixture.diffIds, layerDigests: fixture.layerDigests, bytes };
  };
  if (names.has('a') || names.has('d')) images.set('a', await oci('a', layers(8, 64 * MIB * scale, 'bench-a')));
  if (names.has('b')) images.set('b', await oci('b', layers(32, 64 * MIB * scale, 'bench-b')));
  if (names.has('c')) images.set('c', await oci('c', layers(300, 64 * 1024 * scale, 'bench-c')));
  if (names.has('h')) images.set('h', await oci('h', layers(3, MIB * scale, 'bench-h')));
  if (names.has('d')) {
    const a = images.get('a');
    if (a?.fixture === undefined) throw new Error('case (d) needs image a');
    const path = join(work, 'd.tar');
    log('generating image "d": (a) as a docker-archive, by skopeo');
    await execFileAsync('skopeo', ['copy', '-q', a.source, `docker-archive:${path}:bench/d:latest`], { maxBuffer: 16 * MB });
    images.set('d', { name: 'd', source: `docker-archive:${path}`, diffIds: a.diffIds, bytes: (await stat(path)).size });
  }
  if (names.has('d2')) {
    log(`generating image "d2": 8 layers of ${mb(64 * MIB * scale)} of the files under /usr/lib`);
    const path = join(work, 'd2.tar');
    const archive = await makeRealFilesArchive(path, { root: '/usr/lib', layers: 8, layerBytes: 64 * MIB * scale });
    images.set('d2', { name: 'd2', source: `docker-archive:${path}`, diffIds: archive.diffIds, bytes: (await stat(path)).size });
  }
  images.set('none', { name: 'none', source: '', diffIds: [], bytes: 0 });
  return images;
}

async function main(argv: string[]): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: {
      runs: { type: 'string' },
      scale: { type: 'string' },
      quick: { type: 'boolean', default: false },
      tools: { type: 'string' },
      scenarios: { type: 'string' },
      out: { type: 'string' },
      timeout: { type: 'string', default: '600' },
      profile: { type: 'string' },
      help: { type: 'boolean', short: 'h', default: false },
    },
  });
  if (values.help) {
    console.log(USAGE);
    return 0;
  }
  const runs = Number(values.runs ?? (values.quick ? 1 : 3));
  const scale = Number(values.scale ?? (values.quick ? 0.1 : 1));
  const timeoutMs = Number(values.timeout) * 1000;
  if (!Number.isInteger(runs) || runs < 1) return usage(`--runs takes a whole number ≥ 1, not ${values.runs}`);
  if (!(scale > 0)) return usage(`--scale takes a number > 0, not ${values.scale}`);
  if (!(timeoutMs > 0)) return usage(`--timeout takes seconds > 0, not ${values.timeout}`);
  const toolKeys = pick(values.tools, TOOL_KEYS, '--tools', DEFAULT_TOOLS);
  const scenarioKeys = pick(values.scenarios, SCENARIOS.map((s) => s.key), '--scenarios');
  if (typeof toolKeys === 'string') return usage(toolKeys);
  if (typeof scenarioKeys === 'string') return usage(scenarioKeys);
  let out = values.out ?? (values.quick ? '-' : join(ROOT, 'docs', 'benchmarks.md'));

  const started = Date.now();
  const work = await mkdtemp(join(tmpdir(), 'rxpush-bench-'));
  process.on('exit', () => rmSync(work, { recursive: true, force: true }));

  const scenarios = SCENARIOS.filter((s) => scenarioKeys.includes(s.key));
  const images = await makeImages(new Set(scenarios.map((s) => (s.key === 'd' ? 'd' : s.image))), work, scale);

  const pusherOptions = { timeoutMs, ...(values.profile ? { profileDir: resolve(values.profile) } : {}) };
  const chosen = (key: ToolKey): boolean => !(TOOL_KEYS as readonly string[]).includes(key) || (toolKeys as string[]).includes(key);
  const makers: Record<ToolKey, () => Pusher> = {
    rxpush: () => rxpushPusher([], pusherOptions),
    'rxpush-c2': () => rxpushPusher(['--concurrency', '2'], pusherOptions),
    skopeo: () => skopeoPusher(pusherOptions),
    docker: () => dockerPusher(pusherOptions),
    curl: () => curlPusher({ ...pusherOptions, parallel: 4 }),
    node: () => commandPusher('node -e 0', process.execPath, ['-e', '0'], pusherOptions),
    help: () => rxpushHelpPusher(pusherOptions),
    library: () => libraryPusher(LIBRARY_PUSHES, pusherOptions),
  };
  const wanted = [...new Set(scenarios.flatMap((s) => s.tools.filter(chosen)))];
  const pushers = new Map<ToolKey, Pusher>(wanted.map((key) => [key, makers[key]()]));
  livePushers.push(...pushers.values());
  const skipped = new Map<Pusher, string>();
  const results: ScenarioResult[] = [];
  try {
    for (const [key, pusher] of pushers) {
      log(`setting up ${pusher.name}`);
      // docker push loads the OCI images of its cases only: loading is slow.
      const its = scenarios.filter((s) => s.tools.includes(key)).map((s) => images.get(s.image)).filter((i): i is BenchImage => i?.layoutDir !== undefined);
      const reason = await pusher.setup([...new Set(its)]);
      if (reason) {
        log(`${pusher.name} skipped: ${reason}`);
        skipped.set(pusher, reason);
      }
    }

    for (const scenario of scenarios) {
      const image = images.get(scenario.image);
      if (!image) throw new Error(`no image "${scenario.image}"`);
      const inCase = scenario.tools.filter(chosen).map((key) => pushers.get(key)).filter((p): p is Pusher => p !== undefined);
      const tools: ToolResult[] = inCase.map((p) => {
        const reason = skipped.get(p);
        return { tool: p.name, samples: [], ...(reason !== undefined ? { skipped: reason } : {}) };
      });
      results.push({ title: scenario.title, description: scenario.describe(image), tools, goals: scenario.goals });
      const active = inCase.map((pusher, i) => ({ pusher, result: tools[i]! })).filter(({ pusher }) => !skipped.has(pusher));
      log(`case ${scenario.title}`);

      if (scenario.kind === 'second') {
        for (const { pusher, result } of active) {
          await withRegistry(async (registry) => {
            await pusher.forget();
            if (pusher.pushes !== false) {
              await pusher.push(image, registry);
              await checkPushed(registry, pusher, image);
            }
            for (let run = 1; run <= runs && !result.failed; run++) await measure(scenario, pusher, image, registry, result, run, runs);
          }).catch((err: unknown) => {
            result.failed ??= message(err);
          });
        }
      } else {
        // One unmeasured push per tool first, as hyperfine's --warmup does: the page cache holds each tool's
        // binary and the image, and rxpush's code cache holds the code this source needs (see rxpushPusher).
        if (scenario.kind === 'push') {
          for (const { pusher, result } of active) {
            await withRegistry(async (registry) => {
              await pusher.forget();
              await pusher.push(image, registry);
            }).catch((err: unknown) => {
              result.failed ??= `warm-up push: ${message(err)}`;
            });
          }
        }
        // Runs interleave the tools, so a slow drift of the machine spreads over all of them.
        const count = scenario.kind === 'command' ? Math.max(runs, 10) : runs;
        for (let run = 1; run <= count; run++) {
          for (const { pusher, result } of active) {
            if (result.failed) continue;
            const once = async (registry: RunningRegistry | undefined) => {
              await pusher.forget();
              await measure(scenario, pusher, image, registry, result, run, count);
            };
            await (scenario.kind === 'command' ? once(undefined) : withRegistry(once)).catch((err: unknown) => {
              result.failed ??= message(err);
            });
          }
        }
      }
    }
  } finally {
    for (const pusher of pushers.values()) await pusher.close().catch((err: unknown) => log(`closing ${pusher.name}: ${message(err)}`));
  }

  const args = argv.map(shellQuote).join(' ');
  const report = renderReport({
    command: process.env['npm_lifecycle_event'] === 'bench'
      ? `npm run bench${args ? ` -- ${args}` : ''}    # = node --import tsx tools/bench/bench.ts ${args}`.trimEnd()
      : `node --import tsx tools/bench/bench.ts ${args}`.trimEnd(),
    date: new Date(),
    durationS: (Date.now() - started) / 1000,
    runs,
    scale,
    loadAverages,
    machine: await describeMachine(),
    method: measurementMethod(),
    scenarios: results,
  });
  const failed = results.some((s) => s.tools.some((t) => t.failed));
  if (values.out === undefined && out !== '-' && (failed || values.profile)) {
    // Profiled or failed runs do not replace the committed numbers unless asked to with --out.
    log(`not writing ${relative(process.cwd(), out)}: ${failed ? 'a push failed' : '--profile slows rxpush'}; printing the report`);
    out = '-';
  }
  if (out === '-') {
    console.log(report);
  } else {
    await writeReport(out, report, SKELETON);
    log(`wrote ${relative(process.cwd(), out) || out}`);
  }
  const failures = results.flatMap((s) => s.tools.filter((t) => t.failed).map((t) => `${s.title}/${t.tool}: ${t.failed}`));
  for (const failure of failures) log(`FAILED ${failure}`);
  return failures.length > 0 ? 1 : 0;
}

/** One measured push: the pusher's cost, the registry's CPU meanwhile, and proof the right image is there. */
async function measure(
  scenario: Scenario,
  pusher: Pusher,
  image: BenchImage,
  registry: RunningRegistry | undefined,
  result: ToolResult,
  run: number,
  runs: number,
): Promise<void> {
  const pid = registry?.pid;
  if (registry !== undefined && pid === undefined) throw new Error('tools/registry.ts gave no registry pid; its CPU cannot be measured');
  loadAverages.push(loadavg()[0] ?? NaN);
  const before = pid === undefined ? 0 : await processCpuSeconds(pid);
  const m = await pusher.push(image, registry as RunningRegistry);
  const registryCpuS = pid === undefined ? undefined : (await processCpuSeconds(pid)) - before;
  const pushedBytes = registry !== undefined && pusher.pushes !== false ? await checkPushed(registry, pusher, image) : undefined;
  const sample: Sample = { wallS: m.wallS, cpuS: m.cpuS, peakRssMb: m.peakRssMb, ...(registryCpuS !== undefined && { registryCpuS }), ...(pushedBytes !== undefined && { pushedMb: pushedBytes / MB }) };
  result.samples.push(sample);
  log(
    `${scenario.key} ${run}/${runs} ${pusher.name}: ${m.wallS.toFixed(2)} s, CPU ${m.cpuS.toFixed(2)} s, ` +
      `RSS ${m.peakRssMb === undefined ? 'n/a' : `${m.peakRssMb.toFixed(0)} MB`}` +
      (registryCpuS === undefined ? '' : `, registry CPU ${registryCpuS.toFixed(2)} s`) +
      (pushedBytes === undefined ? '' : `, pushed ${mb(pushedBytes)}`),
  );
}

const MANIFEST_TYPES = 'application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.v2+json';

/**
 * A tool that exits 0 must have pushed the image: every tag resolves to a manifest whose config lists the
 * image's diff IDs, whose layers are the source's digests where those are fixed, and, where the tool
 * compressed them, gunzip to those diff IDs (each new digest read back once). Resolves the pushed layers' bytes.
 */
async function checkPushed(registry: RunningRegistry, pusher: Pusher, image: BenchImage): Promise<number> {
  const repositories = 'repositories' in pusher ? (pusher.repositories as string[]) : [REPOSITORY];
  let bytes = 0;
  for (const repository of repositories) {
    const url = `${registry.url}/v2/${repository}/manifests/${TAG}`;
    const response = await fetch(url, { headers: { accept: MANIFEST_TYPES } });
    if (response.status !== 200) throw new Error(`${pusher.name} exited 0, but GET ${url} → ${response.status}: the tag was not pushed`);
    const manifest = (await response.json()) as { config: { digest: string }; layers: { digest: string; size: number }[] };
    const config = (await (await fetch(`${registry.url}/v2/${repository}/blobs/${manifest.config.digest}`)).json()) as { rootfs?: { diff_ids?: string[] } };
    const digests = manifest.layers.map((l) => l.digest);
    if (JSON.stringify(config.rootfs?.diff_ids) !== JSON.stringify(image.diffIds)) {
      throw new Error(`${pusher.name} pushed ${repository}:${TAG} with a config whose diff IDs are not the image's`);
    }
    if (image.layerDigests !== undefined && JSON.stringify(digests) !== JSON.stringify(image.layerDigests)) {
      throw new Error(`${pusher.name} pushed ${repository}:${TAG} with other layers than the source's: ${digests.join(', ')}`);
    }
    if (image.layerDigests === undefined) {
      for (const [i, digest] of digests.entries()) {
        if (verifiedLayers.has(digest)) continue;
        const diffId = await gunzippedDigest(`${registry.url}/v2/${repository}/blobs/${digest}`);
        if (diffId !== image.diffIds[i]) throw new Error(`${pusher.name} pushed layer ${i} as ${digest}, which gunzips to ${diffId}, not ${image.diffIds[i]}`);
        verifiedLayers.add(digest);
      }
    }
    bytes += manifest.layers.reduce((sum, l) => sum + l.size, 0);
  }
  return bytes / repositories.length;
}

async function gunzippedDigest(url: string): Promise<string> {
  const response = await fetch(url);
  if (response.status !== 200 || response.body === null) throw new Error(`GET ${url} → ${response.status}`);
  const hash = createHash('sha256');
  await pipeline(Readable.fromWeb(response.body as import('node:stream/web').ReadableStream), createGunzip({ chunkSize: MIB }), async (chunks: AsyncIterable<Buffer>) => {
    for await (const chunk of chunks) hash.update(chunk);
  });
  return `sha256:${hash.digest('hex')}`;
}

/** A fresh registry on its own storage for `fn`, always stopped afterwards. */
async function withRegistry(fn: (registry: RunningRegistry) => Promise<void>): Promise<void> {
  if (stopping) throw new Error('stopped');
  const registry = await startRegistry();
  liveRegistries.add(registry);
  try {
    await fn(registry);
  } finally {
    await registry.stop();
    liveRegistries.delete(registry);
  }
}

function pick<T extends string>(list: string | undefined, known: readonly T[], flag: string, defaults: readonly string[] = known): T[] | string {
  if (list === undefined) return known.filter((k) => defaults.includes(k));
  const asked = list.split(',').map((s) => s.trim()).filter(Boolean);
  const unknown = asked.filter((a) => !(known as readonly string[]).includes(a));
  if (unknown.length > 0 || asked.length === 0) return `${flag} takes a comma-separated list of ${known.join(', ')}; got ${JSON.stringify(list)}`;
  return asked as T[];
}

function usage(problem: string): number {
  console.error(`bench: ${problem}\n\n${USAGE}`);
  return 2;
}

function mb(bytes: number): string {
  return `${(bytes / MB).toFixed(1)} MB`;
}

function message(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

function shellQuote(arg: string): string {
  return /^[\w@%+=:,./-]+$/.test(arg) ? arg : `'${arg.replace(/'/g, `'\\''`)}'`;
}

const SKELETON = `# Benchmarks

How fast rxpush pushes, next to skopeo, \`docker push\` and the least HTTP work a push needs (a curl floor).
The numbers between the markers below are regenerated by \`npm run bench\` (tools/bench/bench.ts).

${BEGIN}
${END}
`;

// Ctrl-C or a kill: stop what runs, in order and waiting for each (a SIGKILLed dockerd leaves its
// data root mounted), then exit. A second signal, or 30 s, exits at once; the exit hooks of
// tools/registry.ts, tools/dockerd.ts and measure-command then kill whatever is left.
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.on(signal, () => {
    if (stopping) process.exit(130);
    stopping = true;
    log(`${signal}: stopping running pushes, registries and dockerd`);
    setTimeout(() => process.exit(130), 30_000).unref();
    killRunningCommands();
    void (async () => {
      await Promise.allSettled([...liveRegistries].map((r) => r.stop()));
      await Promise.allSettled(livePushers.map((p) => p.close()));
      process.exit(130);
    })();
  });
}

main(process.argv.slice(2)).then(
  (status) => {
    process.exitCode = status;
  },
  (err: unknown) => {
    log(`failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
    process.exitCode = 1;
  },
);
