import { PushError } from '@rxpush/core';

/** One challenge of a WWW-Authenticate header (RFC 7235): its scheme and parameters. */
export interface Challenge {
  /** The auth scheme in lower case (`bearer`, `basic`, …): schemes are case-insensitive. */
  readonly scheme: string;
  /** Parameters by lower-cased name, values unquoted. A Map, so a name like `__proto__` is only a name. */
  readonly params: ReadonlyMap<string, string>;
  /** The token68 form (`Negotiate abc==`), which some schemes use instead of parameters. */
  readonly token68?: string;
}

/** A WWW-Authenticate header rxpush cannot read; the registry (or a proxy) sent something broken. */
export class ChallengeParseError extends PushError {
  static override readonly brand = 'INVALID_CHALLENGE';
  override readonly name = 'ChallengeParseError';
  /** The header as received (capped), for logs. */
  readonly header: string;
  /** Where in the header parsing stopped (0-based). */
  readonly position: number;
  constructor(header: string, position: number, reason: string) {
    super(
      'INVALID_CHALLENGE',
      `cannot parse the registry's WWW-Authenticate header ${shown(header)} at character ${position + 1}: ${reason}; the registry or a proxy in front of it is misconfigured`,
    );
    this.header = header.slice(0, MAX_HEADER);
    this.position = position;
  }
}

/** Longer headers are refused: no registry needs more, and the parser should not be a way to burn CPU. */
const MAX_HEADER = 16 * 1024;
// RFC 7230 tchar.
const TCHAR = /[!#$%&'*+\-.^_`|~0-9A-Za-z]/;
const TOKEN68 = /^[A-Za-z0-9\-._~+/]+=*/;

/**
 * Parses a WWW-Authenticate header into its challenges: several per header, comma-separated; parameters
 * in any order, as tokens or quoted strings with `\` escapes; scheme and parameter names case-insensitive.
 *
 * @throws {ChallengeParseError} for anything the RFC 7235 grammar does not allow: an unterminated quoted
 *   string, a missing `=` or value, a repeated parameter, control characters, a header over 16 KiB.
 * @example
 * parseChallenges('Bearer realm="https://auth.example/token",service="registry.example", Basic realm="r"')
 * // [{ scheme: 'bearer', params: Map { realm → …, service → … } }, { scheme: 'basic', params: Map { realm → 'r' } }]
 */
export function parseChallenges(header: string): Challenge[] {
  if (header.length > MAX_HEADER) throw new ChallengeParseError(header, MAX_HEADER, 'the header is longer than 16 KiB');
  const scanner = new Scanner(header);
  const challenges: Challenge[] = [];
  for (;;) {
    scanner.skipListSeparators();
    if (scanner.atEnd()) break;
    challenges.push(readChallenge(scanner));
  }
  if (challenges.length === 0) throw new ChallengeParseError(header, 0, 'it names no auth scheme');
  return challenges;
}

function readChallenge(s: Scanner): Challenge {
  const scheme = s.token();
  if (scheme === '') s.fail('expected an auth scheme (a token such as Bearer or Basic)');
  const params = new Map<string, string>();
  const afterScheme = s.position;
  s.skipSpaces();
  if (s.atEnd() || s.peek() === ',') return { scheme: scheme.toLowerCase(), params };
  if (s.position === afterScheme) s.fail(`expected a space after the scheme "${scheme}"`);

  const token68 = s.token68();
  if (token68 !== undefined) return { scheme: scheme.toLowerCase(), params, token68 };

  for (;;) {
    const nameAt = s.position;
    const name = s.token();
    if (name === '') s.fail('expected a parameter name');
    s.skipSpaces();
    if (s.peek() !== '=') s.fail(`expected "=" after the parameter "${name}"`);
    s.advance();
    s.skipSpaces();
    const isQuoted = s.peek() === '"';
    const value = isQuoted ? s.quoted() : s.bareValue();
    // An empty quoted string is a value; an empty token is a missing one.
    if (value === '' && !isQuoted) s.fail(`expected a value for the parameter "${name}"`);
    const key = name.toLowerCase();
    if (params.has(key)) s.fail(`the parameter "${name}" appears twice`, nameAt);
    params.set(key, value);

    s.skipSpaces();
    if (s.atEnd()) break;
    if (s.peek() !== ',') s.fail('expected "," between parameters or challenges');
    s.skipListSeparators();
    if (s.atEnd()) break;
    // After a comma comes either another parameter (`name=`) or the next challenge's scheme.
    if (!s.startsParameter()) break;
  }
  return { scheme: scheme.toLowerCase(), params };
}

/** A cursor over the header; every failure names the position. */
class Scanner {
  position = 0;
  constructor(readonly text: string) {}

  atEnd(): boolean {
    return this.position >= this.text.length;
  }

  peek(): string | undefined {
    return this.text[this.position];
  }

  advance(): void {
    this.position += 1;
  }

  fail(reason: string, at = this.position): never {
    throw new ChallengeParseError(this.text, at, reason);
  }

  skipSpaces(): void {
    while (this.peek() === ' ' || this.peek() === '\t') this.position += 1;
  }

  /** Skips white space and empty list elements (`a, , b` is allowed by RFC 7230's list rule). */
  skipListSeparators(): void {
    while (this.peek() === ' ' || this.peek() === '\t' || this.peek() === ',') this.position += 1;
  }

  token(): string {
    const start = this.position;
    while (!this.atEnd() && TCHAR.test(this.text[this.position] ?? '')) this.position += 1;
    return this.text.slice(start, this.position);
  }

  /**
   * An unquoted value. RFC 7235 allows only a token, but registries send URLs unquoted
   * (`realm=https://…`), so any visible character up to a comma, quote or white space is taken.
   */
  bareValue(): string {
    const start = this.position;
    while (!this.atEnd() && /[\x21-\x7e]/.test(this.text[this.position] ?? '') && this.peek() !== ',' && this.peek() !== '"') this.position += 1;
    return this.text.slice(start, this.position);
  }

  /** A token68 value when that is what follows (it runs to the end or a comma), else undefined and no move. */
  token68(): string | undefined {
    const match = TOKEN68.exec(this.text.slice(this.position));
    if (match === null) return undefined;
    let end = this.position + match[0].length;
    while (this.text[end] === ' ' || this.text[end] === '\t') end += 1;
    if (end < this.text.length && this.text[end] !== ',') return undefined;
    // `name=value` also matches the token68 characters up to `=`; only a run ending the element is token68.
    this.position += match[0].length;
    return match[0];
  }

  /** True when the text here is `token OWS "="`: a parameter, not the next challenge's scheme. */
  startsParameter(): boolean {
    const start = this.position;
    const name = this.token();
    this.skipSpaces();
    const isParameter = name !== '' && this.peek() === '=';
    this.position = start;
    return isParameter;
  }

  /** A quoted-string, unescaped: `\x` stands for `x`; control characters other than tab are refused. */
  quoted(): string {
    const start = this.position;
    this.position += 1;
    let value = '';
    for (;;) {
      const ch = this.peek();
      if (ch === undefined) this.fail('a quoted string is not terminated', start);
      this.position += 1;
      if (ch === '"') return value;
      if (ch === '\\') {
        const next = this.peek();
        if (next === undefined) this.fail('a quoted string ends in a lone "\\"', start);
        this.position += 1;
        value += next;
        continue;
      }
      if (ch !== '\t' && (ch < ' ' || ch === '\u007f')) this.fail('a quoted string contains a control character', this.position - 1);
      value += ch;
    }
  }
}

function shown(header: string): string {
  const flat = header.replace(/[\u0000-\u001f\u007f]/g, '?');
  return JSON.stringify(flat.length > 200 ? `${flat.slice(0, 200)}…` : flat);
}
