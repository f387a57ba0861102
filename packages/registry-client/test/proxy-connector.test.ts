import assert from 'node:assert/strict';
import { connect, createServer, type Socket } from 'node:net';
import { describe, it, type TestContext } from 'node:test';

import { openTunnel } from '../src/tls/proxy-connector.ts';
import type { HttpProxy } from '../src/tls/proxy.ts';

/** A "proxy" on a loopback port that answers a CONNECT with `answer` (or nothing), and the socket to it. */
async function proxyAnswering(t: TestContext, answer: ((socket: Socket, request: string) => void) | undefined): Promise<{ socket: Socket; proxy: HttpProxy; requests: string[] }> {
  const requests: string[] = [];
  const sockets = new Set<Socket>();
  const server = createServer((socket) => {
    sockets.add(socket);
    let text = '';
    socket.on('data', (chunk) => {
      text += chunk.toString('latin1');
      if (text.includes('\r\n\r\n')) {
        requests.push(text);
        answer?.(socket, text);
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  const socket = connect({ host: '127.0.0.1', port });
  await new Promise((resolve) => socket.once('connect', resolve));
  t.after(() => {
    socket.destroy();
    for (const s of sockets) s.destroy();
    return new Promise<void>((resolve) => server.close(() => resolve()));
  });
  return { socket, proxy: { url: new URL(`http://user:pa%3Ass@127.0.0.1:${port}`), variable: 'HTTPS_PROXY' }, requests };
}

const tunnel = (socket: Socket, proxy: HttpProxy, timeoutMs = 2_000) => openTunnel(socket, proxy, 'registry.example', '443', timeoutMs);

describe('openTunnel: asking an HTTP proxy for a CONNECT tunnel', () => {
  it('sends CONNECT with the Host and the proxy credentials of its URL, and keeps what follows the answer', async (t) => {
    const { socket, proxy, requests } = await proxyAnswering(t, (s) => s.write('HTTP/1.1 200 Connection Established\r\nVia: test\r\n\r\nEARLY'));
    await tunnel(socket, proxy);
    const [request] = requests;
    assert.match(request ?? '', /^CONNECT registry\.example:443 HTTP\/1\.1\r\nHost: registry\.example:443\r\n/);
    assert.match(request ?? '', new RegExp(`\\r\\nProxy-Authorization: Basic ${Buffer.from('user:pa:ss').toString('base64')}\\r\\n`));
    // Bytes the proxy sent after its answer belong to the tunnel: the next reader gets them (the socket waits, paused).
    assert.equal(socket.isPaused(), true);
    const early = await new Promise<string>((resolve) => socket.once('data', (chunk: Buffer) => resolve(chunk.toString())).resume());
    assert.equal(early, 'EARLY');
  });

  const refusals: [string, string, RegExp, boolean][] = [
    ['wants credentials (407)', 'HTTP/1.1 407 Proxy Authentication Required\r\n\r\n', /answered CONNECT registry\.example:443 with 407 Proxy Authentication Required; it refused the user and password in HTTPS_PROXY; check them$/, false],
    ['cannot reach the registry (502)', 'HTTP/1.0 502 Bad Gateway\r\nContent-Length: 0\r\n\r\n', /with 502 Bad Gateway; it could not reach registry\.example:443; check the name, or set NO_PROXY=registry\.example/, true],
    ['forbids it (403)', 'HTTP/1.1 403 Forbidden\r\n\r\n', /with 403 Forbidden; set NO_PROXY=registry\.example if registry\.example is to be reached directly$/, false],
    ['is no HTTP proxy', 'SSH-2.0-OpenSSH_9.2\r\n\r\n', /with something that is not HTTP;/, false],
  ];
  for (const [what, answer, message, retryable] of refusals) {
    it(`fails naming the proxy, never its password, when it ${what}`, async (t) => {
      const { socket, proxy } = await proxyAnswering(t, (s) => s.write(answer));
      await assert.rejects(tunnel(socket, proxy), (error: Error & { retryable?: boolean }) => {
        assert.match(error.message, /^the proxy http:\/\/127\.0\.0\.1:\d+ \(HTTPS_PROXY\) /);
        assert.match(error.message, message);
        assert.doesNotMatch(error.message, /pa%3Ass|pa:ss|user:/);
        assert.equal(error.retryable, retryable);
        return true;
      });
      assert.equal(socket.destroyed, true);
    });
  }

  it('hides the password and the Proxy-Authorization value where a proxy echoes them in its answer', async (t) => {
    const sent = Buffer.from('user:pa:ss').toString('base64');
    const { socket, proxy } = await proxyAnswering(t, (s) => s.write(`HTTP/1.1 407 denied: ${sent} (password pa:ss)\r\n\r\n`));
    await assert.rejects(tunnel(socket, proxy), (error: Error) => {
      assert.match(error.message, /with 407 denied: \*\*\* \(password \*\*\*\); it refused the user and password in HTTPS_PROXY/);
      assert.doesNotMatch(error.message, new RegExp(`pa:ss|${sent}`));
      return true;
    });
  });

  it('fails when the proxy closes without answering, or does not answer in time', async (t) => {
    const closing = await proxyAnswering(t, (s) => s.end());
    await assert.rejects(tunnel(closing.socket, closing.proxy), /closed the connection before answering CONNECT registry\.example:443/);
    const silent = await proxyAnswering(t, undefined);
    await assert.rejects(tunnel(silent.socket, silent.proxy, 150), /did not answer CONNECT registry\.example:443 within 0\.15 s; check it, or set NO_PROXY=registry\.example to go directly$/);
  });

  it('gives up on an answer whose headers never end', async (t) => {
    const { socket, proxy } = await proxyAnswering(t, (s) => s.write(`HTTP/1.1 200 OK\r\nX: ${'a'.repeat(70_000)}`));
    await assert.rejects(tunnel(socket, proxy), /answered CONNECT registry\.example:443 with no end to its headers; is it an HTTP proxy\?$/);
  });
});
