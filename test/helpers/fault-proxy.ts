/**
 * A fault-injecting HTTP proxy for end-to-end tests: it sits on a free loopback port in front of a
 * REAL registry (tools/registry.ts), forwards every request unchanged (the Host header included, so
 * the registry's absolute Locations point back at the proxy), and breaks the ones a test scripts:
 * connection resets mid-body, stalls, delays, error answers (429 with Retry-After, 5xx), answers lost
 * after the registry acted on the request. It records every request (method, url, host, headers,
 * body bytes, answer) so tests can assert what reached the wire, e.g. that no credential went elsewhere.
 *
 * @example
 * const proxy = await startFaultProxy({ target: registry.host });
 * t.after(() => proxy.close());
 * proxy.addFault({ method: 'PUT', path: /\/blobs\/uploads\//, nth: 1, fault: { kind: 'status', status: 503 } });
 * // push to `${proxy.host}/app:1.0` …
 */
import { readFile } from 'node:fs/promises';
import { Agent, createServer, request as httpRequest, type IncomingHttpHeaders, type IncomingMessage, type ServerResponse } from 'node:http';
import { createServer as createTlsServer } from 'node:https';
import type { AddressInfo, Socket } from 'node:net';

/** What to do to a request. */
export type Fault =
  /**
   * Forward up to `afterBytes` bytes of the request body (default 0: nothing reaches the registry), then
   * reset both connections. A body shorter than that is forwarded whole and the reset comes before the answer.
   */
  | { readonly kind: 'reset'; readonly afterBytes?: number }
  /** Read the request and never answer (until the proxy closes). */
  | { readonly kind: 'stall' }
  /** Forward the request after `ms`. */
  | { readonly kind: 'delay'; readonly ms: number }
  /** Answer in the registry's place (its body read first), e.g. 503, or 429 with `Retry-After`. */
  | { readonly kind: 'status'; readonly status: number; readonly headers?: Readonly<Record<string, string>>; readonly body?: string }
  /** Forward the request, let the registry answer in full, then drop the client's connection unanswered. */
  | { readonly kind: 'lose-response' }
  /** Forward the request, and pass the registry's answer on only once `until` settles (a registry slow to commit). */
  | { readonly kind: 'hold-answer'; readonly until: Promise<unknown> }
  /** Forward, adding headers to the registry's answer (e.g. OCI-Chunk-Min-Length). */
  | { readonly kind: 'add-headers'; readonly headers: Readonly<Record<string, string>> }
  /**
   * Forward, then change the registry's answer on its way back: another status (a 201 turned into the 204
   * or 200 other registries send), headers dropped (as proxies and CDNs drop Content-Length), the Location
   * rewritten (an upload sent elsewhere). The registry has acted on the request as usual.
   */
  | {
      readonly kind: 'rewrite';
      readonly status?: number;
      readonly dropHeaders?: readonly string[];
      readonly location?: (location: string) => string;
    }
  /** Answer a redirect to `location` in the registry's place (the request is not forwarded). */
  | { readonly kind: 'redirect'; readonly status?: number; readonly location: string };

/** Which requests a fault hits: method, a regular expression on the URL (path and query), and which occurrences. */
export interface FaultRule {
  readonly method?: string;
  readonly path?: RegExp;
  /** 1-based occurrences among the requests this rule matches; default every one. */
  readonly nth?: number | readonly number[];
  readonly fault: Fault;
}

/** One request as the proxy saw it. */
export interface RecordedRequest {
  readonly method: string;
  /** Path and query, as sent. */
  readonly url: string;
  readonly host: string | undefined;
  readonly headers: IncomingHttpHeaders;
  /** The fault applied to it, if any. */
  readonly fault?: Fault['kind'];
  /** Request body bytes received from the client. */
  bodyBytes: number;
  /** The status the client got (undefined when it got none). */
  status?: number;
  /** The connection closed before the answer was sent: the client gave up, or a fault dropped it. */
  aborted?: boolean;
}

export interface FaultProxy {
  /** `127.0.0.1:PORT`, to use in image references. */
  readonly host: string;
  readonly url: string;
  /** Every request, in arrival order. */
  readonly requests: RecordedRequest[];
  addFault(rule: FaultRule): void;
  clearFaults(): void;
  /** Resolves once the proxy has seen a request matching `method`/`path` (to act mid-push). */
  waitFor(method: string, path: RegExp): Promise<RecordedRequest>;
  /** Resolves once the exchange of a recorded request is over: answered, or its connection closed. */
  settled(request: RecordedRequest): Promise<void>;
  /**
   * The registry is gone for `ms`, as in a restart or failover: every connection is dropped and new ones are
   * refused (the port is closed) until the proxy listens on the same port again. Resolves once it is back.
   */
  outage(ms: number): Promise<void>;
  /** Stops listening and destroys every connection, stalled ones included. Safe to call twice. */
  close(): Promise<void>;
}

// Per connection, not end to end: never forwarded.
const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'upgrade', 'te', 'trailer']);

/**
 * Starts the proxy in front of `target` (`host:port` of a plain-HTTP registry).
 *
 * @example const proxy = await startFaultProxy({ target: registry.host, faults: [{ method: 'PATCH', nth: 1, fault: { kind: 'reset', afterBytes: 65536 } }] })
 */
export async function startFaultProxy(options: {
  target: string;
  faults?: readonly FaultRule[];
  /**
   * Serve HTTPS with this certificate (tools/registry.ts makeCertificates) in front of the plain-HTTP
   * registry, telling it `X-Forwarded-Proto: https` so its Locations say https, as behind a TLS-terminating proxy.
   */
  tls?: { certFile: string; keyFile: string };
}): Promise<FaultProxy> {
  const [targetHost, targetPort] = splitHost(options.target);
  const rules: { rule: FaultRule; seen: number }[] = [];
  const requests: RecordedRequest[] = [];
  const waiters: { method: string; path: RegExp; resolve: (r: RecordedRequest) => void }[] = [];
  const agent = new Agent({ keepAlive: true });
  const sockets = new Set<Socket>();
  const settled = new WeakMap<RecordedRequest, Promise<void>>();

  const pick = (req: IncomingMessage): Fault | undefined => {
    let chosen: Fault | undefined;
    for (const entry of rules) {
      const { rule } = entry;
      if (rule.method !== undefined && rule.method.toUpperCase() !== req.method) continue;
      if (rule.path !== undefined && !rule.path.test(req.url ?? '')) continue;
      entry.seen += 1;
      const nth = rule.nth;
      const hit = nth === undefined || (typeof nth === 'number' ? nth === entry.seen : nth.includes(entry.seen));
      if (hit && chosen === undefined) chosen = rule.fault;
    }
    return chosen;
  };

  const handle = (req: IncomingMessage, res: ServerResponse): void => {
    const fault = pick(req);
    const record: RecordedRequest = {
      method: req.method ?? '',
      url: req.url ?? '',
      host: req.headers.host,
      headers: { ...req.headers },
      ...(fault !== undefined && { fault: fault.kind }),
      bodyBytes: 0,
    };
    requests.push(record);
    settled.set(
      record,
      new Promise<void>((resolve) =>
        res.on('close', () => {
          if (!res.writableFinished) record.aborted = true;
          resolve();
        }),
      ),
    );
    for (const waiter of [...waiters]) {
      if (waiter.method === record.method && waiter.path.test(record.url)) {
        waiters.splice(waiters.indexOf(waiter), 1);
        waiter.resolve(record);
      }
    }
    req.on('data', (chunk: Buffer) => void (record.bodyBytes += chunk.length));

    switch (fault?.kind) {
      case 'status':
        req.resume();
        req.on('end', () => {
          const body = fault.body ?? JSON.stringify({ errors: [{ code: 'UNAVAILABLE', message: `injected ${fault.status}` }] });
          record.status = fault.status;
          res.writeHead(fault.status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body), ...fault.headers });
          res.end(body);
        });
        return;
      case 'stall':
        req.resume();
        return;
      case 'redirect':
        req.resume();
        req.on('end', () => {
          record.status = fault.status ?? 307;
          res.writeHead(record.status, { location: fault.location, 'content-length': 0 });
          res.end();
        });
        return;
      case 'reset':
        if ((fault.afterBytes ?? 0) === 0) {
          req.socket.resetAndDestroy();
          return;
        }
        return forward(req, res, record, fault);
      case 'delay': {
        const timer = setTimeout(() => forward(req, res, record, undefined), fault.ms);
        req.socket.once('close', () => clearTimeout(timer));
        return;
      }
      default:
        return forward(req, res, record, fault);
    }
  };

  const forward = (req: IncomingMessage, res: ServerResponse, record: RecordedRequest, fault: Fault | undefined): void => {
    const upstream = httpRequest(
      {
        host: targetHost,
        port: targetPort,
        method: req.method,
        path: req.url,
        headers: { ...endToEnd(req.headers), ...(options.tls !== undefined && { 'x-forwarded-proto': 'https' }) },
        agent,
      },
      (answer) => {
        if (fault?.kind === 'lose-response') {
          // The registry has acted and answered; the client never hears of it.
          answer.resume();
          answer.on('end', () => req.socket.destroy());
          return;
        }
        if (fault?.kind === 'hold-answer') {
          answer.pause();
          const passOn = (): void => {
            if (req.socket.destroyed) return;
            record.status = answer.statusCode ?? 502;
            res.writeHead(record.status, endToEnd(answer.headers));
            answer.pipe(res);
          };
          void fault.until.then(passOn, passOn);
          return;
        }
        const headers = { ...endToEnd(answer.headers), ...(fault?.kind === 'add-headers' ? fault.headers : {}) };
        let status = answer.statusCode ?? 502;
        if (fault?.kind === 'rewrite') {
          status = fault.status ?? status;
          for (const name of fault.dropHeaders ?? []) delete headers[name.toLowerCase()];
          const location = headers['location'];
          if (fault.location !== undefined && typeof location === 'string') headers['location'] = fault.location(location);
        }
        record.status = status;
        if (fault?.kind === 'rewrite' && (status === 204 || (fault.dropHeaders ?? []).some((h) => h.toLowerCase() === 'content-length'))) {
          // A 204 has no body, and an answer whose Content-Length was dropped is sent chunked (or, to HEAD, bare).
          delete headers['content-length'];
          res.writeHead(status, headers);
          if (status === 204 || req.method === 'HEAD') {
            answer.resume();
            res.end();
            return;
          }
        } else {
          res.writeHead(status, headers);
        }
        answer.pipe(res);
      },
    );
    upstream.on('error', () => req.socket.destroy());
    const resetAt = fault?.kind === 'reset' ? (fault.afterBytes ?? 0) : undefined;
    let forwarded = 0;
    const reset = (): void => {
      upstream.destroy();
      req.socket.resetAndDestroy();
    };
    req.on('data', (chunk: Buffer) => {
      if (resetAt !== undefined && forwarded + chunk.length >= resetAt) {
        req.pause();
        upstream.write(chunk.subarray(0, resetAt - forwarded), reset);
        forwarded = resetAt;
        return;
      }
      forwarded += chunk.length;
      if (!upstream.write(chunk)) {
        req.pause();
        upstream.once('drain', () => req.resume());
      }
    });
    req.on('end', () => {
      if (resetAt !== undefined && forwarded < resetAt) {
        upstream.end(reset);
        return;
      }
      if (resetAt === undefined) upstream.end();
    });
    req.on('error', () => upstream.destroy());
  };

  const server =
    options.tls === undefined
      ? createServer(handle)
      : createTlsServer({ cert: await readFile(options.tls.certFile), key: await readFile(options.tls.keyFile) }, handle);
  server.on('connection', (socket: Socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  });
  // Bytes that are not HTTP (a TLS ClientHello while the client probes the scheme) get what the registry
  // would send, so the client learns the server speaks plain HTTP; a reset socket is just closed.
  server.on('clientError', (_error, socket: Socket) => {
    if (socket.writable) socket.end('HTTP/1.1 400 Bad Request\r\nconnection: close\r\n\r\n');
    else socket.destroy();
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  const host = `127.0.0.1:${port}`;
  const scheme = options.tls === undefined ? 'http' : 'https';
  for (const rule of options.faults ?? []) rules.push({ rule, seen: 0 });

  let closed: Promise<void> | undefined;
  return {
    host,
    url: `${scheme}://${host}`,
    requests,
    addFault(rule) {
      rules.push({ rule, seen: 0 });
    },
    clearFaults() {
      rules.length = 0;
    },
    waitFor(method, path) {
      const seen = requests.find((r) => r.method === method && path.test(r.url));
      if (seen !== undefined) return Promise.resolve(seen);
      return new Promise((resolve) => waiters.push({ method, path, resolve }));
    },
    settled(request) {
      return settled.get(request) ?? Promise.resolve();
    },
    async outage(ms) {
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        for (const socket of sockets) socket.destroy();
        server.closeAllConnections();
      });
      await new Promise((resolve) => setTimeout(resolve, ms));
      if (closed !== undefined) return;
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject);
        server.listen(port, '127.0.0.1', () => resolve());
      });
    },
    close() {
      closed ??= new Promise<void>((resolve) => {
        server.close(() => resolve());
        for (const socket of sockets) socket.destroy();
        server.closeAllConnections();
        agent.destroy();
      });
      return closed;
    },
  };
}

function splitHost(hostPort: string): [string, number] {
  const colon = hostPort.lastIndexOf(':');
  return [hostPort.slice(0, colon), Number(hostPort.slice(colon + 1))];
}

function endToEnd(headers: IncomingHttpHeaders): Record<string, string | string[]> {
  const out: Record<string, string | string[]> = {};
  for (const [name, value] of Object.entries(headers)) {
    if (value !== undefined && !HOP_BY_HOP.has(name)) out[name] = value;
  }
  return out;
}
