import { silentLogger, UsageError, type Logger, type RetryingEvent } from '@rxpush/core';
import type { Dispatcher } from 'undici';

import { createAuthenticator } from './auth/create-authenticator.js';
import { resolveCredentials } from './auth/resolve-credentials.js';
import { RegistryClient } from './registry-client.js';
import type { RetryOptions } from './retry.js';
import { createDispatcher } from './tls/create-dispatcher.js';
import type { Authenticator } from './types.js';

/** Options of {@link createRegistryClient}: one registry, how to reach it and whose credentials to use. */
export interface CreateRegistryClientOptions {
  /** host[:port] of the registry, as in an image reference. */
  readonly registry: string;
  /**
   * Credentials for the registry (`--creds`, `--username` + `--password-stdin`); `source` names them in messages.
   * Without them: `authfile`, then Docker's config.json and credential helpers, then anonymous.
   */
  readonly credentials?: { readonly username: string; readonly password: string; readonly source?: string };
  /** A config.json-format credentials file to look in before Docker's (`--authfile`). */
  readonly authfile?: string;
  /** The directory of Docker's config.json (default `$DOCKER_CONFIG`, else `~/.docker`). */
  readonly dockerConfigDir?: string;
  /** A PEM file of more CAs to trust besides the system's (`--ca-file`). */
  readonly caFile?: string;
  /** A directory of `*.crt` CAs and `NAME.cert`/`NAME.key` client certificates for the registry (`--cert-dir`). */
  readonly certDir?: string;
  /** Docker's certs.d root, searched for `HOST:PORT/` when `certDir` is not given (default `/etc/docker/certs.d`). */
  readonly certsRoot?: string;
  /** Verify the registry's TLS certificate (default true). `false` (`--tls-verify=false`) logs a warning. */
  readonly tlsVerify?: boolean;
  /** Always use plain HTTP (`--plain-http`). Without it, HTTPS, or HTTP for a loopback registry that answers in plain HTTP. */
  readonly plainHttp?: boolean;
  /** Timeouts in ms: connecting (default 10 000), waiting for an answer's headers (25 000), between body chunks (25 000). A request that times out is tried once more, so a registry that accepts connections and never answers fails within a minute. */
  readonly timeouts?: { readonly connect?: number; readonly headers?: number; readonly body?: number };
  /** How failed requests are retried (default: for 60 s from the first failure, backoff from 1 s with full jitter up to 30 s, Retry-After capped at 60 s; a blob's upload and the requests inside it share one budget). */
  readonly retry?: RetryOptions;
  readonly logger?: Logger;
  /** An undici dispatcher of your own (proxies, MockAgent in tests) instead of the TLS options above; the client leaves it open. */
  readonly dispatcher?: Dispatcher;
  /** An authenticator of your own, instead of rxpush's token/Basic auth with the credentials above. */
  readonly auth?: Authenticator;
  /** Told before every retry of every request, besides the `onRetry` a request may carry itself. */
  readonly onRetry?: (event: RetryingEvent) => void;
  readonly userAgent?: string;
}

/**
 * Builds a ready client for one registry: the dispatcher (system CAs, `caFile`, certs.d, `tlsVerify`), the
 * authenticator (credentials looked up only when the registry asks: `credentials`, `authfile`, Docker's
 * config.json and credential helpers) and the client over both, as `push()` uses them.
 *
 * `close()` the client when done: it closes the dispatcher it made (never one passed in).
 *
 * @throws {UsageError} when TLS options are combined with a dispatcher of your own.
 * @throws {TlsConfigError} when a CA file or certs.d directory cannot be read or holds no certificate.
 * @example
 * const client = createRegistryClient({ registry: 'registry.local:5000', caFile: './ca.crt', credentials: { username, password } });
 * source$.pipe(walkLayers(), checkBlobs({ client, repository }), uploadBlobs({ client, repository }), pushManifests({ client, repository }))
 */
export function createRegistryClient(options: CreateRegistryClientOptions): RegistryClient {
  const { registry, timeouts = {} } = options;
  const logger = options.logger ?? silentLogger;
  const tls = [options.tlsVerify === false && 'tlsVerify', options.caFile !== undefined && 'caFile', options.certDir !== undefined && 'certDir'].filter(Boolean);
  if (options.dispatcher !== undefined && tls.length > 0) {
    throw new UsageError(`${tls.join(', ')} cannot be used with a dispatcher of your own: set the TLS options on that dispatcher instead`);
  }
  const dispatcher =
    options.dispatcher ??
    createDispatcher({
      registry,
      logger,
      ...(options.tlsVerify !== undefined && { tlsVerify: options.tlsVerify }),
      ...(options.caFile !== undefined && { caFile: options.caFile }),
      ...(options.certDir !== undefined && { certDir: options.certDir }),
      ...(options.certsRoot !== undefined && { certsRoot: options.certsRoot }),
      ...(timeouts.connect !== undefined && { connectTimeout: timeouts.connect }),
    });
  const explicit = options.credentials;
  const auth =
    options.auth ??
    createAuthenticator({
      registry,
      dispatcher,
      logger,
      ...(options.userAgent !== undefined && { userAgent: options.userAgent }),
      credentials: (signal) =>
        resolveCredentials({
          registry,
          logger,
          signal,
          ...(explicit !== undefined && {
            explicit: { username: explicit.username, password: explicit.password, source: explicit.source ?? 'the credentials option' },
          }),
          ...(options.authfile !== undefined && { authfile: options.authfile }),
          ...(options.dockerConfigDir !== undefined && { dockerConfigDir: options.dockerConfigDir }),
        }),
    });
  return new RegistryClient({
    registry,
    logger,
    dispatcher,
    closeDispatcher: options.dispatcher === undefined,
    auth,
    ...(options.onRetry !== undefined && { onRetry: options.onRetry }),
    ...(options.userAgent !== undefined && { userAgent: options.userAgent }),
    ...(options.retry !== undefined && { retry: options.retry }),
    ...(timeouts.connect !== undefined && { connectTimeout: timeouts.connect }),
    ...(timeouts.headers !== undefined && { headersTimeout: timeouts.headers }),
    ...(timeouts.body !== undefined && { bodyTimeout: timeouts.body }),
    ...(options.plainHttp !== undefined && { plainHttp: options.plainHttp }),
  });
}
