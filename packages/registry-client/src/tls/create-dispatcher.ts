import { X509Certificate } from 'node:crypto';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { SecureContext } from 'node:tls';

import { fileReason, silentLogger, TlsConfigError, type Logger } from '@rxpush/core';
import { Agent, buildConnector, Pool, type Dispatcher } from 'undici';

import { noteTlsAlert } from '../errors.js';
import { DEFAULT_TIMEOUTS } from '../timeouts.js';
import { apiHost, effectivePort } from '../urls.js';
import { ForwardingPool, proxiedConnector } from './proxy-connector.js';
import { proxyFor, proxySettings, shownProxy, type ProxySettings } from './proxy.js';

export interface DispatcherOptions {
  /** host[:port] of the registry, as in an image reference: its certs.d directory and the host client certificates go to. */
  readonly registry: string;
  /** Verify the registry's certificate (default true). `false` (`--tls-verify=false`) logs a warning. */
  readonly tlsVerify?: boolean;
  /** More CA certificates (PEM files) to trust, besides the system's (`--ca-file`). */
  readonly caFile?: string | readonly string[];
  /**
   * A directory of `*.crt` CA files and `*.cert`/`*.key` client certificate pairs for this registry
   * (`--cert-dir`, as skopeo's). Without it: `<certsRoot>/<registry>` when that exists.
   */
  readonly certDir?: string;
  /** Docker's certs.d root (default `/etc/docker/certs.d`): `<certsRoot>/HOST:PORT/` is used like `certDir`. */
  readonly certsRoot?: string;
  /** The system CA bundle (default: the distribution's, e.g. /etc/ssl/certs/ca-certificates.crt, or $SSL_CERT_FILE). */
  readonly systemCaFile?: string;
  /** How long connecting (TCP and TLS handshake) may take, in ms (default 10 000). */
  readonly connectTimeout?: number;
  /**
   * The HTTP proxies to go through (default: those HTTPS_PROXY, HTTP_PROXY and NO_PROXY name, as docker and
   * skopeo read them; `null`: none). Each origin is decided on its own: the registry, its token realm, its storage.
   */
  readonly proxies?: ProxySettings | null;
  readonly logger?: Logger;
}

const DEFAULT_CERTS_ROOT = '/etc/docker/certs.d';
const SYSTEM_BUNDLES = ['/etc/ssl/certs/ca-certificates.crt', '/etc/pki/tls/certs/ca-bundle.crt', '/etc/ssl/cert.pem'];
const PEM_CERTIFICATE = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g;

/**
 * Makes the undici dispatcher for one registry's requests: trusts Node's and the system's CAs, plus
 * `caFile` and the registry's certs.d `*.crt`; presents a certs.d client certificate (`client.cert` +
 * `client.key`) to the registry's host:port alone; skips verification only with `tlsVerify: false`, and
 * then only for the registry's host (a token realm elsewhere is still verified).
 *
 * The caller owns it: `close()` it when done. A certificate error never makes rxpush try plain HTTP.
 *
 * @throws {TlsConfigError} (code `TLS_CONFIG`): a CA file or certs.d directory that cannot be read, has no PEM
 *   certificate, or a client certificate without its key.
 * @example
 * const dispatcher = createDispatcher({ registry: 'registry.local:5000', caFile: './ca.crt' });
 * const client = new RegistryClient({ registry: 'registry.local:5000', dispatcher });
 */
export function createDispatcher(options: DispatcherOptions): Dispatcher {
  const logger = (options.logger ?? silentLogger).child({ pkg: 'registry-client', part: 'tls' });
  const verify = options.tlsVerify !== false;
  const caFiles = options.caFile === undefined ? [] : typeof options.caFile === 'string' ? [options.caFile] : [...options.caFile];

  const extraCas = caFiles.flatMap((file) => certificatesIn(file, '--ca-file'));
  const dir = options.certDir ?? join(options.certsRoot ?? DEFAULT_CERTS_ROOT, options.registry);
  const certsD = readCertDir(dir, options.certDir !== undefined);
  extraCas.push(...certsD.cas);
  const clientCerts = certsD.clientCerts;
  // Building a store of every CA costs ~0.1 CPU-s: only a TLS connection pays for it, a plain-HTTP one never.
  let contexts: { common: SecureContext; withClientCert: SecureContext } | undefined;
  const secureContexts = (): { common: SecureContext; withClientCert: SecureContext } => {
    if (contexts !== undefined) return contexts;
    // node:tls when a TLS connection is made: a push to a plain-HTTP registry never loads it (~1 ms).
    const { createSecureContext, rootCertificates } = process.getBuiltinModule('node:tls');
    const ca = [...rootCertificates, ...systemCertificates(options.systemCaFile), ...extraCas];
    const common = createSecureContext({ ca });
    let withClientCert = common;
    if (clientCerts.length > 0) {
      try {
        withClientCert = createSecureContext({ ca, cert: clientCerts.map((c) => c.cert), key: clientCerts.map((c) => c.key) });
      } catch (error) {
        throw new TlsConfigError(dir, `the client certificate in ${dir} cannot be used (${(error as Error).message}); check that each NAME.cert and NAME.key are a PEM pair`, { cause: error });
      }
    }
    contexts = { common, withClientCert };
    return contexts;
  };
  // A bad client certificate pair is reported at once, not at the first connection.
  if (clientCerts.length > 0) secureContexts();
  // Docker Hub's name is not the host its API answers on.
  const registry = new URL(`https://${apiHost(options.registry)}`);
  if (!verify) {
    logger.warn(
      { registry: options.registry },
      `TLS verification is off for ${registry.hostname} (--tls-verify=false): anyone on the network path can read the credentials and change what is pushed`,
    );
  }
  if (certsD.loaded.length > 0) logger.debug({ registry: options.registry, dir, files: certsD.loaded }, 'certs.d files loaded');

  const connectTimeout = options.connectTimeout ?? DEFAULT_TIMEOUTS.connect;
  const connectFor = (origin: URL): { secureContext?: SecureContext; rejectUnauthorized?: boolean; timeout: number } => {
    if (origin.protocol !== 'https:') return { timeout: connectTimeout };
    const sameHost = origin.hostname === registry.hostname;
    const sameHostPort = sameHost && effectivePort(origin) === effectivePort(registry);
    const { common, withClientCert } = secureContexts();
    return {
      secureContext: sameHostPort ? withClientCert : common,
      rejectUnauthorized: verify || !sameHost,
      timeout: connectTimeout,
    };
  };
  const proxies = options.proxies === undefined ? proxySettings() : (options.proxies ?? undefined);
  return new Agent({
    connect: { timeout: connectTimeout },
    factory: (origin, opts) => {
      const url = new URL(String(origin));
      const connect = connectFor(url);
      const tls = url.protocol === 'https:' ? notingTlsAlerts(buildConnector(connect)) : undefined;
      const proxy = proxyFor(proxies, url);
      if (proxy === undefined) return new Pool(origin, { ...(opts as Pool.Options), connect: tls ?? connect });
      logger.debug({ origin: url.origin, proxy: shownProxy(proxy) }, 'through a proxy');
      const proxyContext = proxy.url.protocol === 'https:' ? secureContexts().common : undefined;
      if (tls === undefined) return new ForwardingPool(url, proxy, opts as Pool.Options, connectTimeout, proxyContext);
      return new Pool(origin, { ...(opts as Pool.Options), connect: proxiedConnector(proxy, tls, connectTimeout, proxyContext) });
    },
  });
}

/**
 * undici's connector, with each TLS socket's errors shown to {@link noteTlsAlert}: a registry that wants a client
 * certificate sends its alert after a TLS 1.3 handshake, which undici then reports only as "other side closed".
 */
function notingTlsAlerts(connector: buildConnector.connector): buildConnector.connector {
  return (options, callback) =>
    connector(options, (...args) => {
      // undici calls back with the error alone when connecting fails: the socket is then undefined, not null.
      const [, socket] = args as [Error | null, (typeof args)[1] | undefined];
      if (socket) {
        // Taken now: a socket that has failed may no longer tell its addresses.
        const ends = { localAddress: socket.localAddress, localPort: socket.localPort, remoteAddress: socket.remoteAddress, remotePort: socket.remotePort };
        socket.on('error', (failure) => noteTlsAlert(ends, failure));
      }
      callback(...args);
    });
}

/** The system's CA bundle, which may hold CAs an administrator added (update-ca-certificates), beyond Node's own list. */
function systemCertificates(explicit: string | undefined): string[] {
  const candidates = explicit !== undefined ? [explicit] : [process.env['SSL_CERT_FILE'], process.env['NODE_EXTRA_CA_CERTS'], ...SYSTEM_BUNDLES];
  const found: string[] = [];
  for (const file of candidates) {
    if (file === undefined || file === '' || !existsSync(file)) continue;
    try {
      found.push(...(readFileSync(file, 'utf8').match(PEM_CERTIFICATE) ?? []));
    } catch {
      // An unreadable system bundle leaves Node's own list, which is what Node uses anyway.
    }
    if (explicit === undefined && SYSTEM_BUNDLES.includes(file)) break;
  }
  return found;
}

/** The PEM certificates in a file, each checked to parse. */
function certificatesIn(file: string, what: string): string[] {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (error) {
    throw new TlsConfigError(file, `cannot read ${what} ${file}: ${fileReason(error)}; give the PEM file of the CA that signed the registry's certificate`, { cause: error });
  }
  const pems = text.match(PEM_CERTIFICATE) ?? [];
  if (pems.length === 0) throw new TlsConfigError(file, `${what} ${file} holds no PEM certificate (-----BEGIN CERTIFICATE-----); give the CA certificate in PEM form`);
  for (const pem of pems) {
    try {
      new X509Certificate(pem);
    } catch (error) {
      throw new TlsConfigError(file, `${what} ${file} holds a certificate that does not parse (${(error as Error).message}); give the CA certificate in PEM form`, { cause: error });
    }
  }
  return pems;
}

interface CertDir {
  readonly cas: string[];
  readonly clientCerts: { cert: string; key: string }[];
  readonly loaded: string[];
}

/**
 * Docker's certs.d convention: `*.crt` are CAs; `NAME.cert` is a client certificate whose key is `NAME.key`.
 * A missing directory is fine unless it was asked for explicitly.
 */
function readCertDir(dir: string, required: boolean): CertDir {
  const result: CertDir = { cas: [], clientCerts: [], loaded: [] };
  let names: string[];
  try {
    names = readdirSync(dir).sort();
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (!required && (code === 'ENOENT' || code === 'ENOTDIR')) return result;
    throw new TlsConfigError(dir, `cannot read the certificate directory ${dir}: ${fileReason(error, 'directory')}; check --cert-dir`, { cause: error });
  }
  for (const name of names) {
    const path = join(dir, name);
    if (name.endsWith('.crt')) {
      result.cas.push(...certificatesIn(path, 'CA file'));
      result.loaded.push(name);
    } else if (name.endsWith('.cert')) {
      const keyName = `${name.slice(0, -'.cert'.length)}.key`;
      if (!names.includes(keyName)) throw new TlsConfigError(path, `the client certificate ${path} has no key ${keyName} beside it; add the key or remove the certificate`);
      result.clientCerts.push({ cert: readFileSync(path, 'utf8'), key: readFileSync(join(dir, keyName), 'utf8') });
      result.loaded.push(name, keyName);
    } else if (name.endsWith('.key')) {
      const certName = `${name.slice(0, -'.key'.length)}.cert`;
      if (!names.includes(certName)) throw new TlsConfigError(path, `the key ${path} has no client certificate ${certName} beside it; add the certificate or remove the key`);
    }
  }
  return result;
}
