/**
 * Benchmarks: pushes the same generated images with rxpush, skopeo, `docker push` and a
 * curl floor, each run to a fresh local registry, and writes a table of medians and
 * ratios to docs/benchmarks.md with the command that made it.
 *
 * Run after `npm run build`: `npm run bench -- [--quick] [--runs N] [--scale F]
 * [--tools a,b] [--scenarios a,b] [--out FILE] [--timeout S] [--profile DIR]`
 * (see --help). Speed and memory goals live in that document, not in timed tests.
 */
import { rmSync } from 'node:fs';
import { mkdtemp } from 'node:fs/promises';
import { loadavg, tmpdir } from 'node:os';
import { join, relative, resolve } from 'node:path';
import { parseArgs } from 'node:util';

import { makeOciLayout, type LayerSpec } from '../fixtures.ts';
import { startRegistry, type RunningRegistry } from '../registry.ts';
import { describeMachine } from './describe-machine.ts';
import { killRunningCommands, measurementMethod, processCpuSeconds } from './measure-command.ts';
import { curlPusher, dockerPusher, REPOSITORY, rxpushPusher, skopeoPusher, TAG, type BenchImage, type Pusher } from './pushers.ts';
import { BEGIN, END, renderReport, writeReport, type Sample, type ScenarioResult, type ToolResult } from './write-report.ts';

const ROOT = resolve(import.meta.dirname, '..', '..');
const MB = 1_000_000;
// Files of at most 8 MiB, so a big layer looks like a real one (many files).
const MAX_FILE = 8 * 1024 * 1024;

const USAGE = `usage: npm run bench -- [options]   (after npm run build)

  --runs N          measured pushes per tool and scenario; the report shows medians (default 3; --quick 1)
  --scale F         multiply every layer size by F (default 1; --quick 0.2)
  --quick           --runs 1 --scale 0.2, and print the tables instead of writing docs/benchmarks.md
  --tools LIST      only these tools (comma-separated: rxpush, rxpush-c2, skopeo, docker, curl)
  --scenarios LIST  only these scenarios (comma-separated: small, large, many, second)
  --out FILE        write the report here (default docs/benchmarks.md, unless a push failed or
                    --profile is on; "-" prints it)
  --timeout S       give up on one push after S seconds (default 300)
  --profile DIR     write V8 CPU profiles of the rxpush runs to DIR (node --cpu-prof; slows them)`;

interface Scenario {
  key: string;
  title: string;
  image: string;
  /** Push once unmeasured to the same registry first: everything is already there. */
  secondPush: boolean;
  describe(sizeMb: string): string;
}

const SCENARIOS: Scenario[] = [
  { key: 'small', title: 'small', image: 'small', secondPush: false, describe: (s) => `3 layers, ${s} in all, to an empty registry.` },
  { key: 'large', title: 'large', image: 'large', secondPush: false, describe: (s) => `4 layers of incompressible data, ${s} in all, to an empty registry.` },
  { key: 'many', title: 'many layers', image: 'many', secondPush: false, describe: (s) => `40 small layers, ${s} in all, to an empty registry.` },
  {
    key: 'second',
    title: 'second push',
    image: 'large',
    secondPush: true,
    describe: (s) =>
      `The large image (${s}) again, to a registry that already has it: the same tool pushed it once, unmeasured, then each measured run pushes it again. Only HEADs and the manifest PUT are needed.`,
  },
];

const loadAverages: number[] = [];
// What a Ctrl-C must stop, in order: running pushes, then registries, then the tools (dockerd).
const liveRegistries = new Set<RunningRegistry>();
const livePushers: Pusher[] = [];
let stopping = false;

const TOOL_KEYS = ['rxpush', 'rxpush-c2', 'skopeo', 'docker', 'curl'] as const;

function layers(count: number, sizeBytes: number, seed: string): LayerSpec[] {
  const size = Math.max(1, Math.round(sizeBytes));
  const files = Math.max(1, Math.ceil(size / MAX_FILE));
  return Array.from({ length: count }, (_, i) => ({ files, fileSize: Math.ceil(size / files), seed: `${seed}-${i}` }));
}

function imageSpecs(scale: number): Record<string, LayerSpec[]> {
  return {
    small: layers(3, 5 * MB * scale, 'bench-small'),
    large: layers(4, 100 * MB * scale, 'bench-large'),
    many: layers(40, 1 * MB * scale, 'bench-many'),
  };
}

function log(message: string): void {
  process.stderr.write(`bench: ${message}\n`);
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
      timeout: { type: 'string', default: '300' },
      profile: { type: 'string' },
      help: { type: 'boolean', short: 'h', default: false },
    },
  });
  if (values.help) {
    console.log(USAGE);
    return 0;
  }
  const runs = Number(values.runs ?? (values.quick ? 1 : 3));
  const scale = Number(values.scale ?? (values.quick ? 0.2 : 1));
  const timeoutMs = Number(values.timeout) * 1000;
  if (!Number.isInteger(runs) || runs < 1) return usage(`--runs takes a whole number ≥ 1, not ${values.runs}`);
  if (!(scale > 0)) return usage(`--scale takes a number > 0, not ${values.scale}`);
  if (!(timeoutMs > 0)) return usage(`--timeout takes seconds > 0, not ${values.timeout}`);
  const toolKeys = pick(values.tools, TOOL_KEYS, '--tools');
  const scenarioKeys = pick(values.scenarios, SCENARIOS.map((s) => s.key), '--scenarios');
  if (typeof toolKeys === 'string') return usage(toolKeys);
  if (typeof scenarioKeys === 'string') return usage(scenarioKeys);
  let out = values.out ?? (values.quick ? '-' : join(ROOT, 'docs', 'benchmarks.md'));

  const started = Date.now();
  const work = await mkdtemp(join(tmpdir(), 'rxpush-bench-'));
  process.on('exit', () => rmSync(work, { recursive: true, force: true }));

  const scenarios = SCENARIOS.filter((s) => scenarioKeys.includes(s.key));
  const specs = imageSpecs(scale);
  const images = new Map<string, BenchImage>();
  for (const name of new Set(scenarios.map((s) => s.image))) {
    const layerSpecs = specs[name] ?? [];
    log(`generating image "${name}": ${layerSpecs.length} layers of ${mb(layerSpecs[0] ? layerSpecs[0].files * layerSpecs[0].fileSize : 0)}`);
    const layoutDir = join(work, name);
    const { images: [fixture] } = await makeOciLayout(layoutDir, { images: [{ tags: [TAG], layers: layerSpecs }] });
    if (!fixture) throw new Error(`makeOciLayout wrote no image for "${name}"`);
    images.set(name, { name, layoutDir, fixture });
  }

  const pusherOptions = { timeoutMs, ...(values.profile ? { profileDir: resolve(values.profile) } : {}) };
  const makers: Record<(typeof TOOL_KEYS)[number], () => Pusher> = {
    rxpush: () => rxpushPusher([], pusherOptions),
    'rxpush-c2': () => rxpushPusher(['--concurrency', '2'], pusherOptions),
    skopeo: () => skopeoPusher(pusherOptions),
    docker: () => dockerPusher(pusherOptions),
    curl: () => curlPusher({ ...pusherOptions, parallel: 4 }),
  };
  const pushers = TOOL_KEYS.filter((k) => toolKeys.includes(k)).map((k) => makers[k]());
  livePushers.push(...pushers);
  const skipped = new Map<Pusher, string>();
  const results: ScenarioResult[] = [];
  try {
    for (const pusher of pushers) {
      log(`setting up ${pusher.name}`);
      const reason = await pusher.setup([...images.values()]);
      if (reason) {
        log(`${pusher.name} skipped: ${reason}`);
        skipped.set(pusher, reason);
      }
    }

    for (const scenario of scenarios) {
      const image = images.get(scenario.image);
      if (!image) throw new Error(`no image "${scenario.image}"`);
      const total = image.fixture.layerSizes.reduce((a, b) => a + b, 0) + image.fixture.configSize;
      const tools: ToolResult[] = pushers.map((p) => {
        const reason = skipped.get(p);
        return { tool: p.name, samples: [], ...(reason !== undefined ? { skipped: reason } : {}) };
      });
      results.push({ title: scenario.title, description: scenario.describe(mb(total)), tools });
      const active = pushers.map((pusher, i) => ({ pusher, result: tools[i]! })).filter(({ pusher }) => !skipped.has(pusher));

      if (scenario.secondPush) {
        for (const { pusher, result } of active) {
          await withRegistry(async (registry) => {
            await pusher.forget();
            await pusher.push(image, registry);
            for (let run = 1; run <= runs && !result.failed; run++) await measure(scenario, pusher, image, registry, result, run, runs);
          }).catch((err: unknown) => {
            result.failed ??= message(err);
          });
        }
      } else {
        // Runs interleave the tools, so a slow drift of the machine spreads over all of them.
        for (let run = 1; run <= runs; run++) {
          for (const { pusher, result } of active) {
            if (result.failed) continue;
            await withRegistry(async (registry) => {
              await pusher.forget();
              await measure(scenario, pusher, image, registry, result, run, runs);
            }).catch((err: unknown) => {
              result.failed ??= message(err);
            });
          }
        }
      }
    }
  } finally {
    for (const pusher of pushers) await pusher.close().catch((err: unknown) => log(`closing ${pusher.name}: ${message(err)}`));
  }

  const args = argv.map(shellQuote).join(' ');
  const report = renderReport({
    command: process.env['npm_lifecycle_event'] === 'bench'
      ? `npm run bench${args ? ` -- ${args}` : ''}    # = node --import tsx tools/bench/bench.ts ${args}`.trimEnd()
      : `node --import tsx tools/bench/bench.ts ${args}`.trimEnd(),
    date: new Date(),
    durationS: (Date.now() - started) / 1000,
    runs,
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

/** One measured push: the pusher's cost, the registry's CPU meanwhile, and proof the tag is there. */
async function measure(scenario: Scenario, pusher: Pusher, image: BenchImage, registry: RunningRegistry, result: ToolResult, run: number, runs: number): Promise<void> {
  const pid = registry.pid;
  if (pid === undefined) throw new Error('tools/registry.ts gave no registry pid; its CPU cannot be measured');
  loadAverages.push(loadavg()[0] ?? NaN);
  const before = await processCpuSeconds(pid);
  const m = await pusher.push(image, registry);
  const registryCpuS = (await processCpuSeconds(pid)) - before;
  await checkPushed(registry, pusher.name);
  const sample: Sample = { wallS: m.wallS, cpuS: m.cpuS, peakRssMb: m.peakRssMb, registryCpuS };
  result.samples.push(sample);
  log(
    `${scenario.key} ${run}/${runs} ${pusher.name}: ${m.wallS.toFixed(2)} s, CPU ${m.cpuS.toFixed(2)} s, ` +
      `RSS ${m.peakRssMb === undefined ? 'n/a' : `${m.peakRssMb.toFixed(0)} MB`}, registry CPU ${registryCpuS.toFixed(2)} s`,
  );
}

/** A tool that exits 0 without pushing must not look fast: the tag has to resolve afterwards. */
async function checkPushed(registry: RunningRegistry, tool: string): Promise<void> {
  const url = `${registry.url}/v2/${REPOSITORY}/manifests/${TAG}`;
  const response = await fetch(url, {
    method: 'HEAD',
    headers: { accept: 'application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.v2+json' },
  });
  if (response.status !== 200) throw new Error(`${tool} exited 0, but HEAD ${url} → ${response.status}: the tag was not pushed`);
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

function pick<T extends string>(list: string | undefined, known: readonly T[], flag: string): T[] | string {
  if (list === undefined) return [...known];
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
