import type { Logger } from '@rxpush/core';
import type { Dispatcher } from 'undici';

import { isPlainHttpAnswer, transportError } from './errors.js';
import { dump } from './send.js';
import { apiHost, isLoopbackHost } from './urls.js';

export interface SchemeOptions {
  readonly host: string;
  readonly hostname: string;
  readonly plainHttp: boolean;
  readonly dispatcher: Dispatcher;
  readonly logger: Logger;
  readonly userAgent: string;
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

  const probe = new URL('/v2/', https);
  try {
    const res = await options.dispatcher.request({
      origin: probe.origin,
      path: probe.pathname,
      method: 'GET',
      headers: { 'user-agent': options.userAgent },
      signal: options.signal ?? null,
      headersTimeout: options.headersTimeout,
    });
    await dump(res.body);
    return https;
  } catch (error) {
    if (isPlainHttpAnswer(error)) {
      options.logger.debug({ registry: options.host }, 'loopback registry answered TLS in plain HTTP; using http');
      return new URL(`http://${host}/`);
    }
    throw transportError(error, { method: 'GET', url: probe.href, signal: options.signal });
  }
}
