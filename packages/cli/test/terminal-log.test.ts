import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import { commandLogger } from '../src/run-push.ts';
import { terminalLog, terminalLogLine } from '../src/terminal-log.ts';

const line = (fields: Record<string, unknown>): string => `${JSON.stringify({ time: 1796150000000, pid: 7, hostname: 'vm', ...fields })}\n`;

/** A stderr that records what is written, a terminal or not. */
function stderr(isTTY: boolean): { isTTY: boolean; text: string; write(text: string): boolean } {
  return {
    isTTY,
    text: '',
    write(text: string) {
      this.text += text;
      return true;
    },
  };
}

describe('terminalLogLine', () => {
  it('prints a warning or an error as its message alone, as docker and skopeo do', () => {
    const warning = line({ level: 40, pkg: 'blob-checker', dir: '/x', msg: 'digest cache write failed (ENOTDIR); going on without it' });
    assert.equal(terminalLogLine(warning), 'rxpush: warning: digest cache write failed (ENOTDIR); going on without it\n');
    assert.equal(terminalLogLine(line({ level: 50, msg: 'broken' })), 'rxpush: error: broken\n');
  });

  it('follows a debug line with its fields, values as JSON', () => {
    const debug = line({ level: 20, pkg: 'uploader', key: 'sha256:ab', offset: 4, msg: 'resuming the upload' });
    assert.equal(terminalLogLine(debug), 'rxpush: debug: resuming the upload pkg="uploader" key="sha256:ab" offset=4\n');
  });

  it('escapes control characters a registry may have put in a message or a field', () => {
    const hostile = line({ level: 20, msg: 'a\u001b]0;pwned\u0007b', reason: 'c\u009bd\u202ee' });
    const shown = terminalLogLine(hostile);
    assert.equal(shown, 'rxpush: debug: a\\x1b]0;pwned\\x07b reason="c\\x9bd\\u202ee"\n');
    assert.doesNotMatch(shown, /[\u0000-\u0009\u000b-\u001f\u007f-\u009f\u202e]/);
  });

  it('leaves a line that is not pino\'s as it is, escaped', () => {
    assert.equal(terminalLogLine('not json \u001b[2J'), 'not json \\x1b[2J\n');
    assert.equal(terminalLogLine('[1,2]'), '[1,2]\n');
  });

  it('writes each line of a write as a line of its own', () => {
    const out = stderr(true);
    terminalLog(out).write(`${line({ level: 40, msg: 'one' })}${line({ level: 40, msg: 'two' })}`);
    assert.equal(out.text, 'rxpush: warning: one\nrxpush: warning: two\n');
  });
});

describe('commandLogger', () => {
  it('writes readable lines to a terminal, with secrets redacted before they are written', () => {
    const out = stderr(true);
    const logger = commandLogger('debug', 'auto', out);
    logger.warn({ pkg: 'registry-client' }, 'TLS verification is off');
    logger.debug({ headers: { authorization: 'Bearer s3cret' }, password: 'hunter2' }, 'request');
    const lines = out.text.trimEnd().split('\n');
    assert.equal(lines[0], 'rxpush: warning: TLS verification is off');
    assert.match(lines[1]!, /^rxpush: debug: request headers=\{"authorization":"\[Redacted\]"\} password="\[Redacted\]"$/);
    assert.doesNotMatch(out.text, /s3cret|hunter2/);
  });

  it("writes pino's JSON lines anywhere else (a pipe, a file), for programs to read", () => {
    const out = stderr(false);
    commandLogger('warn', 'auto', out).warn({ pkg: 'blob-checker' }, 'cache given up');
    const entry = JSON.parse(out.text) as Record<string, unknown>;
    assert.equal(entry['level'], 40);
    assert.equal(entry['msg'], 'cache given up');
  });
});
