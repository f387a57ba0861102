/**
 * A registry-to-registry copy that takes only some tags: here the release tags (`1.2.3`, `v1.2.3`) of a
 * repository, not `latest` or branch builds. The source's tags are listed once, filtered, and each wanted tag
 * is read as a `docker://` source; every blob streams from one registry to the other without touching disk,
 * and blobs the destination has are never fetched. Each registry has its own client, with its own credentials
 * and TLS settings: neither's credentials ever go to the other.
 *
 *   node --import tsx docs/examples/copy-release-tags.ts staging.example/team/app registry.example/team/app
 */
import { pathToFileURL } from 'node:url';

import { checkBlobs } from '@rxpush/blob-checker';
import { isEvent, parseReference, type PushEvent } from '@rxpush/core';
import { readImages } from '@rxpush/graph-reader';
import { walkLayers } from '@rxpush/layer-walker';
import { pushManifests } from '@rxpush/manifest-signer';
import { createRegistryClient, type CreateRegistryClientOptions } from '@rxpush/registry-client';
import { uploadBlobs } from '@rxpush/uploader';
import { concatMap, defer, filter, finalize, from, lastValueFrom, mergeMap, toArray, type Observable } from 'rxjs';

/** How to reach one registry: credentials, CA file, TLS verification, … (see createRegistryClient). */
export type Connection = Omit<CreateRegistryClientOptions, 'registry'>;

/** Release tags: `1.2.3` or `v1.2.3`, nothing after. */
export const isRelease = (tag: string): boolean => /^v?\d+\.\d+\.\d+$/.test(tag);

/** Copies the tags of `source` (`REGISTRY/REPO`) that `wanted` accepts to `destination` (`REGISTRY/REPO`), under the same names. */
export function copyTags(
  source: string,
  destination: string,
  wanted: (tag: string) => boolean = isRelease,
  connections: { readonly source?: Connection; readonly destination?: Connection } = {},
): Observable<PushEvent> {
  const src = parseReference(source);
  const dest = parseReference(destination);
  return defer(() => {
    const sourceClient = createRegistryClient({ registry: src.registry, ...connections.source });
    const client = createRegistryClient({ registry: dest.registry, ...connections.destination });
    const target = { client, repository: dest.repository };
    return defer(() => sourceClient.listTags(src.repository)).pipe(
      mergeMap((tags) => from(tags.filter(wanted))),
      // One tag at a time: each is read (its manifests fetched and checked) only when its turn comes.
      concatMap((tag) => readImages(`docker://${src.registry}/${src.repository}:${tag}`, { registryClient: sourceClient })),
      walkLayers(),
      checkBlobs(target),
      uploadBlobs(target),
      pushManifests(target),
      finalize(() => void Promise.all([sourceClient.close(), client.close()])),
    );
  });
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const [source, destination] = process.argv.slice(2);
  if (!source || !destination) {
    console.error('usage: copy-release-tags.ts SOURCE-REGISTRY/REPO DEST-REGISTRY/REPO');
    process.exit(2);
  }
  const copied = await lastValueFrom(copyTags(source, destination).pipe(filter(isEvent('manifest-pushed')), toArray()));
  for (const event of copied) console.log(`${event.tag}: ${event.digest}`);
  console.log(`${copied.length} tag(s) copied`);
}
