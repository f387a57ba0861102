import { BlockList, isIP } from 'node:net';

/**
 * Where credentials may go besides the registry itself: the token realm a registry names is chosen by
 * the registry (or whoever answers in its place), so it is checked before a password or refresh token
 * is sent there.
 */

// Addresses inside a network: a registry on the internet that points its realm here is after something.
const INTERNAL = new BlockList();
for (const [net, prefix] of [
  ['0.0.0.0', 8],
  ['10.0.0.0', 8],
  ['100.64.0.0', 10],
  ['127.0.0.0', 8],
  ['169.254.0.0', 16],
  ['172.16.0.0', 12],
  ['192.168.0.0', 16],
] as const) {
  INTERNAL.addSubnet(net, prefix, 'ipv4');
}
for (const [net, prefix] of [
  ['::', 128],
  ['::1', 128],
  ['fc00::', 7],
  ['fe80::', 10],
] as const) {
  INTERNAL.addSubnet(net, prefix, 'ipv6');
}

/** The hostname of a URL without IPv6 brackets. */
function bare(hostname: string): string {
  return hostname.startsWith('[') && hostname.endsWith(']') ? hostname.slice(1, -1) : hostname;
}

/** True for loopback names and for IP literals in private, loopback, link-local or unspecified ranges. */
export function isInternalHost(hostname: string): boolean {
  const name = bare(hostname).toLowerCase();
  if (name === 'localhost' || name.endsWith('.localhost')) return true;
  const family = isIP(name);
  if (family === 4) return INTERNAL.check(name, 'ipv4');
  if (family === 6) {
    // ::ffff:10.0.0.1 is 10.0.0.1.
    const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/.exec(name);
    if (mapped?.[1] !== undefined) return INTERNAL.check(mapped[1], 'ipv4');
    return INTERNAL.check(name, 'ipv6');
  }
  return false;
}

/**
 * Why credentials must not be sent to `target` (a token realm, or where it redirects) for a registry
 * served at `registryOrigin`, or undefined when they may.
 *
 * Refused: anything but http(s); plain HTTP when the registry is HTTPS (the password would cross the
 * network in clear text); an internal address (private, loopback, link-local IP literal, localhost) on
 * another host than the registry (a registry must not make rxpush hand secrets to services next to it).
 *
 * @example credentialRefusal(new URL('http://10.0.0.5/token'), new URL('https://registry.example')) // 'it is plain HTTP …'
 */
export function credentialRefusal(target: URL, registryOrigin: URL): string | undefined {
  if (target.protocol !== 'https:' && target.protocol !== 'http:') return `it is not an http(s) URL`;
  if (registryOrigin.protocol === 'https:' && target.protocol === 'http:') {
    return 'it is plain HTTP while the registry uses HTTPS, so the credentials would cross the network unencrypted';
  }
  const host = bare(target.hostname).toLowerCase();
  if (host !== bare(registryOrigin.hostname).toLowerCase() && isInternalHost(host)) {
    return `it is an internal address (${target.hostname}) on another host than the registry (${registryOrigin.hostname})`;
  }
  return undefined;
}
