import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import { proxyFor, proxySettings } from '../src/tls/proxy.ts';

const via = (env: NodeJS.ProcessEnv, url: string): string => proxyFor(proxySettings(env), new URL(url))?.url.href ?? 'direct';

describe('proxySettings and proxyFor: HTTPS_PROXY, HTTP_PROXY and NO_PROXY as Go reads them', () => {
  it('takes HTTPS_PROXY for https origins and HTTP_PROXY for http ones, upper case first, a bare HOST:PORT as http://', () => {
    const env = { HTTPS_PROXY: 'http://secure:3128', https_proxy: 'http://lower:1', http_proxy: 'plain:8080' };
    assert.equal(via(env, 'https://registry.example'), 'http://secure:3128/');
    assert.equal(via(env, 'http://registry.example:5000'), 'http://plain:8080/');
    assert.equal(via({ HTTP_PROXY: 'http://p:1' }, 'https://registry.example'), 'direct');
    assert.equal(proxySettings({}), undefined);
    assert.equal(proxySettings({ HTTPS_PROXY: '' }), undefined);
  });

  it('never proxies loopback hosts', () => {
    const env = { HTTPS_PROXY: 'http://p:1', HTTP_PROXY: 'http://p:1' };
    for (const url of ['https://localhost:5000', 'https://127.0.0.1:5000', 'http://127.8.9.10', 'https://[::1]:443', 'https://registry.localhost']) assert.equal(via(env, url), 'direct', url);
  });

  it('goes directly to NO_PROXY: *, hosts with their subdomains, .subdomains, IPs, CIDRs, and host:port', () => {
    const env = { HTTPS_PROXY: 'http://p:1', NO_PROXY: ' .corp.example, exact.example:5000,10.0.0.0/8 ,[fd00::1],Other.Example' };
    const cases: [string, string][] = [
      ['https://a.corp.example', 'direct'],
      // As Go: a leading dot is for the subdomains alone.
      ['https://corp.example', 'http://p:1/'],
      ['https://xcorp.example', 'http://p:1/'],
      ['https://exact.example:5000', 'direct'],
      ['https://exact.example', 'http://p:1/'],
      ['https://10.200.0.1', 'direct'],
      ['https://11.0.0.1', 'http://p:1/'],
      ['https://[fd00::1]:5000', 'direct'],
      ['https://other.example', 'direct'],
      ['https://sub.other.example', 'direct'],
      ['https://registry.example', 'http://p:1/'],
    ];
    for (const [url, expected] of cases) assert.equal(via(env, url), expected, url);
    assert.equal(via({ HTTPS_PROXY: 'http://p:1', no_proxy: '*' }, 'https://anything.example'), 'direct');
  });

  it('refuses a variable that is no proxy URL, or a scheme it cannot tunnel through, for the requests that would use it', () => {
    const socks = proxySettings({ HTTPS_PROXY: 'socks5://p:1080', NO_PROXY: 'direct.example' });
    assert.throws(() => proxyFor(socks, new URL('https://registry.example')), { code: 'USAGE', message: /^HTTPS_PROXY names a socks5 proxy; rxpush goes through HTTP proxies/ });
    // As Go: a loopback registry, or one NO_PROXY names, is reached directly whatever the variable says.
    assert.equal(proxyFor(socks, new URL('https://127.0.0.1:5000')), undefined);
    assert.equal(proxyFor(socks, new URL('https://direct.example')), undefined);
    assert.throws(() => proxyFor(proxySettings({ http_proxy: 'http://[bad' }), new URL('http://registry.example')), { code: 'USAGE', message: /^http_proxy is not a proxy URL; set it to http:\/\/HOST:PORT/ });
  });
});
