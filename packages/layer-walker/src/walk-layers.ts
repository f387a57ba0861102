import type { BlobSource, ImageRecord, LayerLink, Logger, PushEvent, SourceRecord } from '@rxpush/core';
import { InvalidSourceError, SourceError, shortId, silentLogger } from '@rxpush/core';
import { concatMap, defer, from, of, type OperatorFunction } from 'rxjs';

/** Options of {@link walkLayers}. */
export interface WalkLayersOptions {
  /**
   * The most links a parent chain may have before it is refused (default 1000). Docker itself stops
   * at 125 layers; the cap turns a corrupt graph into an error instead of a hang.
   */
  readonly maxChainLength?: number;
  readonly logger?: Logger;
}

const DEFAULT_MAX_CHAIN_LENGTH = 1000;

/**
 * Turns image records into ordered, de-duplicated blob tasks.
 *
 * Each `image` event passes on first, with any parent chain walked into an ordered layer list; then, for every blob of the image (or of each image of an
 * index) not yet emitted in this subscription, a `preparing` progress event and a `blob` task follow:
 * the layers from base to top, then the config (as Docker's push did: a sequential source such as
 * `docker save` offers the config after the layers). Blobs are identified by their `key`, so a layer
 * shared by several images or tags is emitted once per push. A parent chain (`layers.kind === 'chain'`)
 * is walked from the top down and reversed. Every other event passes through untouched.
 *
 * Fails with a `SourceError` (code `INVALID_SOURCE`) when a layer chain loops or is longer than
 * `maxChainLength`, and with whatever error a chain's `parent()` rejects with.
 *
 * @example
 * readImages('oci:./layout:latest').pipe(walkLayers()).subscribe((event) => console.log(event.type));
 */
export function walkLayers(options: WalkLayersOptions = {}): OperatorFunction<PushEvent, PushEvent> {
  const maxChainLength = options.maxChainLength ?? DEFAULT_MAX_CHAIN_LENGTH;
  const logger = (options.logger ?? silentLogger).child({ pkg: 'layer-walker' });

  return (source) =>
    defer(() => {
      // Created per subscription, so two pushes built from one pipeline never share what was emitted.
      const emitted = new Set<string>();
      const toEvents = (blob: BlobSource): PushEvent[] => {
        if (emitted.has(blob.key)) {
          logger.debug({ key: blob.key }, 'blob already emitted in this push');
          return [];
        }
        emitted.add(blob.key);
        return [
          { type: 'preparing', id: shortId(blob.key), key: blob.key, role: blob.role },
          { type: 'blob', blob },
        ];
      };

      // concatMap keeps the order of the source: an image's tasks never overtake the next image event.
      return source.pipe(
        concatMap((event) =>
          event.type === 'image'
            ? from(listLayers(event.image, maxChainLength)).pipe(
                concatMap((image) => [{ type: 'image', image } satisfies PushEvent, ...blobsOf(image).flatMap(toEvents)]),
              )
            : of(event),
        ),
      );
    });
}

/**
 * The record with every parent chain walked into an ordered list, so that operators downstream
 * (the manifest builder) see the layers in push order without walking again.
 */
async function listLayers(record: SourceRecord, maxChainLength: number): Promise<SourceRecord> {
  if (record.kind === 'index') {
    const manifests: ImageRecord[] = [];
    for (const image of record.manifests) manifests.push(await listImageLayers(image, maxChainLength));
    return { ...record, manifests };
  }
  return listImageLayers(record, maxChainLength);
}

async function listImageLayers(image: ImageRecord, maxChainLength: number): Promise<ImageRecord> {
  if (image.layers.kind === 'list') return image;
  const layers = await walkChain(image.layers.top, image.source, maxChainLength);
  return { ...image, layers: { kind: 'list', layers } };
}

/** The blobs of a walked record in push order: per image, layers base→top, then the config. */
function blobsOf(record: SourceRecord): BlobSource[] {
  const images = record.kind === 'index' ? record.manifests : [record];
  return images.flatMap((image) => [...(image.layers.kind === 'list' ? image.layers.layers : []), image.config]);
}

/** Follows parent pointers from the top to the base, then returns the layers base first. */
async function walkChain(top: LayerLink | undefined, source: string, maxChainLength: number): Promise<BlobSource[]> {
  const seen = new Set<string>();
  const layers: BlobSource[] = [];
  for (let link = top; link !== undefined; link = await link.parent()) {
    if (seen.has(link.id)) {
      throw new InvalidSourceError(source, `layer chain loops at ${link.id} in ${source}: the image's layer metadata is corrupt; re-create or re-pull the image`);
    }
    if (layers.length >= maxChainLength) {
      throw new InvalidSourceError(source,
        `layer chain of ${source} is longer than ${maxChainLength} layers (at ${link.id}): the layer metadata is corrupt, or raise maxChainLength`,
      );
    }
    seen.add(link.id);
    layers.push(link.blob);
  }
  return layers.reverse();
}
