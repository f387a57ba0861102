import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { describe, it } from 'node:test';

import { RegistryClient } from '../src/index.ts';

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

function listen(server: Server, port = 0): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', () => resolve((server.address() as AddressInfo).port));
  });
}

function close(server: Server): Promise<void> {
  return new Promise((resolve) => {
    server.closeAllConnections();
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
});
