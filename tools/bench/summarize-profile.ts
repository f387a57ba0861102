/**
 * Summarizes V8 CPU profiles (from `npm run bench -- --profile DIR`, i.e. `node --cpu-prof`):
 * where the time went by package or module, and the functions with the most self time.
 *
 * CLI: `node --import tsx tools/bench/summarize-profile.ts FILE.cpuprofile... [--top N]`
 */
import { readFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children?: number[];
}

interface CpuProfile {
  nodes: ProfileNode[];
  startTime: number;
  endTime: number;
  samples: number[];
  timeDeltas: number[];
}

export interface ProfileSummary {
  /** Profile span in ms. */
  spanMs: number;
  /** Self time in ms by area: a package under packages/, a node_modules package, node internals, (idle), (gc)… */
  byArea: Map<string, number>;
  /** Self time in ms by function (`name area:line`). */
  byFunction: Map<string, number>;
  /** Inclusive time in ms of the subtrees under each area's outermost frames (so `undici` counts what it calls). */
  inclusiveByArea: Map<string, number>;
}

/**
 * Adds one profile's self and inclusive times into `summary` (fresh when omitted).
 *
 * @example
 * const s = summarizeProfile(JSON.parse(text)); console.log([...s.byArea].sort((a, b) => b[1] - a[1]));
 */
export function summarizeProfile(profile: CpuProfile, summary: ProfileSummary = emptySummary()): ProfileSummary {
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const self = new Map<number, number>();
  profile.samples.forEach((id, i) => self.set(id, (self.get(id) ?? 0) + (profile.timeDeltas[i] ?? 0) / 1000));
  summary.spanMs += (profile.endTime - profile.startTime) / 1000;

  const add = (map: Map<string, number>, key: string, ms: number) => map.set(key, (map.get(key) ?? 0) + ms);
  // Inclusive per area: walk the tree; a node starts counting for its area when no ancestor is in it.
  const walk = (id: number, openAreas: Set<string>): number => {
    const node = byId.get(id);
    if (!node) return 0;
    const area = areaOf(node.callFrame.url, node.callFrame.functionName);
    const mine = self.get(id) ?? 0;
    add(summary.byArea, area, mine);
    add(summary.byFunction, `${node.callFrame.functionName || '(anonymous)'} ${area}:${node.callFrame.lineNumber + 1}`, mine);
    const entering = !openAreas.has(area);
    const open = entering ? new Set(openAreas).add(area) : openAreas;
    let total = mine;
    for (const child of node.children ?? []) total += walk(child, open);
    if (entering) add(summary.inclusiveByArea, area, total);
    return total;
  };
  const root = profile.nodes[0];
  if (root) walk(root.id, new Set());
  return summary;
}

function emptySummary(): ProfileSummary {
  return { spanMs: 0, byArea: new Map(), byFunction: new Map(), inclusiveByArea: new Map() };
}

function areaOf(url: string, functionName: string): string {
  if (!url) return functionName.startsWith('(') ? functionName : '(native)';
  const pkg = /\/packages\/([^/]+)\//.exec(url);
  if (pkg && !url.includes('node_modules')) return `@rxpush/${pkg[1]}`;
  const mod = /node_modules\/(?:\.pnpm\/[^/]+\/node_modules\/)?((?:@[^/]+\/)?[^/]+)/.exec(url);
  if (mod) return mod[1] ?? url;
  if (url.startsWith('node:')) return `node:${url.slice(5).split('/')[0] === 'internal' ? url.slice(5).split('/').slice(0, 2).join('/') : url.slice(5)}`;
  return url;
}

async function main(argv: string[]): Promise<void> {
  const { values, positionals } = parseArgs({ args: argv, allowPositionals: true, options: { top: { type: 'string', default: '25' } } });
  if (positionals.length === 0) {
    console.error('usage: node --import tsx tools/bench/summarize-profile.ts FILE.cpuprofile... [--top N]');
    process.exitCode = 2;
    return;
  }
  const summary = emptySummary();
  for (const file of positionals) summarizeProfile(JSON.parse(await readFile(file, 'utf8')) as CpuProfile, summary);
  const n = positionals.length;
  const top = Number(values.top);
  const show = (title: string, map: Map<string, number>, count: number) => {
    console.log(`\n${title} (ms per profile, mean of ${n}):`);
    for (const [key, ms] of [...map].sort((a, b) => b[1] - a[1]).slice(0, count)) console.log(`${(ms / n).toFixed(1).padStart(9)}  ${key}`);
  };
  console.log(`profile span: ${(summary.spanMs / n).toFixed(0)} ms per profile`);
  show('self time by area', summary.byArea, top);
  show('inclusive time by area (outermost frames)', summary.inclusiveByArea, top);
  show('self time by function', summary.byFunction, top);
}

if (process.argv[1] && import.meta.url === pathToFileURL(resolve(process.argv[1])).href) {
  main(process.argv.slice(2)).catch((err: unknown) => {
    console.error(`summarize-profile: ${err instanceof Error ? err.message : String(err)}`);
    process.exitCode = 1;
  });
}
