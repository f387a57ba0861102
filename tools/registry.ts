/**
 * Starts a real CNCF distribution registry (Debian's `docker-registry`) on a free
 * loopback port with exactly the config a test needs, and stops it again.
 *
 * CLI: `node --import tsx tools/registry.ts [--tls] [--user U:P]... [--schema1] [--storage DIR]`
 * prints the host and runs until Ctrl-C.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { closeSync, existsSync, openSync, readFileSync, rmSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { parseArgs, promisify } from 'node:util';
import { execFile } from 'node:child_process';
import bcrypt from 'bcryptjs';

const REGISTRY_BIN = '/usr/bin/docker-registry';
const execFileAsync = promisify(execFile);

export interface RegistryOptions {
  /** Serve HTTPS with a throwaway CA (returned as `caFile`). */
  tls?: boolean;
  /** With `tls`: demand a client certificate from that CA (one is returned as `clientCertFile` and `clientKeyFile`). */
  clientCertificates?: boolean;
  /** With `tls`: more DNS names for its certificate, beside 127.0.0.1 and localhost (a name only a test proxy resolves). */
  tlsNames?: string[];
  /** Users and passwords for htpasswd (Basic) auth. */
  htpasswd?: Record<string, string>;
  /** Token auth; `rootCertBundle` is a PEM file path or PEM text of the token signer's certificate. */
  token?: { realm: string; service: string; issuer: string; rootCertBundle: string };
  /** Accept Docker schema 1 (signed) manifests. */
  schema1?: boolean;
  /** Keep blobs here (kept on stop); default a temp dir removed on stop. */
  storageDir?: string;
  /** How long to wait for `/v2/` to answer (default 20 s). */
  startTimeoutMs?: number;
  /** The registry's log level (default info; debug logs every request and storage step). */
  logLevel?: 'debug' | 'info' | 'warn' | 'error';
  /** Serve reads only, as during maintenance: pushes are answered 405. */
  readOnly?: boolean;
  /** Be a pull-through cache (a mirror) of the registry at this URL: pushes are answered 405 UNSUPPORTED. */
  proxyOf?: string;
}

export interface RunningRegistry {
  /** `127.0.0.1:PORT`, as used in image references. */
  host: string;
  /** `http://127.0.0.1:PORT` or `https://…`. */
  url: string;
  storageDir: string;
  /** The CA certificate that signed the server certificate (TLS only). */
  caFile?: string;
  certFile?: string;
  keyFile?: string;
  /** A client certificate and key the registry takes (`clientCertificates`). */
  clientCertFile?: string;
  clientKeyFile?: string;
  /** The registry's own log (level info unless `logLevel` says otherwise). */
  logFile: string;
  /** The registry process's id (tools/bench reads its CPU time from /proc). */
  pid?: number;
  configFile: string;
  stop(): Promise<void>;
}

const live = new Set<{ child: ChildProcess; dir: string }>();
let exitHookInstalled = false;

function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  // 'exit' handlers must be synchronous: kill and remove what is still there.
  process.on('exit', () => {
    for (const { child, dir } of live) {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
      rmSync(dir, { recursive: true, force: true });
    }
  });
}

/**
 * Starts `docker-registry serve` on a free loopback port with its own config and
 * resolves once `/v2/` answers.
 *
 * @example
 * const registry = await startRegistry({ tls: true, htpasswd: { alice: 's3cret' } });
 * try { … push to registry.host … } finally { await registry.stop(); }
 */
export async function startRegistry(options: RegistryOptions = {}): Promise<RunningRegistry> {
  if (!existsSync(REGISTRY_BIN)) {
    throw new Error(`${REGISTRY_BIN} is missing: run "node tools/setup.mjs" (installs the Debian package docker-registry)`);
  }
  const dir = await mkdtemp(join(tmpdir(), 'rxpush-registry-'));
  try {
    return await startIn(dir, options);
  } catch (err) {
    await rm(dir, { recursive: true, force: true });
    throw err;
  }
}

async function startIn(dir: string, options: RegistryOptions): Promise<RunningRegistry> {
  const storageDir = options.storageDir ? resolve(options.storageDir) : join(dir, 'storage');
  await mkdir(storageDir, { recursive: true });
  const logFile = join(dir, 'registry.log');
  const configFile = join(dir, 'config.yml');
  if (options.clientCertificates && !options.tls) throw new Error('startRegistry: clientCertificates needs tls');
  const tls = options.tls ? await makeCertificates(dir, { client: options.clientCertificates === true, names: options.tlsNames ?? [] }) : undefined;

  const auth: Record<string, unknown> = {};
  if (options.htpasswd && options.token) throw new Error('startRegistry: choose htpasswd or token auth, not both');
  if (options.htpasswd) {
    const path = join(dir, 'htpasswd');
    // Cost 4 (the minimum): the registry checks the hash on every request.
    const lines = Object.entries(options.htpasswd).map(([user, pass]) => `${user}:${bcrypt.hashSync(pass, 4)}`);
    await writeFile(path, `${lines.join('\n')}\n`);
    auth['htpasswd'] = { realm: 'rxpush-test', path };
  }
  if (options.token) {
    let bundle = options.token.rootCertBundle;
    if (bundle.includes('-----BEGIN')) {
      const path = join(dir, 'token-root.pem');
      await writeFile(path, bundle);
      bundle = path;
    }
    auth['token'] = {
      realm: options.token.realm,
      service: options.token.service,
      issuer: options.token.issuer,
      rootcertbundle: bundle,
    };
  }

  // Only a port just seen free is used; another process may still take it first, so retry.
  let lastError: unknown;
  for (let attempt = 0; attempt < 5; attempt++) {
    const port = await freePort();
    const host = `127.0.0.1:${port}`;
    const config = {
      version: 0.1,
      log: { level: options.logLevel ?? 'info', formatter: 'text', fields: { service: 'registry' } },
      storage: {
        filesystem: { rootdirectory: storageDir },
        delete: { enabled: true },
        cache: { blobdescriptor: 'inmemory' },
        maintenance: { uploadpurging: { enabled: false }, ...(options.readOnly ? { readonly: { enabled: true } } : {}) },
      },
      http: {
        addr: host,
        secret: randomBytes(16).toString('hex'),
        headers: { 'X-Content-Type-Options': ['nosniff'] },
        ...(tls ? { tls: { certificate: tls.certFile, key: tls.keyFile, ...(options.clientCertificates ? { clientcas: [tls.caFile] } : {}) } } : {}),
      },
      ...(Object.keys(auth).length ? { auth } : {}),
      ...(options.schema1 ? { compatibility: { schema1: { enabled: true } } } : {}),
      ...(options.proxyOf !== undefined ? { proxy: { remoteurl: options.proxyOf } } : {}),
    };
    // JSON is YAML, and spares a YAML dependency.
    await writeFile(configFile, JSON.stringify(config, null, 2));

    const logFd = openSync(logFile, 'a');
    const child = spawn(REGISTRY_BIN, ['serve', configFile], {
      stdio: ['ignore', logFd, logFd],
      env: cleanEnv(),
    });
    closeSync(logFd);
    const entry = { child, dir };
    live.add(entry);
    installExitHook();

    const url = `${tls ? 'https' : 'http'}://${host}`;
    try {
      await waitReady(url, child, logFile, options.startTimeoutMs ?? 20_000, tls);
    } catch (err) {
      await kill(child);
      live.delete(entry);
      lastError = err;
      const log = await readFile(logFile, 'utf8').catch(() => '');
      if (/address already in use/i.test(log)) continue;
      throw err;
    }

    let stopped: Promise<void> | undefined;
    return {
      host,
      url,
      storageDir,
      ...(tls ? { caFile: tls.caFile, certFile: tls.certFile, keyFile: tls.keyFile } : {}),
      ...(tls?.clientCertFile !== undefined && tls.clientKeyFile !== undefined ? { clientCertFile: tls.clientCertFile, clientKeyFile: tls.clientKeyFile } : {}),
      logFile,
      configFile,
      ...(child.pid !== undefined ? { pid: child.pid } : {}),
      stop() {
        stopped ??= (async () => {
          await kill(child);
          live.delete(entry);
          await rm(dir, { recursive: true, force: true });
        })();
        return stopped;
      },
    };
  }
  throw lastError;
}

/** The environment minus REGISTRY_*, which distribution would read as config overrides. */
function cleanEnv(): NodeJS.ProcessEnv {
  return Object.fromEntries(Object.entries(process.env).filter(([key]) => !key.startsWith('REGISTRY_')));
}

/** A loopback port nothing listens on right now (the server started next binds it). */
export function freePort(): Promise<number> {
  return new Promise((ok, fail) => {
    const server = createServer();
    server.once('error', fail);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      server.close(() => ok(port));
    });
  });
}

async function waitReady(url: string, child: ChildProcess, logFile: string, timeoutMs: number, tls?: TestCertificates): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let exited: string | undefined;
  child.once('exit', (code, signal) => {
    exited = `exited with ${signal ?? `code ${code}`}`;
  });
  while (Date.now() < deadline) {
    if (exited) break;
    const status = await probe(`${url}/v2/`, tls);
    // 200 open, 401 with auth: either way the registry is serving.
    if (status === 200 || status === 401) return;
    await new Promise((ok) => setTimeout(ok, 50));
  }
  const log = await readFile(logFile, 'utf8').catch(() => '(no log)');
  throw new Error(
    `docker-registry at ${url} did not answer GET /v2/ ${exited ? `(it ${exited})` : `within ${timeoutMs} ms`}; its log (${logFile}):\n${log.slice(-4000)}`,
  );
}

function probe(url: string, tls?: TestCertificates): Promise<number | undefined> {
  // With client certificates demanded, the probe presents the one made for the tests.
  const client = tls?.clientCertFile !== undefined && tls.clientKeyFile !== undefined ? { cert: readFileSync(tls.clientCertFile), key: readFileSync(tls.clientKeyFile) } : {};
  return new Promise((ok) => {
    const req = (url.startsWith('https:') ? httpsRequest : httpRequest)(url, { method: 'GET', timeout: 1000, ...(tls ? { ca: tls.ca, ...client } : {}) }, (res) => {
      res.resume();
      ok(res.statusCode);
    });
    req.on('timeout', () => req.destroy());
    req.on('error', () => ok(undefined));
    req.end();
  });
}

async function kill(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((ok) => child.once('exit', () => ok()));
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
  await exited;
  clearTimeout(timer);
}

/** Test certificates made by {@link makeCertificates}; the client pair only when asked for. */
export interface TestCertificates {
  caFile: string;
  certFile: string;
  keyFile: string;
  ca: string;
  clientCertFile?: string;
  clientKeyFile?: string;
}

/**
 * A throwaway CA and a server certificate for 127.0.0.1 and localhost (with SANs: Go ignores the CN), in `dir`,
 * and with `client`, a client certificate from the same CA (for servers that check them, as dockerd --tlsverify).
 * Tests use it for TLS servers of their own (the fault proxy in front of a plain-HTTP registry, dockerd on TCP).
 */
export async function makeCertificates(dir: string, options: { client?: boolean; names?: string[] } = {}): Promise<TestCertificates> {
  const caFile = join(dir, 'ca.crt');
  const caKey = join(dir, 'ca.key');
  const certFile = join(dir, 'server.crt');
  const keyFile = join(dir, 'server.key');
  const csr = join(dir, 'server.csr');
  const ext = join(dir, 'server.ext');
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];
  await openssl(['req', '-x509', ...ec, '-keyout', caKey, '-out', caFile, '-days', '3', '-subj', '/CN=rxpush test CA',
    '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign']);
  await openssl(['req', ...ec, '-keyout', keyFile, '-out', csr, '-subj', '/CN=127.0.0.1']);
  await writeFile(ext, [
    `subjectAltName=${['IP:127.0.0.1', 'DNS:localhost', ...(options.names ?? []).map((name) => `DNS:${name}`)].join(',')}`,
    'basicConstraints=critical,CA:FALSE',
    'keyUsage=critical,digitalSignature,keyEncipherment',
    'extendedKeyUsage=serverAuth',
  ].join('\n'));
  await openssl(['x509', '-req', '-in', csr, '-CA', caFile, '-CAkey', caKey, '-CAcreateserial', '-out', certFile, '-days', '3', '-extfile', ext]);
  const made: TestCertificates = { caFile, certFile, keyFile, ca: await readFile(caFile, 'utf8') };
  if (options.client !== true) return made;
  const clientCertFile = join(dir, 'client.crt');
  const clientKeyFile = join(dir, 'client.key');
  const clientCsr = join(dir, 'client.csr');
  const clientExt = join(dir, 'client.ext');
  await openssl(['req', ...ec, '-keyout', clientKeyFile, '-out', clientCsr, '-subj', '/CN=rxpush test client']);
  await writeFile(clientExt, ['basicConstraints=critical,CA:FALSE', 'keyUsage=critical,digitalSignature', 'extendedKeyUsage=clientAuth'].join('\n'));
  await openssl(['x509', '-req', '-in', clientCsr, '-CA', caFile, '-CAkey', caKey, '-CAcreateserial', '-out', clientCertFile, '-days', '3', '-extfile', clientExt]);
  return { ...made, clientCertFile, clientKeyFile };
}

async function openssl(args: string[]): Promise<void> {
  try {
    await execFileAsync('openssl', args);
  } catch (err) {
    const stderr = (err as { stderr?: string }).stderr ?? '';
    throw new Error(`openssl ${args[0]} failed while making test certificates: ${stderr.trim() || String(err)}`);
  }
}

async function main(argv: string[]): Promise<void> {
  const { values } = parseArgs({
    args: argv,
    options: {
      tls: { type: 'boolean', default: false },
      user: { type: 'string', multiple: true },
      schema1: { type: 'boolean', default: false },
      storage: { type: 'string' },
    },
  });
  const htpasswd: Record<string, string> = {};
  for (const pair of values.user ?? []) {
    const colon = pair.indexOf(':');
    if (colon < 1) throw new Error(`--user takes USER:PASSWORD, got ${JSON.stringify(pair)}`);
    htpasswd[pair.slice(0, colon)] = pair.slice(colon + 1);
  }
  const registry = await startRegistry({
    tls: values.tls,
    schema1: values.schema1,
    ...(values.user ? { htpasswd } : {}),
    ...(values.storage ? { storageDir: values.storage } : {}),
  });
  console.log(registry.host);
  console.error(`registry: ${registry.url} (log ${registry.logFile})${registry.caFile ? `, CA ${registry.caFile}` : ''}; Ctrl-C stops it`);
  const stop = () => {
    registry.stop().then(() => process.exit(0), () => process.exit(1));
  };
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
}

if (process.argv[1] && import.meta.url === pathToFileURL(resolve(process.argv[1])).href) {
  main(process.argv.slice(2)).catch((err: unknown) => {
    console.error(`registry: ${err instanceof Error ? err.message : String(err)}`);
    process.exitCode = 1;
  });
}
