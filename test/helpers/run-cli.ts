/**
 * Runs the real `rxpush` CLI (packages/cli/bin/rxpush.js) as a child process, as
 * a user would, and collects its exit code and output. One place spawns it, so
 * every end-to-end test gets the same environment, the same bound on how long a
 * run may take, and no process left behind when a test fails half-way.
 */
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { dirname, join } from 'node:path';
import type { TestContext } from 'node:test';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
export const CLI_BIN = join(root, 'packages', 'cli', 'bin', 'rxpush.js');

export interface RunCliOptions {
  /** Written to stdin, which is then closed (stdin is empty otherwise). */
  input?: string | Buffer;
  /** Added to (and overriding) the environment. */
  env?: Record<string, string>;
  cwd?: string;
  /** Node.js options given before the bin (options NODE_OPTIONS does not take, such as `--expose-internals`). */
  nodeArgs?: string[];
  /** The Node.js binary to run the CLI with (default: the one running the tests). */
  node?: string;
  /** Kill the CLI after this long (default 120 s) and fail. */
  timeoutMs?: number;
}

export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** A CLI run still going, for a test that acts while it runs (signals it, reads its output as it comes). */
export interface RunningCli {
  /** The process: its pid, its streams (the output is also collected for `result`), `kill('SIGINT')` for Ctrl-C. */
  readonly child: ChildProcessWithoutNullStreams;
  /**
   * Resolves once the CLI has exited and closed its output, with its exit code (128 when a signal ended it)
   * and everything it wrote; never rejects on a non-zero exit. Rejects, having killed the CLI, when it runs
   * longer than `timeoutMs` or cannot be started.
   */
  readonly result: Promise<CliResult>;
}

function spawnCli(args: string[], opts: RunCliOptions): RunningCli & { gone: Promise<void> } {
  const child = spawn(opts.node ?? process.execPath, [...(opts.nodeArgs ?? []), CLI_BIN, ...args], {
    cwd: opts.cwd ?? root,
    env: { ...process.env, NO_COLOR: '1', ...opts.env },
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  const stdout: Buffer[] = [];
  const stderr: Buffer[] = [];
  child.stdout.on('data', (c: Buffer) => stdout.push(c));
  child.stderr.on('data', (c: Buffer) => stderr.push(c));
  const timeoutMs = opts.timeoutMs ?? 120_000;
  let timer: NodeJS.Timeout | undefined;
  const result = new Promise<CliResult>((ok, fail) => {
    timer = setTimeout(() => {
      child.kill('SIGKILL');
      fail(new Error(`rxpush ${args.join(' ')} did not finish within ${timeoutMs} ms; stderr so far:\n${Buffer.concat(stderr).toString('utf8')}`));
    }, timeoutMs);
    child.on('error', fail);
    child.on('close', (code, signal) => {
      ok({
        code: code ?? (signal ? 128 : 1),
        stdout: Buffer.concat(stdout).toString('utf8'),
        stderr: Buffer.concat(stderr).toString('utf8'),
      });
    });
  }).finally(() => clearTimeout(timer));
  // A test that fails before it awaits the result must not add an unhandled rejection to its report.
  result.catch(() => {});
  const gone = new Promise<void>((resolve) => {
    child.on('close', () => resolve());
    child.on('error', () => resolve());
  });
  // EPIPE when the CLI exits without reading stdin is not a failure of the run.
  child.stdin.on('error', () => {});
  child.stdin.end(opts.input ?? '');
  return { child, result, gone };
}

/**
 * An environment for CLI runs that reads nothing of this machine's user: HOME, DOCKER_CONFIG, the containers
 * tools' XDG_RUNTIME_DIR and XDG_CONFIG_HOME, and RXPUSH_CACHE_DIR under `dir`, REGISTRY_AUTH_FILE unset (empty),
 * so no credentials, Docker config or digest cache of earlier runs.
 */
export function homeIn(dir: string): Record<string, string> {
  return {
    HOME: dir,
    DOCKER_CONFIG: join(dir, 'docker'),
    XDG_RUNTIME_DIR: join(dir, 'run'),
    XDG_CONFIG_HOME: join(dir, '.config'),
    REGISTRY_AUTH_FILE: '',
    RXPUSH_CACHE_DIR: join(dir, 'cache'),
  };
}

/** Runs `rxpush ARGS…` and resolves with its exit code and output (never rejects on a non-zero exit). */
export function runCli(args: string[], opts: RunCliOptions = {}): Promise<CliResult> {
  return spawnCli(args, opts).result;
}

/**
 * Starts `rxpush ARGS…` and returns at once, for a test that signals it or watches its output while it runs.
 * Whatever the test does, the CLI is killed (SIGKILL) and waited for after test `t`, if it still runs then.
 *
 * @example
 * const cli = startCli(t, ['push', source, destination]);
 * await env.proxy.waitFor('PUT', uploads);
 * cli.child.kill('SIGINT');
 * const { code, stderr } = await cli.result;
 */
export function startCli(t: TestContext, args: string[], opts: RunCliOptions = {}): RunningCli {
  const { child, result, gone } = spawnCli(args, opts);
  t.after(async () => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    await gone;
  });
  return { child, result };
}
