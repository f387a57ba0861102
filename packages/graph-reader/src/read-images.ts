import type { Logger, PushEvent, SourceRecord } from '@rxpush/core';
import { InvalidSourceError, SourceError, UsageError, isPushError, silentLogger } from '@rxpush/core';
import type { RegistryClient } from '@rxpush/registry-client';
import { defer, mergeMap, type Observable } from 'rxjs';

import type { DockerTls } from './docker-daemon/engine.js';

/** Options of {@link readImages}. */
export interface ReadImagesOptions {
  /** Read every tagged image of the source instead of one (`--all-tags`); the source must name no REF. */
  readonly allTags?: boolean;
  /** Docker's data root, for `docker-root:` (default /var/lib/docker). */
  readonly dataRoot?: string;
  /** For `docker-root:`: the storage driver whose images to read, when the data root has several (default: the one with the image). */
  readonly storageDriver?: string;
  /** The Docker Engine for `docker-daemon:`, as DOCKER_HOST says it (default: DOCKER_HOST, else unix:///var/run/docker.sock). */
  readonly dockerHost?: string;
  /**
   * TLS for a `tcp://` engine (default: as the docker CLI reads DOCKER_TLS_VERIFY, DOCKER_TLS and
   * DOCKER_CERT_PATH); `false` for plain HTTP whatever the environment says.
   */
  readonly dockerTls?: DockerTls | false;
  /**
   * The client of the registry a `docker://` source names (see registry-client's `createRegistryClient`),
   * with that registry's own credentials and TLS settings: they never go to the destination, nor the
   * destination's to it. The caller closes it.
   */
  readonly registryClient?: RegistryClient;
  /**
   * Of a multi-platform index (`docker://`, `oci:`, `oci-archive:`), read only this platform's image
   * (`os/arch[/variant]`, `--platform`); a source that names one image is read when its config is of that
   * platform (or names none), and refused otherwise, as `docker pull --platform` does.
   */
  readonly platform?: string;
  /** For `docker-daemon:`: how long the engine may send nothing in the middle of its save stream, in ms (default 30 000). */
  readonly engineIdleTimeoutMs?: number;
  readonly logger?: Logger;
}

/** The transports whose sources can hold multi-platform indexes, from which `platform` picks one image. */
const INDEX_TRANSPORTS = ['docker', 'oci', 'oci-archive'];

const SOURCE_FORMS = [
  'oci:PATH[:REF]',
  'oci-archive:PATH[:REF]',
  'docker-archive:PATH[:NAME:TAG]',
  'docker-daemon:NAME:TAG',
  'docker-root:NAME[:TAG]',
  'docker://REF',
];

/**
 * Reads the images a source names, with skopeo's transport prefixes (`oci:PATH[:REF]`, …).
 *
 * Emits one `{ type: 'image', image }` event per image or index, then completes. Everything a push
 * needs is checked before the first emission (documents, digests, blob files and sizes; for a `docker://`
 * source, its manifests: blobs are checked as they stream), so a broken image fails here and no manifest
 * is ever pushed for it. Reading starts on subscription.
 *
 * Fails (as an error notification) with `UsageError` for a source it cannot parse or an unknown
 * transport, `UnsupportedError` for images rxpush cannot push, and `SourceError`,
 * `BlobMissingError`, `DigestFormatError` or `DigestMismatchError` for a missing or damaged source.
 *
 * @example
 * readImages('oci:./layout:latest').subscribe(({ type }) => console.log(type)); // 'image'
 */
export function readImages(source: string, options: ReadImagesOptions = {}): Observable<PushEvent> {
  const logger = (options.logger ?? silentLogger).child({ pkg: 'graph-reader' });
  return defer(() => read(source, options.allTags ?? false, logger, options)).pipe(
    mergeMap((records) => records.map((image): PushEvent => ({ type: 'image', image }))),
  );
}

async function read(source: string, allTags: boolean, logger: Logger, options: ReadImagesOptions): Promise<SourceRecord[]> {
  const colon = source.indexOf(':');
  const transport = source.startsWith('docker://') ? 'docker' : colon > 0 ? source.slice(0, colon) : undefined;
  try {
    if (options.platform !== undefined && !INDEX_TRANSPORTS.includes(transport ?? '')) {
      throw new UsageError(`--platform chooses one image of a multi-platform index (a docker://, oci: or oci-archive: source); ${source} holds single images`);
    }
    const platform = options.platform === undefined ? undefined : (await import('./shared/platform.js')).parsePlatform(options.platform);
    // Each transport's reader is loaded when a source names it: the archive readers bring a tar parser, the
    // engine's an HTTP client of its own, and a push of an OCI layout (the usual second push) needs neither.
    if (transport === 'oci') {
      const [{ readOciLayout }, { parseOciReference }] = await Promise.all([import('./oci/read-oci-layout.js'), import('./oci/reference.js')]);
      return await readOciLayout(parseOciReference(source.slice(colon + 1)), { source, allTags, logger, platform });
    }
    if (transport === 'oci-archive') {
      const [{ readOciArchive }, { parseOciReference }] = await Promise.all([import('./oci/read-oci-archive.js'), import('./oci/reference.js')]);
      return await readOciArchive(parseOciReference(source.slice(colon + 1), 'oci-archive'), { source, allTags, logger, platform });
    }
    if (transport === 'docker-archive') {
      const [{ readDockerArchive }, { parseDockerArchiveReference }] = await Promise.all([
        import('./docker-archive/read-docker-archive.js'),
        import('./docker-archive/reference.js'),
      ]);
      return await readDockerArchive(parseDockerArchiveReference(source.slice(colon + 1)), { source, allTags, logger });
    }
    if (transport === 'docker-daemon') {
      const [{ readDockerDaemon }, { dockerTlsFromEnv }] = await Promise.all([import('./docker-daemon/read-docker-daemon.js'), import('./docker-daemon/engine.js')]);
      return await readDockerDaemon(source.slice(colon + 1), {
        source,
        allTags,
        logger,
        host: options.dockerHost ?? process.env.DOCKER_HOST,
        tls: options.dockerTls === false ? undefined : (options.dockerTls ?? dockerTlsFromEnv(process.env)),
        idleTimeoutMs: options.engineIdleTimeoutMs,
      });
    }
    if (transport === 'docker-root') {
      const { readDockerRoot } = await import('./docker-root/read-docker-root.js');
      const { dataRoot = '/var/lib/docker', storageDriver } = options;
      return await readDockerRoot(source.slice(colon + 1), { source, allTags, logger, dataRoot, ...(storageDriver !== undefined && { storageDriver }) });
    }
    if (transport === 'docker') {
      const client = options.registryClient;
      if (client === undefined) throw new UsageError(`source ${source} is in a registry: readImages needs the registryClient option, a client for that registry`);
      const { readRegistryImage } = await import('./registry/read-registry-image.js');
      return await readRegistryImage(source.slice('docker://'.length), { source, allTags, logger, client, platform });
    }
    const what = transport === undefined ? 'has no transport' : `has an unknown transport "${transport}:"`;
    throw new UsageError(`source "${source}" ${what}; use one of ${SOURCE_FORMS.join(', ')}`);
  } catch (err) {
    if (isPushError(err) || !isFileSystemError(err)) throw err;
    // EACCES, EIO, …: say which source, keep the file system's own words (they name the file).
    throw new InvalidSourceError(err.path ?? source, `cannot read ${source}: ${err.message}`, { cause: err });
  }
}

function isFileSystemError(err: unknown): err is NodeJS.ErrnoException {
  return err instanceof Error && typeof (err as NodeJS.ErrnoException).syscall === 'string';
}
