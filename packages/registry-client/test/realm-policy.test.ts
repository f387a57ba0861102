import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import { credentialRefusal } from '../src/index.ts';
import { isInternalHost } from '../src/auth/realm-policy.ts';
import { coversScopes, normalizeScopes, scopeKey } from '../src/auth/scopes.ts';

const refusal = (target: string, registry: string) => credentialRefusal(new URL(target), new URL(registry));

describe('credentialRefusal', () => {
  it('allows an HTTPS realm on a public host', () => {
    assert.equal(refusal('https://auth.docker.io/token', 'https://registry-1.docker.io'), undefined);
  });

  it('allows the registry host itself on any port, even on loopback or a private address', () => {
    assert.equal(refusal('https://127.0.0.1:5001/token', 'https://127.0.0.1:5000'), undefined);
    assert.equal(refusal('https://10.0.0.5/token', 'https://10.0.0.5:5000'), undefined);
    assert.equal(refusal('https://[::1]:9/t', 'https://[::1]:5000'), undefined);
  });

  it('allows plain HTTP when the registry is plain HTTP too', () => {
    assert.equal(refusal('http://127.0.0.1:5001/token', 'http://127.0.0.1:5000'), undefined);
  });

  it('refuses plain HTTP for an HTTPS registry, even on the same host', () => {
    assert.match(refusal('http://registry.example/token', 'https://registry.example') ?? '', /plain HTTP while the registry uses HTTPS/);
  });

  it('refuses schemes other than http and https', () => {
    assert.match(refusal('file:///etc/passwd', 'https://registry.example') ?? '', /not an http\(s\) URL/);
  });

  for (const host of ['10.1.2.3', '172.16.0.1', '172.31.255.255', '192.168.1.1', '127.0.0.2', '169.254.169.254', '100.64.0.1', '0.0.0.0', '[::1]', '[fe80::1]', '[fd12::1]', '[::ffff:10.0.0.1]', 'localhost', 'a.localhost']) {
    it(`refuses the internal address ${host} on another host than the registry`, () => {
      assert.match(refusal(`https://${host}/token`, 'https://registry.example') ?? '', /internal address/);
    });
  }

  for (const host of ['172.32.0.1', '8.8.8.8', '[2001:db8::1]', 'auth.example']) {
    it(`allows ${host}, which is not internal`, () => {
      assert.equal(refusal(`https://${host}/token`, 'https://registry.example'), undefined);
      assert.equal(isInternalHost(host), false);
    });
  }
});

describe('scopes', () => {
  it('merges actions per resource and orders everything', () => {
    assert.deepEqual(normalizeScopes(['repository:b:push', 'repository:a:pull', 'repository:b:pull', 'repository:a:pull']), ['repository:a:pull', 'repository:b:pull,push']);
    assert.equal(scopeKey(['repository:app:push,pull']), scopeKey(['repository:app:pull', 'repository:app:push']));
  });

  it('keeps colons in names and classes in types', () => {
    assert.deepEqual(normalizeScopes(['repository(plugin):host:5000/x:pull']), ['repository(plugin):host:5000/x:pull']);
  });

  it('tells whether held scopes cover wanted ones', () => {
    assert.equal(coversScopes(['repository:a:pull,push', 'repository:b:pull'], ['repository:a:pull']), true);
    assert.equal(coversScopes(['repository:a:pull'], ['repository:a:push']), false);
    assert.equal(coversScopes(['repository:a:pull'], ['repository:b:pull']), false);
  });
});
