import { connect, isIP } from 'node:net';

import type { Logger } from '@rxpush/core';

import { transportError } from './errors.js';
import type { Timeouts } from './timeouts.js';
import { answerProtocol, clientHello } from './tls/client-hello.js';
import { apiHost, isLoopbackHost } from './urls.js';

export interface SchemeOptions {
  readonly host: string;
  readonly hostname: string;
  readonly plainHttp: boolean;
  readonly logger: Logger;
  /** The client's; the TLS probe waits for the answer to its hello as long as connecting may take (`connect`). */
  readonly timeouts: Timeouts;
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
    throw transportError(error, { method: 'GET', url: new URL('/v2/', https).href, signal: options.signal, timeouts: options.timeouts });
  }
  options.logger.debug({ registry: options.host }, 'loopback registry answered TLS in plain HTTP; using http');
  return new URL(`http://${host}/`);
}

/**
 * Whether the server speaks TLS: it is sent a TLS ClientHello, and the first bytes of its answer tell (a TLS record
 * or an HTTP status line). Only the protocol is learnt here, nothing else is sent and no certificate is judged: the
 * requests that follow make their own TLS connections and verify it as usual. A hello of its own, not node:tls,
 * so that a push to a plain-HTTP registry loads neither node:tls nor OpenSSL's context for it (~2 ms).
 */
function speaksTls(url: URL, options: SchemeOptions): Promise<boolean> {
  return new Promise((resolve, reject) => {
    const hostname = url.hostname.replace(/^\[(.*)\]$/, '$1');
    const socket = connect({ host: hostname, port: Number(url.port || 443) });
    let answer = Buffer.alloc(0);
    const done = (settle: () => void): void => {
      options.signal?.removeEventListener('abort', onAbort);
      socket.destroy();
      settle();
    };
    const onAbort = (): void => done(() => reject(options.signal?.reason));
    options.signal?.addEventListener('abort', onAbort, { once: true });
    socket.setTimeout(options.timeouts.connect, () => {
      done(() => reject(Object.assign(new Error(`no TLS handshake within ${options.timeouts.connect} ms`), { code: 'UND_ERR_CONNECT_TIMEOUT' })));
    });
    socket.once('connect', () => socket.write(clientHello(isIP(hostname) === 0 ? hostname : undefined)));
    socket.on('data', (chunk: Buffer) => {
      answer = Buffer.concat([answer, chunk]);
      const protocol = answerProtocol(answer);
      if (protocol === 'tls') done(() => resolve(true));
      else if (protocol === 'http') done(() => resolve(false));
      // Neither TLS nor HTTP: what OpenSSL calls a wrong version number, and no registry either way.
      else if (protocol === 'unknown') done(() => reject(Object.assign(new Error('wrong version number'), { code: 'ERR_SSL_WRONG_VERSION_NUMBER' })));
    });
    socket.once('end', () => {
      done(() => reject(Object.assign(new Error('Client network socket disconnected before secure TLS connection was established'), { code: 'ECONNRESET' })));
    });
    socket.once('error', (error) => done(() => reject(error)));
  });
}
