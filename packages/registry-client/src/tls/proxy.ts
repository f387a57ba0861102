import { UsageError } from '@rxpush/core';

import { effectivePort } from '../urls.js';

/**
 * The HTTP proxies the environment names, as Go's net/http (docker, skopeo, crane) reads them: `HTTPS_PROXY` for
 * https origins, `HTTP_PROXY` for http ones (upper case first, then lower case), `NO_PROXY` for the hosts that are
 * reached directly. Loopback hosts (localhost, 127.0.0.0/8, ::1) are never proxied, as in Go.
 */
export interface ProxySettings {
  readonly https?: ProxyVariable;
  readonly http?: ProxyVariable;
  /** NO_PROXY's entries, lower case: `*`, a host with its subdomains (`example.com`), subdomains only (`.example.com`), an IP, a CIDR, each optionally with `:port`. */
  readonly noProxy: readonly string[];
}

/** One proxy, and the variable that named it (for messages). */
export interface HttpProxy {
  readonly url: URL;
  readonly variable: string;
}

/** A proxy variable, or what is wrong with it: said only when a request would go through it, as Go does. */
type ProxyVariable = HttpProxy | { readonly variable: string; readonly problem: UsageError };

/**
 * The proxies of `env`, or undefined when it names none. A variable that is no proxy URL is kept as its problem,
 * which {@link proxyFor} throws for a request that would use it: a push to a loopback registry is not failed by a
 * SOCKS proxy meant for curl.
 *
 * @example proxySettings({ HTTPS_PROXY: 'http://proxy.corp:3128', NO_PROXY: '.corp' })
 */
export function proxySettings(env: NodeJS.ProcessEnv = process.env): ProxySettings | undefined {
  const pick = (...names: string[]): ProxyVariable | undefined => {
    const variable = names.find((name) => env[name] !== undefined && env[name] !== '');
    if (variable === undefined) return undefined;
    try {
      return { url: proxyUrl(env[variable] ?? '', variable), variable };
    } catch (error) {
      if (error instanceof UsageError) return { variable, problem: error };
      throw error;
    }
  };
  const https = pick('HTTPS_PROXY', 'https_proxy');
  const http = pick('HTTP_PROXY', 'http_proxy');
  if (https === undefined && http === undefined) return undefined;
  const noProxy = (env['NO_PROXY'] ?? env['no_proxy'] ?? '')
    .split(',')
    .map((entry) => entry.trim().toLowerCase())
    .filter((entry) => entry !== '');
  return { ...(https !== undefined && { https }), ...(http !== undefined && { http }), noProxy };
}

function proxyUrl(value: string, variable: string): URL {
  // As Go does: a bare HOST:PORT means an http:// proxy.
  const text = /^[a-z][a-z0-9+.-]*:\/\//i.test(value) ? value : `http://${value}`;
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw new UsageError(`${variable} is not a proxy URL; set it to http://HOST:PORT (or http://USER:PASSWORD@HOST:PORT)`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new UsageError(`${variable} names a ${url.protocol.slice(0, -1)} proxy; rxpush goes through HTTP proxies (http:// or https://), set it to one or unset it`);
  }
  return url;
}

/**
 * The proxy for requests to `origin`, or undefined when they go directly (NO_PROXY, loopback, no proxy for its scheme).
 *
 * @throws {UsageError} when they would go through a proxy variable that is not a proxy URL (`http://HOST:PORT`), or
 *   names a scheme rxpush cannot tunnel through.
 */
export function proxyFor(settings: ProxySettings | undefined, origin: URL): HttpProxy | undefined {
  if (settings === undefined) return undefined;
  const proxy = origin.protocol === 'https:' ? settings.https : settings.http;
  if (proxy === undefined) return undefined;
  const host = origin.hostname.toLowerCase().replace(/^\[|\]$/g, '');
  if (host === 'localhost' || host.endsWith('.localhost') || isLoopbackIp(host)) return undefined;
  const port = effectivePort(origin);
  if (settings.noProxy.some((entry) => matchesNoProxy(entry, host, port))) return undefined;
  if ('problem' in proxy) throw proxy.problem;
  return proxy;
}

function matchesNoProxy(entry: string, host: string, port: string): boolean {
  if (entry === '*') return true;
  let name = entry;
  // `host:port` (and `[v6]:port`) matches that port only.
  const withPort = /^(\[[^\]]+\]|[^:]+):(\d+)$/.exec(entry);
  if (withPort !== null) {
    if (withPort[2] !== port) return false;
    name = withPort[1] ?? '';
  }
  name = name.replace(/^\[|\]$/g, '');
  if (name.includes('/')) return inCidr(host, name);
  // As Go: `example.com` is that name and its subdomains, `.example.com` (or `*.example.com`) its subdomains only.
  if (name.startsWith('*.')) name = name.slice(1);
  if (name.startsWith('.')) return host.endsWith(name);
  return host === name || host.endsWith(`.${name}`);
}

function isLoopbackIp(host: string): boolean {
  return /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(host) || host === '::1';
}

/** Whether an IPv4 `host` is in `cidr` (`10.0.0.0/8`); IPv6 ranges match only the exact address. */
function inCidr(host: string, cidr: string): boolean {
  const [base = '', bits = ''] = cidr.split('/');
  const a = ipv4(host);
  const b = ipv4(base);
  const prefix = Number(bits);
  if (a === undefined || b === undefined || !Number.isInteger(prefix) || prefix < 0 || prefix > 32) return host === base;
  const mask = prefix === 0 ? 0 : (~0 << (32 - prefix)) >>> 0;
  return ((a & mask) >>> 0) === ((b & mask) >>> 0);
}

function ipv4(text: string): number | undefined {
  const parts = text.split('.');
  if (parts.length !== 4 || !parts.every((p) => /^\d{1,3}$/.test(p) && Number(p) <= 255)) return undefined;
  return parts.reduce((n, p) => ((n << 8) | Number(p)) >>> 0, 0);
}

/** The proxy as messages show it: no user or password. */
export function shownProxy(proxy: HttpProxy): string {
  return `${proxy.url.protocol}//${proxy.url.host} (${proxy.variable})`;
}

/**
 * A failure to get through the proxy, for transportError: `reason` says what the proxy did and what to do, and
 * whether a retry may help (a proxy that cannot reach the registry for a moment) or not (it wants credentials).
 */
export class ProxyError extends Error {
  readonly code = 'RXPUSH_PROXY';
  readonly retryable: boolean;
  constructor(reason: string, retryable: boolean, options?: { cause?: unknown }) {
    super(reason, options);
    this.retryable = retryable;
  }
}

