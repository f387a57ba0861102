/**
 * A push pipeline composed by hand: every tag of an OCI layout goes up with a `-nightly` suffix,
 * and progress is our own one line per layer instead of the CLI's display. The registry client
 * assembles itself (TLS, credentials from Docker's config.json or the environment) as `rxpush push` does.
 *
 *   REGISTRY_USER=bob REGISTRY_PASSWORD=… CA_FILE=./ca.crt \
 *     node --import tsx docs/examples/custom-pipeline.ts oci:./layout registry.local:5000/app
 */
import { pathToFileURL } from 'node:url';

import { checkBlobs } from '@rxpush/blob-checker';
import { isEvent, parseReference, type PushEvent } from '@rxpush/core';
import { readImages } from '@rxpush/graph-reader';
import { walkLayers } from '@rxpush/layer-walker';
import { pushManifests } from '@rxpush/manifest-signer';
import { retag } from '@rxpush/pipeline';
import { createRegistryClient, type CreateRegistryClientOptions } from '@rxpush/registry-client';
import { uploadBlobs } from '@rxpush/uploader';
import { defer, filter, finalize, lastValueFrom, tap, toArray, type Observable } from 'rxjs';

/** How to reach the registry: credentials, CA file, TLS verification, … (see createRegistryClient). */
export type Connection = Omit<CreateRegistryClientOptions, 'registry'>;

/** Pushes every tag of `source` to `destination` as `<tag>-nightly`, reporting through `log`. */
export function nightlyPush(source: string, destination: string, log: (line: string) => void, connection: Connection = {}): Observable<PushEvent> {
  const { registry, repository } = parseReference(destination);
  // Made on subscription, so an unsubscribed push holds no connections; closed when the push ends.
  return defer(() => {
    const client = createRegistryClient({ registry, ...connection });
    const target = { client, repository };
    return readImages(source, { allTags: true }).pipe(
      retag((image) => image.tags.map((tag) => `${tag}-nightly`)),
      walkLayers(),
      checkBlobs(target),
      uploadBlobs({ ...target, concurrency: 2 }),
      pushManifests(target),
      // Our own progress sink: only the states worth a line.
      tap((event) => {
        if (event.type === 'exists') log(`${event.id} already there`);
        if (event.type === 'pushed') log(`${event.id} uploaded (${event.size} bytes)`);
        if (event.type === 'retrying') log(`${event.id ?? registry} retrying in ${event.delayMs} ms: ${event.reason}`);
        if (event.type === 'manifest-pushed') log(`${registry}/${repository}:${event.tag} -> ${event.digest}`);
      }),
      finalize(() => void client.close()),
    );
  });
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const [source, destination] = process.argv.slice(2);
  if (!source || !destination) {
    console.error('usage: custom-pipeline.ts oci:LAYOUT REGISTRY/REPO');
    process.exit(2);
  }
  const { REGISTRY_USER: username, REGISTRY_PASSWORD: password, CA_FILE: caFile } = process.env;
  const connection: Connection = {
    ...(username !== undefined && password !== undefined && { credentials: { username, password, source: 'REGISTRY_USER/REGISTRY_PASSWORD' } }),
    ...(caFile !== undefined && { caFile }),
  };
  const pushed = await lastValueFrom(nightlyPush(source, destination, console.log, connection).pipe(filter(isEvent('manifest-pushed')), toArray()));
  console.log(`${pushed.length} tag(s) pushed`);
}
