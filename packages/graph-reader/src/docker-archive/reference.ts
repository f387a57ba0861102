import { ReferenceFormatError, UsageError, parseReference } from '@rxpush/core';

import type { SaveSelector } from './save-manifest.js';

/** What follows `docker-archive:`: the archive and, optionally, which of its images. */
export interface DockerArchiveReference {
  readonly path: string;
  readonly selector: SaveSelector;
}

/**
 * Splits `PATH[:NAME:TAG]` (or `PATH:@INDEX`) as skopeo's `docker-archive:` transport does: at the
 * first colon, so PATH cannot contain one while NAME:TAG (e.g. `localhost:5000/app:1`) can.
 */
export function parseDockerArchiveReference(text: string): DockerArchiveReference {
  const colon = text.indexOf(':');
  const path = colon < 0 ? text : text.slice(0, colon);
  const rest = colon < 0 ? '' : text.slice(colon + 1);
  const form = 'docker-archive:PATH[:NAME:TAG], e.g. docker-archive:./image.tar:app:1.0';
  if (path === '') throw new UsageError(`source "docker-archive:${text}" names no file: use ${form}`);
  if (rest === '') return { path, selector: undefined };
  if (rest.startsWith('@')) {
    const index = rest.slice(1);
    if (!/^\d+$/.test(index)) throw new UsageError(`source "docker-archive:${text}": "${rest}" is not @INDEX (a number counting from @0)`);
    return { path, selector: { kind: 'index', index: Number(index) } };
  }
  try {
    const ref = parseReference(rest);
    if (ref.digest !== undefined) throw new UsageError(`source "docker-archive:${text}" selects by digest; name the image as NAME:TAG (${form})`);
    if (ref.tag === undefined) throw new UsageError(`source "docker-archive:${text}" names ${rest} without a tag; use ${form} (note that PATH cannot contain ":")`);
  } catch (err) {
    if (err instanceof ReferenceFormatError) throw new UsageError(`source "docker-archive:${text}": ${err.message.replace(/; expected .*$/, '')}; use ${form}`);
    throw err;
  }
  return { path, selector: { kind: 'tag', repoTag: rest } };
}
