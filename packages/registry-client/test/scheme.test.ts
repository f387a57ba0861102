import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import { createServer as createTcpServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { createServer as createTlsServer } from 'node:tls';

import { makeCertificates } from '../../../tools/registry.ts';
import { RegistryClient } from '../src/index.ts';
import { answerProtocol } from '../src/tls/client-hello.ts';

/** A plain-HTTP server that answers like a registry's /v2/, counting requests and TLS hellos it could not parse. */
function plainRegistry(): { server: Server; requests: string[]; garbled: () => number } {
  const requests: string[] = [];
  let garbled = 0;
  const server = createServer((req, res) => {
    requests.push(`${req.method} ${req.url}`);
    res.writeHead(200, { 'content-type': 'application/json', 'docker-distribution-api-version': 'registry/2.0' }).end('{}');
  });
  server.on('clientError', (_error, socket) => {
    garbled += 1;
    socket.end('HTTP/1.1 400 Bad Request\r\nConnection: close\r\n\r\n');
  });
  return { server, requests, garbled: () => garbled };
}

function listen(server: Server | ReturnType<typeof createTcpServer>, port = 0): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', () => resolve((server.address() as AddressInfo).port));
  });
}

function close(server: Server | ReturnType<typeof createTcpServer>): Promise<void> {
  return new Promise((resolve) => {
    if ('closeAllConnections' in server) server.closeAllConnections();
    server.close(() => resolve());
  });
}

describe('scheme detection', () => {
  it('falls back to HTTP once for a loopback registry that answers TLS in plain HTTP', async (t) => {
    const { server, requests, garbled } = plainRegistry();
    const port = await listen(server);
    t.after(() => close(server));
    const client = new RegistryClient({ registry: `127.0.0.1:${port}` });
    t.after(() => client.close());

    await client.ping();
    await client.ping();
    assert.equal(garbled(), 1, 'one TLS handshake, answered in plain HTTP');
    assert.deepEqual(requests, ['GET /v2/', 'GET /v2/']);
  });

  it('uses HTTP straight away with plainHttp', async (t) => {
    const { server, garbled } = plainRegistry();
    const port = await listen(server);
    t.after(() => close(server));
    const client = new RegistryClient({ registry: `localhost:${port}`, plainHttp: true });
    t.after(() => client.close());
    await client.ping();
    assert.equal(garbled(), 0);
  });

  it('says the registry is unreachable when nothing listens, and tries again on the next call', async (t) => {
    const { server } = plainRegistry();
    const port = await listen(server);
    await close(server);
    const client = new RegistryClient({ registry: `127.0.0.1:${port}` });
    t.after(() => client.close());
    await assert.rejects(client.ping(), {
      code: 'REGISTRY_UNREACHABLE',
      message: `GET https://127.0.0.1:${port}/v2/ failed: connection refused; is the registry running and the address right?`,
    });

    const again = plainRegistry();
    await listen(again.server, port);
    t.after(() => close(again.server));
    await client.ping();
    assert.deepEqual(again.requests, ['GET /v2/']);
  });

  for (const version of ['TLSv1.2', 'TLSv1.3'] as const) {
    it(`takes HTTPS for a loopback server that speaks only ${version}, and then judges its certificate`, async (t) => {
      const dir = await mkdtemp(join(tmpdir(), 'rxpush-scheme-'));
      t.after(() => rm(dir, { recursive: true, force: true }));
      const pki = await makeCertificates(dir);
      const server = createTlsServer({ key: await readFile(pki.keyFile), cert: await readFile(pki.certFile), minVersion: version, maxVersion: version }, (socket) => {
        socket.on('error', () => {});
        socket.on('data', () => socket.end('HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}'));
      });
      const port = await listen(server);
      t.after(() => close(server));
      const client = new RegistryClient({ registry: `127.0.0.1:${port}`, retry: { retries: 0, baseDelayMs: 1 } });
      t.after(() => client.close());
      // Its certificate is of a CA the client was not given: HTTPS was chosen, and a certificate error never falls back.
      await assert.rejects(client.ping(), { code: 'TLS', message: new RegExp(`^GET https://127\\.0\\.0\\.1:${port}/v2/ failed: the TLS certificate is not trusted`) });
    });
  }

  it('says so when a loopback server answers neither in TLS nor in HTTP', async (t) => {
    const server = createTcpServer((socket) => {
      socket.on('error', () => {});
      // Read what comes, so that the server sees the client go and can close.
      socket.resume().end('SSH-2.0-OpenSSH_9.2\r\n');
    });
    const port = await listen(server);
    t.after(() => close(server));
    const client = new RegistryClient({ registry: `127.0.0.1:${port}`, retry: { retries: 0, baseDelayMs: 1 } });
    t.after(() => client.close());
    await assert.rejects(client.ping(), { code: 'TLS', message: `GET https://127.0.0.1:${port}/v2/ failed: the server does not speak TLS; if the registry serves plain HTTP, pass --plain-http` });
  });

  it('waits for the answer to its TLS hello as long as the connect timeout says, and names that timeout', async (t) => {
    // Accepts, and then says nothing: a hung process on the port, or a firewall that holds connections.
    const server = createTcpServer((socket) => socket.on('error', () => {}).resume());
    const port = await listen(server);
    t.after(() => close(server));
    const client = new RegistryClient({ registry: `127.0.0.1:${port}`, connectTimeout: 300, headersTimeout: 60_000, retry: { retries: 0, baseDelayMs: 1 } });
    t.after(() => client.close());
    await assert.rejects(client.ping(), (error: Error) => {
      assert.equal((error as { code?: unknown }).code, 'TIMEOUT');
      assert.equal(error.message, `GET https://127.0.0.1:${port}/v2/ failed: no connection within 300 ms (the connect timeout); is the address right and the registry reachable?`);
      assert.equal((error.cause as Error).message, 'no TLS handshake within 300 ms', 'the connect timeout, not the 60 s of the answer timeout');
      return true;
    });
  });
});

describe('answerProtocol', () => {
  it('tells a TLS record, an HTTP status line and anything else from the first bytes, waiting for enough of them', () => {
    assert.equal(answerProtocol(Buffer.from([0x16, 0x03, 0x03, 0x00, 0x7a])), 'tls');
    assert.equal(answerProtocol(Buffer.from([0x15, 0x03, 0x01, 0x00, 0x02, 0x02, 0x46])), 'tls');
    assert.equal(answerProtocol(Buffer.from([0x16])), 'more');
    assert.equal(answerProtocol(Buffer.from([0x16, 0x48])), 'unknown');
    assert.equal(answerProtocol(Buffer.from('HTTP/1.1 400 Bad Request\r\n')), 'http');
    assert.equal(answerProtocol(Buffer.from('HT')), 'more');
    assert.equal(answerProtocol(Buffer.alloc(0)), 'more');
    assert.equal(answerProtocol(Buffer.from('SSH-2.0')), 'unknown');
  });
});
