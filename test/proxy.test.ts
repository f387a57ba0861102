/**
 * Pushing through an HTTP proxy named by HTTPS_PROXY (or HTTP_PROXY), as docker and skopeo do: a TLS registry under a
 * name only the proxy resolves, so a push that lands went through it; NO_PROXY and loopback registries go directly; a
 * proxy that wants credentials, or is not there, fails in one line that shows no password.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';

import { startConnectProxy, type ConnectProxy } from './helpers/connect-proxy.ts';
import { assertOneLineError } from './helpers/assert-cli.ts';
import { useRegistry } from './helpers/registry-suite.ts';
import { homeIn, runCli } from './helpers/run-cli.ts';
import { skopeoInspectRaw } from './helpers/skopeo.ts';
import { startRegistry } from '../tools/registry.ts';
import { join } from 'node:path';

const NAME = 'registry.proxied.test';

describe('pushing through an HTTP proxy (HTTPS_PROXY, NO_PROXY)', () => {
  const suite = useRegistry('proxy', { registry: { tls: true, tlsNames: [NAME] }, images: [{ tags: ['latest'], layers: [{ files: 2, fileSize: 30_000, seed: 'proxy' }] }] });
  let proxy: ConnectProxy;
  let guarded: ConnectProxy;
  let port: string;
  let env: Record<string, string>;
  before(async () => {
    proxy = await startConnectProxy({ hosts: { [NAME]: '127.0.0.1' } });
    guarded = await startConnectProxy({ hosts: { [NAME]: '127.0.0.1' }, auth: { username: 'proxyuser', password: 'proxy-s3cret' } });
    port = suite.registry.host.split(':')[1]!;
    // No proxy variables of this machine: each test sets its own.
    env = { ...homeIn(join(suite.work, 'home')), HTTPS_PROXY: '', https_proxy: '', HTTP_PROXY: '', http_proxy: '', NO_PROXY: '', no_proxy: '' };
  });
  after(async () => {
    await proxy?.close();
    await guarded?.close();
  });
  const push = (tag: string, extra: Record<string, string>, registry = `${NAME}:${port}`) =>
    runCli(['push', `oci:${suite.layout.dir}:latest`, `${registry}/proxied/app:${tag}`, '--ca-file', suite.registry.caFile!, '--retries', '0', '--timeout', '5s'], { env: { ...env, ...extra } });

  it('pushes through the proxy HTTPS_PROXY names, TLS end to end, and skopeo reads it back', async () => {
    const result = await push('1', { HTTPS_PROXY: proxy.url });
    assert.equal(result.code, 0, result.stderr);
    assert.ok(proxy.connects.length > 0 && proxy.connects.every((target) => target === `${NAME}:${port}`), proxy.connects.join(', '));
    const stored = await skopeoInspectRaw(`${suite.registry.host}/proxied/app:1`);
    assert.equal(stored.json.config.digest, suite.layout.images[0]!.configDigest);
    // https_proxy (lower case) and a bare HOST:PORT are read as Go reads them.
    const before = proxy.connects.length;
    const lower = await push('2', { https_proxy: proxy.url.replace('http://', '') });
    assert.equal(lower.code, 0, lower.stderr);
    assert.ok(proxy.connects.length > before);
  });

  it('goes directly to the hosts NO_PROXY names, and to loopback registries whatever it says', async () => {
    const before = proxy.connects.length;
    // Directly, the name does not resolve: the push fails without asking the proxy.
    const direct = await push('3', { HTTPS_PROXY: proxy.url, NO_PROXY: `localhost,.proxied.test` });
    assert.equal(direct.code, 1);
    assert.match(direct.stderr, /registry\.proxied\.test/);
    const loopback = await push('4', { HTTPS_PROXY: proxy.url }, suite.registry.host);
    assert.equal(loopback.code, 0, loopback.stderr);
    assert.equal(proxy.connects.length, before, 'the proxy was asked');
  });

  it('gives the proxy the user and password in HTTPS_PROXY, and says so in one line when it refuses them', async () => {
    const ok = await push('5', { HTTPS_PROXY: guarded.url.replace('http://', 'http://proxyuser:proxy-s3cret@') });
    assert.equal(ok.code, 0, ok.stderr);
    const wrong = await push('6', { HTTPS_PROXY: guarded.url.replace('http://', 'http://proxyuser:wrong-pw@') });
    assertOneLineError(wrong, new RegExp(`the proxy http://127\\.0\\.0\\.1:\\d+ \\(HTTPS_PROXY\\) answered CONNECT ${NAME.replaceAll('.', '\\.')}:${port} with 407 Proxy Authentication Required; it refused the user and password in HTTPS_PROXY; check them$`));
    assert.doesNotMatch(wrong.stderr + wrong.stdout, /wrong-pw|proxyuser:/);
    const none = await push('7', { HTTPS_PROXY: guarded.url });
    assertOneLineError(none, /with 407 Proxy Authentication Required; it wants credentials: put them in HTTPS_PROXY \(http:\/\/USER:PASSWORD@HOST:PORT\)$/);
  });

  it('reaches a plain-HTTP registry through the proxy HTTP_PROXY names, in absolute form as Go does, not CONNECT', async (t) => {
    const plain = await startRegistry();
    t.after(() => plain.stop());
    const plainPort = plain.host.split(':')[1]!;
    const pushPlain = (tag: string, proxyUrl: string) =>
      runCli(['push', `oci:${suite.layout.dir}:latest`, `${NAME}:${plainPort}/proxied/plain:${tag}`, '--plain-http', '--retries', '0', '--timeout', '5s'], {
        env: { ...env, HTTP_PROXY: proxyUrl },
      });
    const connects = proxy.connects.length;
    const result = await pushPlain('1', proxy.url);
    assert.equal(result.code, 0, result.stderr);
    // A proxy refuses CONNECT to ports other than 443 (squid's SSL_ports): none is asked for.
    assert.equal(proxy.connects.length, connects, proxy.connects.join(', '));
    assert.ok(proxy.forwarded.length > 0 && proxy.forwarded.every((line) => line.includes(` http://${NAME}:${plainPort}/v2/`)), proxy.forwarded.join(', '));
    assert.ok(proxy.forwarded.includes(`PUT http://${NAME}:${plainPort}/v2/proxied/plain/manifests/1`), proxy.forwarded.join(', '));
    assert.equal((await skopeoInspectRaw(`${plain.host}/proxied/plain:1`)).json.config.digest, suite.layout.images[0]!.configDigest);

    // With the proxy's credentials on every request; without them, a 407 that says where they go, and no password.
    const ok = await pushPlain('2', guarded.url.replace('http://', 'http://proxyuser:proxy-s3cret@'));
    assert.equal(ok.code, 0, ok.stderr);
    const wrong = await pushPlain('3', guarded.url.replace('http://', 'http://proxyuser:wrong-pw@'));
    assertOneLineError(wrong, /→ 407; a proxy between rxpush and the registry refused the request: put its user and password in HTTP_PROXY \(http:\/\/USER:PASSWORD@HOST:PORT\) and check them, or set NO_PROXY to reach the registry directly$/);
    assert.doesNotMatch(wrong.stderr, /wrong-pw/);
    // A proxy that quotes the credentials it refused: rxpush quotes its answer, never them.
    const echoing = await startConnectProxy({ hosts: { [NAME]: '127.0.0.1' }, auth: { username: 'proxyuser', password: 'proxy-s3cret' }, echoCredentials: true });
    t.after(() => echoing.close());
    // inspect, as its first request is a GET (a push's are HEADs, whose answers have no body to quote).
    const echoed = await runCli(['inspect', `docker://${NAME}:${plainPort}/proxied/plain:1`, '--plain-http', '--retries', '0'], {
      env: { ...env, HTTP_PROXY: echoing.url.replace('http://', 'http://proxyuser:wrong-pw@') },
    });
    assertOneLineError(echoed, /→ 407 refused Basic \*\*\* \(password \*\*\*\); a proxy between rxpush and the registry refused the request/);
    assert.doesNotMatch(echoed.stderr + echoed.stdout, new RegExp(`wrong-pw|${Buffer.from('proxyuser:wrong-pw').toString('base64')}`));
    const gone = await pushPlain('4', 'http://127.0.0.1:1');
    assertOneLineError(gone, new RegExp(`cannot reach the proxy http://127\\.0\\.0\\.1:1 \\(HTTP_PROXY\\) \\(.*ECONNREFUSED.*\\); check it, or set NO_PROXY=${NAME.replaceAll('.', '\\.')} to go directly$`));
  });

  it('checks an https:// proxy against the CAs the registry is checked against: --ca-file, and the system store', async (t) => {
    const tlsProxy = await startConnectProxy({ hosts: { [NAME]: '127.0.0.1' }, tls: { certFile: suite.registry.certFile!, keyFile: suite.registry.keyFile! } });
    t.after(() => tlsProxy.close());
    assert.match(tlsProxy.url, /^https:/);
    const ok = await push('11', { HTTPS_PROXY: tlsProxy.url });
    assert.equal(ok.code, 0, ok.stderr);
    assert.ok(tlsProxy.connects.length > 0 && tlsProxy.connects.every((target) => target === `${NAME}:${port}`), tlsProxy.connects.join(', '));
    // A corporate proxy's CA is installed in the system store (SSL_CERT_FILE here), which Node's own list leaves out.
    const system = await runCli(['push', `oci:${suite.layout.dir}:latest`, `${NAME}:${port}/proxied/app:12`, '--retries', '0', '--timeout', '5s'], {
      env: { ...env, HTTPS_PROXY: tlsProxy.url, SSL_CERT_FILE: suite.registry.caFile! },
    });
    assert.equal(system.code, 0, system.stderr);
    // Trusted by no CA rxpush knows: one line naming the proxy.
    const untrusted = await runCli(['push', `oci:${suite.layout.dir}:latest`, `${NAME}:${port}/proxied/app:13`, '--retries', '0', '--timeout', '5s'], {
      env: { ...env, HTTPS_PROXY: tlsProxy.url },
    });
    assertOneLineError(untrusted, new RegExp(`cannot reach the proxy ${tlsProxy.url.replaceAll('.', '\\.')} \\(HTTPS_PROXY\\) \\(.*certificate.*\\); its certificate is not trusted: add its CA to the system store, or give it with --ca-file$`));
  });

  it('says in one line when the proxy is not there, or its variable is no URL', async () => {
    const gone = await push('8', { HTTPS_PROXY: 'http://127.0.0.1:1' });
    assertOneLineError(gone, /cannot reach the proxy http:\/\/127\.0\.0\.1:1 \(HTTPS_PROXY\) \(.*ECONNREFUSED.*\); check it, or set NO_PROXY=registry\.proxied\.test to go directly$/);
    const socks = await push('9', { HTTPS_PROXY: 'socks5://127.0.0.1:1080' });
    assertOneLineError(socks, /HTTPS_PROXY names a socks5 proxy; rxpush goes through HTTP proxies \(http:\/\/ or https:\/\/\), set it to one or unset it/, 2);
    // A loopback registry is reached directly: a proxy variable meant for other tools does not stop its push.
    const loopback = await push('10', { HTTPS_PROXY: 'socks5://127.0.0.1:1080' }, suite.registry.host);
    assert.equal(loopback.code, 0, loopback.stderr);
  });
});
