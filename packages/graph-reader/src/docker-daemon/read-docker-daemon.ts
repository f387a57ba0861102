import type { BlobSource, Digest, ImageRecord, Logger } from '@rxpush/core';
import { InvalidSourceError, ReferenceFormatError, UsageError, isDigest, parseReference, shortId } from '@rxpush/core';

import { dockerEngine, type DockerTls } from './engine.js';
import { saveConfigSource, saveLayerSource } from '../docker-archive/save-image.js';
import { SaveStreamReader } from './save-stream.js';

/** How to read an image from a Docker Engine; `source` is the whole source string as the user gave it. */
export interface ReadDockerDaemonOptions {
  readonly source: string;
  readonly allTags: boolean;
  readonly logger: Logger;
  /** The engine, in DOCKER_HOST's syntax (`unix:///PATH`, `tcp://HOST:PORT`); default the system socket. */
  readonly host?: string | undefined;
  /** TLS for a `tcp://` engine (DOCKER_TLS_VERIFY, DOCKER_CERT_PATH). */
  readonly tls?: DockerTls | undefined;
  /** How long the save stream may wait for the push to open the layer it is at (default 30 s). */
  readonly stallTimeoutMs?: number;
  /** How long the engine may send nothing in the middle of the save stream (default 30 s). */
  readonly idleTimeoutMs?: number | undefined;
}

/**
 * Reads `NAME:TAG` (or an image ID) from a Docker Engine over its API (`docker-daemon:NAME:TAG`).
 *
 * The record is made up front from `GET /images/NAME/json` (diff IDs, image ID = config digest, platform);
 * the bytes come later from one `GET /images/NAME/get` stream (`docker save`), started when the uploader
 * opens the first blob, read once and never written to disk: see SaveStreamReader. A blob whose upload broke is
 * read again, for the retry, from a new save stream of the same image (checked to be the same image ID first). Each layer is an
 * uncompressed tar the uploader compresses while checking it against its diff ID.
 */
export async function readDockerDaemon(reference: string, options: ReadDockerDaemonOptions): Promise<ImageRecord[]> {
  const { source, logger } = options;
  if (options.allTags) {
    throw new UsageError(`source ${source}: --all-tags pushes every tag of an archive or layout; a docker-daemon: source names one image, push each NAME:TAG on its own`);
  }
  const { name, tag } = parseDaemonReference(reference, source);
  const engineOptions = { host: options.host, tls: options.tls };
  if (options.tls?.verify === false && options.host?.startsWith('tcp://') === true) {
    logger.warn({ engine: options.host }, 'DOCKER_TLS without DOCKER_TLS_VERIFY: the Docker Engine\'s certificate is not checked');
  }
  const inspector = dockerEngine(engineOptions);
  const image = await inspector.inspectImage(name).finally(() => inspector.close());
  logger.debug({ engine: inspector.host, image: name, id: image.id, layers: image.diffIds.length }, 'Docker Engine image found');

  const reader = new SaveStreamReader({
    source,
    imageId: image.id,
    diffIds: image.diffIds,
    logger,
    ...(options.stallTimeoutMs !== undefined && { stallTimeoutMs: options.stallTimeoutMs }),
    ...(options.idleTimeoutMs !== undefined && { idleTimeoutMs: options.idleTimeoutMs }),
    engine: `the Docker Engine at ${inspector.host}`,
    alternative: `save it first (docker save ${name} -o FILE) and push docker-archive:FILE`,
    start: async (signal, again) => {
      const engine = dockerEngine(engineOptions);
      try {
        // A blob read again (its upload broke) must come from the image the push describes, not one tagged since.
        const now = again ? await engine.inspectImage(name, signal) : image;
        if (now.id !== image.id) {
          throw new InvalidSourceError(source,
            `${source}: ${name} changed in the Docker Engine at ${engine.host} while it was pushed (it is image ${shortId(now.id)} now, was ${shortId(image.id)}), so a broken upload cannot be retried from it; push again`,
          );
        }
        return { stream: await engine.saveImage(name, signal), close: () => engine.close() };
      } catch (err) {
        await engine.close();
        throw err;
      }
    },
  });

  // One blob per distinct layer: a layer repeated in the image is pushed (and read) once.
  const blobs = new Map<Digest, BlobSource>();
  const layers = image.diffIds.map((diffId, i) => {
    let blob = blobs.get(diffId);
    if (blob === undefined) {
      blob = {
        ...saveLayerSource({
          diffId,
          origin: `${source} layer ${i + 1} of ${image.diffIds.length} (${diffId})`,
          open: (openOptions) => reader.open(diffId, openOptions),
          release: () => reader.release(diffId),
        }),
        sequential: true,
      };
      blobs.set(diffId, blob);
    }
    return blob;
  });
  const config: BlobSource = {
    ...saveConfigSource({
      digest: image.id,
      origin: `${source} config (${image.id})`,
      open: (openOptions) => reader.open(image.id, openOptions),
      release: () => reader.release(image.id),
    }),
    sequential: true,
  };

  return [
    {
      kind: 'image',
      source,
      tags: tag !== undefined ? [tag] : [],
      config,
      layers: { kind: 'list', layers },
      ...(image.platform !== undefined && { platform: image.platform }),
    },
  ];
}

/** `NAME:TAG` as the engine's API takes it, or an image ID (`sha256:…`), which has no tag to push as. */
function parseDaemonReference(reference: string, source: string): { name: string; tag?: string } {
  if (isDigest(reference)) return { name: reference };
  try {
    const ref = parseReference(reference);
    if (ref.digest !== undefined) throw new UsageError(`source ${source}: name the image as NAME:TAG or by its image ID (sha256:…), not by a registry digest`);
    if (ref.tag === undefined) throw new UsageError(`source ${source} names ${reference} without a tag; use docker-daemon:NAME:TAG, e.g. docker-daemon:${reference}:latest`);
    return { name: reference, tag: ref.tag };
  } catch (err) {
    if (err instanceof ReferenceFormatError) throw new UsageError(`source ${source}: ${err.message.replace(/; expected .*$/, '')}; use docker-daemon:NAME:TAG`);
    throw err;
  }
}
