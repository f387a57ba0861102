import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import { parseArgs, parsePush, type ParsedArgs, type RawArgs } from '../src/parse-args.ts';

/** The same command line through yargs's full command parser: `--help=false` asks for no help but takes the long way. */
function fullParse(argv: string[]): ParsedArgs {
  const parsed = parseArgs([...argv, '--help=false']);
  if (parsed.kind !== 'push') return parsed;
  // yargs also names the command's positionals in kebab case ('S-o-u-r-c-e'); nothing reads those.
  const { help: _help, h: _h, $0: _zero, 'S-o-u-r-c-e': _source, 'D-e-s-t': _dest, ...args } = parsed.args;
  return { kind: 'push', args };
}

function shortParse(argv: string[]): ParsedArgs | undefined {
  const parsed = parsePush(argv.slice(1));
  if (parsed === undefined) return undefined;
  const { $0: _zero, ...args } = parsed;
  return { kind: 'push', args };
}

const PUSHES: string[][] = [
  ['push', 'oci:./image:latest', 'localhost:5000/app:1.0'],
  ['push', 'docker-archive:a.tar:x:1', 'localhost:5000/app', '--tag', 'a', '--tag', 'b', '--all-tags', '-q', '--concurrency', '8'],
  ['push', '--chunk-size=5MB', 'oci:1e3', '127.0.0.1:5000/123', '--tls-verify=false', '--no-plain-http', '--log-level', 'debug'],
  ['push', 'oci:x', 'localhost:5000/app', '--creds', 'alice:-h', '--progress', 'json', '--digestfile', 'd.txt'],
];

describe('parseArgs', () => {
  it('parses a push without help as the full command parser does', () => {
    for (const argv of PUSHES) {
      const short = shortParse(argv);
      assert.equal(short?.kind, 'push', argv.join(' '));
      assert.deepEqual(short, fullParse(argv), argv.join(' '));
    }
  });

  it('leaves what is not a good push to the full parser', () => {
    for (const rest of [[], ['oci:x'], ['oci:x', 'r/a', 'more'], ['oci:x', 'r/a', '--bogus'], ['oci:x', 'r/a', '--tag']]) {
      assert.equal(parsePush(rest), undefined, rest.join(' '));
    }
  });

  it('words usage errors of a push as yargs does', () => {
    assert.deepEqual(parseArgs(['push']), { kind: 'usage', message: "missing SOURCE and DEST; see 'rxpush push --help'" });
    assert.deepEqual(parseArgs(['push', 'oci:x']), { kind: 'usage', message: "missing DEST; see 'rxpush push --help'" });
    assert.deepEqual(parseArgs(['push', 'oci:x', 'r/a', 'more']), { kind: 'usage', message: `unexpected argument "more"; see 'rxpush push --help'` });
    assert.deepEqual(parseArgs(['push', 'oci:x', 'r/a', '--bogus']), { kind: 'usage', message: "unknown option --bogus; see 'rxpush push --help'" });
    assert.deepEqual(parseArgs(['push', 'oci:x', 'r/a', '--tag']), { kind: 'usage', message: "--tag needs a value; see 'rxpush push --help'" });
  });

  it('repeats at most 80 characters of a word it refuses, so the error stays one readable line', () => {
    const pasted = 'x'.repeat(3000);
    assert.deepEqual(parseArgs(['push', 'oci:x', 'r/a', pasted]), { kind: 'usage', message: `unexpected argument "${'x'.repeat(80)}…"; see 'rxpush push --help'` });
    const unknown = parseArgs([pasted]);
    assert.equal(unknown.kind === 'usage' && unknown.message.startsWith(`unknown command "${'x'.repeat(80)}…"`), true, JSON.stringify(unknown).slice(0, 300));
  });

  it('says which known option or command a typo is near, and what skopeo copy\'s names are called here', () => {
    const message = (argv: string[]): string | undefined => {
      const parsed = parseArgs(argv);
      return parsed.kind === 'usage' ? parsed.message : undefined;
    };
    assert.equal(message(['push', 'oci:x', 'r/a', '--concurency', '2']), "unknown option --concurency (did you mean --concurrency?); see 'rxpush push --help'");
    assert.equal(message(['push', 'oci:x', 'r/a', '--all-tag']), "unknown option --all-tag (did you mean --all-tags?); see 'rxpush push --help'");
    assert.equal(message(['copy', 'docker://r/a', 'r/b', '--src-cred', 'u:p']), "unknown option --src-cred (did you mean --src-creds?); see 'rxpush copy --help'");
    assert.equal(message(['verify', 'r/a', '--kye', 'k.pub']), "unknown option --kye (did you mean --key?); see 'rxpush verify --help'");
    assert.equal(message(['push', 'oci:x', 'r/a', '--dest-tls-verify=false']), "unknown option --dest-tls-verify (skopeo's name; rxpush's is --tls-verify); see 'rxpush push --help'");
    assert.equal(message(['copy', 'docker://r/a', 'r/b', '--override-arch', 'arm64']), "unknown option --override-arch (skopeo's name; rxpush's is --platform); see 'rxpush copy --help'");
    assert.equal(message(['push', 'oci:x', 'r/a', '--retry-times', '3']), "unknown option --retry-times (skopeo's name; rxpush's is --retries); see 'rxpush push --help'");
    assert.equal(message(['pus', 'oci:x', 'r/a']), `unknown command "pus" (did you mean push?); see 'rxpush --help'`);
    // Nothing near, or a one-letter option: no guess.
    assert.equal(message(['push', 'oci:x', 'r/a', '--frobnicate']), "unknown option --frobnicate; see 'rxpush push --help'");
    assert.equal(message(['pull', 'a', 'b']), `unknown command "pull"; see 'rxpush --help'`);
    assert.match(message(['push', 'oci:x', 'r/a', '-x']) ?? '', /^unknown option -x; /);
  });

  it('blames an unknown option that took the next word as its value, not the positional it left missing', () => {
    assert.deepEqual(parseArgs(['push', '--frobnicate', 'oci:x', 'r/a']), { kind: 'usage', message: "unknown option --frobnicate; see 'rxpush push --help'" });
    assert.deepEqual(parseArgs(['push', '--concurency', '2', 'oci:x']), { kind: 'usage', message: "unknown option --concurency (did you mean --concurrency?); see 'rxpush push --help'" });
    // A known option's --no- form is known too: the positionals are what is missing then.
    assert.deepEqual(parseArgs(['push', '--no-resume', 'oci:x']), { kind: 'usage', message: "missing DEST; see 'rxpush push --help'" });
  });

  it("reads a boolean option's =VALUE as skopeo's Go flags do, and refuses any other value", () => {
    const push = (...options: string[]): RawArgs => {
      const parsed = parseArgs(['push', 'oci:x', 'r/a', ...options]);
      assert.equal(parsed.kind, 'push', JSON.stringify(parsed));
      return (parsed as { args: RawArgs }).args;
    };
    // yargs alone reads every value but `true` as false: `--tls-verify=True` turned TLS verification off.
    for (const word of ['1', 't', 'T', 'TRUE', 'true', 'True']) {
      assert.equal(push(`--tls-verify=${word}`)['tls-verify'], true, word);
      assert.equal(push(`--tls-verify=${word}`, '--help=false')['tlsVerify'], true, `${word}, full parser`);
    }
    for (const word of ['0', 'f', 'F', 'FALSE', 'false', 'False']) assert.equal(push(`--tls-verify=${word}`)['tls-verify'], false, word);
    assert.equal(push('--all-tags=1')['allTags'], true);
    assert.equal(push('-q=T')['quiet'], true);
    assert.equal(push('--src-tls-verify=0')['srcTlsVerify'], false);
    // A string option's value is its own: `--tag=1` is the tag "1".
    assert.deepEqual(push('--tag=1')['tag'], '1');

    const usage = (argv: string[]): string | undefined => {
      const parsed = parseArgs(argv);
      return parsed.kind === 'usage' ? parsed.message : undefined;
    };
    assert.equal(usage(['push', 'oci:x', 'r/a', '--tls-verify=maybe']), `--tls-verify takes true or false, not "maybe"; see 'rxpush push --help'`);
    assert.equal(usage(['push', 'oci:x', 'r/a', '--tls-verify=yes', '--help=false']), `--tls-verify takes true or false, not "yes"; see 'rxpush push --help'`);
    assert.equal(usage(['copy', 'r/a', 'r/b', '--src-tls-verify=']), `--src-tls-verify takes true or false, not ""; see 'rxpush copy --help'`);
    assert.equal(usage(['inspect', 'r/a', '--raw=no']), `--raw takes true or false, not "no"; see 'rxpush inspect --help'`);
    assert.equal(usage(['keygen', '--out', 'k', '--force=y']), `--force takes true or false, not "y"; see 'rxpush keygen --help'`);
    // After `--`, words are positionals, not options.
    assert.equal(usage(['push', 'oci:x', '--', '--tls-verify=maybe']), undefined);
  });

  it('prints help and the version when asked, also among other options', () => {
    for (const argv of [['push', 'oci:x', 'r/a', '--help'], ['push', '-qh'], ['--help'], ['--version']]) {
      const parsed = parseArgs(argv);
      assert.equal(parsed.kind, 'print', argv.join(' '));
    }
    const help = parseArgs(['push', '-h']);
    assert.ok(help.kind === 'print' && help.text.includes('--compression'));
  });
});
