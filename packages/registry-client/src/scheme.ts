import { isIP } from 'node:net';
import { connect } from 'node:tls';

import type { Logger } from '@rxpush/core';

import { isPlainHttpAnswer, transportError } from './errors.js';
import { apiHost, isLoopbackHost } from './urls.js';

export interface SchemeOptions {
  readonly host: string;
  readonly hostname: string;
  readonly plainHttp: boolean;
  readonly logger: Logger;
  readonly headersTimeout: number;
  readonly signal?: AbortSignal | undefined;
}

/**
 * The base URL of the registry's API. HTTPS unless `plainHttp`; a loopback registry that answers a
 * TLS handshake in plain HTTP gets `http:`. A certificate error never falls back, and no other host ever does:
 * falling back there would let anyone on the path downgrade the connection.
 */
export async function resolveBaseUrl(options: SchemeOptions): Promise<URL> {
  const host = apiHost(options.host);
  if (options.plainHttp) return new URL(`http://${host}/`);
  const https = new URL(`https://${host}/`);
  if (!isLoopbackHost(options.hostname)) return https;

  try {
    if (await speaksTls(https, options)) return https;
  } catch (error) {
    throw transportError(error, { method: 'GET', url: new URL('/v2/', https).href, signal: options.signal });
  }
  options.logger.debug({ registry: options.host }, 'loopback registry answered TLS in plain HTTP; using http');
  return new URL(`http://${host}/`);
}

/**
 * Whether the server completes a TLS handshake. Only the protocol is learnt here, nothing is sent and
 * the certificate is not judged: the requests that follow verify it as usual. A bare handshake spares
 * a plain-HTTP loopback registry the HTTP request, and the push the CA store, a probe would cost.
 */
function speaksTls(url: URL, options: SchemeOptions): Promise<boolean> {
  return new Promise((resolve, reject) => {
    const hostname = url.hostname.replace(/^\[(.*)\]$/, '$1');
    const socket = connect({
      host: hostname,
      port: Number(url.port || 443),
      ...(isIP(hostname) === 0 && { servername: hostname }),
      rejectUnauthorized: false,
      ALPNProtocols: ['http/1.1'],
    });
    const done = (settle: () => void): void => {
      options.signal?.removeEventListener('abort', onAbort);
      socket.destroy();
      settle();
    };
    const onAbort = (): void => done(() => reject(options.signal?.reason));
    options.signal?.addEventListener('abort', onAbort, { once: true });
    socket.setTimeout(options.headersTimeout, () => {
      done(() => reject(Object.assign(new Error(`no TLS handshake within ${options.headersTimeout} ms`), { code: 'UND_ERR_CONNECT_TIMEOUT' })));
    });
    socket.once('secureConnect', () => done(() => resolve(true)));
    socket.once('error', (error) => done(() => (isPlainHttpAnswer(error) ? resolve(false) : reject(error))));
  });
}
