import { constants } from 'node:fs';
import { access, stat, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import type { Readable } from 'node:stream';

import { CancelledError, fileReason, parseReference, printable, type Logger, type ManifestPushedEvent, type PushEvent } from '@rxpush/core';
import type { PushOptions } from '@rxpush/pipeline';
import { pino } from 'pino';
import type { Observable } from 'rxjs';

import { fail } from './fail.js';
import { helpFor, type RawArgs } from './parse-args.js';
import { dryRunRenderer } from './progress/dry-run-renderer.js';
import { jsonRenderer } from './progress/json-renderer.js';
import { plainRenderer } from './progress/plain-renderer.js';
import { quietRenderer } from './progress/quiet-renderer.js';
import { dryRunSummaryLine, pushTally, summaryLine, type PushTally } from './progress/push-summary.js';
import type { ProgressRenderer, TextSink } from './progress/renderer.js';
import { ttyRenderer } from './progress/tty-renderer.js';
import { pushCommand, type CommandCredentials, type LogFormat, type LogLevel, type PushCommand, type RegistryCommand } from './push-command.js';
import { readPassword } from './read-password.js';
import { terminalLog } from './terminal-log.js';

/** The pipeline's `push()`. */
export type PushFunction = (options: PushOptions) => Observable<PushEvent>;

/** stdout as rxpush needs it: `isTTY` and `columns` choose and size the progress display. */
export interface Terminal extends TextSink {
  readonly isTTY?: boolean;
  readonly columns?: number;
}

export interface RunPushIO {
  readonly stdout: Terminal;
  readonly stderr: TextSink;
  /** Aborting it cancels the push (Ctrl-C). */
  readonly signal: AbortSignal;
  /** Stands in for the pipeline's `push()`, for tests of the command's own behaviour. */
  readonly push?: PushFunction;
  /** Where `--password-stdin` reads the password (default process.stdin). */
  readonly stdin?: Readable;
}

/** Never logged, whatever a package puts in a log line. */
const REDACT = ['authorization', '*.authorization', 'headers.authorization', 'password', '*.password', 'token', '*.token'];

/**
 * The pino logger of a command, on stderr, with secrets redacted: pino's JSON lines, for the programs and files
 * stderr usually goes to, and on a terminal the same lines as `rxpush: warning: …` ({@link terminalLog}).
 * `--log-format` chooses either anywhere (a CI log is a pipe that people read).
 */
export function commandLogger(level: LogLevel, format: LogFormat, stderr: TextSink & { readonly isTTY?: boolean }): Logger {
  const text = format === 'text' || (format === 'auto' && stderr.isTTY === true);
  if (text) return pino({ level, redact: REDACT }, terminalLog(stderr));
  return pino(
    { level, redact: REDACT },
    // Synchronous, so log lines and rxpush's own stderr lines keep their order.
    stderr === process.stderr ? pino.destination({ dest: 2, sync: true }) : stderr,
  );
}

/**
 * stderr, telling the renderer what is written to it when stdout is a terminal too (one window, as when nothing is
 * redirected): a warning in the middle of a push then goes below the progress display, which is still redrawn in
 * its place instead of over the warning.
 */
function besideProgress(stderr: TextSink & { readonly isTTY?: boolean }, stdout: Terminal, renderer: ProgressRenderer): TextSink & { readonly isTTY?: boolean } {
  if (stderr.isTTY !== true || stdout.isTTY !== true || renderer.logged === undefined) return stderr;
  return {
    isTTY: true,
    write(text: string) {
      const written = stderr.write(text);
      renderer.logged?.(text);
      return written;
    },
  };
}

/** How long a push may go without its first event before the display says what it is reading. */
const WAITING_AFTER_MS = 1000;

/**
 * `renderer`, its header ("The push refers to repository […]") held back until the push's first event, which comes
 * once the source is read: a source that cannot be read (a typo in its transport, a missing file) fails with its one
 * line and nothing on stdout, while a registry that fails the push comes after the header, as with docker push.
 * A source that takes long to read (an archive on a pipe, copied first) is named meanwhile by a renderer that can
 * take the line back (`waiting`).
 */
function headerOnFirstEvent(renderer: ProgressRenderer, source: string): ProgressRenderer {
  let header: string | undefined;
  let waiting: ReturnType<typeof setTimeout> | undefined;
  const begin = (): void => {
    clearTimeout(waiting);
    if (header === undefined) return;
    renderer.start(header);
    header = undefined;
  };
  return {
    start(repository) {
      header = repository;
      if (renderer.waiting === undefined) return;
      // The source as typed, made safe for a terminal: a path may hold control characters.
      waiting = setTimeout(() => renderer.waiting?.(`Reading ${printable(source)}…`), WAITING_AFTER_MS);
      // A push that is all but over never waits on this timer.
      waiting.unref();
    },
    next(event) {
      begin();
      renderer.next(event);
    },
    error(error) {
      clearTimeout(waiting);
      renderer.error(error);
    },
    complete() {
      begin();
      renderer.complete();
    },
  };
}

/** What createRegistryClient needs from a command's registry options. */
export function clientOptions(command: RegistryCommand, credentials: PushOptions['credentials']) {
  return {
    ...(credentials !== undefined && { credentials }),
    ...(command.authfile !== undefined && { authfile: command.authfile }),
    ...(!command.tlsVerify && { tlsVerify: false }),
    ...(command.caFile !== undefined && { caFile: command.caFile }),
    ...(command.certDir !== undefined && { certDir: command.certDir }),
    ...(command.plainHttp && { plainHttp: true }),
    ...(command.retries !== undefined && { retry: { retries: command.retries } }),
    ...(command.timeoutMs !== undefined && { timeouts: { connect: command.timeoutMs, headers: command.timeoutMs, body: command.timeoutMs } }),
  };
}

/**
 * The `rxpush push` handler: checks the option values, shows progress on stdout, logs on stderr, writes
 * `--digestfile`, and turns the outcome into an exit status: 0 pushed, 1 failed, 2 usage error, 130 cancelled.
 * Failures are one `rxpush: …` line on stderr (and the stack at `--log-level debug`).
 *
 * @example process.exitCode = await runPush(parsed.args, { stdout: process.stdout, stderr: process.stderr, signal })
 */
export async function runPush(args: RawArgs, io: RunPushIO): Promise<number> {
  const { stdout, stderr } = io;
  const help = helpFor((args['_'] as unknown[] | undefined)?.[0] === 'copy' ? 'copy' : 'push');
  let command: PushCommand;
  let credentials: PushOptions['credentials'];
  let signKey: PushOptions['signKey'];
  try {
    command = pushCommand(args);
    // A password given with --creds is on the command line: the title replaces it there for `ps` and /proc.
    if ((command.credentials !== undefined && 'password' in command.credentials) || command.sourceRegistry?.credentials !== undefined) process.title = `rxpush ${command.command}`;
    credentials = await commandCredentials(command.credentials, io.stdin ?? process.stdin);
    // Loaded before anything is read or sent: a bad key must not leave a half-pushed image.
    if (command.signKey !== undefined) signKey = await loadKey(command.signKey, command.keyPasswordStdin, io.stdin ?? process.stdin);
    if (command.digestfile !== undefined) await checkDigestfile(command.digestfile);
  } catch (error) {
    return fail(error, stderr, 'warn', help);
  }
  const renderer = chooseRenderer(command, stdout);
  const display = headerOnFirstEvent(renderer, command.source);
  const logger = commandLogger(command.logLevel, command.logFormat, besideProgress(stderr, stdout, renderer));
  const tally = pushTally(command.dryRun);
  /** Chunked uploads the push left in the cache directory for the next run to resume. */
  let kept = 0;
  try {
    const destination = parseReference(command.destination);
    const pipeline = io.push === undefined ? await import('@rxpush/pipeline') : undefined;
    const push = io.push ?? (pipeline as typeof import('@rxpush/pipeline')).push;
    let options: PushOptions = { ...pushOptions(command, logger, credentials, signKey), onSessionsKept: (count) => (kept = count) };
    // The process runs this one push: a --concurrency above the shared upload limit's slots gets a limit of its own.
    if (pipeline !== undefined && command.concurrency > pipeline.sharedUploadLimiter.slots) {
      options = { ...options, uploadLimiter: new pipeline.UploadLimiter(command.concurrency) };
    }
    // process.hrtime, not performance.now(): Node's `performance` global loads perf_hooks (~0.5 ms of every push) for one line.
    const started = process.hrtime.bigint();
    display.start(`${destination.registry}/${destination.repository}`);
    const pushed = await run(push(options), display, tally, io.signal);
    display.complete();
    const first = pushed[0];
    if (command.digestfile !== undefined && first !== undefined) await writeDigest(command.digestfile, first);
    // For people: scripts reading --quiet or --progress json get exactly what they asked for.
    if (!command.quiet && command.progress !== 'json') {
      const counts = tally.counts();
      stderr.write(`${command.dryRun ? dryRunSummaryLine(counts) : summaryLine(counts, Number(process.hrtime.bigint() - started) / 1e6)}\n`);
    }
    return 0;
  } catch (error) {
    display.error(error instanceof Error ? error : new Error(String(error)));
    // Ctrl-C: `rxpush copy` says "copy cancelled"; with uploads kept open, how to give them back, in the same line.
    const cancelled =
      error instanceof CancelledError ? new CancelledError(`${command.command === 'copy' ? error.message.replace(/^push cancelled/, 'copy cancelled') : error.message}${kept > 0 ? `; ${keptUploads(kept)}` : ''}`) : error;
    return fail(cancelled, stderr, command.logLevel, help);
  }
}

function chooseRenderer(command: PushCommand, stdout: Terminal): ProgressRenderer {
  if (command.dryRun) return dryRunRenderer(stdout, command.quiet ? 'quiet' : command.progress === 'json' ? 'json' : 'text');
  if (command.quiet) return quietRenderer(stdout);
  const mode = command.progress === 'auto' ? (stdout.isTTY === true ? 'tty' : 'plain') : command.progress;
  switch (mode) {
    case 'tty':
      return ttyRenderer(stdout, stdout.columns !== undefined ? { columns: stdout.columns } : {});
    case 'plain':
      return plainRenderer(stdout);
    case 'json':
      return jsonRenderer(stdout);
  }
}

/** The credentials of the command line, with the password read from stdin when --password-stdin asks. */
export async function commandCredentials(given: CommandCredentials | undefined, stdin: Readable): Promise<PushOptions['credentials']> {
  if (given === undefined) return undefined;
  const password = 'password' in given ? given.password : await readPassword(stdin);
  return { username: given.username, password, source: given.source };
}

/** The --sign-key, its passphrase from stdin (--key-password-stdin) or RXPUSH_KEY_PASSWORD. */
async function loadKey(path: string, fromStdin: boolean, stdin: Readable): Promise<PushOptions['signKey']> {
  const password = fromStdin ? await readPassword(stdin, '--key-password-stdin') : process.env['RXPUSH_KEY_PASSWORD'];
  const { loadSigningKey } = await import('@rxpush/manifest-signer');
  return loadSigningKey(path, password === undefined ? {} : { password });
}

function pushOptions(command: PushCommand, logger: Logger, credentials: PushOptions['credentials'], signKey: PushOptions['signKey']): PushOptions {
  return {
    source: command.source,
    destination: command.destination,
    concurrency: command.concurrency,
    logger,
    ...(command.tags.length > 0 && { tags: command.tags }),
    ...(command.allTags && { allTags: true }),
    ...(command.format !== undefined && { format: command.format }),
    ...(command.chunkSize !== undefined && { chunkSize: command.chunkSize }),
    ...(command.compression !== undefined && { compression: command.compression }),
    ...(command.compressionLevel !== undefined && { compressionLevel: command.compressionLevel }),
    ...clientOptions(command, credentials),
    ...(command.dataRoot !== undefined && { dataRoot: command.dataRoot }),
    ...(command.storageDriver !== undefined && { storageDriver: command.storageDriver }),
    ...(command.dryRun && { dryRun: true }),
    ...(!command.resume && { resume: false }),
    ...(signKey !== undefined && { signKey }),
    ...(command.signChildren && { signChildren: true }),
    ...(command.sourceRegistry !== undefined && { sourceRegistry: command.sourceRegistry }),
    ...(command.platform !== undefined && { platform: command.platform }),
  };
}

/** Subscribes, feeding the renderer; unsubscribing on abort is what stops every request in flight. */
function run(events: Observable<PushEvent>, renderer: ProgressRenderer, tally: PushTally, signal: AbortSignal): Promise<ManifestPushedEvent[]> {
  return new Promise((resolve, reject) => {
    const pushed: ManifestPushedEvent[] = [];
    const subscription = events.subscribe({
      next(event) {
        renderer.next(event);
        tally.next(event);
        if (event.type === 'manifest-pushed') pushed.push(event);
      },
      error: reject,
      complete: () => resolve(pushed),
    });
    const cancel = (): void => {
      subscription.unsubscribe();
      reject(new CancelledError());
    };
    if (signal.aborted) return cancel();
    signal.addEventListener('abort', cancel, { once: true });
    subscription.add(() => signal.removeEventListener('abort', cancel));
  });
}

/** What a cancelled push says of the chunked uploads it left open for the next run. */
function keptUploads(count: number): string {
  const uploads = count === 1 ? '1 chunked upload was' : `${count} chunked uploads were`;
  return `${uploads} kept for resuming: run the same push again to go on (--no-resume starts over)`;
}

/**
 * A `--digestfile` that cannot be written is found before anything is pushed: its write comes after the push, which
 * would have landed for nothing. An existing file is replaced, as skopeo replaces it.
 */
async function checkDigestfile(path: string): Promise<void> {
  const cannot = (reason: string) => new Error(`cannot write --digestfile ${path}: ${reason}; nothing was pushed`);
  const target = await stat(path).catch(() => undefined);
  if (target?.isDirectory() === true) throw cannot(`it is a directory; name the file to write the digest to, e.g. ${join(path, 'digest')}`);
  const parent = target === undefined ? await stat(dirname(path)).catch((error: unknown) => error as Error) : undefined;
  if (parent instanceof Error) throw cannot(fileReason(parent, 'new file'));
  if (parent !== undefined && !parent.isDirectory()) throw cannot('a part of its path is a file, not a directory');
  await access(target !== undefined ? path : dirname(path), constants.W_OK).catch((error: unknown) => {
    throw cannot(fileReason(error));
  });
}

/** Like skopeo's and podman's `--digestfile`: the digest alone, no newline. */
async function writeDigest(path: string, event: ManifestPushedEvent): Promise<void> {
  try {
    await writeFile(path, event.digest);
  } catch (error) {
    throw new Error(`pushed ${event.digest}, but cannot write it to --digestfile ${path}: ${fileReason(error, 'new file')}`, { cause: error });
  }
}
