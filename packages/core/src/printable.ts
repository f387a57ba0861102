/**
 * Characters that must never reach a terminal raw: C0 controls (ESC starts escape sequences, BEL rings,
 * CR overwrites what was printed), DEL, C1 controls (CSI 0x9b starts sequences on some terminals), the line
 * and paragraph separators, and the bidirectional overrides that make text read differently from what it is.
 */
// eslint-disable-next-line no-control-regex
const UNPRINTABLE = /[\u0000-\u001f\u007f-\u009f\u2028\u2029\u202a-\u202e\u2066-\u2069]/g;

/**
 * Text from a registry, a local file or the command line, made safe to print: every control character
 * is written as its escape (`\x1b`, `\u202e`), so a crafted index.json or error body cannot move the
 * cursor, retitle the window or ring the bell. Printable text, non-ASCII letters included, is unchanged.
 *
 * @example printable('ref \u001b]0;pwned\u0007') // 'ref \\x1b]0;pwned\\x07'
 */
export function printable(text: string): string {
  return text.replace(UNPRINTABLE, (c) => {
    const code = c.charCodeAt(0);
    return code <= 0xff ? `\\x${code.toString(16).padStart(2, '0')}` : `\\u${code.toString(16).padStart(4, '0')}`;
  });
}

/**
 * Someone else's text (an error body, a message field) as a part of a one-line message: runs of whitespace
 * and C0 controls become one space, and the result is cut at `max` characters with an ellipsis, since such
 * bodies can be whole HTML pages. It is not made `printable`; that happens where messages are printed.
 *
 * @example oneLine('<html>\r\n  <body>Bad Gateway</body>\n</html>') // '<html> <body>Bad Gateway</body> </html>'
 */
export function oneLine(text: string, max = 200): string {
  // eslint-disable-next-line no-control-regex
  const flat = text.replace(/[\s\u0000-\u001f\u007f]+/g, ' ').trim();
  return flat.length > max ? `${flat.slice(0, max)}…` : flat;
}

/**
 * Why a JSON document does not parse, without quoting it: V8's SyntaxError messages carry a snippet of
 * the text (`Unexpected token 'p', "{"password": p…" is not valid JSON`), and the text may be a
 * credentials file. Gives the line and column when V8 names a position, else only what kind of error it is.
 *
 * @example jsonSyntaxReason(new SyntaxError('Unexpected end of JSON input'), '{"a":') // 'it ends in the middle of a value'
 */
export function jsonSyntaxReason(error: unknown, text: string): string {
  const message = error instanceof Error ? error.message : '';
  if (/Unexpected end of JSON input/i.test(message)) return 'it ends in the middle of a value';
  const position = /at position (\d+)/.exec(message);
  if (position !== null) {
    const at = Math.min(Number(position[1]), text.length);
    const before = text.slice(0, at);
    const line = before.split('\n').length;
    const column = at - before.lastIndexOf('\n');
    return `invalid JSON at line ${line}, column ${column}`;
  }
  return 'invalid JSON';
}
