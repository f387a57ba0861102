/** What the benchmark ran on, for the report: cores, memory, CPU, kernel and tool versions. */
import { execFile } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { cpus, release, totalmem } from 'node:os';
import { promisify } from 'node:util';

const execFileAsync = promisify(execFile);

export interface MachineFact {
  name: string;
  value: string;
}

/**
 * Lists the machine and tool facts a reader needs to judge the numbers.
 *
 * @example
 * for (const { name, value } of await describeMachine()) console.log(name, value);
 */
export async function describeMachine(): Promise<MachineFact[]> {
  const cpuModel = cpus()[0]?.model.trim() ?? 'unknown';
  const nproc = await firstLine('nproc', []);
  const facts: MachineFact[] = [
    { name: 'CPU', value: `${nproc} cores (nproc), ${cpuModel}` },
    { name: 'memory', value: `${(totalmem() / 2 ** 30).toFixed(1)} GiB` },
    { name: 'kernel', value: `Linux ${release()}` },
    { name: 'node', value: process.version },
    { name: 'rxpush', value: `${await packageVersion()} (packages/cli dist, built from git ${await firstLine('git', ['describe', '--always', '--dirty'])})` },
    { name: 'skopeo', value: await firstLine('skopeo', ['--version']) },
    { name: 'docker (client, daemon)', value: `${await firstLine('/usr/bin/docker', ['--version'])}; dockerd ${await firstLine('/usr/sbin/dockerd', ['--version'])}` },
    { name: 'registry', value: await firstLine('/usr/bin/docker-registry', ['--version']) },
    { name: 'curl', value: await firstLine('curl', ['--version']) },
  ];
  return facts;
}

async function firstLine(command: string, args: string[]): Promise<string> {
  try {
    const { stdout, stderr } = await execFileAsync(command, args, { timeout: 20_000 });
    return (stdout.trim() || stderr.trim()).split('\n')[0] ?? '';
  } catch {
    return 'not installed';
  }
}

async function packageVersion(): Promise<string> {
  try {
    const json = JSON.parse(await readFile(new URL('../../packages/cli/package.json', import.meta.url), 'utf8')) as { version?: string };
    return json.version ?? 'unknown';
  } catch {
    return 'unknown';
  }
}
