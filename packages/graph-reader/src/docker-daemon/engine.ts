import type { Readable } from 'node:stream';

import type { Digest, Platform } from '@rxpush/core';
import { SourceError, UsageError, isPushError, parseDigest } from '@rxpush/core';
import { Client } from 'undici';

import { parseJsonObject } from '../shared/json.js';

/** The Docker Engine's default socket, used when DOCKER_HOST is not set. */
export const DEFAULT_DOCKER_HOST = 'unix:///var/run/docker.sock';

/** What rxpush needs of an image the engine has (`GET /images/NAME/json`). */
export interface EngineImage {
  /** The image ID: the digest of its config. */
  readonly id: Digest;
  /** RootFS.Layers: the layers' diff IDs, base first. */
  readonly diffIds: Digest[];
  readonly platform?: Platform;
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
 * Connects to the Docker Engine that `dockerHost` (DOCKER_HOST's syntax: `unix:///PATH` or
 * `tcp://HOST:PORT`; default the system socket) names. Nothing is sent until a request is made.
 */
export function dockerEngine(dockerHost: string | undefined): DockerEngine {
  const host = dockerHost === undefined || dockerHost === '' ? DEFAULT_DOCKER_HOST : dockerHost;
  const client = connect(host);
  const shown = `the Docker Engine at ${host}`;
  const setting = dockerHost === undefined || dockerHost === '' ? 'DOCKER_HOST is not set' : `DOCKER_HOST=${dockerHost}`;

  const get = async (path: string, what: string, signal: AbortSignal | undefined, timeouts: { headersTimeout: number; bodyTimeout: number }) => {
    try {
      return await client.request({ method: 'GET', path, ...(signal !== undefined && { signal }), ...timeouts });
    } catch (err) {
      if (isPushError(err) || (err as Error).name === 'AbortError') throw err;
      throw unreachable(host, setting, what, err);
    }
  };

  return {
    host,
    async inspectImage(name, signal) {
      const path = `/images/${name}/json`;
      const response = await get(path, `GET ${path}`, signal, { headersTimeout: 30_000, bodyTimeout: 30_000 });
      if (response.statusCode === 404) {
        await response.body.dump();
        throw new SourceError('SOURCE_NOT_FOUND', name, `image ${name} not found in ${shown}; docker pull it or check the name`);
      }
      const body = (await response.body.text().catch(() => '')) as string;
      if (response.statusCode !== 200) throw engineError(host, path, response.statusCode, body);
      return parseInspect(body, `GET ${host}${path}`);
    },
    async saveImage(name, signal) {
      const path = `/images/${name}/get`;
      // The engine writes the whole image out before its first byte, and rxpush pauses the body while
      // the registry catches up: neither is a timeout. Cancelling the push aborts it.
      const response = await get(path, `GET ${path}`, signal, { headersTimeout: 0, bodyTimeout: 0 });
      if (response.statusCode !== 200) {
        const body = (await response.body.text().catch(() => '')) as string;
        if (response.statusCode === 404) throw new SourceError('SOURCE_NOT_FOUND', name, `image ${name} not found in ${shown}; docker pull it or check the name`);
        throw engineError(host, path, response.statusCode, body);
      }
      return response.body;
    },
    close: () => client.close(),
  };
}

function connect(host: string): Client {
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
    // Docker's default for a plain TCP engine.
    return new Client(`http://${url.hostname.includes(':') ? `[${url.hostname}]` : url.hostname}:${url.port || '2375'}`);
  }
  throw new UsageError(`DOCKER_HOST=${host} is not supported: rxpush talks to a Docker Engine at unix:///PATH or tcp://HOST:PORT (plain HTTP)`);
}

function unreachable(host: string, setting: string, what: string, err: unknown): SourceError {
  const code = (err as { code?: unknown }).code;
  const reason = err instanceof Error ? err.message : String(err);
  if (code === 'EACCES') {
    return new SourceError('SOURCE_NOT_FOUND', host, `cannot reach the Docker Engine at ${host}: permission denied on its socket; run rxpush as root or as a member of the docker group (${setting})`, { cause: err });
  }
  return new SourceError('SOURCE_NOT_FOUND', host, `cannot reach the Docker Engine at ${host} (${what}: ${reason}): is dockerd running? (${setting})`, { cause: err });
}

function engineError(host: string, path: string, status: number, body: string): SourceError {
  let message = body.trim();
  try {
    const json = parseJsonObject(body, (problem) => new Error(problem));
    if (typeof json.message === 'string') message = json.message;
  } catch {
    // Not Docker's JSON error: show the text.
  }
  return new SourceError('INVALID_SOURCE', host, `GET ${host}${path} → ${status}${message !== '' ? `: ${message.slice(0, 300)}` : ''}`);
}

function parseInspect(body: string, what: string): EngineImage {
  const json = parseJsonObject(body, (problem) => new SourceError('INVALID_SOURCE', what, `${what} answered with something that ${problem}; is DOCKER_HOST a Docker Engine?`));
  const id = parseDigest(json.Id, `image ID in ${what}`);
  const rootFs = json.RootFS as { Type?: unknown; Layers?: unknown } | undefined;
  const layers = rootFs?.Layers ?? [];
  if (!Array.isArray(layers)) throw new SourceError('INVALID_SOURCE', what, `${what} has RootFS.Layers that is not a list`);
  const diffIds = layers.map((layer, i) => parseDigest(layer, `RootFS.Layers[${i}] in ${what}`));
  const { Architecture: architecture, Os: os, Variant: variant } = json;
  const platform =
    typeof architecture === 'string' && typeof os === 'string' ? { architecture, os, ...(typeof variant === 'string' && variant !== '' && { variant }) } : undefined;
  return { id, diffIds, ...(platform !== undefined && { platform }) };
}
