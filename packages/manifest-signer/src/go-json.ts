/**
 * JSON written the way Go's encoding/json writes it, so documents Docker generated (schema 1 manifests, their
 * v1Compatibility strings, libtrust's signatures) come out byte for byte as Docker's did.
 */

/** Go's string encoding: HTML-safe (<, >, & escaped), \b and \f as \u00XX, U+2028/U+2029 escaped. */
export function goString(value: string): string {
  let out = '"';
  for (const char of value) {
    const code = char.codePointAt(0)!;
    if (char === '"') out += '\\"';
    else if (char === '\\') out += '\\\\';
    else if (char === '\n') out += '\\n';
    else if (char === '\r') out += '\\r';
    else if (char === '\t') out += '\\t';
    else if (code < 0x20 || char === '<' || char === '>' || char === '&' || code === 0x2028 || code === 0x2029) {
      out += `\\u${code.toString(16).padStart(4, '0')}`;
    } else if (code >= 0xd800 && code <= 0xdfff) out += '\\ufffd';
    else out += char;
  }
  return `${out}"`;
}

/**
 * Go's `json.Marshal` (indent undefined) or `json.MarshalIndent(v, "", indent)` of plain JSON values.
 * Object (and Map) members are written in insertion order, as Go writes struct fields in declaration order.
 */
export function goMarshal(value: unknown, indent?: string, depth = 0): string {
  if (value === null || value === undefined) return 'null';
  if (typeof value === 'string') return goString(value);
  if (typeof value === 'number' || typeof value === 'boolean') return JSON.stringify(value);
  if (value instanceof RawJson) return value.text;
  const newline = indent === undefined ? '' : `\n${indent.repeat(depth + 1)}`;
  const close = indent === undefined ? '' : `\n${indent.repeat(depth)}`;
  const colon = indent === undefined ? ':' : ': ';
  if (Array.isArray(value)) {
    if (value.length === 0) return '[]';
    return `[${value.map((item) => newline + goMarshal(item, indent, depth + 1)).join(',')}${close}]`;
  }
  // A Map keeps any key order (an object would put integer-like keys first).
  const all = value instanceof Map ? [...(value as Map<string, unknown>)] : Object.entries(value as Record<string, unknown>);
  const entries = all.filter(([, member]) => member !== undefined);
  if (entries.length === 0) return '{}';
  return `{${entries.map(([key, member]) => newline + goString(key) + colon + goMarshal(member, indent, depth + 1)).join(',')}${close}}`;
}

/** JSON text taken as it is (Go's json.RawMessage): goMarshal writes it unchanged. */
export class RawJson {
  constructor(readonly text: string) {}
}

/**
 * The members of a JSON object as raw, compacted text, in document order, the way Go reads an object into
 * `map[string]*json.RawMessage` and writes it back: insignificant white space removed, strings HTML-escaped,
 * every value otherwise exactly as written (nested key order, number spelling). A later duplicate key wins.
 *
 * @throws {SyntaxError} when the text is not a JSON object.
 */
export function rawMembers(json: string): Map<string, RawJson> {
  const compact = compactJson(json);
  JSON.parse(compact);
  if (!compact.startsWith('{')) throw new SyntaxError('not a JSON object');
  const members = new Map<string, RawJson>();
  let i = 1;
  while (i < compact.length - 1) {
    const keyEnd = skipValue(compact, i);
    const key = JSON.parse(compact.slice(i, keyEnd)) as string;
    const valueStart = keyEnd + 1;
    const valueEnd = skipValue(compact, valueStart);
    members.set(key, new RawJson(compact.slice(valueStart, valueEnd)));
    i = valueEnd + 1;
  }
  return members;
}

/** Go's json.Compact with HTML escaping: white space outside strings dropped. */
export function compactJson(json: string): string {
  let out = '';
  let inString = false;
  for (let i = 0; i < json.length; i++) {
    const char = json[i]!;
    if (inString) {
      if (char === '\\') {
        out += char + json[++i];
        continue;
      }
      if (char === '"') inString = false;
      out += char === '<' ? '\\u003c' : char === '>' ? '\\u003e' : char === '&' ? '\\u0026' : char === '\u2028' ? '\\u2028' : char === '\u2029' ? '\\u2029' : char;
    } else if (char === '"') {
      inString = true;
      out += char;
    } else if (char !== ' ' && char !== '\n' && char !== '\r' && char !== '\t') out += char;
  }
  return out;
}

/** The index just past the compact JSON value starting at `start`. */
function skipValue(text: string, start: number): number {
  let depth = 0;
  let inString = false;
  for (let i = start; i < text.length; i++) {
    const char = text[i]!;
    if (inString) {
      if (char === '\\') i++;
      else if (char === '"') {
        inString = false;
        if (depth === 0) return i + 1;
      }
    } else if (char === '"') inString = true;
    else if (char === '{' || char === '[') depth++;
    else if (char === '}' || char === ']') {
      depth--;
      if (depth === 0) return i + 1;
      if (depth < 0) return i;
    } else if (depth === 0 && (char === ',' || char === ':')) return i;
  }
  return text.length;
}

/**
 * A timestamp as Go's time.Time marshals it (RFC 3339 with nanoseconds, trailing zeros dropped, `Z` for UTC).
 * Text that is not a timestamp becomes Go's zero time, as unmarshalling a missing field would.
 */
export function goTime(value: unknown): string {
  const match = typeof value === 'string' ? /^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d+))?(Z|z|[+-]\d\d:\d\d)$/.exec(value) : null;
  if (match === null) return '0001-01-01T00:00:00Z';
  const fraction = (match[2] ?? '').slice(0, 9).replace(/0+$/, '');
  const zone = match[3] === 'Z' || match[3] === 'z' || match[3] === '+00:00' || match[3] === '-00:00' ? 'Z' : match[3];
  return `${match[1]}${fraction === '' ? '' : `.${fraction}`}${zone}`;
}
