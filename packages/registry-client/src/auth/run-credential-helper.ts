import type { ChildProcess } from 'node:child_process';

import { CancelledError, oneLine } from '@rxpush/core';

import { CredentialsError } from './auth-error.js';
import type { Credentials } from './credentials.js';

const OUTPUT_LIMIT = 1024 * 1024;
const HELPER_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$/;

export interface CredentialHelperOptions {
  /** The config file that names the helper, for messages. */
  readonly configFile: string;
  /** The environment to run it in (its PATH finds the helper). */
  readonly env?: NodeJS.ProcessEnv;
  /** Kill it after this long (default 60 s: some helpers ask for a passphrase). */
  readonly timeoutMs?: number;
  /** Kills the helper, with its children, and rejects with CancelledError (Ctrl-C). */
  readonly signal?: AbortSignal;
}

/**
 * Runs `docker-credential-NAME get` with the server URL on stdin, as Docker does, and reads its
 * `{"ServerURL","Username","Secret"}` answer. A Username of `<token>` means the Secret is an identity
 * (OAuth2 refresh) token.
 *
 * Resolves undefined when the helper has no credentials for the server ("credentials not found").
 *
 * The helper runs in a process group of its own, and the whole group is killed when rxpush gives up on it
 * (timeout, `signal`) or exits, so no `gpg`, `sleep` or shell it started is left behind.
 *
 * @throws {CredentialsError} when the helper is not installed, fails, times out or answers something else than JSON.
 * @throws {CancelledError} when `signal` fires first.
 * @example await runCredentialHelper('pass', 'ghcr.io', { configFile: '/home/me/.docker/config.json' })
 */
export async function runCredentialHelper(name: string, serverUrl: string, options: CredentialHelperOptions): Promise<Credentials | undefined> {
  const program = `docker-credential-${name}`;
  if (!HELPER_NAME.test(name)) {
    throw new CredentialsError(`${options.configFile} names the credential helper ${JSON.stringify(name)}, which is not a valid helper name; fix credsStore/credHelpers there`);
  }
  const result = await run(program, serverUrl, options);
  if (result.kind === 'cancelled') throw new CancelledError(`cancelled while the credential helper ${program} was running`);
  if (result.kind === 'missing') {
    throw new CredentialsError(
      `the credential helper ${program} that ${options.configFile} names is not installed (not on PATH); install it, or remove it from credsStore/credHelpers there`,
      { where: options.configFile },
    );
  }
  if (result.kind === 'timeout') {
    throw new CredentialsError(`the credential helper ${program} did not answer within ${(options.timeoutMs ?? 60_000) / 1000} s; run "${program} get" by hand to see why`, {
      where: options.configFile,
    });
  }
  const output = `${result.stdout}\n${result.stderr}`;
  if (result.code !== 0) {
    // Docker's helpers say so on stdout with a non-zero exit status when they hold nothing for the server.
    if (/credentials not found/i.test(output)) return undefined;
    throw new CredentialsError(`the credential helper ${program} failed (exit status ${result.code}): ${firstLine(output)}; run "${program} get" by hand to see why`, {
      where: options.configFile,
    });
  }
  let answer: unknown;
  try {
    answer = JSON.parse(result.stdout);
  } catch {
    answer = undefined;
  }
  const { Username: username, Secret: secret } = (answer ?? {}) as { Username?: unknown; Secret?: unknown };
  if (typeof answer !== 'object' || answer === null || typeof secret !== 'string' || (username !== undefined && typeof username !== 'string')) {
    throw new CredentialsError(`the credential helper ${program} answered something that is not {"Username","Secret"} JSON; check it with "${program} get"`, {
      where: options.configFile,
    });
  }
  if (secret === '') return undefined;
  const source = `credential helper ${program}`;
  if (username === '<token>') return { identityToken: secret, source };
  return { ...(typeof username === 'string' && username !== '' && { username }), password: secret, source };
}

type RunResult = { kind: 'missing' } | { kind: 'timeout' } | { kind: 'cancelled' } | { kind: 'done'; code: number; stdout: string; stderr: string };

/** Helpers still running: killed, with their process groups, if rxpush exits before they do. */
const running = new Set<ChildProcess>();
let exitHookInstalled = false;

/**
 * Kills a helper and everything it started: it leads its own process group (spawned detached), which
 * lives on while any child of it does, even after the helper itself exited.
 */
function killGroup(child: ChildProcess): void {
  if (child.pid === undefined) return;
  try {
    process.kill(-child.pid, 'SIGKILL');
  } catch {
    // The group is gone: nothing is left running.
  }
}

async function run(program: string, input: string, options: CredentialHelperOptions): Promise<RunResult> {
  // Loaded when a helper runs, not by every push that imports the client (node:child_process brings net and dgram: ~2 ms).
  const { spawn } = await import('node:child_process');
  if (options.signal?.aborted === true) return { kind: 'cancelled' };
  if (!exitHookInstalled) {
    exitHookInstalled = true;
    // 'exit' handlers run synchronously, whatever ended the process (Ctrl-C's exit 130 included).
    process.on('exit', () => {
      for (const child of running) killGroup(child);
    });
  }
  return new Promise((resolve, reject) => {
    // detached: a process group of its own, so that killing it reaches its children (a shell's sleep, gpg).
    const child = spawn(program, ['get'], { env: options.env ?? process.env, stdio: ['pipe', 'pipe', 'pipe'], detached: true });
    running.add(child);
    const stdout: Buffer[] = [];
    const stderr: Buffer[] = [];
    let size = 0;
    const collect = (into: Buffer[]) => (chunk: Buffer) => {
      size += chunk.length;
      if (size <= OUTPUT_LIMIT) into.push(chunk);
    };
    child.stdout.on('data', collect(stdout));
    child.stderr.on('data', collect(stderr));
    let over = false;
    const giveUp = (result: RunResult): void => {
      over = true;
      clearTimeout(timer);
      options.signal?.removeEventListener('abort', onAbort);
      killGroup(child);
      running.delete(child);
      // Nothing is waited for any more: the pipes are closed, so the process can exit at once.
      child.stdin.destroy();
      child.stdout.destroy();
      child.stderr.destroy();
      resolve(result);
    };
    const onAbort = (): void => giveUp({ kind: 'cancelled' });
    const timer = setTimeout(() => giveUp({ kind: 'timeout' }), options.timeoutMs ?? 60_000);
    options.signal?.addEventListener('abort', onAbort, { once: true });
    const settle = (): void => {
      clearTimeout(timer);
      options.signal?.removeEventListener('abort', onAbort);
      running.delete(child);
    };
    child.on('error', (error: NodeJS.ErrnoException) => {
      settle();
      if (over) return;
      if (error.code === 'ENOENT') resolve({ kind: 'missing' });
      else reject(new CredentialsError(`cannot run the credential helper ${program}: ${error.message}`, { cause: error }));
    });
    // The helper is done; whatever it left running in its group (holding the pipes open) must not outlive it.
    child.on('exit', () => killGroup(child));
    child.on('close', (code) => {
      settle();
      if (over) return;
      resolve({ kind: 'done', code: code ?? 1, stdout: Buffer.concat(stdout).toString('utf8'), stderr: Buffer.concat(stderr).toString('utf8') });
    });
    // A helper that exits without reading stdin is not a failure of ours.
    child.stdin.on('error', () => {});
    child.stdin.end(input);
  });
}

/**
 * The helper's first line of text, for the message. A line of JSON is passed over: a helper that printed its
 * answer, credentials and all, and then failed, must not have its secret shown.
 */
function firstLine(text: string): string {
  const lines = text.split('\n').map((l) => l.trim()).filter((l) => l !== '');
  const line = lines.find((l) => !l.startsWith('{') && !/"Secret"/i.test(l)) ?? (lines.length > 0 ? 'no message, only JSON' : 'no output');
  return oneLine(line);
}
