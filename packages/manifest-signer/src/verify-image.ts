import { isDigest, MediaType, VerifyError, type Digest, type Logger, silentLogger } from '@rxpush/core';
import type { RegistryClient } from '@rxpush/registry-client';

import { COSIGN_SIGNATURE_TYPE, dockerReference, signatureLayers, signatureTag, SIGNATURE_ANNOTATION, verifyPayload } from './cosign.js';
import { parseSchema1 } from './jws.js';
import { readSmallBlob } from './small-blobs.js';
import type { VerifyKey } from './signing-key.js';

/** Signature payloads are a few hundred bytes; anything much larger is not one. */
const PAYLOAD_LIMIT = 1024 * 1024;
const ACCEPT = [MediaType.ociManifest, MediaType.ociIndex, MediaType.dockerManifest, MediaType.dockerManifestList, MediaType.dockerSchema1Signed, MediaType.dockerSchema1];

/** Options of {@link verifyImage}. */
export interface VerifyImageOptions {
  readonly client: RegistryClient;
  readonly repository: string;
  /** A tag or digest. */
  readonly reference: string;
  readonly key: VerifyKey;
  readonly logger?: Logger;
  readonly signal?: AbortSignal;
}

/** A signature by the key that covers the image. */
export interface VerifiedSignature {
  /** `cosign` (a layer of the `.sig` manifest) or `schema1` (the manifest's own JWS). */
  readonly scheme: 'cosign' | 'schema1';
  readonly keyId: string;
  /** The repository the signature names (cosign's docker-reference, schema 1's name). */
  readonly identity: string;
  /** cosign: the digest of the signed payload blob. */
  readonly payload?: Digest;
  /** cosign: the tag the signature is stored under. */
  readonly signatureTag?: string;
}

/** What {@link verifyImage} found: the image and the signatures by the key that cover it exactly. */
export interface VerifyResult {
  readonly registry: string;
  readonly repository: string;
  readonly reference: string;
  readonly digest: Digest;
  readonly mediaType: string;
  readonly keyId: string;
  readonly signatures: readonly VerifiedSignature[];
}

/**
 * Verifies that an image in a registry is signed by `key`: fetches the manifest (resolving a tag to its
 * digest), its cosign signatures under `sha256-<hex>.sig` and, for a schema 1 manifest, its JWS; resolves only
 * when a signature by that key covers exactly this digest and this repository.
 *
 * Fails with `VerifyError` (code `VERIFY_FAILED`) whose `reason` says which check failed: `no-signature`,
 * `other-key`, `other-digest`, `other-repository`; with registry errors when the image is not there.
 *
 * @example const result = await verifyImage({ client, repository: 'app', reference: '1.0', key: await loadVerifyKey('cosign.pub') });
 */
export async function verifyImage(options: VerifyImageOptions): Promise<VerifyResult> {
  const { client, repository, reference, key } = options;
  const logger = (options.logger ?? silentLogger).child({ pkg: 'manifest-signer' });
  const opts = options.signal === undefined ? {} : { signal: options.signal };
  const image = `${client.registry}/${repository}`;
  const manifest = await client.getManifest(repository, reference, { ...opts, accept: ACCEPT });
  const digest = manifest.digest;
  const named = `${image}@${digest}`;
  const found: VerifiedSignature[] = [];
  const failures: { reason: 'other-key' | 'other-digest' | 'other-repository' | 'invalid-signature'; detail: string }[] = [];
  let seen = 0;

  if (manifest.mediaType === MediaType.dockerSchema1Signed || manifest.mediaType === MediaType.dockerSchema1) {
    const parsed = await parseSchema1(manifest.bytes).catch(() => undefined);
    for (const signature of parsed?.signatures ?? []) {
      seen++;
      if (!signature.valid || signature.keyId !== key.keyId) {
        // distribution (the reference registry) keeps only the payload and signs what it serves with its own key.
        failures.push({ reason: 'other-key', detail: `its schema 1 JWS is by ${signature.keyId}${signature.valid ? ' (registries such as distribution re-sign schema 1 manifests with their own key as they serve them)' : ', and does not verify'}` });
      } else if (isDigest(reference) && parsed!.digest !== reference) {
        failures.push({ reason: 'other-digest', detail: `its schema 1 payload is ${parsed!.digest}` });
      } else if (parsed!.name !== repository) {
        failures.push({ reason: 'other-repository', detail: `its schema 1 manifest names the repository ${parsed!.name}` });
      } else {
        found.push({ scheme: 'schema1', keyId: signature.keyId, identity: parsed!.name });
      }
    }
  }

  const tag = signatureTag(digest);
  const sig = await client.hasManifest(repository, tag, { ...opts, accept: [MediaType.ociManifest, MediaType.dockerManifest] });
  if (sig !== undefined) {
    const stored = await client.getManifest(repository, tag, { ...opts, accept: [MediaType.ociManifest, MediaType.dockerManifest] });
    for (const layer of signatureLayers(stored.bytes)) {
      const signature = layer.annotations?.[SIGNATURE_ANNOTATION];
      if (typeof signature !== 'string' || !isDigest(layer.digest) || layer.size > PAYLOAD_LIMIT) continue;
      seen++;
      const payload = await readSmallBlob(client, repository, layer.digest, PAYLOAD_LIMIT, opts);
      if (payload === undefined) {
        failures.push({ reason: 'invalid-signature', detail: `the payload ${layer.digest} of a signature in ${repository}:${tag} is larger than a payload can be, or its bytes do not match its digest` });
        continue;
      }
      if (!verifyPayload(payload, signature, key)) {
        failures.push({ reason: 'other-key', detail: `a signature in ${repository}:${tag} is not by ${key.keyId}` });
        continue;
      }
      const claims = parseClaims(payload);
      if (claims === undefined || claims.type !== COSIGN_SIGNATURE_TYPE) {
        failures.push({ reason: 'other-digest', detail: `the payload ${layer.digest} is not a cosign container image signature` });
      } else if (claims.digest !== digest) {
        failures.push({ reason: 'other-digest', detail: `the signature by ${key.keyId} in ${repository}:${tag} covers ${claims.digest ?? 'no digest'}` });
      } else if (claims.identity !== dockerReference(client.registry, repository)) {
        failures.push({ reason: 'other-repository', detail: `the signature by ${key.keyId} covers ${claims.identity ?? 'no repository'}, not ${dockerReference(client.registry, repository)}` });
      } else {
        found.push({ scheme: 'cosign', keyId: key.keyId, identity: claims.identity, payload: layer.digest, signatureTag: tag });
      }
    }
  }
  logger.debug({ digest, seen, verified: found.length }, 'signatures checked');

  if (found.length > 0) {
    return { registry: client.registry, repository, reference, digest, mediaType: manifest.mediaType, keyId: key.keyId, signatures: found };
  }
  if (seen === 0 && sig !== undefined) {
    // A .sig tag whose manifest names no signature: something else was pushed under it, or a proxy answered for it.
    throw new VerifyError(
      'no-signature',
      `${named} has no signature: ${repository}:${tag} is there, but its manifest holds no cosign signature (no layer with a ${SIGNATURE_ANNOTATION} annotation); sign the image again with --sign-key`,
    );
  }
  if (seen === 0) {
    throw new VerifyError('no-signature', `${named} has no signature: there is no ${repository}:${tag} (and no schema 1 JWS); push it with --sign-key`);
  }
  // The most telling failure first: a signature by this key over something else says more than one by another key.
  const worst = failures.find((f) => f.reason === 'other-repository') ?? failures.find((f) => f.reason === 'other-digest') ?? failures[0]!;
  const what =
    worst.reason === 'invalid-signature'
      ? `no signature of ${named} could be checked: ${worst.detail}; the registry (or a proxy) changed it, or sign the image again with --sign-key`
      : worst.reason === 'other-key'
        ? `no signature of ${named} is by the key ${key.keyId} (${key.origin}): ${worst.detail}`
        : worst.reason === 'other-digest'
          ? `no signature by ${key.keyId} covers ${named}: ${worst.detail}, another image; the signature was copied or the tag re-pointed`
          : `no signature by ${key.keyId} covers ${named} in this repository: ${worst.detail}; the image was copied from elsewhere`;
  throw new VerifyError(worst.reason, what);
}

function parseClaims(payload: Uint8Array): { type?: unknown; digest?: string; identity?: string } | undefined {
  try {
    const document = JSON.parse(Buffer.from(payload).toString('utf8')) as {
      critical?: { type?: unknown; image?: Record<string, unknown>; identity?: Record<string, unknown> };
    };
    const critical = document.critical;
    if (critical === undefined) return undefined;
    const digest = critical.image?.['docker-manifest-digest'];
    const identity = critical.identity?.['docker-reference'];
    return { type: critical.type, ...(typeof digest === 'string' && { digest }), ...(typeof identity === 'string' && { identity }) };
  } catch {
    return undefined;
  }
}
