import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import { jsonSyntaxReason, oneLine, printable } from '@rxpush/core';

describe('printable', () => {
  it('escapes what a terminal would act on: ESC, BEL, CR, DEL, C1 controls and bidi overrides', () => {
    assert.equal(printable('a\u001b]0;title\u0007b'), 'a\\x1b]0;title\\x07b');
    assert.equal(printable('over\rwrite\u007f\u009b2J'), 'over\\x0dwrite\\x7f\\x9b2J');
    assert.equal(printable('admin\u202etxt.exe'), 'admin\\u202etxt.exe');
  });

  it('leaves printable text alone, other scripts included', () => {
    assert.equal(printable('registry.example/app:1.0 → 404 «nicht gefunden» 見つからない'), 'registry.example/app:1.0 → 404 «nicht gefunden» 見つからない');
  });
});

describe('oneLine', () => {
  it('flattens line breaks, tabs and controls into single spaces and trims', () => {
    assert.equal(oneLine('\n <html>\r\n\t<body>Bad\u0000\u007fGateway</body>\n</html>\n'), '<html> <body>Bad Gateway</body> </html>');
  });

  it('cuts long text at the length given, with an ellipsis', () => {
    assert.equal(oneLine('x'.repeat(201)), `${'x'.repeat(200)}…`);
    assert.equal(oneLine('x'.repeat(200)), 'x'.repeat(200));
    assert.equal(oneLine('abcdef', 3), 'abc…');
  });
});

describe('jsonSyntaxReason', () => {
  const reasonFor = (text: string): string => {
    try {
      JSON.parse(text);
    } catch (error) {
      return jsonSyntaxReason(error, text);
    }
    return assert.fail('the text must not parse');
  };

  it('gives a line and column, never the text around the error', () => {
    assert.equal(reasonFor('{\n  "password": "hunter2" "user": 1\n}'), 'invalid JSON at line 2, column 25');
    assert.equal(reasonFor('{"password":'), 'it ends in the middle of a value');
    // V8 quotes the text in these messages, and names no position.
    assert.equal(reasonFor('["hunter2",]'), 'invalid JSON');
    assert.equal(reasonFor('{"password":hunter2}'), 'invalid JSON');
  });
});
