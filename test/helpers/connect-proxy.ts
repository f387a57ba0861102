/**
 * An HTTP proxy for end-to-end tests, as corporate networks put in front of registries: it answers CONNECT
 * HOST:PORT by opening a TCP connection there and relaying bytes both ways, so TLS runs end to end through it,
 * and forwards requests in absolute form (`GET http://HOST:PORT/v2/`), as a proxy serves plain HTTP.
 * `hosts` maps names only the proxy knows (`registry.proxied.test`) to loopback addresses: a name that rxpush
 * itself cannot resolve proves a request went through the proxy. With `auth`, requests without its Basic
 * credentials (Proxy-Authorization) are answered 407 (quoting what they carried, with `echoCredentials`). It records each CONNECT target and each forwarded URL, and
 * stops every connection on close.
 */
import { readFileSync } from 'node:fs';
import { createServer, request, type IncomingMessage, type ServerResponse } from 'node:http';
import { createServer as createTlsServer } from 'node:https';
import { connect, type AddressInfo, type Socket } from 'node:net';

export interface ConnectProxy {
  /** `http://127.0.0.1:PORT` (`https://` with `tls`), for HTTPS_PROXY. */
  readonly url: string;
  /** The `HOST:PORT` of every CONNECT, in order (refused ones too). */
  readonly connects: string[];
  /** The `METHOD URL` of every request forwarded in absolute form, in order (refused ones too). */
  readonly forwarded: string[];
  close(): Promise<void>;
}

export interface ConnectProxyOptions {
  hosts?: Record<string, string>;
  auth?: { username: string; password: string };
  /** Speak TLS to clients (an `https://` proxy) with this certificate and key (PEM files). */
  tls?: { certFile: string; keyFile: string };
  /** Refuse credentials as a careless proxy does: its 407 to a forwarded request quotes the Proxy-Authorization and password it got. */
  echoCredentials?: boolean;
}

export async function startConnectProxy(options: ConnectProxyOptions = {}): Promise<ConnectProxy> {
  const sockets = new Set<Socket>();
  const connects: string[] = [];
  const forwarded: string[] = [];
  const expected = options.auth === undefined ? undefined : `Basic ${Buffer.from(`${options.auth.username}:${options.auth.password}`).toString('base64')}`;
  const tls = options.tls === undefined ? undefined : { cert: readFileSync(options.tls.certFile), key: readFileSync(options.tls.keyFile) };
  const serve = (req: IncomingMessage, res: ServerResponse): void => {
    const target = req.url ?? '';
    forwarded.push(`${req.method} ${target}`);
    // A request for the proxy itself, not one to forward.
    if (!target.startsWith('http://')) return void res.writeHead(400).end();
    if (expected !== undefined && req.headers['proxy-authorization'] !== expected) {
      const sent = req.headers['proxy-authorization'] ?? '';
      const password = Buffer.from(sent.replace(/^Basic /, ''), 'base64').toString().split(':').slice(1).join(':');
      const body = options.echoCredentials === true ? `refused ${sent} (password ${password})` : '';
      return void res.writeHead(407, { 'proxy-authenticate': 'Basic realm="test proxy"', 'content-type': 'text/plain', 'content-length': String(Buffer.byteLength(body)) }).end(body);
    }
    const url = new URL(target);
    const { 'proxy-authorization': _credentials, ...headers } = req.headers;
    const upstream = request({ host: options.hosts?.[url.hostname] ?? url.hostname, port: url.port || 80, method: req.method, path: `${url.pathname}${url.search}`, headers }, (answer) => {
      res.writeHead(answer.statusCode ?? 502, answer.headers);
      answer.pipe(res);
    });
    upstream.once('error', () => res.headersSent ? res.destroy() : res.writeHead(502, { 'content-length': '0' }).end());
    req.pipe(upstream);
  };
  const server = tls === undefined ? createServer(serve) : createTlsServer(tls, serve);
  server.on('connection', (socket: Socket) => {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
  });
  server.on('connect', (req: IncomingMessage, client: Socket, head: Buffer) => {
    const target = req.url ?? '';
    connects.push(target);
    if (expected !== undefined && req.headers['proxy-authorization'] !== expected) {
      client.end('HTTP/1.1 407 Proxy Authentication Required\r\nProxy-Authenticate: Basic realm="test proxy"\r\nContent-Length: 0\r\n\r\n');
      return;
    }
    const colon = target.lastIndexOf(':');
    const host = target.slice(0, colon).replace(/^\[|\]$/g, '');
    const port = Number(target.slice(colon + 1));
    const upstream = connect({ host: options.hosts?.[host] ?? host, port });
    sockets.add(upstream);
    upstream.once('close', () => sockets.delete(upstream));
    upstream.once('connect', () => {
      client.write('HTTP/1.1 200 Connection Established\r\n\r\n');
      if (head.length > 0) upstream.write(head);
      upstream.pipe(client);
      client.pipe(upstream);
    });
    upstream.once('error', () => client.end('HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\n\r\n'));
    client.once('error', () => upstream.destroy());
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  let closed: Promise<void> | undefined;
  return {
    url: `${tls === undefined ? 'http' : 'https'}://127.0.0.1:${port}`,
    connects,
    forwarded,
    close: () =>
      (closed ??= new Promise<void>((resolve) => {
        for (const socket of sockets) socket.destroy();
        server.close(() => resolve());
      })),
  };
}
