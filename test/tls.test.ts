import assert from 'node:assert/strict';
import { copyFile, mkdir, readFile, writeFile } from 'node:fs/promises';
import { connect, createServer, type AddressInfo } from 'node:net';
import { join } from 'node:path';
import { before, describe, it } from 'node:test';

import { startRegistry } from '../tools/registry.ts';
import { useRegistry } from './helpers/registry-suite.ts';
import { homeIn, runCli } from './helpers/run-cli.ts';
import { assertOneLineError } from './helpers/assert-cli.ts';

describe('TLS to the registry', () => {
  const suite = useRegistry('tls', { registry: { tls: true }, images: [{ tags: ['latest'], layers: [{ files: 1, fileSize: 10_000, seed: 'tls' }] }] });
  let env: Record<string, string>;

  before(() => {
    env = homeIn(suite.work);
  });

  it('refuses an unknown CA with exit 1 and one line naming --ca-file, and never tries plain HTTP', async () => {
    const logged = (await readFile(suite.registry.logFile, 'utf8')).length;
    const result = await runCli(['push', `oci:${suite.layout.dir}:latest`, `${suite.registry.host}/tls/app:1`], { env });
    assertOneLineError(result, /^rxpush: [A-Z]+ https:\/\/127\.0\.0\.1:\d+\/v2\/\S* failed: the TLS certificate is not trusted .*; pass --ca-file PATH with the registry's CA, or --tls-verify=false if you trust the network$/);
    // The registry logs every HTTP request it serves; a plain-HTTP attempt would show as an HTTP request or a "client sent an HTTP request to an HTTPS server" error.
    const log = (await readFile(suite.registry.logFile, 'utf8')).slice(logged);
    assert.match(log, /TLS handshake error/, 'the client did try TLS');
    assert.doesNotMatch(log, /HTTP request to an HTTPS server|http\.request\.method/);
  });

  it('says a certificate for other names is for other names, not an untrusted CA that --ca-file would mend', async (t) => {
    // 127.0.0.2 forwards to the registry, whose certificate is for 127.0.0.1 and localhost.
    const port = Number(suite.registry.host.split(':')[1]);
    const forwarder = createServer((socket) => {
      const upstream = connect(port, '127.0.0.1');
      for (const end of [socket, upstream]) end.on('error', () => (socket.destroy(), upstream.destroy()));
      socket.pipe(upstream).pipe(socket);
    });
    await new Promise<void>((resolve) => forwarder.listen(0, '127.0.0.2', resolve));
    t.after(() => new Promise<void>((resolve) => forwarder.close(() => resolve())));
    const other = `127.0.0.2:${(forwarder.address() as AddressInfo).port}`;
    const result = await runCli(['push', `oci:${suite.layout.dir}:latest`, `${other}/tls/app:1`, '--ca-file', suite.registry.caFile ?? ''], { env });
    assertOneLineError(result, /^rxpush: [A-Z]+ https:\/\/127\.0\.0\.2:\d+\/v2\/\S* failed: the TLS certificate is for other names \(.*127\.0\.0\.2.*\); use the registry's name as its certificate gives it, or --tls-verify=false if you trust the network$/);
  });

  it('says a registry that demands a client certificate wants one, and pushes with the one in --cert-dir', async (t) => {
    const strict = await startRegistry({ tls: true, clientCertificates: true });
    t.after(() => strict.stop());
    const without = await runCli(['push', `oci:${suite.layout.dir}:latest`, `${strict.host}/tls/app:1`, '--ca-file', strict.caFile ?? ''], { env });
    assertOneLineError(
      without,
      new RegExp(`^rxpush: [A-Z]+ https://${strict.host.replaceAll('.', '\\.')}/v2/\\S* failed: the registry wants a client certificate it trusts and closed the connection \\(ERR_SSL_[\\w/]+\\); put one as NAME\\.cert and NAME\\.key \\(PEM\\) in --cert-dir DIR or /etc/docker/certs\\.d/${strict.host.replaceAll('.', '\\.')}, or check the one there$`),
    );
    assert.doesNotMatch(without.stderr, /attempts/, 'not retried');
    const dir = join(suite.work, 'strict-certs');
    await mkdir(dir, { recursive: true });
    await Promise.all([copyFile(strict.caFile!, join(dir, 'ca.crt')), copyFile(strict.clientCertFile!, join(dir, 'client.cert')), copyFile(strict.clientKeyFile!, join(dir, 'client.key'))]);
    const withCertificate = await runCli(['push', `oci:${suite.layout.dir}:latest`, `${strict.host}/tls/app:1`, '--cert-dir', dir, '-q'], { env });
    assert.equal(withCertificate.code, 0, withCertificate.stderr);
  });

  it('trusts the CA given with --ca-file', async () => {
    const result = await runCli(['push', `oci:${suite.layout.dir}:latest`, `${suite.registry.host}/tls/app:2`, '--ca-file', suite.registry.caFile ?? ''], { env });
    assert.equal(result.code, 0, result.stderr);
  });

  it('trusts the *.crt of --cert-dir, as in /etc/docker/certs.d/HOST:PORT', async () => {
    const dir = join(suite.work, 'certs.d', suite.registry.host);
    await mkdir(dir, { recursive: true });
    await writeFile(join(dir, 'ca.crt'), await readFile(suite.registry.caFile ?? ''));
    const result = await runCli(['push', `oci:${suite.layout.dir}:latest`, `${suite.registry.host}/tls/app:3`, '--cert-dir', dir], { env });
    assert.equal(result.code, 0, result.stderr);
  });

  it('pushes without verification with --tls-verify=false, warning on stderr', async () => {
    const result = await runCli(['push', `oci:${suite.layout.dir}:latest`, `${suite.registry.host}/tls/app:4`, '--tls-verify=false'], { env });
    assert.equal(result.code, 0, result.stderr);
    assert.match(result.stderr, /TLS verification is off for 127\.0\.0\.1 \(--tls-verify=false\)/);
  });

  it("reads --tls-verify=True and =1 as skopeo does, as on, and refuses --tls-verify=yes with exit 2, pushing nothing", async () => {
    // yargs alone read every value but "true" as false: these pushed with verification off.
    for (const word of ['True', '1']) {
      const result = await runCli(['push', `oci:${suite.layout.dir}:latest`, `${suite.registry.host}/tls/app:6`, `--tls-verify=${word}`], { env });
      assertOneLineError(result, /^rxpush: [A-Z]+ https:\/\/127\.0\.0\.1:\d+\/v2\/\S* failed: the TLS certificate is not trusted /);
    }
    const result = await runCli(['push', `oci:${suite.layout.dir}:latest`, `${suite.registry.host}/tls/app:6`, '--tls-verify=yes'], { env });
    assertOneLineError(result, /^rxpush: --tls-verify takes true or false, not "yes"; see 'rxpush push --help'$/, 2);
    const check = await runCli(['inspect', `${suite.registry.host}/tls/app:6`, '--tls-verify=false'], { env });
    assert.equal(check.code, 1, 'tls/app:6 was never pushed');
  });

  it('fails with exit 1 and one line for a --ca-file that is not there', async () => {
    const result = await runCli(['push', `oci:${suite.layout.dir}:latest`, `${suite.registry.host}/tls/app:5`, '--ca-file', join(suite.work, 'nope.crt')], { env });
    assertOneLineError(result, /cannot read --ca-file .*nope\.crt: it does not exist; give the PEM file of the CA that signed the registry's certificate$/);
  });
});
