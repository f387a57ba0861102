import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import { ChallengeParseError, parseChallenges } from '../src/index.ts';
import type { Challenge } from '../src/index.ts';

/** A challenge as plain data, for comparisons. */
const plain = (c: Challenge) => ({ scheme: c.scheme, params: Object.fromEntries(c.params), ...(c.token68 !== undefined && { token68: c.token68 }) });
const parse = (header: string) => parseChallenges(header).map(plain);

describe('parseChallenges', () => {
  it("reads distribution's Bearer challenge", () => {
    assert.deepEqual(parse('Bearer realm="https://auth.example/token",service="registry.example",scope="repository:app:pull,push"'), [
      { scheme: 'bearer', params: { realm: 'https://auth.example/token', service: 'registry.example', scope: 'repository:app:pull,push' } },
    ]);
  });

  it('reads parameters in any order, with spaces around "=" and after commas', () => {
    assert.deepEqual(parse('Bearer service = "r" ,  realm="https://a/t"'), [{ scheme: 'bearer', params: { service: 'r', realm: 'https://a/t' } }]);
  });

  it('treats scheme and parameter names case-insensitively, and keeps values as sent', () => {
    assert.deepEqual(parse('BEARER Realm="https://A/T",SERVICE=Reg'), [{ scheme: 'bearer', params: { realm: 'https://A/T', service: 'Reg' } }]);
  });

  it('reads several challenges in one header', () => {
    assert.deepEqual(parse('Basic realm="r1", Bearer realm="https://a/t", service="s",  Negotiate'), [
      { scheme: 'basic', params: { realm: 'r1' } },
      { scheme: 'bearer', params: { realm: 'https://a/t', service: 's' } },
      { scheme: 'negotiate', params: {} },
    ]);
  });

  it('unescapes quoted strings and keeps commas and "=" inside them', () => {
    assert.deepEqual(parse('Bearer realm="https://a/t?x=1,y=2",error_description="say \\"hi\\" \\\\ bye"'), [
      { scheme: 'bearer', params: { realm: 'https://a/t?x=1,y=2', error_description: 'say "hi" \\ bye' } },
    ]);
  });

  it('accepts token values, empty quoted values and empty list elements', () => {
    assert.deepEqual(parse(', Bearer realm=https://a/t, , error=invalid_token,scope=""'), [
      { scheme: 'bearer', params: { realm: 'https://a/t', error: 'invalid_token', scope: '' } },
    ]);
  });

  it('reads the token68 form', () => {
    assert.deepEqual(parse('Negotiate abc+/def==, Basic realm="x"'), [
      { scheme: 'negotiate', params: {}, token68: 'abc+/def==' },
      { scheme: 'basic', params: { realm: 'x' } },
    ]);
  });

  it('keeps a parameter named __proto__ as a parameter', () => {
    const [challenge] = parseChallenges('Bearer __proto__="x",realm="r"');
    assert.equal(challenge?.params.get('__proto__'), 'x');
    assert.equal(challenge?.params.get('realm'), 'r');
  });

  const malformed: [string, string, RegExp][] = [
    ['an empty header', '', /names no auth scheme/],
    ['only commas', ' , ,', /names no auth scheme/],
    ['an unterminated quoted string', 'Bearer realm="https://a/t', /not terminated/],
    ['a lone backslash at the end', 'Bearer realm="abc\\', /lone/],
    ['a missing "="', 'Bearer realm "x"', /expected "=" after the parameter "realm"/],
    ['a missing value', 'Bearer realm=,service="s"', /expected/],
    ['a repeated parameter', 'Bearer realm="a",realm="b"', /appears twice/],
    ['a parameter without a comma before the next', 'Bearer realm="a" service="b"', /expected ","/],
    ['a control character in a quoted string', 'Bearer realm="a\u0001b"', /control character/],
    ['no space after the scheme', 'Bearer="x"', /space after the scheme|auth scheme/],
    ['a scheme that is not a token', '"Bearer" realm="x"', /expected an auth scheme/],
    ['garbage after a parameter', 'Bearer realm="a";x', /expected ","/],
    ['a quote inside an unquoted value', 'Bearer realm=ab"c"', /expected ","/],
    ['a header over 16 KiB', `Bearer realm="${'a'.repeat(17_000)}"`, /longer than 16 KiB/],
  ];
  for (const [what, header, message] of malformed) {
    it(`refuses ${what} with a ChallengeParseError`, () => {
      assert.throws(
        () => parseChallenges(header),
        (error: unknown) => {
          assert.ok(error instanceof ChallengeParseError, String(error));
          assert.equal(error.code, 'INVALID_CHALLENGE');
          assert.match(error.message, message);
          assert.match(error.message, /^cannot parse the registry's WWW-Authenticate header .* at character \d+: /);
          assert.doesNotMatch(error.message, /\n/);
          return true;
        },
      );
    });
  }

  it('never throws anything but a ChallengeParseError, whatever the bytes', () => {
    // A cheap fuzz: random strings from the characters that matter to the grammar.
    const alphabet = 'Bb ear,="\\\t\u0000x=r/ealm:;';
    let seed = 42;
    const random = () => {
      seed = (seed * 1103515245 + 12345) % 2 ** 31;
      return seed / 2 ** 31;
    };
    for (let i = 0; i < 5000; i++) {
      const length = Math.floor(random() * 40);
      let header = '';
      for (let j = 0; j < length; j++) header += alphabet[Math.floor(random() * alphabet.length)];
      try {
        const challenges = parseChallenges(header);
        for (const c of challenges) assert.match(c.scheme, /^[!#$%&'*+\-.^_`|~0-9a-z]+$/);
      } catch (error) {
        assert.ok(error instanceof ChallengeParseError, `${JSON.stringify(header)} threw ${String(error)}`);
      }
    }
  });
});
