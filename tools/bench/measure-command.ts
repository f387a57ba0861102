/**
 * Runs one command and measures what it cost: wall time, the user+sys CPU of the
 * process and everything it waited for, and its peak RSS.
 */
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const GNU_TIME = '/usr/bin/time';

export interface Measurement {
  wallS: number;
  /** user + sys of the process and its waited-for children. */
  cpuS: number;
  /** Largest resident set of the process (or one of its children); undefined when it could not be measured. */
  peakRssMb: number | undefined;
  stdout: string;
  stderr: string;
}

export interface MeasureOptions {
  env?: NodeJS.ProcessEnv;
  cwd?: string;
  /** Kill the command (and its process group) after this long. */
  timeoutMs: number;
}

/** How CPU and memory are measured here, for the report. */
export function measurementMethod(): string {
  return existsSync(GNU_TIME)
    ? 'GNU time (`/usr/bin/time -f "%U %S %M"`): CPU and max RSS from wait4 rusage'
    : 'no GNU time here (Debian package `time`): CPU from a wrapping shell\'s /proc cutime+cstime, peak RSS not measured';
}

/**
 * Spawns `command args` and resolves with its cost once it exits with status 0;
 * rejects with the tail of its stderr otherwise.
 *
 * With GNU time, CPU and max RSS come from wait4's rusage. Without it, a shell wraps the command
 * and reports its children's CPU (cutime+cstime from /proc/self/stat) after waiting; RSS stays unknown.
 *
 * @example
 * const m = await measureCommand('skopeo', ['copy', src, dst], { timeoutMs: 60_000 });
 * console.log(m.wallS, m.cpuS, m.peakRssMb);
 */
export async function measureCommand(command: string, args: string[], options: MeasureOptions): Promise<Measurement> {
  const dir = await mkdtemp(join(tmpdir(), 'rxpush-bench-time-'));
  const report = join(dir, 'rusage');
  try {
    const gnuTime = existsSync(GNU_TIME);
    const [bin, argv] = gnuTime
      ? [GNU_TIME, ['-f', '%U %S %M', '-o', report, command, ...args]]
      : ['/bin/sh', ['-c', '"$@"; s=$?; cat /proc/$$/stat > "$RXPUSH_BENCH_STAT"; exit $s', 'sh', command, ...args]];
    const env = { ...(options.env ?? process.env), RXPUSH_BENCH_STAT: report };
    const started = process.hrtime.bigint();
    const { code, signal, stdout, stderr } = await run(bin, argv, { env, ...(options.cwd ? { cwd: options.cwd } : {}) }, options.timeoutMs);
    const wallS = Number(process.hrtime.bigint() - started) / 1e9;
    if (code !== 0) {
      const why = signal ? `was killed by ${signal}` : `exited with status ${code}`;
      throw new Error(`${command} ${args.join(' ')} ${why}: ${(stderr.trim() || stdout.trim()).slice(-2000) || '(no output)'}`);
    }
    const text = await readFile(report, 'utf8');
    if (gnuTime) {
      // GNU time prints "Command exited with non-zero status" first on failures; the numbers are the last line.
      const fields = text.trim().split('\n').at(-1)?.split(' ').map(Number) ?? [];
      const [user = NaN, sys = NaN, maxRssKb = NaN] = fields;
      return { wallS, cpuS: user + sys, peakRssMb: maxRssKb / 1024, stdout, stderr };
    }
    const ticks = statFields(text);
    return { wallS, cpuS: (ticks.cutime + ticks.cstime) / TICKS_PER_SECOND, peakRssMb: undefined, stdout, stderr };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

interface RunResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

const running = new Set<number>();
let exitHookInstalled = false;

/** Ends the process groups of commands still running (the bench is exiting). */
function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.on('exit', () => {
    for (const pid of running) killGroup(pid, 'SIGKILL');
  });
}

/** Kills every command measureCommand is running now, with whatever they started (the bench is stopping). */
export function killRunningCommands(): void {
  for (const pid of running) killGroup(pid, 'SIGKILL');
}

function killGroup(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-pid, signal);
  } catch {
    // Already gone.
  }
}

function run(bin: string, argv: string[], options: { env: NodeJS.ProcessEnv; cwd?: string }, timeoutMs: number): Promise<RunResult> {
  installExitHook();
  return new Promise((ok, fail) => {
    // Its own process group, so a timeout ends the command and whatever it started.
    const child = spawn(bin, argv, { ...options, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on('data', (chunk: Buffer) => out.push(chunk));
    child.stderr.on('data', (chunk: Buffer) => err.push(chunk));
    const pid = child.pid;
    if (pid !== undefined) running.add(pid);
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      if (pid !== undefined) killGroup(pid, 'SIGKILL');
    }, timeoutMs);
    child.once('error', (error) => {
      clearTimeout(timer);
      if (pid !== undefined) running.delete(pid);
      fail(new Error(`could not start ${bin}: ${error.message}`));
    });
    child.once('close', (code, signal) => {
      clearTimeout(timer);
      if (pid !== undefined) running.delete(pid);
      const stderr = Buffer.concat(err).toString('utf8');
      ok({
        code,
        signal,
        stdout: Buffer.concat(out).toString('utf8'),
        stderr: timedOut ? `timed out after ${timeoutMs / 1000} s; ${stderr}` : stderr,
      });
    });
  });
}

interface StatTicks {
  utime: number;
  stime: number;
  cutime: number;
  cstime: number;
}

/** Fields 14–17 of /proc/PID/stat, in clock ticks (the comm field may hold spaces: split after its ')'). */
function statFields(stat: string): StatTicks {
  const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ').map(Number);
  // rest[0] is field 3 (state), so field N is rest[N - 3].
  return { utime: rest[11] ?? NaN, stime: rest[12] ?? NaN, cutime: rest[13] ?? NaN, cstime: rest[14] ?? NaN };
}

// USER_HZ, the unit of /proc/PID/stat times: 100 on every Linux architecture Node runs on.
const TICKS_PER_SECOND = 100;

/**
 * CPU seconds (user + sys) a running process has used so far, read from /proc.
 *
 * @example
 * const before = await processCpuSeconds(registry.pid); …; const used = (await processCpuSeconds(registry.pid)) - before;
 */
export async function processCpuSeconds(pid: number): Promise<number> {
  const ticks = statFields(await readFile(`/proc/${pid}/stat`, 'utf8'));
  return (ticks.utime + ticks.stime) / TICKS_PER_SECOND;
}

/**
 * Resets a running process's peak RSS (VmHWM) to its current RSS, so {@link peakRssMb} later reads the
 * peak of what happened in between. Returns false where the kernel does not allow it.
 */
export async function resetPeakRss(pid: number): Promise<boolean> {
  return writeFile(`/proc/${pid}/clear_refs`, '5').then(
    () => true,
    () => false,
  );
}

/** A running process's peak RSS (VmHWM) in MB, from /proc. */
export async function peakRssMb(pid: number): Promise<number | undefined> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8').catch(() => '');
  const kb = /^VmHWM:\s+(\d+) kB/m.exec(status)?.[1];
  return kb === undefined ? undefined : Number(kb) / 1024;
}
