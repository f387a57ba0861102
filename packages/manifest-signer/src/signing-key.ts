import { createHash, createPrivateKey, createPublicKey, generateKeyPairSync, type KeyObject } from 'node:crypto';
import { readFile } from 'node:fs/promises';

import { fileReason, KeyError } from '@rxpush/core';

/** A public key rxpush verifies with, named the way Docker's libtrust names keys. */
export interface VerifyKey {
  readonly publicKey: KeyObject;
  /** libtrust's key ID: 48 base32 characters of the SPKI's SHA-256 in groups of four (`ABCD:EFGH:…`). */
  readonly keyId: string;
  readonly type: 'ec' | 'rsa' | 'ed25519';
  /** The curve of an EC key. */
  readonly curve?: 'P-256' | 'P-384' | 'P-521';
  /** Where the key came from (its file), for messages. */
  readonly origin: string;
}

/** A private key to sign with, and its public half. */
export interface SigningKey extends VerifyKey {
  readonly privateKey: KeyObject;
}

/** What a signature is for: a schema 1 manifest's JWS, or a cosign signature. */
export type SignatureScheme = 'schema1' | 'cosign';

/** Options of {@link loadSigningKey} and {@link parseSigningKey}. */
export interface LoadKeyOptions {
  /** The passphrase of an encrypted PEM (the CLI takes it from RXPUSH_KEY_PASSWORD or --key-password-stdin). */
  readonly password?: string;
}

const CURVES: Readonly<Record<string, VerifyKey['curve']>> = {
  prime256v1: 'P-256',
  'P-256': 'P-256',
  secp384r1: 'P-384',
  'P-384': 'P-384',
  secp521r1: 'P-521',
  'P-521': 'P-521',
};
const BASE32 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';
const PASSWORD_HINT = 'give its passphrase in RXPUSH_KEY_PASSWORD or with --key-password-stdin';

/**
 * Reads a private key from a file: PEM (PKCS#8, SEC1 `EC PRIVATE KEY`, PKCS#1 `RSA PRIVATE KEY`, encrypted
 * ones with `password`), a JWK, or Docker's libtrust `key.json` (a JWK with a `kid`, as dockerd writes).
 *
 * @throws {KeyError} when the file is missing or unreadable, does not parse, is encrypted and no (or a wrong)
 *   passphrase was given, holds only a public key, or holds a key type rxpush cannot sign with (DSA, X25519…).
 * @example const key = await loadSigningKey('./cosign.key', { password: process.env.RXPUSH_KEY_PASSWORD });
 */
export async function loadSigningKey(path: string, options: LoadKeyOptions = {}): Promise<SigningKey> {
  return parseSigningKey(await readKeyFile(path), { ...options, origin: path });
}

/**
 * Reads a public key to verify with: a PEM `PUBLIC KEY`, a public JWK, or any private key file
 * {@link loadSigningKey} reads (its public half is used).
 *
 * @throws {KeyError} as {@link loadSigningKey} does.
 * @example const key = await loadVerifyKey('./cosign.key.pub');
 */
export async function loadVerifyKey(path: string, options: LoadKeyOptions = {}): Promise<VerifyKey> {
  return parseVerifyKey(await readKeyFile(path), { ...options, origin: path });
}

/**
 * {@link loadSigningKey} for key text already in memory.
 *
 * @throws {KeyError} as {@link loadSigningKey} does.
 * @example parseSigningKey(pem, { origin: 'RXPUSH_SIGN_KEY' })
 */
export function parseSigningKey(text: string | Uint8Array, options: LoadKeyOptions & { origin?: string } = {}): SigningKey {
  const origin = options.origin ?? 'the key';
  const parsed = parseKey(text, origin, options.password);
  if (parsed.kind === 'public') {
    throw new KeyError(origin, `${origin} holds a public key; signing needs the private key (the file rxpush keygen wrote without .pub)`);
  }
  const publicKey = createPublicKey(parsed.key);
  return { ...describe(publicKey, origin), privateKey: parsed.key };
}

/**
 * {@link loadVerifyKey} for key text already in memory.
 *
 * @throws {KeyError} as {@link loadSigningKey} does.
 * @example parseVerifyKey(publicPem)
 */
export function parseVerifyKey(text: string | Uint8Array, options: LoadKeyOptions & { origin?: string } = {}): VerifyKey {
  const origin = options.origin ?? 'the key';
  const parsed = parseKey(text, origin, options.password);
  return describe(parsed.kind === 'public' ? parsed.key : createPublicKey(parsed.key), origin);
}

/**
 * Checks that a key can make the signatures of `scheme`: schema 1 takes what libtrust takes (ECDSA P-256,
 * P-384, P-521, RSA), cosign ECDSA and RSA with SHA-256.
 *
 * @throws {KeyError} naming the key type and what to use instead.
 * @example assertKeyFits(key, 'cosign')
 */
export function assertKeyFits(key: VerifyKey, scheme: SignatureScheme): void {
  if (key.type === 'ed25519') {
    const what = scheme === 'schema1' ? 'Docker schema 1 (libtrust) signatures' : 'cosign signatures as rxpush writes them (ECDSA or RSA with SHA-256)';
    throw new KeyError(key.origin, `${key.origin} is an Ed25519 key, which ${what} cannot use; make an ECDSA P-256 key with rxpush keygen`);
  }
}

/** The JWS algorithm a key signs schema 1 manifests with, as libtrust chooses it. */
export function jwsAlgorithm(key: VerifyKey): 'ES256' | 'ES384' | 'ES512' | 'RS256' {
  assertKeyFits(key, 'schema1');
  if (key.type === 'rsa') return 'RS256';
  return key.curve === 'P-384' ? 'ES384' : key.curve === 'P-521' ? 'ES512' : 'ES256';
}

/**
 * libtrust's key ID of a public key: the SHA-256 of its DER SubjectPublicKeyInfo, cut to 240 bits,
 * base32 and grouped by four. The reference registry refuses a schema 1 `jwk` whose `kid` is not this.
 *
 * A private key is named by its public half.
 *
 * @example libtrustKeyId(key.publicKey) // 'QH3P:…:UQ5M'
 */
export function libtrustKeyId(key: KeyObject): string {
  const publicKey = key.type === 'private' ? createPublicKey(key) : key;
  const sum = createHash('sha256').update(publicKey.export({ format: 'der', type: 'spki' })).digest().subarray(0, 30);
  let bits = 0;
  let value = 0;
  let out = '';
  for (const byte of sum) {
    value = (value << 8) | byte;
    bits += 8;
    while (bits >= 5) {
      out += BASE32[(value >>> (bits - 5)) & 31];
      bits -= 5;
    }
  }
  return out.match(/.{4}/g)!.join(':');
}

/**
 * A new ECDSA P-256 key pair as PEM: PKCS#8 private key and SPKI public key, with its key ID. With a `password`,
 * the private key is encrypted PKCS#8 (`ENCRYPTED PRIVATE KEY`, AES-256-CBC), as `openssl pkcs8 -topk8` writes
 * it; {@link loadSigningKey} and openssl read it with that passphrase.
 */
export function generateSigningKey(options: { password?: string } = {}): { privatePem: string; publicPem: string; keyId: string } {
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const { password } = options;
  const encryption = password !== undefined && password !== '' ? { cipher: 'aes-256-cbc', passphrase: password } : {};
  return {
    privatePem: privateKey.export({ format: 'pem', type: 'pkcs8', ...encryption }).toString(),
    publicPem: publicKey.export({ format: 'pem', type: 'spki' }).toString(),
    keyId: libtrustKeyId(publicKey),
  };
}

async function readKeyFile(path: string): Promise<string> {
  try {
    return await readFile(path, 'utf8');
  } catch (error) {
    throw new KeyError(path, `cannot read the key ${path}: ${fileReason(error)}; give the key's file (rxpush keygen --out FILE makes one)`, { cause: error });
  }
}

type ParsedKey = { kind: 'private' | 'public'; key: KeyObject };

function parseKey(input: string | Uint8Array, origin: string, password: string | undefined): ParsedKey {
  const text = (typeof input === 'string' ? input : Buffer.from(input).toString('utf8')).trim();
  if (text.startsWith('{')) return parseJwk(text, origin);
  const label = /-----BEGIN ([A-Z0-9 ]+)-----/.exec(text)?.[1];
  if (label === undefined) {
    throw new KeyError(origin, `${origin} is not a key rxpush reads: expected a PEM file (-----BEGIN …-----), a JWK, or Docker's key.json`);
  }
  if (label === 'ENCRYPTED COSIGN PRIVATE KEY' || label === 'ENCRYPTED SIGSTORE PRIVATE KEY') {
    throw new KeyError(origin, `${origin} is in cosign's own encrypted format, which rxpush does not read; convert it to a PKCS#8 PEM, or make a key with rxpush keygen`);
  }
  if (label === 'PUBLIC KEY' || label === 'RSA PUBLIC KEY') {
    return { kind: 'public', key: guard(origin, () => createPublicKey(text)) };
  }
  if (label === 'CERTIFICATE') throw new KeyError(origin, `${origin} is a certificate, not a key; give the private key (signing) or its public key (verifying)`);
  const encrypted = label === 'ENCRYPTED PRIVATE KEY' || /Proc-Type:\s*4,ENCRYPTED/.test(text);
  if (encrypted && (password === undefined || password === '')) {
    throw new KeyError(origin, `${origin} is encrypted; ${PASSWORD_HINT}`);
  }
  try {
    return { kind: 'private', key: createPrivateKey({ key: text, format: 'pem', ...(encrypted && { passphrase: password }) }) };
  } catch (error) {
    if (encrypted) throw new KeyError(origin, `cannot decrypt ${origin}: wrong passphrase? (${PASSWORD_HINT})`, { cause: error });
    throw new KeyError(origin, `${origin} does not parse as a ${label}: ${reason(error)}`, { cause: error });
  }
}

function parseJwk(text: string, origin: string): ParsedKey {
  let jwk: Record<string, unknown>;
  try {
    jwk = JSON.parse(text) as Record<string, unknown>;
  } catch (error) {
    throw new KeyError(origin, `${origin} starts like a JWK but is not JSON: ${reason(error)}`, { cause: error });
  }
  if (typeof jwk !== 'object' || jwk === null || typeof jwk['kty'] !== 'string') {
    throw new KeyError(origin, `${origin} is JSON but not a JWK (no "kty"); expected a JWK or Docker's key.json`);
  }
  // Node reads the JWK members it knows; libtrust's extras ("kid") stay out so they cannot upset it.
  const { kid, ...members } = jwk;
  const kind = members['d'] !== undefined ? 'private' : 'public';
  const key = guard(origin, () => (kind === 'private' ? createPrivateKey({ key: members, format: 'jwk' }) : createPublicKey({ key: members, format: 'jwk' })));
  // A key.json whose kid is not its key's ID was edited or is not libtrust's; the registry would refuse it.
  if (typeof kid === 'string' && kid !== libtrustKeyId(kind === 'private' ? createPublicKey(key) : key)) {
    throw new KeyError(origin, `${origin} names its key "${kid}", but the key's libtrust ID is ${libtrustKeyId(kind === 'private' ? createPublicKey(key) : key)}; the file was changed`);
  }
  return { kind, key };
}

function describe(publicKey: KeyObject, origin: string): VerifyKey {
  const type = publicKey.asymmetricKeyType;
  if (type === 'ec') {
    const curve = CURVES[publicKey.asymmetricKeyDetails?.namedCurve ?? ''];
    if (curve === undefined) {
      throw new KeyError(origin, `${origin} is an ECDSA key on ${publicKey.asymmetricKeyDetails?.namedCurve ?? 'an unknown curve'}; rxpush signs with P-256, P-384 or P-521 (rxpush keygen makes P-256)`);
    }
    return { publicKey, keyId: libtrustKeyId(publicKey), type, curve, origin };
  }
  if (type === 'rsa') {
    if ((publicKey.asymmetricKeyDetails?.modulusLength ?? 0) < 2048) throw new KeyError(origin, `${origin} is an RSA key shorter than 2048 bits; use a longer one, or rxpush keygen`);
    return { publicKey, keyId: libtrustKeyId(publicKey), type, origin };
  }
  if (type === 'ed25519') return { publicKey, keyId: libtrustKeyId(publicKey), type, origin };
  throw new KeyError(origin, `${origin} is a${type === 'dsa' ? ' DSA' : ` ${type ?? 'unknown'}`} key, which rxpush cannot sign with; use ECDSA P-256 (rxpush keygen) or RSA`);
}

function guard<T>(origin: string, parse: () => T): T {
  try {
    return parse();
  } catch (error) {
    throw new KeyError(origin, `${origin} does not parse as a key: ${reason(error)}`, { cause: error });
  }
}

function reason(error: unknown): string {
  return (error instanceof Error ? error.message : String(error)).replace(/\s*\n\s*/g, ' ');
}
