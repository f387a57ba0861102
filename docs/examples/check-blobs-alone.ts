/**
 * One operator reused alone: ask a registry which of an image's blobs it is missing, without pushing.
 *
 *   node --import tsx docs/examples/check-blobs-alone.ts oci:./layout:latest localhost:5000/app
 */
import { pathToFileURL } from 'node:url';

import { checkBlobs } from '@rxpush/blob-checker';
import { isEvent, parseReference, type BlobSource } from '@rxpush/core';
import { readImages } from '@rxpush/graph-reader';
import { walkLayers } from '@rxpush/layer-walker';
import { createRegistryClient, type CreateRegistryClientOptions } from '@rxpush/registry-client';
import { filter, finalize, lastValueFrom, map, toArray } from 'rxjs';

/** The blobs of `source` that `destination`'s repository does not have yet. */
export async function missingBlobs(source: string, destination: string, connection: Omit<CreateRegistryClientOptions, 'registry'> = {}): Promise<BlobSource[]> {
  const { registry, repository } = parseReference(destination);
  // Credentials from Docker's config.json (docker login), TLS as `rxpush push` sets it up.
  const client = createRegistryClient({ registry, ...connection });
  // checkBlobs passes on, as `blob` tasks, exactly the blobs an uploader would have to send.
  return lastValueFrom(
    readImages(source).pipe(
      walkLayers(),
      checkBlobs({ client, repository }),
      filter(isEvent('blob')),
      map((event) => event.blob),
      toArray(),
      finalize(() => void client.close()),
    ),
  );
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const [source, destination] = process.argv.slice(2);
  if (!source || !destination) {
    console.error('usage: check-blobs-alone.ts SOURCE REGISTRY/REPO');
    process.exit(2);
  }
  const missing = await missingBlobs(source, destination);
  for (const blob of missing) console.log(`missing ${blob.role} ${blob.digest ?? blob.key} (${blob.size ?? '?'} bytes)`);
  console.log(missing.length === 0 ? 'the registry has every blob' : `${missing.length} blob(s) to push`);
}
