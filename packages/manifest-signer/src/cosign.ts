import { createHash, sign, verify } from 'node:crypto';

import { MediaType, sha256Digest, type Descriptor, type Digest } from '@rxpush/core';

import { assertKeyFits, type SigningKey, type VerifyKey } from './signing-key.js';

/** The media type of a simple-signing payload in a cosign signature manifest. */
export const SIMPLE_SIGNING_MEDIA_TYPE = 'application/vnd.dev.cosign.simplesigning.v1+json';
/** The layer annotation that holds the base64 signature. */
export const SIGNATURE_ANNOTATION = 'dev.cosignproject.cosign/signature';
/** cosign's `critical.type`. */
export const COSIGN_SIGNATURE_TYPE = 'cosign container image signature';
/** The artifact type cosign gives a signature attached as an OCI 1.1 referrer. */
export const COSIGN_ARTIFACT_TYPE = 'application/vnd.dev.cosign.artifact.sig.v1+json';

/** One blob of a signature manifest, with its bytes. */
export interface SignatureBlob {
  readonly descriptor: Descriptor;
  readonly bytes: Uint8Array;
}

/**
 * The tag cosign keeps an image's signatures under: its digest with `:` as `-`, and `.sig`.
 *
 * @example signatureTag('sha256:ab…') // 'sha256-ab….sig'
 */
export function signatureTag(digest: Digest): string {
  return `${digest.replace(':', '-')}.sig`;
}

/**
 * The name cosign writes as `critical.identity.docker-reference`: the registry and repository, with Docker
 * Hub spelled `index.docker.io` as go-containerregistry spells it.
 */
export function dockerReference(registry: string, repository: string): string {
  return `${registry === 'docker.io' ? 'index.docker.io' : registry}/${repository}`;
}

/**
 * The simple-signing payload cosign signs, byte for byte as cosign writes it (compact, `optional: null`).
 *
 * @example simpleSigningPayload('localhost:5000/app', 'sha256:ab…')
 */
export function simpleSigningPayload(reference: string, digest: Digest): Uint8Array {
  return Buffer.from(
    JSON.stringify({
      critical: { identity: { 'docker-reference': reference }, image: { 'docker-manifest-digest': digest }, type: COSIGN_SIGNATURE_TYPE },
      optional: null,
    }),
  );
}

/**
 * Signs a payload as cosign does with a key: SHA-256, ECDSA signatures in ASN.1 DER (RSA: PKCS#1 v1.5), base64.
 *
 * @throws {KeyError} for a key cosign signatures cannot use (Ed25519).
 */
export function signPayload(payload: Uint8Array, key: SigningKey): string {
  assertKeyFits(key, 'cosign');
  return sign('sha256', payload, key.privateKey).toString('base64');
}

/** True when `signature` (base64) is `key`'s signature of `payload` as {@link signPayload} makes them. */
export function verifyPayload(payload: Uint8Array, signature: string, key: VerifyKey): boolean {
  if (key.type === 'ed25519') return false;
  try {
    return verify('sha256', payload, key.publicKey, Buffer.from(signature, 'base64'));
  } catch {
    return false;
  }
}

/** The signature layer for a payload: the payload as a simple-signing blob, the signature as its annotation. */
export function signatureLayer(payload: Uint8Array, signature: string): SignatureBlob {
  return {
    bytes: payload,
    descriptor: { mediaType: SIMPLE_SIGNING_MEDIA_TYPE, size: payload.byteLength, digest: sha256Digest(payload), annotations: { [SIGNATURE_ANNOTATION]: signature } },
  };
}

/**
 * The signature manifest over `layers` (earlier signatures first, as cosign appends), with its config: the
 * OCI image go-containerregistry makes of them (empty architecture and os, zero times, one history entry and
 * diff ID per layer). With `subject`, the manifest is the OCI 1.1 referrer form.
 */
export function signatureManifest(
  layers: readonly Descriptor[],
  subject?: { readonly mediaType: string; readonly digest: Digest; readonly size: number },
): { manifest: Uint8Array; mediaType: string; digest: Digest; config: SignatureBlob } {
  const zero = '0001-01-01T00:00:00Z';
  const configBytes = Buffer.from(
    JSON.stringify({
      architecture: '',
      created: zero,
      history: layers.map(() => ({ created: zero })),
      os: '',
      rootfs: { type: 'layers', diff_ids: layers.map((layer) => layer.digest) },
      config: {},
    }),
  );
  const config: SignatureBlob = { bytes: configBytes, descriptor: { mediaType: MediaType.ociConfig, size: configBytes.byteLength, digest: sha256Digest(configBytes) } };
  const manifest = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: MediaType.ociManifest,
      ...(subject !== undefined && { artifactType: COSIGN_ARTIFACT_TYPE }),
      config: config.descriptor,
      layers,
      ...(subject !== undefined && { subject: { mediaType: subject.mediaType, digest: subject.digest, size: subject.size } }),
    }),
  );
  return { manifest, mediaType: MediaType.ociManifest, digest: `sha256:${createHash('sha256').update(manifest).digest('hex')}`, config };
}

/** The simple-signing layers of a signature manifest (other layers are not cosign signatures). */
export function signatureLayers(manifest: Uint8Array): Descriptor[] {
  const document = JSON.parse(Buffer.from(manifest).toString('utf8')) as { layers?: unknown };
  if (!Array.isArray(document.layers)) return [];
  return (document.layers as Descriptor[]).filter((layer) => layer?.mediaType === SIMPLE_SIGNING_MEDIA_TYPE);
}
