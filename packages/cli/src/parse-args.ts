import { readFileSync } from 'node:fs';

import yargs, { type Argv } from 'yargs';

import { quote } from './quote.js';
import { suggestCommand, suggestOption } from './suggest.js';

/** Options as yargs parsed them, before rxpush checks their values (see `pushCommand`). */
export type RawArgs = Readonly<Record<string, unknown>>;

/** The commands that run something (the others print). */
export type CommandName = 'push' | 'copy' | 'keygen' | 'verify' | 'inspect';

/**
 * What the command line asks for: text to print (`--help`, `--version`), a usage error (one line,
 * naming which help to read), or a command whose option values are still to be checked.
 */
export type ParsedArgs =
  | { readonly kind: 'print'; readonly text: string }
  | { readonly kind: 'usage'; readonly message: string }
  | { readonly kind: CommandName; readonly args: RawArgs };

const COMMANDS: readonly string[] = ['push', 'copy', 'keygen', 'verify', 'inspect'];
export const PUSH_HELP = "see 'rxpush push --help'";
const TOP_HELP = "see 'rxpush --help'";

/** Where a command's usage errors send the user. */
export function helpFor(command: CommandName): string {
  return `see 'rxpush ${command} --help'`;
}
// By hand: yargs answers `completion --help` with the script itself.
const COMPLETION_HELP = `Usage: rxpush completion

Print a shell completion script for rxpush's commands and options: for bash, or for zsh when $SHELL is zsh.

Examples:
  rxpush completion >> ~/.bashrc                 complete rxpush in new bash shells
  SHELL=zsh rxpush completion >> ~/.zshrc        the same for zsh`;

/**
 * Parses rxpush's arguments (without the node and script paths) with yargs: commands, known options,
 * positionals. It loads nothing but yargs, so `rxpush --help` stays fast.
 *
 * A push that asks for no help is parsed with the push options alone, outside yargs's command: after
 * running a command, yargs renders that command's whole help text through cliui to keep it for later
 * (~20 ms of a second push's ~100 ms). Anything the short path does not accept goes through the
 * full parser again, so help, version and every usage error read exactly as yargs words them.
 *
 * @example parseArgs(['push', 'oci:./image:latest', 'localhost:5000/app:1.0']) // { kind: 'push', args: { SOURCE: …, DEST: …, … } }
 */
export function parseArgs(argv: readonly string[]): ParsedArgs {
  const parsed = parseOnce(argv);
  if (parsed.kind === 'print' || parsed.kind === 'usage') return parsed;
  const spelled = booleanSpellings(argv, parsed.args);
  if (spelled === undefined) return parsed;
  if (typeof spelled === 'string') return { kind: 'usage', message: `${spelled}; ${helpFor(parsed.kind)}` };
  return parseOnce(spelled);
}

/** The words Go's flags (skopeo's, docker's: strconv.ParseBool) take after `--flag=` of a boolean option. */
const TRUE_WORDS: readonly string[] = ['1', 't', 'T', 'TRUE', 'true', 'True'];
const FALSE_WORDS: readonly string[] = ['0', 'f', 'F', 'FALSE', 'false', 'False'];

/**
 * yargs reads a boolean option's `--flag=VALUE` as false for any VALUE but `true`: `--tls-verify=True` or
 * `--tls-verify=1` turned TLS verification off, and `--tls-verify=yes` too. The values are read as Go's
 * flags read them, so a skopeo user's spelling means what it does there, and any other is a usage error.
 * Returns undefined when yargs read every such value right, else the arguments spelled as yargs reads
 * them, or the message naming the value it cannot be.
 */
function booleanSpellings(argv: readonly string[], args: RawArgs): string[] | string | undefined {
  let respelled: string[] | undefined;
  for (const [i, arg] of argv.entries()) {
    if (arg === '--') break;
    const match = /^(--?)([^=]+)=(.*)$/s.exec(arg);
    // Only options yargs took as booleans: a string option's value is checked where it is used.
    if (match === null || typeof args[match[2]!] !== 'boolean') continue;
    const [, dashes, name, value] = match as unknown as [string, string, string, string];
    if (value === 'true' || value === 'false') continue;
    const word = TRUE_WORDS.includes(value) ? 'true' : FALSE_WORDS.includes(value) ? 'false' : undefined;
    if (word === undefined) return `${dashes}${name} takes true or false, not ${quote(value)}`;
    respelled ??= [...argv];
    respelled[i] = `${dashes}${name}=${word}`;
  }
  return respelled;
}

function parseOnce(argv: readonly string[]): ParsedArgs {
  const first = argv[0];
  if (first === undefined) return { kind: 'usage', message: `missing command; ${TOP_HELP}` };
  if (!first.startsWith('-') && !COMMANDS.includes(first) && first !== 'completion') {
    return { kind: 'usage', message: `unknown command ${quote(first)}${suggestCommand(first, [...COMMANDS, 'completion'])}; ${TOP_HELP}` };
  }
  if ((first === 'push' || first === 'copy') && !asksForText(argv)) {
    const args = parsePush(argv.slice(1), first);
    if (args !== undefined) return { kind: first, args };
  }
  const help = COMMANDS.includes(first) ? helpFor(first as CommandName) : TOP_HELP;
  if (first === 'completion') {
    const rest = argv.slice(1);
    if (rest.includes('--help') || rest.includes('-h')) return { kind: 'print', text: COMPLETION_HELP };
    if (rest[0] !== undefined) return { kind: 'usage', message: `unexpected argument ${quote(rest[0])}; ${help}` };
  }

  let parsed: { args: RawArgs; output: string } | undefined;
  let failure: unknown;
  let parser: ReturnType<typeof cli> | undefined;
  try {
    // yargs's strict mode takes its own `completion` command for an unknown argument.
    parser = cli(argv, first !== 'completion');
    parser.parse([...argv], {}, (error, args, output) => {
      if (error) failure = error;
      else parsed = { args, output };
    });
  } catch (error) {
    failure = error;
  }
  if (failure !== undefined || parsed === undefined) {
    // Once the command's builder has run, the parser knows its options: the ones a typo is compared with.
    const known = optionNames(parser);
    return { kind: 'usage', message: `${usageMessage(failure, argv, first, known)}; ${help}` };
  }
  if (parsed.args['help'] === true || parsed.args['version'] === true) return { kind: 'print', text: parsed.output };
  // The completion script, or the words a shell asks it for (`--get-yargs-completions`).
  if (first === 'completion' || parsed.args['get-yargs-completions'] !== undefined) return { kind: 'print', text: parsed.output.trimEnd() };
  const extra = (parsed.args['_'] as unknown[]).slice(1);
  if (extra.length > 0) return { kind: 'usage', message: `unexpected argument ${quote(String(extra[0]))}; ${help}` };
  return { kind: COMMANDS.includes(first) ? (first as CommandName) : 'push', args: parsed.args };
}

/** Whether an argument (before `--`) may ask for help, the version or completions: those need the full parser. */
function asksForText(argv: readonly string[]): boolean {
  for (const arg of argv) {
    if (arg === '--') return false;
    if (arg.startsWith('--help') || arg.startsWith('--version') || arg.startsWith('--get-yargs-completions') || (/^-[^-]/.test(arg) && arg.includes('h'))) {
      return true;
    }
  }
  return false;
}

/**
 * `push`'s (or `copy`'s, the same) options (the arguments after the command) parsed without the command,
 * or undefined if they are not a good push (the full parser then says why). Exported for its tests; the
 * package does not export it.
 */
export function parsePush(rest: readonly string[], command: 'push' | 'copy' = 'push'): RawArgs | undefined {
  let parsed: RawArgs | undefined;
  try {
    pushOptions(yargs([...rest]))
      .locale('en')
      // Unknown options only: the positionals are counted below.
      .strictOptions()
      .exitProcess(false)
      .showHelpOnFail(false)
      .help(false)
      .version(false)
      // The command's positionals are strings: "1e3" stays "1e3".
      .parserConfiguration({ 'parse-positional-numbers': false })
      .fail((message, error) => {
        throw error ?? new Error(message);
      })
      .parse([...rest], {}, (error, args) => {
        if (!error) parsed = args;
      });
  } catch {
    return undefined;
  }
  const positionals = parsed?.['_'];
  if (parsed === undefined || !Array.isArray(positionals) || positionals.length !== 2) return undefined;
  const [source, destination] = positionals as unknown[];
  return { ...parsed, _: [command], SOURCE: String(source), DEST: String(destination) };
}

function cli(argv: readonly string[], strict: boolean) {
  return yargs([...argv])
    .scriptName('rxpush')
    .usage('Usage: rxpush <command> [options]\n\nPush container images to Docker/OCI registries.')
    .example('rxpush push oci:./image:latest localhost:5000/app:1.0', "push the image tagged latest in an OCI layout")
    .example('rxpush copy staging.example/app:1.0 registry.example/app:1.0', 'copy an image from one registry to another')
    .example('rxpush keygen --out ./rxpush.key', 'make a signing key (and rxpush.key.pub)')
    .example('rxpush verify localhost:5000/app:1.0 --key ./rxpush.key.pub', 'check that app:1.0 is signed by that key')
    .example('rxpush inspect localhost:5000/app:1.0', 'print its manifest and config')
    .example('rxpush completion >> ~/.bashrc', 'complete rxpush\'s commands and options in bash (zsh: >> ~/.zshrc)')
    .locale('en')
    .strict(strict)
    .exitProcess(false)
    .showHelpOnFail(false)
    .fail((message, error) => {
      throw error ?? new Error(message);
    })
    .version(version())
    .help()
    .alias('h', 'help')
    .completion('completion', 'print a shell completion script for bash, or zsh when $SHELL is zsh')
    .command('push <SOURCE> <DEST>', 'push an image (every tag with --all-tags)', (y) =>
      pushOptions(
        y
          .usage(
            'Usage: rxpush push SOURCE DEST [options]\n\n' +
              'Push an image to a registry.\n\n' +
              'SOURCE is oci:PATH[:REF], oci-archive:PATH[:REF], docker-archive:PATH[:NAME:TAG], ' +
              'docker-daemon:NAME:TAG, docker-root:NAME[:TAG] or docker://REGISTRY/REPO[:TAG] (see rxpush copy).\n' +
              'DEST is [docker://]REGISTRY/REPO[:TAG].',
          )
          .example('rxpush push oci:./image:latest localhost:5000/app:1.0', 'push an OCI layout\'s image tagged latest as app:1.0')
          .example('rxpush push docker-daemon:app:1.0 registry.example/team/app:1.0 --username ci --password-stdin < pw', 'push from the Docker engine, logging in as ci')
          .example('rxpush push oci-archive:./image.tar localhost:5000/app --all-tags --dry-run', 'show what pushing every tag would upload, and write nothing')
          .example('rxpush push oci:./image:latest localhost:5000/app:1.0 --sign-key ./rxpush.key', "push, then sign it in cosign's layout (sha256-<hex>.sig)")
          .example('rxpush push docker-daemon:app:1.0 localhost:5000/app:1.0 --format schema1 --sign-key /etc/docker/key.json', "push Docker schema 1, signed with the daemon's key as Docker did")
          .hide('version'),
      ),
    )
    .command('copy <SOURCE> <DEST>', 'copy an image from a registry to a registry (push with a docker:// source)', (y) =>
      pushOptions(
        y
          .usage(
            'Usage: rxpush copy SOURCE DEST [options]\n\n' +
              'Copy an image from one registry to another, blob by blob, never to disk; on one registry, blobs are mounted.\n\n' +
              'SOURCE is [docker://]REGISTRY/REPO[:TAG|@DIGEST]; DEST is [docker://]REGISTRY/REPO[:TAG].\n' +
              'A multi-platform image is copied whole (digests unchanged) unless --platform picks one of its images.',
          )
          .example('rxpush copy docker://staging.example/app:1.0 registry.example/app:1.0 --src-creds ci:$STAGING --creds ci:$PROD', "promote an image, with each registry's own credentials")
          .example('rxpush copy localhost:5000/app:1.0 localhost:5000/release/app:1.0', 'copy within one registry: every blob is mounted, none is sent')
          .example('rxpush copy docker.io/library/alpine:3 localhost:5000/alpine:3 --platform linux/arm64', 'copy one platform of a multi-platform image')
          .hide('version'),
      ),
    )
    .command('keygen', 'make a signing key: ECDSA P-256, PKCS#8 PEM (mode 0600) and FILE.pub', (y) =>
      y
        .usage(
          'Usage: rxpush keygen --out FILE [--force] [--key-password-stdin]\n\nMake an ECDSA P-256 signing key: FILE (PKCS#8 PEM, mode 0600) and FILE.pub (its public key). ' +
            'With a passphrase (--key-password-stdin, or RXPUSH_KEY_PASSWORD) FILE is encrypted with it.',
        )
        .example('rxpush keygen --out ./rxpush.key', 'write rxpush.key and rxpush.key.pub')
        .example('printf %s "$PASS" | rxpush keygen --out ./rxpush.key --key-password-stdin', 'the same, the private key encrypted')
        .example('rxpush push oci:./image:latest localhost:5000/app:1.0 --sign-key ./rxpush.key', 'push and sign with it')
        .hide('version')
        .option('out', { type: 'string', requiresArg: true, describe: 'the private key file to write (the public key goes to FILE.pub)' })
        .option('force', { type: 'boolean', describe: 'overwrite FILE and FILE.pub if they exist' })
        .option('key-password-stdin', { type: 'boolean', describe: 'encrypt FILE with the passphrase read from stdin (or set RXPUSH_KEY_PASSWORD)' }),
    )
    .command('verify <DEST>', 'verify that a pushed image is signed by a key', (y) =>
      registryOptions(
        y
          .usage(
            'Usage: rxpush verify DEST --key FILE [options]\n\n' +
              "Verify that an image in a registry is signed by the key: a cosign signature (tag sha256-<hex>.sig) or a schema 1 JWS that covers exactly the image's digest and repository. Exit 0 when one does, 1 naming what failed.\n\n" +
              'DEST is [docker://]REGISTRY/REPO[:TAG|@DIGEST].',
          )
          .example('rxpush verify localhost:5000/app:1.0 --key ./rxpush.key.pub', "check app:1.0's signature")
          .example('rxpush verify localhost:5000/app@sha256:… --key ./rxpush.key.pub --output json', 'print what was verified as JSON')
          .hide('version')
          .option('key', { type: 'string', requiresArg: true, describe: 'the public key (PEM, JWK; a private key file works too)' })
          .option('output', { type: 'string', requiresArg: true, default: 'text', describe: 'text, or json: what was verified' }),
      ),
    )
    .command('inspect <REF>', 'print the manifest and config of a local source or a registry image', (y) =>
      sourceOptions(
        registryOptions(
          y
            .usage(
              'Usage: rxpush inspect SOURCE|DEST [options]\n\n' +
                'Print the manifest (or index) and the config of an image as JSON, from the same sources push reads ' +
                '(oci:, oci-archive:, docker-archive:, docker-daemon:, docker-root:) or from a registry ([docker://]REGISTRY/REPO[:TAG|@DIGEST]).',
            )
            .example('rxpush inspect oci:./image:latest', 'the manifest and config of a layout image')
            .example('rxpush inspect localhost:5000/app:1.0 --raw', 'the manifest bytes exactly as the registry stores them')
            .example('rxpush inspect docker-daemon:app:1.0 --config', 'the config alone')
            .example('rxpush inspect localhost:5000/app:1.0 --platform linux/arm64', 'one image of a multi-platform index: its manifest and config')
            .hide('version')
            .option('raw', { type: 'boolean', describe: 'print the manifest bytes exactly as stored' })
            .option('config', { type: 'boolean', describe: 'print the config alone' })
            .option('platform', { type: 'string', requiresArg: true, describe: 'of a multi-platform index, this image: os/arch[/variant] (default: the index itself)' }),
        ),
      ),
    );
}

/** Settings of a docker:// source's registry, apart from the destination's: each registry gets only its own credentials. */
const SOURCE_REGISTRY_OPTIONS = ['src-creds', 'src-authfile', 'src-tls-verify', 'src-ca-file', 'src-plain-http'];

/** The options of `rxpush push` and `rxpush copy`, for the commands and for the short path of a push without help. */
function pushOptions<T>(y: Argv<T>) {
  const withPush = y
    .option('tag', { type: 'string', requiresArg: true, describe: 'also push as this tag (repeatable)' })
    .option('all-tags', { type: 'boolean', describe: 'push every tag the source has, each under its own name' })
    .option('format', { type: 'string', requiresArg: true, describe: "manifest format to write: oci, docker, or schema1 (signed; needs --sign-key) (default: the source's)" })
    // Values are strings so that rxpush, not yargs, says what is wrong with "abc" or "0".
    .option('concurrency', { type: 'string', requiresArg: true, default: '4', describe: 'blobs sent at once' })
    .option('chunk-size', { type: 'string', requiresArg: true, describe: 'upload in chunks of SIZE (5MB, 512KiB, bytes) instead of one request' })
    .option('compression', { type: 'string', requiresArg: true, describe: 'compression of uncompressed layers: gzip, zstd or none (default gzip)' })
    .option('compression-level', { type: 'string', requiresArg: true, describe: 'gzip level of compressed layers, 0 (store) to 9 (smallest); default 1 (4 for text)' })
    .option('progress', { type: 'string', requiresArg: true, default: 'auto', describe: 'progress output: auto, tty, plain or json (auto: tty on a terminal, else plain)' })
    .option('quiet', { alias: 'q', type: 'boolean', describe: 'no progress; print only the pushed references' })
    .option('digestfile', { type: 'string', requiresArg: true, describe: 'write the digest of the pushed manifest to this file' })
    .option('dry-run', { type: 'boolean', describe: 'show what would be uploaded, mounted or skipped, and write nothing to the registry' })
    .option('resume', { type: 'boolean', default: true, describe: 'keep chunked uploads broken off (crash, Ctrl-C) to resume in the next push (--no-resume: start over, and give the sessions back)' })
    .option('sign-key', { type: 'string', requiresArg: true, describe: "sign with this key (PEM, JWK or Docker's key.json): schema1 as its JWS, else a cosign signature" })
    .option('sign-children', { type: 'boolean', describe: 'with --sign-key and an index: sign every image of it too' })
    .option('key-password-stdin', { type: 'boolean', describe: 'read the --sign-key passphrase from stdin (or set RXPUSH_KEY_PASSWORD)' })
    .option('platform', { type: 'string', requiresArg: true, describe: 'of a multi-platform index (docker://, oci:, oci-archive: sources), only this image: os/arch[/variant] (default: the whole index)' })
    .group(SOURCE_REGISTRY_OPTIONS, 'Source registry (docker:// sources):')
    .option('src-creds', { type: 'string', requiresArg: true, describe: 'USER:PASSWORD for the source registry (only ever sent to it)' })
    .option('src-authfile', { type: 'string', requiresArg: true, describe: "credentials file for the source registry, in Docker's config.json format" })
    .option('src-tls-verify', { type: 'boolean', default: true, describe: "verify the source registry's TLS certificate" })
    .option('src-ca-file', { type: 'string', requiresArg: true, describe: 'PEM file of a CA to trust for the source registry' })
    .option('src-plain-http', { type: 'boolean', describe: 'use plain HTTP for the source registry' });
  return sourceOptions(registryOptions(withPush));
}

/** The options of every command that talks to a registry: credentials, TLS, retries, logs. */
function registryOptions<T>(y: Argv<T>) {
  return y
    .option('plain-http', { type: 'boolean', describe: 'use plain HTTP for the registry' })
    .option('creds', { type: 'string', requiresArg: true, describe: 'USER[:PASSWORD] for the registry (prefer --password-stdin: arguments are visible to other users)' })
    .option('username', { type: 'string', requiresArg: true, describe: 'user name for the registry; the password comes from --password-stdin' })
    .option('password-stdin', { type: 'boolean', describe: 'read the password from stdin' })
    .option('authfile', { type: 'string', requiresArg: true, describe: "credentials file in Docker's config.json format, looked in before ~/.docker/config.json" })
    .option('tls-verify', { type: 'boolean', default: true, describe: "verify the registry's TLS certificate (--tls-verify=false: don't, and warn)" })
    .option('ca-file', { type: 'string', requiresArg: true, describe: 'PEM file of a CA to trust besides the system CAs' })
    .option('cert-dir', { type: 'string', requiresArg: true, describe: 'directory of *.crt CAs and NAME.cert/NAME.key client certificates (default /etc/docker/certs.d/HOST:PORT)' })
    .option('log-level', { type: 'string', requiresArg: true, default: 'warn', describe: 'log on stderr from: trace, debug, info, warn, error, silent' })
    .option('log-format', { type: 'string', requiresArg: true, default: 'auto', describe: 'log lines as text (rxpush: warning: ...) or as json (pino); auto: text on a terminal only' })
    .option('retries', { type: 'string', requiresArg: true, describe: 'retries of a failed request or upload, at most (default: as many as fit in 60 s; 0: none)' })
    .option('timeout', { type: 'string', requiresArg: true, describe: 'longest wait on the registry (connecting, an answer, a pause in one): 30s, 2m, 1m30s' });
}

/** The options of commands that read a local source (push, inspect). */
function sourceOptions<T>(y: Argv<T>) {
  return y
    .option('data-root', { type: 'string', requiresArg: true, describe: "Docker's data root, for docker-root: sources (default /var/lib/docker)" })
    .option('storage-driver', { type: 'string', requiresArg: true, describe: 'for docker-root: sources: the storage driver whose images to read, when the data root has several' });
}

function version(): string {
  const manifest = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string };
  return manifest.version;
}

/** The options the parser knew when it failed (its command's among them: the builder had run), or none if it cannot say. */
function optionNames(parser: unknown): string[] {
  // getOptions() is yargs's, left out of its type declarations.
  const options = (parser as { getOptions?: () => { key?: Record<string, unknown> } } | undefined)?.getOptions?.();
  return Object.keys(options?.key ?? {});
}

/** The name of the first `--option` in `argv` (before `--`) that is not one of `known` (nor `--no-` one of them). */
function firstUnknownOption(argv: readonly string[], known: readonly string[]): string | undefined {
  if (known.length === 0) return undefined;
  for (const arg of argv) {
    if (arg === '--') return undefined;
    if (!arg.startsWith('--')) continue;
    const name = arg.slice(2).split('=')[0] ?? '';
    if (!known.includes(name) && !(name.startsWith('no-') && known.includes(name.slice(3)))) return name;
  }
  return undefined;
}

/** yargs's message as one line, naming options the way the user typed them. */
function usageMessage(error: unknown, argv: readonly string[], command: string, known: readonly string[]): string {
  const message = error instanceof Error ? error.message : String(error);
  const positionals = /^Not enough non-option arguments: got (\d+)/.exec(message);
  if (positionals) {
    // An unknown option takes the next word as its value (`--frobnicate oci:./image R/app` leaves DEST missing): it is what is wrong.
    const unknown = firstUnknownOption(argv, known);
    if (unknown !== undefined) return `unknown option --${unknown}${suggestOption(unknown, known)}`;
    if (command === 'verify') return 'missing DEST';
    if (command === 'inspect') return 'missing SOURCE or DEST';
    return positionals[1] === '0' ? 'missing SOURCE and DEST' : 'missing DEST';
  }
  const needsValue = /^Not enough arguments following: (.+)$/.exec(message);
  if (needsValue) return `--${needsValue[1]} needs a value`;
  const unknown = /^Unknown arguments?: ([^,]+)/.exec(message);
  if (unknown) {
    const name = unknown[1] ?? '';
    const typed = argv.find((arg) => arg === `--${name}` || arg.startsWith(`--${name}=`) || arg === `-${name}`);
    if (typed === undefined) return `unexpected argument ${quote(name)}`;
    // A long option is matched against the command's; a one-letter one has too many neighbours to guess.
    return `unknown option ${typed.split('=')[0]}${typed.startsWith('--') ? suggestOption(name, known) : ''}`;
  }
  const oneLine = message.replace(/\s*\n\s*/g, ' ');
  return oneLine.charAt(0).toLowerCase() + oneLine.slice(1);
}
