import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { copyFile, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TLSSocket } from 'node:tls';
import { promisify } from 'node:util';
import { after, before, describe, it, type TestContext } from 'node:test';

import type { Logger } from '@rxpush/core';

import { createDispatcher, RegistryClient } from '../src/index.ts';
import type { DispatcherOptions } from '../src/index.ts';

const run = promisify(execFile);
const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];

/** A CA, a server certificate for 127.0.0.1/localhost and a client certificate, made with openssl. */
async function makePki(dir: string) {
  const p = (name: string) => join(dir, name);
  await run('openssl', ['req', '-x509', ...ec, '-keyout', p('ca.key'), '-out', p('ca.crt'), '-days', '2', '-subj', '/CN=dispatcher test CA',
    '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign']);
  await writeFile(p('server.ext'), 'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n');
  await run('openssl', ['req', ...ec, '-keyout', p('server.key'), '-out', p('server.csr'), '-subj', '/CN=127.0.0.1']);
  await run('openssl', ['x509', '-req', '-in', p('server.csr'), '-CA', p('ca.crt'), '-CAkey', p('ca.key'), '-CAcreateserial', '-out', p('server.crt'), '-days', '2', '-extfile', p('server.ext')]);
  await writeFile(p('client.ext'), 'extendedKeyUsage=clientAuth\n');
  await run('openssl', ['req', ...ec, '-keyout', p('client.key'), '-out', p('client.csr'), '-subj', '/CN=rxpush-client']);
  await run('openssl', ['x509', '-req', '-in', p('client.csr'), '-CA', p('ca.crt'), '-CAkey', p('ca.key'), '-CAcreateserial', '-out', p('client.cert'), '-days', '2', '-extfile', p('client.ext')]);
  return { ca: p('ca.crt'), cert: p('server.crt'), key: p('server.key'), clientCert: p('client.cert'), clientKey: p('client.key') };
}

describe('createDispatcher', () => {
  let work: string;
  let pki: Awaited<ReturnType<typeof makePki>>;
  let server: Server;
  let port: number;
  /** The CN of the client certificate each request came with ('' for none). */
  const clients: string[] = [];

  before(async () => {
    work = await mkdtemp(join(tmpdir(), 'rxpush-tls-'));
    pki = await makePki(work);
    const ca = await readFile(pki.ca);
    server = createServer({ cert: await readFile(pki.cert), key: await readFile(pki.key), ca, requestCert: true, rejectUnauthorized: false }, (req, res) => {
      const peer = (req.socket as TLSSocket).getPeerCertificate();
      clients.push(String(peer.subject?.CN ?? ''));
      res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    port = (server.address() as AddressInfo).port;
  });
  after(async () => {
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
    await rm(work, { recursive: true, force: true });
  });

  /** A dispatcher for `registry` (default 127.0.0.1:PORT), closed after the test; GET / on `host` through it. */
  function use(t: TestContext, options: Partial<DispatcherOptions> = {}) {
    const warnings: string[] = [];
    const logger: Logger = { debug() {}, info() {}, warn: (_obj, msg) => void warnings.push(msg ?? ''), error() {}, child: () => logger };
    const registry = options.registry ?? `127.0.0.1:${port}`;
    const dispatcher = createDispatcher({ certsRoot: join(work, 'no-certs.d'), logger, ...options, registry });
    t.after(() => dispatcher.close());
    const get = async (host = `127.0.0.1:${port}`) => {
      const res = await dispatcher.request({ origin: `https://${host}`, path: '/', method: 'GET' });
      await res.body.dump();
      return res.statusCode;
    };
    return { dispatcher, get, warnings };
  }

  it('refuses a certificate from an unknown CA', async (t) => {
    const { get } = use(t);
    await assert.rejects(get(), { code: /^(SELF_SIGNED_CERT_IN_CHAIN|UNABLE_TO_VERIFY_LEAF_SIGNATURE)$/ });
  });

  it('trusts the CA of --ca-file', async (t) => {
    const { get } = use(t, { caFile: pki.ca });
    assert.equal(await get(), 200);
  });

  it("uses certs.d/HOST:PORT: its *.crt as CAs and client.cert/client.key as the client's certificate", async (t) => {
    const root = join(work, 'certs.d');
    const dir = join(root, `127.0.0.1:${port}`);
    await mkdir(dir, { recursive: true });
    await copyFile(pki.ca, join(dir, 'ca.crt'));
    await copyFile(pki.clientCert, join(dir, 'client.cert'));
    await copyFile(pki.clientKey, join(dir, 'client.key'));
    const { get } = use(t, { certsRoot: root });
    clients.length = 0;
    assert.equal(await get(), 200);
    assert.deepEqual(clients, ['rxpush-client']);
  });

  it('presents the client certificate to the registry alone, not to another host', async (t) => {
    const dir = join(work, 'cert-dir');
    await mkdir(dir, { recursive: true });
    await copyFile(pki.ca, join(dir, 'ca.crt'));
    await copyFile(pki.clientCert, join(dir, 'client.cert'));
    await copyFile(pki.clientKey, join(dir, 'client.key'));
    // The registry is "localhost:PORT"; 127.0.0.1:PORT is the same server under another name, as a token realm could be.
    const { get } = use(t, { registry: `localhost:${port}`, certDir: dir });
    clients.length = 0;
    assert.equal(await get(`localhost:${port}`), 200);
    assert.equal(await get(`127.0.0.1:${port}`), 200);
    assert.deepEqual(clients, ['rxpush-client', '']);
  });

  it('skips verification with tlsVerify false, warns, and still verifies other hosts', async (t) => {
    const { get, warnings } = use(t, { registry: `localhost:${port}`, tlsVerify: false });
    assert.equal(await get(`localhost:${port}`), 200);
    assert.match(warnings.join('\n'), /TLS verification is off for localhost \(--tls-verify=false\)/);
    await assert.rejects(get(`127.0.0.1:${port}`), { code: /^(SELF_SIGNED_CERT_IN_CHAIN|UNABLE_TO_VERIFY_LEAF_SIGNATURE)$/ });
  });

  it('gives the registry client a TLS error naming --ca-file, never a fall-back to HTTP', async (t) => {
    const { dispatcher } = use(t);
    const client = new RegistryClient({ registry: `127.0.0.1:${port}`, dispatcher, retry: { retries: 0 } });
    await assert.rejects(client.ping(), (error: Error & { code: string }) => {
      assert.equal(error.code, 'TLS');
      assert.match(error.message, /^GET https:\/\/127\.0\.0\.1:\d+\/v2\/ failed: the TLS certificate is not trusted .*pass --ca-file PATH/);
      // Node 24's own advice (run Node.js with --use-system-ca) is not one an rxpush user can take.
      assert.doesNotMatch(error.message, /--use-system-ca/);
      return true;
    });
  });

  it('says a registry that demands a client certificate wants one, at once, not a closed connection retried for a minute', async (t) => {
    // TLS 1.3: the server's alert comes after the handshake, and undici by itself reports only "other side closed".
    let refused = 0;
    const strict = createServer({ cert: await readFile(pki.cert), key: await readFile(pki.key), ca: await readFile(pki.ca), requestCert: true, rejectUnauthorized: true }, (_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
    });
    strict.on('tlsClientError', () => void (refused += 1));
    await new Promise<void>((resolve) => strict.listen(0, '127.0.0.1', resolve));
    t.after(() => {
      strict.closeAllConnections();
      return new Promise((resolve) => strict.close(resolve));
    });
    const strictPort = (strict.address() as AddressInfo).port;
    const registry = `127.0.0.1:${strictPort}`;

    const { dispatcher } = use(t, { registry, caFile: pki.ca });
    const client = new RegistryClient({ registry, dispatcher, retry: { baseDelayMs: 1, maxDelayMs: 1 } });
    await assert.rejects(client.ping(), (error: Error & { code: string }) => {
      assert.equal(error.code, 'TLS');
      assert.equal(
        error.message,
        `GET https://${registry}/v2/ failed: the registry wants a client certificate it trusts and closed the connection (ERR_SSL_TLSV13_ALERT_CERTIFICATE_REQUIRED); put one as NAME.cert and NAME.key (PEM) in --cert-dir DIR or /etc/docker/certs.d/${registry}, or check the one there`,
      );
      return true;
    });
    // undici may make a queued request's connection once more; rxpush's retries (1 ms apart here) would make many.
    assert.ok(refused <= 2, `a TLS failure is not retried (${refused} handshakes refused)`);

    const dir = join(work, 'strict-certs');
    await mkdir(dir, { recursive: true });
    await copyFile(pki.clientCert, join(dir, 'client.cert'));
    await copyFile(pki.clientKey, join(dir, 'client.key'));
    const withCertificate = use(t, { registry, caFile: pki.ca, certDir: dir });
    assert.equal(await withCertificate.get(registry), 200);
  });

  it('fails clearly on a missing CA file, a file without certificates, and a client certificate without its key', async (t) => {
    assert.throws(() => use(t, { caFile: join(work, 'missing.crt') }), /^TlsConfigError: cannot read --ca-file .*missing\.crt: it does not exist; give the PEM file of the CA/);
    const notPem = join(work, 'not.pem');
    await writeFile(notPem, 'hello');
    assert.throws(() => use(t, { caFile: notPem }), { code: 'TLS_CONFIG', name: 'TlsConfigError', message: /holds no PEM certificate/ });
    const lonely = join(work, 'lonely');
    await mkdir(lonely, { recursive: true });
    await copyFile(pki.clientCert, join(lonely, 'client.cert'));
    assert.throws(() => use(t, { certDir: lonely }), /the client certificate .*client\.cert has no key client\.key beside it/);
    assert.throws(() => use(t, { certDir: notPem }), /: cannot read the certificate directory .*not\.pem: it is not a directory; check --cert-dir$/);
    assert.throws(() => use(t, { caFile: lonely }), /: cannot read --ca-file .*lonely: it is a directory, not a file; give the PEM file/);
    assert.throws(() => use(t, { certDir: join(work, 'no-such-dir') }), /cannot read the certificate directory .*: it does not exist; check --cert-dir/);
  });
});
