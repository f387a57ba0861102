/** Longest part of a word from the command line that a usage error repeats. */
const SHOWN = 80;

/**
 * A word from the command line, quoted for a usage error, and cut when long: a pasted blob of text given as an
 * option's value should not make the one-line error thousands of characters wide. (Control characters are escaped
 * where the message is written.) Core cuts a document's values the same way; this one is the CLI's own because
 * parse-args runs on every start, `--help` included, and importing core there loads all of it (77 KB of bundle).
 *
 * @example quote('5 MB') // '"5 MB"'
 */
export function quote(word: string): string {
  return `"${word.length > SHOWN ? `${word.slice(0, SHOWN)}…` : word}"`;
}
