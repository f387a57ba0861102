// The texts Docker's push shows, shared by the renderers.
import type { ManifestPushedEvent, ProgressEvent, PushEvent, SignedManifestEvent } from '@rxpush/core';

import { humanSize } from './human-size.js';

/** Layers and retries are shown; config blobs are not, as in `docker push`. */
export function isShown(event: PushEvent): event is ProgressEvent {
  switch (event.type) {
    case 'preparing':
    case 'waiting':
    case 'exists':
    case 'mounted':
    case 'pushing':
    case 'pushed':
      return event.role === 'layer';
    case 'retrying':
      return true;
    default:
      return false;
  }
}

/** The status word(s) of a progress event, as in Docker's `<id>: <status>` lines. */
export function statusText(event: ProgressEvent): string {
  switch (event.type) {
    case 'preparing':
      return 'Preparing';
    case 'waiting':
      return 'Waiting';
    case 'exists':
      return 'Layer already exists';
    case 'mounted':
      return `Mounted from ${event.from}`;
    case 'pushing':
      // An upload an earlier run broke off goes on where the registry has it.
      return event.resumedAt !== undefined ? `Resuming at ${humanSize(event.resumedAt)}` : 'Pushing';
    case 'pushed':
      return 'Pushed';
    case 'retrying': {
      const seconds = Math.ceil(event.delayMs / 1000);
      return `Retrying in ${seconds} second${seconds === 1 ? '' : 's'}`;
    }
  }
}

/** The line id of a progress event: the blob's short id, or '' for a retry not about one blob. */
export function lineId(event: ProgressEvent): string {
  return event.id ?? '';
}

/** `<tag>: digest: sha256:… size: N`, the line `docker push` ends each tag with. */
export function digestLine(event: ManifestPushedEvent): string {
  return `${event.tag !== undefined ? `${event.tag}: ` : ''}digest: ${event.digest} size: ${event.size}`;
}

/**
 * `TAG: listed in the referrers tag sha256-…`, for a manifest with a `subject` that rxpush listed in the
 * distribution spec's referrers tag (the registry has no referrers API); else nothing.
 */
export function referrersLines(event: ManifestPushedEvent): string[] {
  if (event.referrersTag === undefined) return [];
  return [`${event.tag ?? event.digest}: listed in the referrers tag ${event.referrersTag}`];
}

/** `TAG: signed with KEYID`, one line per tag the signed manifest is pushed as (its digest when it has none). */
export function signedLines(event: SignedManifestEvent): string[] {
  return (event.tags.length > 0 ? event.tags : [event.digest]).map((name) => `${name}: signed with ${event.keyId}`);
}

/** The header `docker push` starts with. */
export function headerLine(repository: string): string {
  return `The push refers to repository [${repository}]`;
}
