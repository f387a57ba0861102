import { createHash, createPublicKey, type JsonWebKey } from 'node:crypto';

import { MediaType, type Digest, type RawManifest } from '@rxpush/core';
import { flattenedVerify, FlattenedSign } from 'jose';

import { goMarshal } from './go-json.js';
import { jwsAlgorithm, libtrustKeyId, type SigningKey } from './signing-key.js';

/** One signature of a schema 1 manifest, as libtrust writes it. */
interface JwsSignature {
  readonly header: { readonly jwk: Record<string, string>; readonly alg: string };
  readonly signature: string;
  readonly protected: string;
}

/** A signature of a schema 1 manifest, checked. */
export interface Schema1Signature {
  /** The key ID of the `jwk` the signature carries. */
  readonly keyId: string;
  readonly algorithm: string;
  /** The key the signature carries, as SPKI DER, to compare with the key a user trusts. */
  readonly publicKeySpki: Uint8Array;
  /** True when the signature verifies over the manifest's payload with that key. */
  readonly valid: boolean;
}

/** A schema 1 manifest taken apart: its payload (what its digest is of), name, tag and signatures. */
export interface ParsedSchema1 {
  readonly payload: Uint8Array;
  readonly digest: Digest;
  readonly name: string;
  readonly tag: string;
  readonly signatures: readonly Schema1Signature[];
}

/**
 * Signs a schema 1 payload as libtrust's JSONSignature does, with jose: the protected header holds
 * `formatLength`, `formatTail` and `time`; the unprotected header the public key as `jwk` (with libtrust's
 * `kid`) and `alg`. Returns the "pretty" signed manifest, the payload with a `signatures` member spliced in
 * before its closing brace exactly as libtrust formats it; its digest is the payload's.
 *
 * @throws {Error} when the payload is not a JSON object (it always is when it comes from buildSchema1).
 * @example const signed = await signSchema1(buildSchema1(config, layers, target).payload, key);
 */
export async function signSchema1(payload: Uint8Array, key: SigningKey, now: Date = new Date()): Promise<RawManifest> {
  const bytes = Buffer.from(payload);
  const formatLength = formatLengthOf(bytes);
  const protectedHeader = {
    formatLength,
    formatTail: bytes.subarray(formatLength).toString('base64url'),
    // Go's RFC 3339, whole seconds, in UTC.
    time: now.toISOString().replace(/\.\d{3}Z$/, 'Z'),
  };
  const signed = await new FlattenedSign(bytes)
    .setProtectedHeader(protectedHeader)
    .setUnprotectedHeader({ jwk: libtrustJwk(key), alg: jwsAlgorithm(key) })
    .sign(key.privateKey);
  const signature: JwsSignature = {
    header: { jwk: libtrustJwk(key), alg: jwsAlgorithm(key) },
    signature: signed.signature,
    protected: signed.protected!,
  };
  return {
    bytes: prettySignature(bytes, formatLength, [signature]),
    mediaType: MediaType.dockerSchema1Signed,
    digest: `sha256:${createHash('sha256').update(bytes).digest('hex')}`,
  };
}

/**
 * Takes a signed schema 1 manifest apart as libtrust's ParsePrettySignature does (the payload is the bytes up
 * to `formatLength` plus `formatTail`) and checks every signature with the key its `jwk` carries, refusing a
 * `kid` that is not that key's ID, as the reference registry does.
 *
 * @throws {Error} when the manifest has no signatures or they disagree on the payload.
 * @example const { signatures } = await parseSchema1(manifest.bytes);
 */
export async function parseSchema1(bytes: Uint8Array): Promise<ParsedSchema1> {
  const text = Buffer.from(bytes);
  const document = JSON.parse(text.toString('utf8')) as { name?: unknown; tag?: unknown; signatures?: unknown };
  if (!Array.isArray(document.signatures) || document.signatures.length === 0) throw new Error('the schema 1 manifest has no signatures');
  let payload: Buffer | undefined;
  const headers = (document.signatures as JwsSignature[]).map((signature) => {
    const header = JSON.parse(Buffer.from(signature.protected, 'base64url').toString('utf8')) as { formatLength?: unknown; formatTail?: unknown };
    if (typeof header.formatLength !== 'number' || typeof header.formatTail !== 'string') throw new Error('a schema 1 signature has no formatLength/formatTail');
    const candidate = Buffer.concat([text.subarray(0, header.formatLength), Buffer.from(header.formatTail, 'base64url')]);
    if (payload !== undefined && !payload.equals(candidate)) throw new Error('the schema 1 signatures sign different payloads');
    payload = candidate;
    return signature;
  });
  const signed = payload!;
  const signatures = await Promise.all(
    headers.map(async (signature): Promise<Schema1Signature> => {
      const { kid, ...jwk } = signature.header.jwk;
      const publicKey = createPublicKey({ key: jwk as JsonWebKey, format: 'jwk' });
      const keyId = libtrustKeyId(publicKey);
      const spki = publicKey.export({ format: 'der', type: 'spki' });
      const valid =
        kid === keyId &&
        (await flattenedVerify({ payload: signed.toString('base64url'), protected: signature.protected, header: signature.header, signature: signature.signature }, publicKey).then(
          () => true,
          () => false,
        ));
      return { keyId, algorithm: signature.header.alg, publicKeySpki: spki, valid };
    }),
  );
  const parsed = JSON.parse(signed.toString('utf8')) as { name?: unknown; tag?: unknown };
  return {
    payload: signed,
    digest: `sha256:${createHash('sha256').update(signed).digest('hex')}`,
    name: typeof parsed.name === 'string' ? parsed.name : '',
    tag: typeof parsed.tag === 'string' ? parsed.tag : '',
    signatures,
  };
}

/** The public key as libtrust marshals it: members sorted by name (Go writes a map), `kid` included. */
function libtrustJwk(key: SigningKey): Record<string, string> {
  const exported = key.publicKey.export({ format: 'jwk' }) as Record<string, string>;
  const jwk =
    key.type === 'rsa'
      ? { e: exported['e']!, kid: key.keyId, kty: 'RSA', n: exported['n']! }
      : { crv: exported['crv']!, kid: key.keyId, kty: 'EC', x: exported['x']!, y: exported['y']! };
  return jwk;
}

/** Where the payload's last member ends: libtrust signs up to there and keeps the rest as `formatTail`. */
function formatLengthOf(bytes: Buffer): number {
  const close = lastNonSpace(bytes, bytes.length);
  if (close < 0 || bytes[close] !== 0x7d) throw new Error('a schema 1 payload must be a JSON object');
  const last = lastNonSpace(bytes, close);
  if (last < 0 || bytes[last] === 0x2c) throw new Error('a schema 1 payload must be a JSON object');
  return last + 1;
}

function lastNonSpace(bytes: Buffer, end: number): number {
  for (let i = end - 1; i >= 0; i--) {
    const byte = bytes[i]!;
    if (byte !== 0x20 && byte !== 0x0a && byte !== 0x0d && byte !== 0x09 && byte !== 0x0b && byte !== 0x0c) return i;
  }
  return -1;
}

/** libtrust's PrettySignature: the payload up to formatLength, then `"signatures"` indented as the payload is. */
function prettySignature(payload: Buffer, formatLength: number, signatures: readonly JwsSignature[]): Buffer {
  const indent = detectIndent(payload);
  const head = payload.subarray(0, formatLength);
  const sorted = [...signatures].sort((a, b) => compare(a.header.jwk['kid'] ?? '', b.header.jwk['kid'] ?? '') || compare(a.signature, b.signature));
  const body = sorted.map((s) => ({ header: { jwk: s.header.jwk, alg: s.header.alg }, signature: s.signature, protected: s.protected }));
  const tail =
    indent === ''
      ? `,"signatures":${goMarshal(body)}}`
      : // Go's MarshalIndent(v, prefix=indent, indent): every line after the first starts with the prefix.
        `,\n${indent}"signatures": ${goMarshal(body, indent).replace(/\n/g, `\n${indent}`)}\n}`;
  return Buffer.concat([head, Buffer.from(tail)]);
}

/** libtrust's detectJSONIndent: the white space before the first key, when the object opens with a newline. */
function detectIndent(payload: Buffer): string {
  if (payload.length > 2 && payload[0] === 0x7b && payload[1] === 0x0a) {
    const quote = payload.indexOf(0x22, 1);
    if (quote > 1) return payload.subarray(2, quote).toString('utf8');
  }
  return '';
}

function compare(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
