import type { Socket } from 'node:net';
import type { SecureContext } from 'node:tls';

import { buildConnector, Pool, type Dispatcher } from 'undici';

import { basicAuthorization, hideAlways, hideSecrets } from '../auth/credentials.js';
import { isCertificateError } from '../errors.js';
import { effectivePort } from '../urls.js';
import { ProxyError, shownProxy, type HttpProxy } from './proxy.js';

/** The longest CONNECT answer head read: proxies answer in a few hundred bytes. */
const HEAD_LIMIT = 64 * 1024;

/**
 * Asks `proxy`, over `socket` (already connected to it), for a tunnel to `host:port` (CONNECT), and resolves
 * once the proxy answered 200: the socket then carries the registry's connection. Rejects with a ProxyError
 * naming the proxy and its answer, or when it gives none within `timeoutMs`.
 */
export function openTunnel(socket: Socket, proxy: HttpProxy, host: string, port: string, timeoutMs: number): Promise<void> {
  const target = `${host.includes(':') ? `[${host}]` : host}:${port}`;
  const authorization = basicCredentials(proxy);
  const credentials = authorization !== undefined ? `Proxy-Authorization: ${authorization}\r\n` : '';
  return new Promise((resolve, reject) => {
    let head = Buffer.alloc(0);
    const timer = setTimeout(() => done(new ProxyError(`the proxy ${shownProxy(proxy)} did not answer CONNECT ${target} within ${timeoutMs / 1000} s; check it, or set NO_PROXY=${host} to go directly`, true)), timeoutMs);
    const done = (error?: Error): void => {
      clearTimeout(timer);
      socket.off('data', onData);
      socket.off('error', onError);
      socket.off('close', onClose);
      if (error === undefined) resolve();
      else {
        socket.destroy();
        reject(error);
      }
    };
    const onError = (error: Error): void => done(new ProxyError(`the proxy ${shownProxy(proxy)} failed (${error.message}); check that it runs, or set NO_PROXY=${host} to go directly`, true, { cause: error }));
    const onClose = (): void => done(new ProxyError(`the proxy ${shownProxy(proxy)} closed the connection before answering CONNECT ${target}`, true));
    const onData = (chunk: Buffer): void => {
      head = Buffer.concat([head, chunk]);
      const end = head.indexOf('\r\n\r\n');
      if (end === -1) {
        if (head.length > HEAD_LIMIT) done(new ProxyError(`the proxy ${shownProxy(proxy)} answered CONNECT ${target} with no end to its headers; is it an HTTP proxy?`, false));
        return;
      }
      const status = /^HTTP\/1\.[01] (\d{3})(?: ([^\r\n]*))?/.exec(head.subarray(0, end).toString('latin1'));
      const code = Number(status?.[1]);
      if (code === 200) {
        done();
        // Nothing may flow past until the tunnel's reader (TLS or undici) takes the socket; bytes after the head
        // belong to the tunnel (a proxy sends none before the client speaks, but they are kept).
        socket.pause();
        const rest = head.subarray(end + 4);
        if (rest.length > 0) socket.unshift(rest);
        return;
      }
      // The reason phrase is the proxy's own text: one that echoes what it was sent must not show the password.
      const reason = status?.[2] ? hideSecrets(status[2], []).slice(0, 80) : '';
      const text = status === null ? 'something that is not HTTP' : `${code}${reason ? ` ${reason}` : ''}`;
      const hint =
        code === 407
          ? authorization !== undefined
            ? `it refused the user and password in ${proxy.variable}; check them`
            : `it wants credentials: put them in ${proxy.variable} (http://USER:PASSWORD@HOST:PORT)`
          : code >= 500
            ? `it could not reach ${target}; check the name, or set NO_PROXY=${host} if it is to be reached directly`
            : `set NO_PROXY=${host} if ${host} is to be reached directly`;
      done(new ProxyError(`the proxy ${shownProxy(proxy)} answered CONNECT ${target} with ${text}; ${hint}`, code >= 500));
    };
    socket.on('data', onData);
    socket.on('error', onError);
    socket.on('close', onClose);
    socket.write(`CONNECT ${target} HTTP/1.1\r\nHost: ${target}\r\n${credentials}\r\n`);
  });
}

/**
 * An undici connector to `proxy` itself, whatever origin undici asks for: a failure to reach it is a ProxyError
 * naming the proxy, not the registry it stood for (`target`). An https:// proxy's certificate is checked against
 * `secureContext`'s CAs: the system's and the registry's (`--ca-file`, certs.d), as Go checks it with the
 * registry's TLS settings; a corporate proxy's CA is in the system store, where Node's own list does not look.
 */
export function toProxyConnector(
  proxy: HttpProxy,
  timeoutMs: number,
  secureContext: SecureContext | undefined,
): (target: string, callback: (socket: Socket) => void, fail: (error: Error) => void) => void {
  const toProxy = buildConnector({ timeout: timeoutMs, ...(secureContext !== undefined && { secureContext }) });
  const { url } = proxy;
  const proxyPort = effectivePort(url);
  return (target, callback, fail) =>
    // No servername: undici derives it from the host, and leaves it out for an IP address (which TLS does not allow).
    toProxy({ hostname: url.hostname.replace(/^\[|\]$/g, ''), host: url.host, protocol: url.protocol, port: proxyPort }, (...args) => {
      const [error, socket] = args;
      if (error === null) return callback(socket);
      const hint = isCertificateError(error)
        ? 'its certificate is not trusted: add its CA to the system store, or give it with --ca-file'
        : `check it, or set NO_PROXY=${target} to go directly`;
      fail(new ProxyError(`cannot reach the proxy ${shownProxy(proxy)} (${error.message}); ${hint}`, !isCertificateError(error), { cause: error }));
    });
}

/**
 * An undici connector that reaches the origin through `proxy`: it connects to the proxy, opens a CONNECT tunnel to
 * the origin's host and port, and gives the tunnel to `tls` (the origin's own TLS connector, with its CAs and client
 * certificate). Plain-HTTP origins go through a {@link ForwardingPool} instead, as Go sends them.
 */
export function proxiedConnector(proxy: HttpProxy, tls: buildConnector.connector, timeoutMs: number, proxyContext: SecureContext | undefined): buildConnector.connector {
  const toProxy = toProxyConnector(proxy, timeoutMs, proxyContext);
  return (options, callback) => {
    const port = options.port !== '' && options.port !== undefined ? String(options.port) : '443';
    toProxy(
      options.hostname,
      (socket) =>
        openTunnel(socket, proxy, options.hostname, port, timeoutMs).then(
          () => tls({ ...options, httpSocket: socket }, callback),
          (failure: Error) => callback(failure, null),
        ),
      (failure) => callback(failure, null),
    );
  };
}

/**
 * The connections to a plain-HTTP origin through `proxy`, as Go's net/http (docker, skopeo) makes them: each
 * request goes to the proxy in absolute form (`GET http://host:port/v2/ HTTP/1.1`), with the origin's Host and
 * the proxy's credentials. No CONNECT: proxies refuse tunnels to ports other than 443 (squid's default `SSL_ports`
 * rule), and a registry on port 5000 is the common plain-HTTP one.
 */
export class ForwardingPool extends Pool {
  readonly #origin: string;
  readonly #host: string;
  readonly #credentials: string | undefined;

  constructor(origin: URL, proxy: HttpProxy, options: Pool.Options, timeoutMs: number, proxyContext: SecureContext | undefined) {
    const toProxy = toProxyConnector(proxy, timeoutMs, proxyContext);
    super(proxy.url.origin, {
      ...options,
      connect: (_options, callback) => toProxy(origin.hostname, (socket) => callback(null, socket), (failure) => callback(failure, null)),
    });
    this.#origin = origin.origin;
    this.#host = origin.host;
    this.#credentials = basicCredentials(proxy);
  }

  override dispatch(options: Dispatcher.DispatchOptions, handler: Dispatcher.DispatchHandler): boolean {
    // The client's requests carry their headers as an object (send.ts), never undici's flat array form.
    const headers: Record<string, string> = { ...(options.headers as Record<string, string> | undefined), host: this.#host };
    if (this.#credentials !== undefined) headers['proxy-authorization'] = this.#credentials;
    return super.dispatch({ ...options, origin: this.#origin, path: `${this.#origin}${options.path}`, headers }, handler);
  }
}

/** The proxy's `Proxy-Authorization` value, from the user and password in its URL; both are hidden from then on wherever an answer is quoted. */
function basicCredentials(proxy: HttpProxy): string | undefined {
  const { username, password } = proxy.url;
  if (username === '') return undefined;
  const authorization = basicAuthorization(decodeURIComponent(username), decodeURIComponent(password));
  hideAlways(decodeURIComponent(password));
  hideAlways(authorization.slice('Basic '.length));
  return authorization;
}
