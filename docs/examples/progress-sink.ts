/**
 * A progress sink of our own for push(): plain lines for a CI log, one per layer when it is settled, with a
 * count of settled layers, instead of the CLI's display. A sink is just an RxJS observer of PushEvents.
 *
 *   node --import tsx docs/examples/progress-sink.ts oci:./layout:latest localhost:5000/app:1.0
 */
import { pathToFileURL } from 'node:url';

import { shortId, type ImageRecord, type PushEvent } from '@rxpush/core';
import { push } from '@rxpush/pipeline';
import type { Observer } from 'rxjs';

/** Writes `[2/3] 5b1c4a2e9d0f pushed (1.2 MB)`-style lines through `write`; resolves `done` with the exit status. */
export function ciProgress(write: (line: string) => void, done: (status: number) => void = () => {}): Observer<PushEvent> {
  const layers = new Set<string>();
  let settled = 0;
  const settle = (id: string, what: string): void => write(`[${++settled}/${layers.size}] ${id} ${what}`);
  return {
    next(event) {
      switch (event.type) {
        // The count is known up front for images that list their layers; checks of earlier layers may settle
        // before later layers are even `preparing`.
        case 'image':
          for (const image of event.image.kind === 'index' ? event.image.manifests : [event.image]) listedLayers(image).forEach((id) => layers.add(id));
          break;
        case 'preparing':
          if (event.role === 'layer') layers.add(event.id);
          break;
        case 'exists':
          if (event.role === 'layer') settle(event.id, 'already in the registry');
          break;
        case 'mounted':
          if (event.role === 'layer') settle(event.id, `mounted from ${event.from}`);
          break;
        case 'pushed':
          if (event.role === 'layer') settle(event.id, `pushed (${(event.size / 1e6).toFixed(1)} MB)`);
          break;
        case 'retrying':
          write(`retry ${event.attempt} in ${Math.ceil(event.delayMs / 1000)} s: ${event.reason}`);
          break;
        case 'manifest-pushed':
          write(`${event.registry}/${event.repository}:${event.tag ?? ''} is ${event.digest}`);
          break;
      }
    },
    error(error: Error) {
      write(`push failed: ${error.message}`);
      done(1);
    },
    complete() {
      done(0);
    },
  };
}

/** The short ids of an image's layers, when it lists them (a parent chain is walked later). */
function listedLayers(image: ImageRecord): string[] {
  return image.layers.kind === 'list' ? image.layers.layers.map((layer) => shortId(layer.key)) : [];
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const [source, destination] = process.argv.slice(2);
  if (!source || !destination) {
    console.error('usage: progress-sink.ts SOURCE REGISTRY/REPO[:TAG]');
    process.exit(2);
  }
  push({ source, destination }).subscribe(ciProgress(console.log, (status) => (process.exitCode = status)));
}
