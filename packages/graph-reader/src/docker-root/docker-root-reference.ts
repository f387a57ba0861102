import type { Digest } from '@rxpush/core';
import { UsageError, isPushError, parseReference } from '@rxpush/core';

/** What follows `docker-root:`: an image name as Docker's reference store knows it. */
export interface DockerRootReference {
  /** The short name Docker shows and stores (`alpine`, `app/web`, `127.0.0.1:5000/app`). */
  readonly familiar: string;
  /** The keys repositories.json may have for the name: the familiar one first, then the fully qualified one. */
  readonly names: readonly string[];
  readonly tag?: string;
  readonly digest?: Digest;
}

/**
 * Parses `NAME[:TAG][@DIGEST]` with Docker's normalisation: `alpine` is `docker.io/library/alpine`,
 * whose familiar form `alpine` is what Docker writes in repositories.json (`alpine:latest`).
 *
 * @throws {UsageError} when NAME is not a valid image name.
 * @example parseDockerRootReference('alpine:3.20') // { familiar: 'alpine', names: ['alpine', 'docker.io/library/alpine'], tag: '3.20' }
 */
export function parseDockerRootReference(text: string): DockerRootReference {
  if (text === '' || text.startsWith('docker://')) {
    throw new UsageError(`source "docker-root:${text}" names no image: use docker-root:NAME[:TAG], e.g. docker-root:alpine:3.20`);
  }
  let parsed;
  try {
    parsed = parseReference(text);
  } catch (err) {
    if (!isPushError(err)) throw err;
    throw new UsageError(`source "docker-root:${text}" does not name an image: ${err.message.replace(/; expected .*$/, '')}; use docker-root:NAME[:TAG], e.g. docker-root:alpine:3.20`);
  }
  const { registry, repository, tag, digest } = parsed;
  const full = `${registry}/${repository}`;
  const familiar = registry === 'docker.io' ? repository.replace(/^library\/(?=[^/]+$)/, '') : full;
  return {
    familiar,
    names: familiar === full ? [full] : [familiar, full],
    ...(tag !== undefined && { tag }),
    ...(digest !== undefined && { digest }),
  };
}
