/**
 * A push pipeline composed by hand: every tag of an OCI layout goes up with a `-nightly` suffix,
 * and progress is our own one line per layer instead of the CLI's display.
 *
 *   node --import tsx docs/examples/custom-pipeline.ts oci:./layout localhost:5000/app
 */
import { pathToFileURL } from 'node:url';

import { checkBlobs } from '@rxpush/blob-checker';
import { isEvent, parseReference, type PushEvent } from '@rxpush/core';
import { readImages } from '@rxpush/graph-reader';
import { walkLayers } from '@rxpush/layer-walker';
import { pushManifests } from '@rxpush/manifest-signer';
import { retag } from '@rxpush/pipeline';
import { RegistryClient } from '@rxpush/registry-client';
import { uploadBlobs } from '@rxpush/uploader';
import { filter, finalize, lastValueFrom, tap, toArray, type Observable } from 'rxjs';

/** Pushes every tag of `source` to `destination` as `<tag>-nightly`, reporting through `log`. */
export function nightlyPush(source: string, destination: string, log: (line: string) => void): Observable<PushEvent> {
  const { registry, repository } = parseReference(destination);
  const client = new RegistryClient({ registry });
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
      if (event.type === 'manifest-pushed') log(`${registry}/${repository}:${event.tag} -> ${event.digest}`);
    }),
    finalize(() => void client.close()),
  );
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const [source, destination] = process.argv.slice(2);
  if (!source || !destination) {
    console.error('usage: custom-pipeline.ts oci:LAYOUT REGISTRY/REPO');
    process.exit(2);
  }
  const pushed = await lastValueFrom(nightlyPush(source, destination, console.log).pipe(filter(isEvent('manifest-pushed')), toArray()));
  console.log(`${pushed.length} tag(s) pushed`);
}
