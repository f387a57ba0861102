import assert from 'node:assert/strict';
import { createPrivateKey, generateKeyPairSync } from 'node:crypto';
import { chmod, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';

import { KeyError } from '@rxpush/core';
import { assertKeyFits, generateSigningKey, jwsAlgorithm, libtrustKeyId, loadSigningKey, loadVerifyKey, parseSigningKey, parseVerifyKey } from '@rxpush/manifest-signer';

const ec = generateKeyPairSync('ec', { namedCurve: 'P-256' });
const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 });

function assertKeyError(run: () => unknown, pattern: RegExp): void {
  assert.throws(run, (error: unknown) => {
    assert.ok(error instanceof KeyError, `a KeyError, got ${String(error)}`);
    assert.equal(error.code, 'INVALID_KEY');
    assert.match(error.message, pattern);
    assert.doesNotMatch(error.message, /\n/);
    return true;
  });
}

describe('signing keys', () => {
  let dir: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'rxpush-keys-'));
  });
  after(() => rm(dir, { recursive: true, force: true }));

  it('reads an ECDSA key as PKCS#8 PEM and as SEC1 "EC PRIVATE KEY"', () => {
    const pkcs8 = parseSigningKey(ec.privateKey.export({ format: 'pem', type: 'pkcs8' }).toString());
    const sec1 = parseSigningKey(ec.privateKey.export({ format: 'pem', type: 'sec1' }).toString());
    assert.equal(pkcs8.type, 'ec');
    assert.equal(pkcs8.curve, 'P-256');
    assert.equal(sec1.keyId, pkcs8.keyId);
    assert.equal(jwsAlgorithm(sec1), 'ES256');
  });

  it('reads an RSA key as PKCS#1 "RSA PRIVATE KEY" and signs schema 1 with RS256', () => {
    const key = parseSigningKey(rsa.privateKey.export({ format: 'pem', type: 'pkcs1' }).toString());
    assert.equal(key.type, 'rsa');
    assert.equal(jwsAlgorithm(key), 'RS256');
  });

  it('picks ES384 and ES512 for P-384 and P-521 keys, as libtrust does', () => {
    for (const [curve, alg] of [['P-384', 'ES384'], ['P-521', 'ES512']] as const) {
      const pair = generateKeyPairSync('ec', { namedCurve: curve });
      assert.equal(jwsAlgorithm(parseSigningKey(pair.privateKey.export({ format: 'pem', type: 'pkcs8' }).toString())), alg);
    }
  });

  it('reads a private JWK, and a libtrust key.json whose kid is its key ID', () => {
    const jwk = ec.privateKey.export({ format: 'jwk' });
    const fromJwk = parseSigningKey(JSON.stringify(jwk));
    const keyJson = parseSigningKey(JSON.stringify({ ...jwk, kid: fromJwk.keyId }));
    assert.equal(keyJson.keyId, fromJwk.keyId);
  });

  it('refuses a key.json whose kid is not its key ID', () => {
    const jwk = ec.privateKey.export({ format: 'jwk' });
    assertKeyError(() => parseSigningKey(JSON.stringify({ ...jwk, kid: 'AAAA:BBBB' })), /names its key "AAAA:BBBB".*the file was changed/);
  });

  it('reads an encrypted PEM with its passphrase, and says how to give one when it is missing or wrong', () => {
    const pem = ec.privateKey.export({ format: 'pem', type: 'pkcs8', cipher: 'aes-256-cbc', passphrase: 'sesame' }).toString();
    assert.equal(parseSigningKey(pem, { password: 'sesame' }).keyId, libtrustKeyId(ec.publicKey));
    assertKeyError(() => parseSigningKey(pem), /is encrypted; give its passphrase in RXPUSH_KEY_PASSWORD or with --key-password-stdin/);
    assertKeyError(() => parseSigningKey(pem, { password: 'wrong' }), /cannot decrypt .*wrong passphrase/);
  });

  it('reads a traditionally encrypted SEC1 PEM (Proc-Type: 4,ENCRYPTED)', () => {
    const pem = ec.privateKey.export({ format: 'pem', type: 'sec1', cipher: 'aes-128-cbc', passphrase: 'sesame' }).toString();
    assert.match(pem, /Proc-Type: 4,ENCRYPTED/);
    assertKeyError(() => parseSigningKey(pem), /is encrypted/);
    assert.equal(parseSigningKey(pem, { password: 'sesame' }).type, 'ec');
  });

  it('refuses DSA keys, and Ed25519 keys for either signature scheme', () => {
    const dsa = generateKeyPairSync('dsa', { modulusLength: 2048, divisorLength: 256 });
    assertKeyError(() => parseSigningKey(dsa.privateKey.export({ format: 'pem', type: 'pkcs8' }).toString()), /is a DSA key, which rxpush cannot sign with/);
    const ed = parseSigningKey(generateKeyPairSync('ed25519').privateKey.export({ format: 'pem', type: 'pkcs8' }).toString());
    assertKeyError(() => assertKeyFits(ed, 'cosign'), /Ed25519 key, which cosign signatures .* cannot use; make an ECDSA P-256 key with rxpush keygen/);
    assertKeyError(() => jwsAlgorithm(ed), /Ed25519 key, which Docker schema 1 \(libtrust\) signatures cannot use/);
  });

  it('refuses a public key for signing, and text that is no key', () => {
    assertKeyError(() => parseSigningKey(ec.publicKey.export({ format: 'pem', type: 'spki' }).toString()), /holds a public key; signing needs the private key/);
    assertKeyError(() => parseSigningKey('hello'), /is not a key rxpush reads/);
    assertKeyError(() => parseSigningKey('-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n'), /does not parse as a PRIVATE KEY/);
    assertKeyError(() => parseSigningKey('{"kty": "EC"'), /starts like a JWK but is not JSON/);
    assertKeyError(() => parseSigningKey('{"a": 1}'), /is JSON but not a JWK/);
  });

  it('says when a key file is missing, unreadable or a directory', async () => {
    await assert.rejects(loadSigningKey(join(dir, 'nope.pem')), (e: Error) => e instanceof KeyError && /cannot read the key .*nope\.pem: it does not exist/.test(e.message));
    await mkdir(join(dir, 'adir'));
    await assert.rejects(loadSigningKey(join(dir, 'adir')), /: it is a directory, not a file; give the key's file \(rxpush keygen --out FILE makes one\)$/);
    if (process.getuid?.() !== 0) {
      const locked = join(dir, 'locked.pem');
      await writeFile(locked, generateSigningKey().privatePem);
      await chmod(locked, 0);
      await assert.rejects(loadSigningKey(locked), /permission denied/);
    }
  });

  it('reads a public key to verify with from a PEM, a public JWK, or the private key', async () => {
    const spki = ec.publicKey.export({ format: 'pem', type: 'spki' }).toString();
    const path = join(dir, 'key.pub');
    await writeFile(path, spki);
    const fromFile = await loadVerifyKey(path);
    assert.equal(fromFile.keyId, libtrustKeyId(ec.publicKey));
    assert.equal(parseVerifyKey(JSON.stringify(ec.publicKey.export({ format: 'jwk' }))).keyId, fromFile.keyId);
    assert.equal(parseVerifyKey(ec.privateKey.export({ format: 'pem', type: 'pkcs8' }).toString()).keyId, fromFile.keyId);
  });

  it('names keys the way libtrust does: 12 groups of 4 base32 characters', () => {
    const id = libtrustKeyId(createPrivateKey(generateSigningKey().privatePem));
    assert.match(id, /^([A-Z2-7]{4}:){11}[A-Z2-7]{4}$/);
  });

  it('generates PKCS#8 ECDSA P-256 keys with their SPKI public half', () => {
    const made = generateSigningKey();
    assert.match(made.privatePem, /^-----BEGIN PRIVATE KEY-----/);
    assert.match(made.publicPem, /^-----BEGIN PUBLIC KEY-----/);
    const key = parseSigningKey(made.privatePem);
    assert.equal(key.curve, 'P-256');
    assert.equal(parseVerifyKey(made.publicPem).keyId, key.keyId);
    assert.equal(made.keyId, key.keyId);
  });
});
