/**
 * Go's encoding/json, as far as Docker's legacy image IDs depend on it. Docker computes a v1 layer ID
 * and the config of a legacy image by unmarshalling a JSON document into a map of raw values and
 * marshalling it again: keys sorted, each raw value compacted with HTML characters escaped. Working on
 * the raw text of each value (never re-serialising parsed values) reproduces those bytes exactly.
 */

import { parseJsonObject } from '../shared/json.js';

/** The members of a JSON object as [key, raw value text]; a repeated key keeps its last value, as Go's map does. */
export function rawMembers(text: string): Map<string, string> {
  // Parsed first, so the scanner below only ever sees valid JSON.
  parseJsonObject(text, (problem) => new SyntaxError(problem));
  const members = new Map<string, string>();
  let at = skipSpace(text, text.indexOf('{') + 1);
  while (text[at] !== '}') {
    const keyEnd = endOfString(text, at);
    // A key's escapes decoded as JSON decodes a string literal.
    const key = JSON.parse(text.slice(at, keyEnd)) as string;
    const valueStart = skipSpace(text, skipSpace(text, keyEnd) + 1); // past ':'
    const valueEnd = endOfValue(text, valueStart);
    members.set(key, text.slice(valueStart, valueEnd));
    at = skipSpace(text, valueEnd);
    if (text[at] === ',') at = skipSpace(text, at + 1);
  }
  return members;
}

/** Go's `json.Compact` with HTML escaping, as `json.Marshal` applies it to a `json.RawMessage`. */
export function compactJson(raw: string): string {
  let out = '';
  let inString = false;
  let escaped = false;
  for (const char of raw) {
    if (!inString) {
      if (char === ' ' || char === '\t' || char === '\n' || char === '\r') continue;
      if (char === '"') inString = true;
      out += char;
    } else if (escaped) {
      escaped = false;
      out += char;
    } else if (char === '\\') {
      escaped = true;
      out += char;
    } else {
      if (char === '"') inString = false;
      out += HTML_ESCAPES[char] ?? char;
    }
  }
  return out;
}

/** A string as Go's `json.Marshal` writes it. */
export function goString(value: string): string {
  let out = '"';
  for (const char of value) {
    const code = char.codePointAt(0) ?? 0;
    if (char === '"' || char === '\\') out += `\\${char}`;
    else if (char === '\n') out += '\\n';
    else if (char === '\r') out += '\\r';
    else if (char === '\t') out += '\\t';
    else if (code < 0x20) out += `\\u${code.toString(16).padStart(4, '0')}`;
    else if (code >= 0xd800 && code <= 0xdfff) out += '\ufffd'; // a lone surrogate: Go writes U+FFFD
    else out += HTML_ESCAPES[char] ?? char;
  }
  return `${out}"`;
}

/** An object as Go marshals a `map[string]*json.RawMessage`: keys sorted, values compacted. */
export function goObject(members: ReadonlyMap<string, string>): string {
  const keys = [...members.keys()].sort(compareBytes);
  return `{${keys.map((key) => `${goString(key)}:${compactJson(members.get(key) ?? 'null')}`).join(',')}}`;
}

const RFC3339 = /^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d+))?(Z|[+-]\d\d:\d\d)$/;

/**
 * A `time.Time` read from JSON and written back (RFC 3339 with nanoseconds, trailing zeros dropped, a
 * zero offset as `Z`); undefined when Go would refuse to read it. Absent, it is Go's zero time.
 */
export function goTime(value: unknown): string | undefined {
  if (value === undefined || value === null) return '"0001-01-01T00:00:00Z"';
  if (typeof value !== 'string') return undefined;
  const match = RFC3339.exec(value);
  if (match === null) return undefined;
  const [, seconds, fraction = '', zone = 'Z'] = match;
  const nanos = fraction.slice(0, 9).replace(/0+$/, '');
  const offset = zone === '+00:00' || zone === '-00:00' ? 'Z' : zone;
  return `"${seconds}${nanos !== '' ? `.${nanos}` : ''}${offset}"`;
}

/** Docker's `versions.LessThan`: dotted numbers compared field by field, a field that is not a number counting as 0. */
export function versionLessThan(version: string, than: string): boolean {
  const a = version.split('.');
  const b = than.split('.');
  for (let i = 0; i < Math.max(a.length, b.length); i++) {
    const x = toInt(a[i]);
    const y = toInt(b[i]);
    if (x !== y) return x < y;
  }
  return false;
}

const HTML_ESCAPES: Readonly<Record<string, string>> = {
  '<': '\\u003c',
  '>': '\\u003e',
  '&': '\\u0026',
  '\u2028': '\\u2028',
  '\u2029': '\\u2029',
};

function toInt(field: string | undefined): number {
  return field !== undefined && /^[+-]?\d+$/.test(field) ? Number(field) : 0;
}

function compareBytes(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a), Buffer.from(b));
}

function skipSpace(text: string, at: number): number {
  while (at < text.length && ' \t\n\r'.includes(text[at] ?? '')) at++;
  return at;
}

function endOfString(text: string, at: number): number {
  for (let i = at + 1; i < text.length; i++) {
    if (text[i] === '\\') i++;
    else if (text[i] === '"') return i + 1;
  }
  return text.length;
}

function endOfValue(text: string, at: number): number {
  const first = text[at];
  if (first === '"') return endOfString(text, at);
  if (first === '{' || first === '[') {
    let depth = 0;
    for (let i = at; i < text.length; i++) {
      const char = text[i];
      if (char === '"') i = endOfString(text, i) - 1;
      else if (char === '{' || char === '[') depth++;
      else if (char === '}' || char === ']') {
        depth--;
        if (depth === 0) return i + 1;
      }
    }
    return text.length;
  }
  let i = at;
  while (i < text.length && !',}] \t\n\r'.includes(text[i] ?? '')) i++;
  return i;
}
