/**
 * Runs the real `rxpush` CLI (packages/cli/bin/rxpush.js) as a child process, as
 * a user would, and collects its exit code and output.
 */
import { spawn } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
export const CLI_BIN = join(root, 'packages', 'cli', 'bin', 'rxpush.js');

export interface RunCliOptions {
  /** Written to stdin, which is then closed (stdin is empty otherwise). */
  input?: string;
  /** Added to (and overriding) the environment. */
  env?: Record<string, string>;
  cwd?: string;
  /** Kill the CLI after this long (default 120 s) and fail. */
  timeoutMs?: number;
}

export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs `rxpush ARGS…` and resolves with its exit code and output (never rejects on a non-zero exit). */
export function runCli(args: string[], opts: RunCliOptions = {}): Promise<CliResult> {
  return new Promise((ok, fail) => {
    const child = spawn(process.execPath, [CLI_BIN, ...args], {
      cwd: opts.cwd ?? root,
      env: { ...process.env, NO_COLOR: '1', ...opts.env },
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    const stdout: Buffer[] = [];
    const stderr: Buffer[] = [];
    child.stdout.on('data', (c: Buffer) => stdout.push(c));
    child.stderr.on('data', (c: Buffer) => stderr.push(c));
    const timeoutMs = opts.timeoutMs ?? 120_000;
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      fail(new Error(`rxpush ${args.join(' ')} did not finish within ${timeoutMs} ms; stderr so far:\n${Buffer.concat(stderr).toString('utf8')}`));
    }, timeoutMs);
    child.on('error', (err) => {
      clearTimeout(timer);
      fail(err);
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      ok({
        code: code ?? (signal ? 128 : 1),
        stdout: Buffer.concat(stdout).toString('utf8'),
        stderr: Buffer.concat(stderr).toString('utf8'),
      });
    });
    // EPIPE when the CLI exits without reading stdin is not a failure of the run.
    child.stdin.on('error', () => {});
    child.stdin.end(opts.input ?? '');
  });
}
