import { randomBytes } from 'node:crypto';

// TLS 1.3 and 1.2 suites (AES-GCM, ChaCha20) for ECDSA and RSA keys, and the RSA key exchange of old servers.
const CIPHER_SUITES = [0x1301, 0x1302, 0x1303, 0xc02b, 0xc02f, 0xc02c, 0xc030, 0xcca9, 0xcca8, 0xc013, 0xc014, 0x009c, 0x009d, 0x002f, 0x0035];
// x25519, secp256r1, secp384r1.
const GROUPS = [0x001d, 0x0017, 0x0018];
// ecdsa_secp256r1_sha256 … rsa_pss_rsae_sha256 … rsa_pkcs1_sha256 …
const SIGNATURE_ALGORITHMS = [0x0403, 0x0503, 0x0603, 0x0804, 0x0805, 0x0806, 0x0401, 0x0501, 0x0601];

/**
 * A TLS ClientHello (RFC 8446 §4.1.2, offering TLS 1.3 and 1.2) that a server's answer tells the protocol of:
 * a TLS server answers it with a handshake record (a ServerHello, or a HelloRetryRequest for the key share it
 * wants, as none is offered) or with an alert; a plain-HTTP server with an HTTP error. It is never followed by
 * more of a handshake: it only asks, so that learning this loads neither node:tls nor OpenSSL.
 */
export function clientHello(serverName?: string): Buffer {
  const u16 = (value: number): Buffer => Buffer.from([value >> 8, value & 0xff]);
  const list16 = (...parts: Buffer[]): Buffer => {
    const body = Buffer.concat(parts);
    return Buffer.concat([u16(body.length), body]);
  };
  const extension = (type: number, body: Buffer): Buffer => Buffer.concat([u16(type), list16(body)]);
  const words = (values: number[]): Buffer => Buffer.concat(values.map(u16));

  const extensions = [
    ...(serverName === undefined ? [] : [extension(0x0000, list16(Buffer.from([0]), list16(Buffer.from(serverName, 'ascii'))))]),
    extension(0x000a, list16(words(GROUPS))),
    extension(0x000b, Buffer.from([1, 0])),
    extension(0x000d, list16(words(SIGNATURE_ALGORITHMS))),
    extension(0x0010, list16(Buffer.from([8]), Buffer.from('http/1.1', 'ascii'))),
    extension(0x002b, Buffer.concat([Buffer.from([4]), words([0x0304, 0x0303])])),
    // key_share with no shares: a TLS 1.3 server asks for one (HelloRetryRequest), which is answer enough.
    extension(0x0033, list16()),
  ];
  const hello = Buffer.concat([
    Buffer.from([0x03, 0x03]),
    randomBytes(32),
    Buffer.from([0]),
    list16(words(CIPHER_SUITES)),
    Buffer.from([1, 0]),
    list16(...extensions),
  ]);
  const handshake = Buffer.concat([Buffer.from([0x01, hello.length >> 16, (hello.length >> 8) & 0xff, hello.length & 0xff]), hello]);
  return Buffer.concat([Buffer.from([0x16, 0x03, 0x01]), u16(handshake.length), handshake]);
}

/**
 * What the first bytes of a server's answer to {@link clientHello} say: `tls` (a handshake or alert record),
 * `http` (an HTTP status line), `unknown` (anything else), or `more` when they are too few to tell yet.
 */
export function answerProtocol(bytes: Uint8Array): 'tls' | 'http' | 'unknown' | 'more' {
  const first = bytes[0];
  if (first === undefined) return 'more';
  if (first === 0x15 || first === 0x16) {
    if (bytes.length < 2) return 'more';
    return bytes[1] === 0x03 ? 'tls' : 'unknown';
  }
  const http = Buffer.from('HTTP/', 'latin1');
  const seen = Buffer.from(bytes.subarray(0, http.length));
  if (!http.subarray(0, seen.length).equals(seen)) return 'unknown';
  return seen.length === http.length ? 'http' : 'more';
}
