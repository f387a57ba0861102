import { isValidTag, TAG_RULE, UsageError, type PushFormat } from '@rxpush/core';

import type { RawArgs } from './parse-args.js';
import { parseDuration } from './parse-duration.js';
import { parseSize } from './parse-size.js';
import { quote } from './quote.js';

const FORMATS = ['oci', 'docker', 'schema1'] as const;
const COMPRESSIONS = ['gzip', 'zstd', 'none'] as const;
const PROGRESS_MODES = ['auto', 'tty', 'plain', 'json'] as const;
export const LOG_LEVELS = ['trace', 'debug', 'info', 'warn', 'error', 'silent'] as const;
const LOG_FORMATS = ['auto', 'text', 'json'] as const;

export type ProgressMode = (typeof PROGRESS_MODES)[number];
export type LogLevel = (typeof LOG_LEVELS)[number];
/** How log lines are written: `text` as `rxpush: warning: …`, `json` as pino's lines, `auto` text on a terminal only. */
export type LogFormat = (typeof LOG_FORMATS)[number];

/** The options of every command that talks to a registry, checked and converted. */
export interface RegistryCommand {
  readonly plainHttp: boolean;
  readonly logLevel: LogLevel;
  readonly logFormat: LogFormat;
  /** Who to log in as; the password is here (from --creds) or still to be read from stdin (--password-stdin). */
  readonly credentials?: CommandCredentials;
  readonly authfile?: string;
  readonly tlsVerify: boolean;
  readonly caFile?: string;
  readonly certDir?: string;
  /** Retries of a failed request (`--retries`). */
  readonly retries?: number;
  /** How long any one wait on the registry may last, in ms (`--timeout`). */
  readonly timeoutMs?: number;
}

/** `rxpush push`, its arguments checked and converted. */
export interface PushCommand extends RegistryCommand {
  readonly source: string;
  readonly destination: string;
  readonly tags: readonly string[];
  readonly allTags: boolean;
  readonly format?: PushFormat;
  readonly concurrency: number;
  readonly chunkSize?: number;
  readonly compression?: (typeof COMPRESSIONS)[number];
  readonly compressionLevel?: number;
  readonly dataRoot?: string;
  readonly storageDriver?: string;
  readonly progress: ProgressMode;
  readonly quiet: boolean;
  readonly digestfile?: string;
  /** Check what would be pushed, write nothing (`--dry-run`). */
  readonly dryRun: boolean;
  /** Keep broken chunked uploads for the next run (false with `--no-resume`). */
  readonly resume: boolean;
  /** The key file to sign with (`--sign-key`). */
  readonly signKey?: string;
  /** Sign an index's images too (`--sign-children`). */
  readonly signChildren: boolean;
  /** The sign key's passphrase comes from stdin (`--key-password-stdin`), else from RXPUSH_KEY_PASSWORD. */
  readonly keyPasswordStdin: boolean;
  /** `copy` (the source is a registry) or `push`. */
  readonly command: 'push' | 'copy';
  /** For a docker:// source: its registry's own settings (`--src-*`). */
  readonly sourceRegistry?: SourceRegistry;
  /** Of a multi-platform docker:// source, the one image to copy (`--platform`). */
  readonly platform?: string;
}

/** `--src-creds`, `--src-authfile`, `--src-tls-verify`, `--src-ca-file`, `--src-plain-http`. */
export interface SourceRegistry {
  readonly credentials?: { readonly username: string; readonly password: string; readonly source: string };
  readonly authfile?: string;
  readonly tlsVerify?: boolean;
  readonly caFile?: string;
  readonly plainHttp?: boolean;
}

/** Transports that are not a registry, for `rxpush copy`'s SOURCE. */
const LOCAL_TRANSPORTS = /^(oci|oci-archive|docker-archive|docker-daemon|docker-root):/;

/** Credentials from the command line. The password is never put in a message. */
export type CommandCredentials =
  | { readonly username: string; readonly password: string; readonly source: string }
  | { readonly username: string; readonly passwordFromStdin: true; readonly source: string };

/**
 * Checks and converts the values of `rxpush push`'s options, so nothing starts before the whole
 * command line is known to be good.
 *
 * @throws {UsageError} naming the option and what is wrong with its value.
 * @example pushCommand({ SOURCE: 'oci:./image', DEST: 'localhost:5000/app', concurrency: '8' }).concurrency // 8
 */
export function pushCommand(args: RawArgs): PushCommand {
  const command = (args['_'] as unknown[] | undefined)?.[0] === 'copy' ? 'copy' : 'push';
  const given = last(args['SOURCE']);
  const destination = last(args['DEST']);
  if (given === undefined || destination === undefined) throw new UsageError('missing SOURCE or DEST');
  const source = command === 'copy' ? copySource(given) : given;
  const sourceRegistry = sourceRegistryOf(args);
  const platform = last(args['platform']);
  if (sourceRegistry !== undefined && !source.startsWith('docker://')) {
    throw new UsageError(`the --src-* options are for a docker:// source; ${source} is not in a registry`);
  }
  if (platform !== undefined && !/^(docker:\/\/|oci:|oci-archive:)/.test(source)) {
    throw new UsageError(`--platform picks one image of a multi-platform index, which only docker://, oci: and oci-archive: sources hold; ${source} is not one`);
  }

  const tags = all(args['tag']);
  for (const tag of tags) {
    if (!isValidTag(tag)) throw new UsageError(`--tag ${quote(tag)} is not a valid tag: ${TAG_RULE}`);
  }
  const allTags = args['all-tags'] === true;
  const digestfile = pathOption(args, 'digestfile', 'a file to write the digest to');
  if (allTags && digestfile !== undefined) throw new UsageError('--digestfile names one manifest and cannot be used with --all-tags');
  const dryRun = args['dry-run'] === true;
  if (dryRun && digestfile !== undefined) throw new UsageError('--digestfile cannot be used with --dry-run: nothing is pushed, so there is no digest to write');

  const concurrency = last(args['concurrency']) ?? '4';
  if (!/^\d+$/.test(concurrency) || Number(concurrency) < 1) {
    throw new UsageError(`--concurrency must be a whole number of 1 or more, not ${quote(concurrency)}`);
  }
  const chunkSize = last(args['chunk-size']);
  const format = oneOf('format', last(args['format']), FORMATS);
  const compression = oneOf('compression', last(args['compression']), COMPRESSIONS);
  const compressionLevel = last(args['compression-level']);
  if (compressionLevel !== undefined && !/^\d$/.test(compressionLevel)) {
    throw new UsageError(`--compression-level must be a whole number from 0 to 9, not ${quote(compressionLevel)}`);
  }
  if (compressionLevel !== undefined && (compression === 'none' || compression === 'zstd')) {
    throw new UsageError(`--compression-level is a gzip level and cannot be used with --compression ${compression}`);
  }
  const dataRoot = pathOption(args, 'data-root', 'a directory');
  const storageDriver = last(args['storage-driver']);
  const registry = registryCommand(args);
  const { credentials } = registry;
  const signKey = last(args['sign-key']);
  const signChildren = args['sign-children'] === true;
  const keyPasswordStdin = args['key-password-stdin'] === true;
  if (signKey === '') throw new UsageError('--sign-key needs a key file (rxpush keygen --out FILE makes one)');
  if (format === 'schema1' && signKey === undefined) throw new UsageError('--format schema1 needs --sign-key FILE: Docker schema 1 manifests are signed (rxpush keygen makes a key)');
  if (signKey === undefined && (signChildren || keyPasswordStdin)) throw new UsageError(`${signChildren ? '--sign-children' : '--key-password-stdin'} needs --sign-key FILE`);
  if (keyPasswordStdin && credentials !== undefined && 'passwordFromStdin' in credentials) {
    throw new UsageError('--key-password-stdin and --password-stdin both read stdin; give the key passphrase in RXPUSH_KEY_PASSWORD instead');
  }

  return {
    ...registry,
    source,
    destination,
    tags,
    allTags,
    ...(format !== undefined && { format }),
    concurrency: Number(concurrency),
    ...(chunkSize !== undefined && { chunkSize: parseSize(chunkSize, '--chunk-size') }),
    ...(compression !== undefined && { compression }),
    ...(compressionLevel !== undefined && { compressionLevel: Number(compressionLevel) }),
    ...(dataRoot !== undefined && { dataRoot }),
    ...(storageDriver !== undefined && { storageDriver }),
    progress: oneOf('progress', last(args['progress']), PROGRESS_MODES) ?? 'auto',
    quiet: args['quiet'] === true,
    ...(digestfile !== undefined && { digestfile }),
    dryRun,
    resume: args['resume'] !== false,
    ...(signKey !== undefined && { signKey }),
    signChildren,
    keyPasswordStdin,
    command,
    ...(sourceRegistry !== undefined && { sourceRegistry }),
    ...(platform !== undefined && { platform }),
  };
}

/** `rxpush copy`'s SOURCE as a docker:// source: the prefix is optional, as it is for DEST. */
function copySource(source: string): string {
  if (source.startsWith('docker://')) return source;
  if (LOCAL_TRANSPORTS.test(source)) {
    throw new UsageError(`rxpush copy reads from a registry (SOURCE is [docker://]REGISTRY/REPO[:TAG]); push ${source} with rxpush push`);
  }
  return `docker://${source}`;
}

/**
 * The source registry's settings, when any is given. `--src-creds` needs its password inline: stdin, if
 * read at all, holds the destination's.
 */
function sourceRegistryOf(args: RawArgs): SourceRegistry | undefined {
  const creds = last(args['src-creds']);
  const authfile = pathOption(args, 'src-authfile', 'a file');
  const caFile = pathOption(args, 'src-ca-file', 'a file');
  const tlsVerify = args['src-tls-verify'] !== false;
  const plainHttp = args['src-plain-http'] === true;
  let credentials: SourceRegistry['credentials'];
  if (creds !== undefined) {
    const colon = creds.indexOf(':');
    if (colon < 1) throw new UsageError("--src-creds needs USER:PASSWORD (the password cannot come from stdin: --password-stdin is the destination's)");
    credentials = { username: creds.slice(0, colon), password: creds.slice(colon + 1), source: '--src-creds' };
  }
  if (credentials === undefined && authfile === undefined && caFile === undefined && tlsVerify && !plainHttp) return undefined;
  return {
    ...(credentials !== undefined && { credentials }),
    ...(authfile !== undefined && { authfile }),
    ...(!tlsVerify && { tlsVerify: false }),
    ...(caFile !== undefined && { caFile }),
    ...(plainHttp && { plainHttp: true }),
  };
}

/**
 * Checks and converts the registry options push, verify and inspect share: credentials, TLS, retries, logs.
 *
 * @throws {UsageError} naming the option and what is wrong with its value.
 * @example registryCommand({ retries: '2' }).retries // 2
 */
export function registryCommand(args: RawArgs): RegistryCommand {
  const retries = last(args['retries']);
  if (retries !== undefined && !/^\d+$/.test(retries)) throw new UsageError(`--retries must be a whole number of 0 or more, not ${quote(retries)}`);
  const timeout = last(args['timeout']);
  const credentials = commandCredentials(args);
  const authfile = pathOption(args, 'authfile', 'a file');
  const caFile = pathOption(args, 'ca-file', 'a file');
  const certDir = pathOption(args, 'cert-dir', 'a directory');
  return {
    plainHttp: args['plain-http'] === true,
    logLevel: oneOf('log-level', last(args['log-level']), LOG_LEVELS) ?? 'warn',
    logFormat: oneOf('log-format', last(args['log-format']), LOG_FORMATS) ?? 'auto',
    ...(credentials !== undefined && { credentials }),
    ...(authfile !== undefined && { authfile }),
    tlsVerify: args['tls-verify'] !== false,
    ...(caFile !== undefined && { caFile }),
    ...(certDir !== undefined && { certDir }),
    ...(retries !== undefined && { retries: Number(retries) }),
    ...(timeout !== undefined && { timeoutMs: parseDuration(timeout, '--timeout') }),
  };
}

/**
 * `--creds USER[:PASSWORD]`, or `--username USER` with `--password-stdin` (also `--creds USER --password-stdin`).
 * Messages name the options, never the value of --creds: it may hold the password.
 */
function commandCredentials(args: RawArgs): CommandCredentials | undefined {
  const creds = last(args['creds']);
  const username = last(args['username']);
  const fromStdin = args['password-stdin'] === true;
  if (creds !== undefined && username !== undefined) throw new UsageError('give either --creds or --username, not both');
  if (creds !== undefined) {
    const colon = creds.indexOf(':');
    const user = colon < 0 ? creds : creds.slice(0, colon);
    if (user === '') throw new UsageError('--creds needs a user name before the ":" (USER[:PASSWORD])');
    if (colon >= 0) {
      if (fromStdin) throw new UsageError('--creds USER:PASSWORD already has a password; drop --password-stdin, or give --creds USER');
      return { username: user, password: creds.slice(colon + 1), source: '--creds' };
    }
    if (!fromStdin) throw new UsageError('--creds USER needs the password: give --creds USER:PASSWORD, or --password-stdin and the password on stdin');
    return { username: user, passwordFromStdin: true, source: '--creds and --password-stdin' };
  }
  if (username !== undefined) {
    if (username === '') throw new UsageError('--username needs a user name');
    if (!fromStdin) throw new UsageError('--username needs --password-stdin, with the password on stdin');
    return { username, passwordFromStdin: true, source: '--username and --password-stdin' };
  }
  if (fromStdin) throw new UsageError('--password-stdin needs --username USER (or --creds USER)');
  return undefined;
}

/** Every value of a repeatable option. */
function all(value: unknown): string[] {
  if (value === undefined) return [];
  return (Array.isArray(value) ? value : [value]).map(String);
}

/**
 * A path option's value. An empty one (`--authfile=`, or `--authfile "$UNSET"` in a script) is a usage error, not
 * a file named '' found missing later: for `--digestfile`, only after the push.
 */
function pathOption(args: RawArgs, name: string, what: string): string | undefined {
  const value = last(args[name]);
  if (value === '') throw new UsageError(`--${name} needs ${what}`);
  return value;
}

/** The value of a single-valued option; given twice, the last one counts, as in most CLIs. */
export function last(value: unknown): string | undefined {
  return all(value).at(-1);
}

export function oneOf<T extends string>(name: string, value: string | undefined, choices: readonly T[]): T | undefined {
  if (value === undefined) return undefined;
  if ((choices as readonly string[]).includes(value)) return value as T;
  throw new UsageError(`--${name} must be one of ${choices.join(', ')}, not ${quote(value)}`);
}
