import { printable } from '@rxpush/core';

import type { TextSink } from './progress/renderer.js';

/** pino's level numbers as a person reads them. */
const LEVEL_NAMES: Readonly<Record<number, string>> = { 10: 'trace', 20: 'debug', 30: 'info', 40: 'warning', 50: 'error', 60: 'fatal' };
/** pino's own fields of every line, which a person at a terminal has no use for. */
const BOOKKEEPING = new Set(['level', 'time', 'pid', 'hostname', 'msg']);
const WARN = 40;

/**
 * One of pino's JSON log lines as a person at a terminal reads it, as docker and skopeo print theirs: `rxpush:
 * warning: <message>`. A warning or an error says all in its message; below that (`--log-level info` and lower),
 * the line's own fields follow as ` key=value`, values as JSON. Control characters are escaped (a field may quote a
 * registry). A line that is not pino's is passed on as it is, its control characters escaped too.
 *
 * @example terminalLogLine('{"level":40,"time":1,"pid":2,"hostname":"h","msg":"cache given up"}') // 'rxpush: warning: cache given up\n'
 */
export function terminalLogLine(line: string): string {
  let entry: unknown;
  try {
    entry = JSON.parse(line);
  } catch {
    entry = undefined;
  }
  if (typeof entry !== 'object' || entry === null || Array.isArray(entry)) return `${printable(line.trimEnd())}\n`;
  const fields = entry as Record<string, unknown>;
  const level = typeof fields['level'] === 'number' ? fields['level'] : WARN;
  const message = typeof fields['msg'] === 'string' ? fields['msg'] : '';
  let out = `rxpush: ${LEVEL_NAMES[level] ?? `level ${level}`}: ${message}`;
  if (level < WARN) {
    for (const [key, value] of Object.entries(fields)) if (!BOOKKEEPING.has(key)) out += ` ${key}=${JSON.stringify(value)}`;
  }
  return `${printable(out)}\n`;
}

/**
 * A pino destination for a terminal: each line pino writes goes to `sink` as {@link terminalLogLine} makes it.
 * Redaction is pino's, done before the line is written, so what reaches the terminal is already redacted.
 *
 * @example pino({ level: 'warn' }, terminalLog(process.stderr))
 */
export function terminalLog(sink: TextSink): TextSink {
  return {
    write(text: string) {
      for (const line of text.split('\n')) if (line.trim() !== '') sink.write(terminalLogLine(line));
      return true;
    },
  };
}
