import { closableOutput } from './closable-output.js';
import { parseArgs } from './parse-args.js';
import type { TextSink } from './progress/renderer.js';
import type { PushFunction, Terminal } from './run-push.js';

/** The streams and signal `main` works with; the bin passes none and gets the process's own. */
export interface MainIO {
  readonly stdout?: Terminal;
  readonly stderr?: TextSink;
  /** Cancels a push when aborted; without it, Ctrl-C (SIGINT) and SIGTERM do. */
  readonly signal?: AbortSignal;
  /** Stands in for the pipeline's `push()`, for tests of the command's own behaviour. */
  readonly push?: PushFunction;
}

/**
 * Runs the `rxpush` command line (push, keygen, verify, inspect, completion) and resolves to its exit status:
 * 0 done (or help shown), 1 failed (verify: not verified), 2 usage error, 130 cancelled (143 by SIGTERM). Failures are
 * reported as one `rxpush: …` line on stderr.
 *
 * @example process.exitCode = await main(process.argv.slice(2))
 */
export async function main(argv: readonly string[], io: MainIO = {}): Promise<number> {
  const stdout = io.stdout ?? closableOutput(process.stdout);
  const stderr = io.stderr ?? process.stderr;
  const parsed = parseArgs(argv);
  switch (parsed.kind) {
    case 'print':
      stdout.write(`${parsed.text}\n`);
      return 0;
    case 'usage': {
      // Usage errors quote the arguments; core is loaded only here, to keep --help fast.
      const { printable } = await import('@rxpush/core');
      stderr.write(`rxpush: ${printable(parsed.message)}\n`);
      return 2;
    }
  }

  // Each command is loaded only now, so `rxpush --help` does not pay for core's rxjs, pino and the pipeline.
  switch (parsed.kind) {
    case 'keygen':
      return (await import('./run-keygen.js')).runKeygen(parsed.args, { stdout, stderr });
    case 'verify':
      return (await import('./run-verify.js')).runVerify(parsed.args, { stdout, stderr, ...(io.signal !== undefined && { signal: io.signal }) });
    case 'inspect':
      return (await import('./run-inspect.js')).runInspect(parsed.args, { stdout, stderr });
  }
  const { runPush } = await import('./run-push.js');
  const interrupt = new AbortController();
  let signalled: CancellingSignal | undefined;
  const handlers = CANCELLING_SIGNALS.map((name) => {
    const handler = (): void => {
      signalled ??= name;
      interrupt.abort();
    };
    // `once`: a second Ctrl-C (or SIGTERM) gets Node's default and ends the process at once.
    if (io.signal === undefined) process.once(name, handler);
    return [name, handler] as const;
  });
  try {
    const code = await runPush(parsed.args, { stdout, stderr, signal: io.signal ?? interrupt.signal, ...(io.push !== undefined && { push: io.push }) });
    // As a shell reports a process a signal ended: 128 + the signal's number.
    return code === 130 && signalled === 'SIGTERM' ? 143 : code;
  } finally {
    for (const [name, handler] of handlers) process.off(name, handler);
  }
}

/**
 * The signals that cancel a push (its requests aborted, its upload sessions given back) instead of ending the
 * process where it stands: Ctrl-C, and SIGTERM, which CI runners and container engines send to stop a job. Not
 * SIGHUP: a handler would undo `nohup`.
 */
const CANCELLING_SIGNALS = ['SIGINT', 'SIGTERM'] as const;
type CancellingSignal = (typeof CANCELLING_SIGNALS)[number];
