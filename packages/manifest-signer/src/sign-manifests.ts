import {
  fromAbortable,
  isPushError,
  MediaType,
  NotSignedError,
  silentLogger,
  type Descriptor,
  type Digest,
  type Logger,
  type ManifestEvent,
  type PushEvent,
  type SignedManifestEvent,
} from '@rxpush/core';
import type { RegistryClient, RequestOptions } from '@rxpush/registry-client';
import { concat, defer, EMPTY, from, mergeMap, of, type Observable, type OperatorFunction } from 'rxjs';

import { dockerReference, signatureLayer, signatureLayers, signatureManifest, signatureTag, signPayload, simpleSigningPayload } from './cosign.js';
import { putSmallBlob } from './small-blobs.js';
import { assertKeyFits, type SigningKey } from './signing-key.js';

/** Options of {@link signManifests}. */
export interface SignManifestsOptions {
  readonly client: RegistryClient;
  readonly repository: string;
  readonly key: SigningKey;
  /** Sign every image of an index too, not only the index (`--sign-children`). */
  readonly signChildren?: boolean;
  /**
   * Also attach each signature as an OCI 1.1 referrer (a manifest with `subject`) where the registry keeps
   * referrers (default true); the `.sig` tag is written either way, since that is what cosign looks up first.
   */
  readonly referrers?: boolean;
  readonly logger?: Logger;
}

/**
 * Signs pushed manifests in cosign's key-based layout.
 *
 * For each `manifest` event (an index's children too with `signChildren`; schema 1 manifests carry their own
 * JWS and pass), signs a simple-signing payload naming the repository and the manifest's digest, adds it as a
 * layer to the signature manifest under the tag `sha256-<hex>.sig` (after the signatures already there, as
 * cosign does), and, where the registry answers the referrers API, attaches it as a referrer too. Emits
 * `signed-manifest` and only then the `manifest-pushed` events of that digest, which it holds meanwhile.
 * Every other event passes through.
 *
 * Fails with `NotSignedError` (code `NOT_SIGNED`), saying the image IS pushed but NOT signed, when a signature
 * request fails; with `KeyError` for a key cosign signatures cannot use.
 *
 * @example
 * source$.pipe(pushManifests({ client, repository: 'app' }), signManifests({ client, repository: 'app', key }))
 */
export function signManifests(options: SignManifestsOptions): OperatorFunction<PushEvent, PushEvent> {
  assertKeyFits(options.key, 'cosign');
  const logger = (options.logger ?? silentLogger).child({ pkg: 'manifest-signer' });
  return (source) =>
    defer(() => {
      // manifest-pushed events held while their digest is being signed; a digest signed once is not signed again.
      const held = new Map<Digest, PushEvent[]>();
      const signed = new Set<Digest>();

      const onEvent = (event: PushEvent): Observable<PushEvent> => {
        if (event.type === 'manifest-pushed') {
          const waiting = held.get(event.digest);
          if (waiting === undefined) return of(event);
          waiting.push(event);
          return EMPTY;
        }
        if (event.type !== 'manifest' || !wanted(event, options) || signed.has(event.digest)) return of(event);
        signed.add(event.digest);
        held.set(event.digest, []);
        return concat(
          of(event),
          fromAbortable<PushEvent[]>((signal, emit) => signOne(event, options, logger, { signal, onRetry: (retrying) => emit([retrying]) })).pipe(
            mergeMap((events) => events),
          ),
          defer(() => {
            const release = held.get(event.digest) ?? [];
            held.delete(event.digest);
            return from(release);
          }),
        );
      };
      return source.pipe(mergeMap(onEvent));
    });
}

function wanted(event: ManifestEvent, options: SignManifestsOptions): boolean {
  if (event.mediaType === MediaType.dockerSchema1Signed || event.mediaType === MediaType.dockerSchema1) return false;
  return event.child !== true || options.signChildren === true;
}

async function signOne(event: ManifestEvent, options: SignManifestsOptions, logger: Logger, request: RequestOptions): Promise<PushEvent[]> {
  const { client, repository, key } = options;
  const tag = signatureTag(event.digest);
  try {
    const payload = simpleSigningPayload(dockerReference(client.registry, repository), event.digest);
    const layer = signatureLayer(payload, signPayload(payload, key));
    const earlier = await existingLayers(client, repository, tag, request);
    const layers: Descriptor[] = [...earlier, layer.descriptor];
    const sig = signatureManifest(layers);
    await putSmallBlob(client, repository, layer.bytes, request);
    await putSmallBlob(client, repository, sig.config.bytes, request);
    await client.putManifest(repository, tag, { bytes: sig.manifest, mediaType: sig.mediaType }, request);
    logger.debug({ digest: event.digest, tag, keyId: key.keyId }, 'signature pushed');

    let referrer: Digest | undefined;
    if (options.referrers !== false && (await client.getReferrers(repository, event.digest, request)) !== undefined) {
      const attached = signatureManifest([layer.descriptor], { mediaType: event.mediaType, digest: event.digest, size: event.bytes.byteLength });
      await putSmallBlob(client, repository, attached.config.bytes, request);
      await client.putManifest(repository, attached.digest, { bytes: attached.manifest, mediaType: attached.mediaType }, request);
      referrer = attached.digest;
      logger.debug({ digest: event.digest, referrer }, 'signature attached as a referrer');
    }
    const signed: SignedManifestEvent = {
      type: 'signed-manifest',
      digest: event.digest,
      signature: sig.digest,
      scheme: 'cosign',
      keyId: key.keyId,
      tags: event.tags,
      signatureTag: tag,
      ...(referrer !== undefined && { referrer }),
    };
    return [signed];
  } catch (error) {
    if (isPushError(error) && error.code === 'CANCELLED') throw error;
    const reason = error instanceof Error ? error.message : String(error);
    throw new NotSignedError(event.digest, `pushing its signature to ${repository}:${tag} failed: ${reason}`, { cause: error });
  }
}

/** The layers of the signature manifest already under `tag`, so a new signature is added, not swapped in. */
async function existingLayers(client: RegistryClient, repository: string, tag: string, request: RequestOptions): Promise<Descriptor[]> {
  const found = await client.hasManifest(repository, tag, { ...request, accept: [MediaType.ociManifest, MediaType.dockerManifest] });
  if (found === undefined) return [];
  const stored = await client.getManifest(repository, tag, { ...request, accept: [MediaType.ociManifest, MediaType.dockerManifest] });
  const document = JSON.parse(Buffer.from(stored.bytes).toString('utf8')) as { layers?: unknown };
  // Only cosign's own layers are kept: anything else under a .sig tag is not a signature.
  return Array.isArray(document.layers) ? signatureLayers(stored.bytes) : [];
}
