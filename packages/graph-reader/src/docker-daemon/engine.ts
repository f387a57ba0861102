import { readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import type { Readable } from 'node:stream';

import type { Digest, Platform } from '@rxpush/core';
import { InvalidSourceError, SourceError, SourceNotFoundError, UsageError, isPushError, oneLine, parseDigest } from '@rxpush/core';
import { readBody } from '@rxpush/registry-client';
import { Client } from 'undici';

import { parseJsonObject } from '../shared/json.js';

/** The Docker Engine's default socket, used when DOCKER_HOST is not set. */
export const DEFAULT_DOCKER_HOST = 'unix:///var/run/docker.sock';
/** An image's inspect answer is a few KiB; more than this is not one (and is not read into memory). */
const INSPECT_LIMIT = 4 * 1024 * 1024;
/** How much of an error answer is read for its message. */
const ERROR_BODY_LIMIT = 64 * 1024;

/** What rxpush needs of an image the engine has (`GET /images/NAME/json`). */
export interface EngineImage {
  /** The image ID: the digest of its config. */
  readonly id: Digest;
  /** RootFS.Layers: the layers' diff IDs, base first. */
  readonly diffIds: Digest[];
  readonly platform?: Platform;
}

/**
 * TLS to a `tcp://` engine, as the docker CLI takes it from DOCKER_TLS_VERIFY, DOCKER_TLS and DOCKER_CERT_PATH:
 * `certPath` holds `ca.pem` (the CA that signed the engine's certificate) and, for an engine that asks
 * for a client certificate, `cert.pem` and `key.pem`.
 */
export interface DockerTls {
  /** Default `~/.docker`, as docker's. */
  readonly certPath?: string | undefined;
  /** Check the engine's certificate against `ca.pem` (DOCKER_TLS_VERIFY); without it, TLS without checking (DOCKER_TLS). */
  readonly verify: boolean;
}

/** Where the engine is and how to reach it. */
export interface DockerEngineOptions {
  /** DOCKER_HOST's syntax: `unix:///PATH` or `tcp://HOST[:PORT]`; default the system socket. */
  readonly host?: string | undefined;
  /** TLS for a `tcp://` engine; ignored for a unix socket, as docker does. */
  readonly tls?: DockerTls | undefined;
  /** How long the engine may take to answer an inspect, or pause inside its answer (default 30 s). */
  readonly answerTimeoutMs?: number | undefined;
}

/**
 * The TLS settings the docker CLI reads from the environment: DOCKER_TLS_VERIFY (any value but empty)
 * for TLS that checks the engine's certificate, else DOCKER_TLS for TLS that does not; undefined for neither.
 *
 * @example dockerTlsFromEnv({ DOCKER_TLS_VERIFY: '1', DOCKER_CERT_PATH: '/certs' }) // { verify: true, certPath: '/certs' }
 */
export function dockerTlsFromEnv(env: NodeJS.ProcessEnv): DockerTls | undefined {
  const verify = (env.DOCKER_TLS_VERIFY ?? '') !== '';
  if (!verify && (env.DOCKER_TLS ?? '') === '') return undefined;
  const certPath = env.DOCKER_CERT_PATH;
  return { verify, ...(certPath !== undefined && certPath !== '' && { certPath }) };
}

/** A Docker Engine API client over its unix socket or TCP. */
export interface DockerEngine {
  /** The engine as messages name it (`unix:///var/run/docker.sock`). */
  readonly host: string;
  inspectImage(name: string, signal?: AbortSignal): Promise<EngineImage>;
  /** `GET /images/NAME/get`: the image as a `docker save` tar stream. */
  saveImage(name: string, signal: AbortSignal): Promise<Readable>;
  close(): Promise<void>;
}

/**
 * Connects to the Docker Engine that `options.host` names, over TLS when `options.tls` says so and the
 * engine is a `tcp://` one. Nothing is sent until a request is made.
 *
 * Throws `UsageError` for a host it cannot talk to, or TLS files that cannot be read.
 */
export function dockerEngine(options: DockerEngineOptions = {}): DockerEngine {
  const dockerHost = options.host;
  const host = dockerHost === undefined || dockerHost === '' ? DEFAULT_DOCKER_HOST : dockerHost;
  const tls = host.startsWith('tcp://') ? options.tls : undefined;
  const files = tls !== undefined ? tlsFiles(host, tls) : undefined;
  const client = connect(host, files);
  const shown = `the Docker Engine at ${host}`;
  const setting = [
    dockerHost === undefined || dockerHost === '' ? 'DOCKER_HOST is not set' : `DOCKER_HOST=${dockerHost}`,
    ...(tls !== undefined ? [`${tls.verify ? 'DOCKER_TLS_VERIFY' : 'DOCKER_TLS'} is set`, `certificates from ${certDir(tls)}`] : []),
  ].join(', ');

  const answerTimeoutMs = options.answerTimeoutMs ?? 30_000;
  const get = async (path: string, signal: AbortSignal | undefined, timeoutMs: number) => {
    try {
      return await client.request({ method: 'GET', path, ...(signal !== undefined && { signal }), headersTimeout: timeoutMs, bodyTimeout: timeoutMs });
    } catch (err) {
      if (isPushError(err) || (err as Error).name === 'AbortError') throw err;
      throw unreachable(host, setting, `GET ${path}`, err, files, timeoutMs);
    }
  };
  /** The answer's body, at most `limit` bytes of it; a connection that fails while it is read is the engine's failure. */
  const read = async (path: string, body: Readable, limit: number, timeoutMs: number) => {
    try {
      return await readBody(body, limit);
    } catch (err) {
      if (isPushError(err) || (err as Error).name === 'AbortError') throw err;
      throw unreachable(host, setting, `GET ${path}`, err, files, timeoutMs);
    }
  };
  const failed = async (path: string, status: number, body: Readable, timeoutMs: number) => {
    const { bytes } = await read(path, body, ERROR_BODY_LIMIT, timeoutMs);
    return engineError(host, path, status, bytes.toString('utf8'), tls);
  };

  return {
    host,
    async inspectImage(name, signal) {
      const path = `/images/${name}/json`;
      const response = await get(path, signal, answerTimeoutMs);
      if (response.statusCode === 404) {
        await response.body.dump();
        throw new SourceNotFoundError(name, `image ${name} not found in ${shown}; docker pull it or check the name`);
      }
      if (response.statusCode !== 200) throw await failed(path, response.statusCode, response.body, answerTimeoutMs);
      const what = `GET ${host}${path}`;
      const { bytes, complete } = await read(path, response.body, INSPECT_LIMIT, answerTimeoutMs);
      if (!complete) throw new InvalidSourceError(what, `${what} answered with more than ${INSPECT_LIMIT / 1024 / 1024} MiB, which is no image inspect answer; is DOCKER_HOST a Docker Engine?`);
      return parseInspect(bytes, what);
    },
    async saveImage(name, signal) {
      const path = `/images/${name}/get`;
      // The engine writes the whole image out before its first byte, and rxpush pauses the body while
      // the registry catches up: neither is a timeout. Cancelling the push aborts it.
      const response = await get(path, signal, 0);
      if (response.statusCode === 404) {
        await response.body.dump();
        throw new SourceNotFoundError(name, `image ${name} not found in ${shown}; docker pull it or check the name`);
      }
      if (response.statusCode !== 200) throw await failed(path, response.statusCode, response.body, 0);
      return response.body;
    },
    close: () => client.close(),
  };
}

function connect(host: string, tls: TlsFiles | undefined): Client {
  if (host.startsWith('unix://')) {
    const socketPath = host.slice('unix://'.length);
    if (socketPath === '') throw new UsageError(`DOCKER_HOST=${host} names no socket; use unix:///PATH, e.g. ${DEFAULT_DOCKER_HOST}`);
    // The origin is only what the Host header says; the socket is what is dialled.
    return new Client('http://localhost', { socketPath });
  }
  if (host.startsWith('tcp://')) {
    let url: URL;
    try {
      url = new URL(`http://${host.slice('tcp://'.length)}`);
    } catch {
      throw new UsageError(`DOCKER_HOST=${host} is not tcp://HOST:PORT`);
    }
    if (url.pathname !== '/' || url.search !== '') throw new UsageError(`DOCKER_HOST=${host} is not tcp://HOST:PORT`);
    const hostname = url.hostname.includes(':') && !url.hostname.startsWith('[') ? `[${url.hostname}]` : url.hostname;
    // Docker's defaults: 2376 for an engine over TLS, 2375 for plain HTTP.
    if (tls === undefined) return new Client(`http://${hostname}:${url.port || '2375'}`);
    const { ca, cert, key, verify } = tls;
    return new Client(`https://${hostname}:${url.port || '2376'}`, {
      connect: { rejectUnauthorized: verify, ...(ca !== undefined && { ca }), ...(cert !== undefined && key !== undefined && { cert, key }) },
    });
  }
  throw new UsageError(`DOCKER_HOST=${host} is not supported: rxpush talks to a Docker Engine at unix:///PATH or tcp://HOST:PORT (plain HTTP, or TLS with DOCKER_TLS_VERIFY and DOCKER_CERT_PATH)`);
}

function certDir(tls: DockerTls): string {
  return tls.certPath ?? join(homedir(), '.docker');
}

/** What DOCKER_CERT_PATH held, and where it is. */
interface TlsFiles {
  readonly dir: string;
  readonly verify: boolean;
  readonly ca?: Buffer | undefined;
  readonly cert?: Buffer | undefined;
  readonly key?: Buffer | undefined;
}

/**
 * The TLS files in DOCKER_CERT_PATH, read as docker reads them: `ca.pem` when verifying, and the client
 * certificate only when both `cert.pem` and `key.pem` are there.
 */
function tlsFiles(host: string, tls: DockerTls): TlsFiles {
  const dir = certDir(tls);
  const read = (name: string, required: boolean): Buffer | undefined => {
    try {
      return readFileSync(join(dir, name));
    } catch (err) {
      if (!required && (err as { code?: unknown }).code === 'ENOENT') return undefined;
      const reason = err instanceof Error ? err.message : String(err);
      throw new SourceNotFoundError(host,
        `${tls.verify ? 'DOCKER_TLS_VERIFY' : 'DOCKER_TLS'} is set for DOCKER_HOST=${host}, but ${join(dir, name)} cannot be read (${reason}); set DOCKER_CERT_PATH to the directory with ca.pem, cert.pem and key.pem`,
      );
    }
  };
  const cert = read('cert.pem', false);
  const key = read('key.pem', false);
  return { dir, verify: tls.verify, ca: tls.verify ? read('ca.pem', true) : undefined, ...(cert !== undefined && key !== undefined && { cert, key }) };
}

/** Node's codes for a TLS handshake that failed on a certificate, or an engine that wanted one from us. */
const TLS_FAILURE = /^(ERR_TLS_|ERR_SSL_|UNABLE_TO_|CERT_|DEPTH_ZERO_SELF_SIGNED_CERT|SELF_SIGNED_CERT_IN_CHAIN|HOSTNAME_MISMATCH)/;

function unreachable(host: string, setting: string, what: string, err: unknown, tls: TlsFiles | undefined, timeoutMs: number): SourceError {
  const code = (err as { code?: unknown }).code;
  const reason = err instanceof Error ? err.message : String(err);
  // The engine took the connection and then said nothing: it is there, but stuck or swamped.
  if (code === 'UND_ERR_HEADERS_TIMEOUT' || code === 'UND_ERR_BODY_TIMEOUT') {
    return new SourceNotFoundError(host, `the Docker Engine at ${host} did not answer ${what} within ${timeoutMs / 1000} s; check dockerd and its logs, then push again (${setting})`, { cause: err });
  }
  // Over TLS 1.3 an engine that wants a client certificate refuses after the handshake: the client sees the connection close.
  if (tls !== undefined && tls.cert === undefined && code === 'UND_ERR_SOCKET') {
    return new SourceNotFoundError(host,
      `the Docker Engine at ${host} closed the TLS connection (${what}: ${reason}): it probably wants a client certificate, and ${tls.dir} has no cert.pem and key.pem; set DOCKER_CERT_PATH to the directory with ca.pem, cert.pem and key.pem (${setting})`,
      { cause: err },
    );
  }
  if (tls !== undefined && typeof code === 'string' && TLS_FAILURE.test(code)) {
    return new SourceNotFoundError(host,
      `the TLS handshake with the Docker Engine at ${host} failed (${what}: ${reason}); check that DOCKER_CERT_PATH holds the engine's ca.pem and a cert.pem and key.pem it accepts (${setting})`,
      { cause: err },
    );
  }
  if (code === 'EACCES') {
    return new SourceNotFoundError(host, `cannot reach the Docker Engine at ${host}: permission denied on its socket; run rxpush as root or as a member of the docker group (${setting})`, { cause: err });
  }
  return new SourceNotFoundError(host, `cannot reach the Docker Engine at ${host} (${what}: ${reason}): is dockerd running? (${setting})`, { cause: err });
}

function engineError(host: string, path: string, status: number, body: string, tls: DockerTls | undefined): SourceError {
  let message = body.trim();
  let docker = false;
  try {
    const json = parseJsonObject(body, (problem) => new Error(problem));
    if (typeof json.message === 'string') {
      message = json.message;
      docker = true;
    }
  } catch {
    // Not Docker's JSON error: show the text.
  }
  // dockerd's answer to plain HTTP on its TLS port.
  const hint =
    tls === undefined && status === 400 && /HTTP request to an HTTPS server/i.test(message)
      ? '; the engine speaks TLS: set DOCKER_TLS_VERIFY=1 and DOCKER_CERT_PATH'
      : // The engine explains every failure in {"message": …}; an answer without one came from something else.
        docker
        ? ''
        : '; that is not how a Docker Engine answers: is DOCKER_HOST a Docker Engine?';
  return new InvalidSourceError(host, `GET ${host}${path} → ${status}${message !== '' ? `: ${oneLine(message, 300)}` : ''}${hint}`);
}

function parseInspect(body: Uint8Array, what: string): EngineImage {
  const json = parseJsonObject(body, (problem) => new InvalidSourceError(what, `${what} answered with something that ${problem}; is DOCKER_HOST a Docker Engine?`));
  const id = parseDigest(json.Id, `image ID in ${what}`);
  const rootFs = json.RootFS as { Type?: unknown; Layers?: unknown } | undefined;
  const layers = rootFs?.Layers ?? [];
  if (!Array.isArray(layers)) throw new InvalidSourceError(what, `${what} has RootFS.Layers that is not a list`);
  const diffIds = layers.map((layer, i) => parseDigest(layer, `RootFS.Layers[${i}] in ${what}`));
  const { Architecture: architecture, Os: os, Variant: variant } = json;
  const platform =
    typeof architecture === 'string' && typeof os === 'string' ? { architecture, os, ...(typeof variant === 'string' && variant !== '' && { variant }) } : undefined;
  return { id, diffIds, ...(platform !== undefined && { platform }) };
}
