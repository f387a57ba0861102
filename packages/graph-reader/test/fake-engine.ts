import assert from 'node:assert/strict';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestContext } from 'node:test';

import { makeDockerSave } from './docker-save-fixtures.js';

export interface FakeEngine {
  /** `unix:///…/docker.sock`, for DOCKER_HOST. */
  readonly host: string;
  /** The paths asked for, in order. */
  readonly paths: string[];
  readonly diffIds: string[];
  readonly configDigest: string;
  readonly config: Buffer;
  /** The whole `docker save` archive the engine serves. */
  readonly archive: Buffer;
  /** From now on `app:1` is another image (the layers `options.changed`), as after a `docker build -t app:1`. */
  change(): void;
  /** From now on `GET /images/app:1/get` fails, as a `docker save` that runs out of disk does. */
  failSaves(): void;
}

/**
 * A stand-in for the Docker Engine's API on a unix socket, answering the two requests the source makes
 * from a docker save archive of `app:1`; it records the paths asked for. With `stallAfter`, the save stream
 * sends that many bytes and then nothing more, keeping the connection open, as an engine that hangs does:
 * a real dockerd cannot be made to. `inspectAnswer` answers the inspect request in the engine's place. (Pushing from a real engine is tested in test/docker-daemon.test.ts.)
 */
export async function fakeEngine(
  t: TestContext,
  options: { stallAfter?: number; layers?: Record<string, string>[]; changed?: Record<string, string>[]; inspectAnswer?: (res: ServerResponse) => void } = {},
): Promise<FakeEngine> {
  const dir = await mkdtemp(join(tmpdir(), 'rxpush-fake-engine-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const saved = async (file: string, layers: Record<string, string>[]) => {
    const fixture = await makeDockerSave(join(dir, file), { images: [{ repoTags: ['app:1'], layers }] });
    const [image] = fixture.images;
    assert.ok(image?.config && image.configDigest);
    return { image: { ...image, config: image.config, configDigest: image.configDigest }, archive: await readFile(fixture.path) };
  };
  const first = await saved('save.tar', options.layers ?? [{ a: 'a' }, { b: 'b' }]);
  const { image, archive } = first;
  const other = await saved('changed.tar', options.changed ?? [{ a: 'a' }, { c: 'c' }]);
  let serving = first;
  let failing = false;
  const paths: string[] = [];
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    paths.push(req.url ?? '');
    if (req.url === '/images/app:1/json' && options.inspectAnswer !== undefined) {
      options.inspectAnswer(res);
    } else if (req.url === '/images/app:1/json') {
      const { image } = serving;
      res.setHeader('content-type', 'application/json');
      res.end(JSON.stringify({ Id: image.configDigest, RepoTags: ['app:1'], Architecture: 'arm64', Os: 'linux', Variant: 'v8', RootFS: { Type: 'layers', Layers: image.diffIds } }));
    } else if (req.url === '/images/app:1/get' && failing) {
      res.statusCode = 500;
      res.end(JSON.stringify({ message: 'write /var/lib/docker/tmp/docker-export-1: no space left on device' }));
    } else if (req.url === '/images/app:1/get') {
      const { archive } = serving;
      res.setHeader('content-type', 'application/x-tar');
      if (options.stallAfter === undefined) res.end(archive);
      else res.write(archive.subarray(0, options.stallAfter));
    } else {
      res.statusCode = 404;
      res.end(JSON.stringify({ message: `No such image: ${req.url}` }));
    }
  });
  const socket = join(dir, 'docker.sock');
  await new Promise<void>((ok) => server.listen(socket, ok));
  t.after(() => {
    server.closeAllConnections();
    return new Promise<void>((ok) => server.close(() => ok()));
  });
  return {
    host: `unix://${socket}`,
    paths,
    diffIds: image.diffIds,
    configDigest: image.configDigest,
    config: image.config,
    archive,
    change: () => void (serving = other),
    failSaves: () => void (failing = true),
  };
}
