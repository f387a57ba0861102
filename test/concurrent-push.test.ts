/**
 * Many `rxpush push` processes at once into one repository, as a CI fleet does: N images that share a
 * base layer and each have their own, pushed as N tags, all with one digest cache. Round after round into
 * new repositories of the same registry, so the later rounds mount what the earlier ones pushed: the
 * path on which the reference registry, re-linking a blob it already holds, failed manifest PUTs with
 * DIGEST_INVALID (issue 12). It is a race, so it runs several rounds, and it checks the cause as well
 * as the symptom: no blob is ever mounted twice into one repository.
 */
import assert from 'node:assert/strict';
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { before, describe, it } from 'node:test';

import { useRegistry } from './helpers/registry-suite.ts';
import { runCli } from './helpers/run-cli.ts';

const N = 20;
const ROUNDS = 3;
const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json';

describe(`${N} concurrent pushes into one repository`, () => {
  const suite = useRegistry('concurrent', {
    // Small layers: the race is in the requests, not the bytes, and 2 cores run all N processes.
    images: Array.from({ length: N }, (_, i) => ({
      tags: [`t${i}`],
      layers: [
        { files: 2, fileSize: 64 * 1024, seed: 'shared-base' },
        { files: 1, fileSize: 8 * 1024, seed: `own-${i}` },
      ],
    })),
  });
  let cacheDir: string;
  before(() => void (cacheDir = join(suite.work, 'cache')));

  for (let round = 0; round < ROUNDS; round++) {
    const repository = `fleet/round${round}`;
    it(`round ${round + 1}: every push exits 0 and every tag names its image${round > 0 ? ' (mounting from the earlier rounds)' : ''}`, async () => {
      const results = await Promise.all(
        suite.layout.images.map((_, i) =>
          runCli(['push', `oci:${suite.layout.dir}:t${i}`, `${suite.registry.host}/${repository}:t${i}`, '--progress', 'plain'], {
            env: { RXPUSH_CACHE_DIR: cacheDir },
          }),
        ),
      );
      const failed = results.flatMap((result, i) => (result.code === 0 ? [] : [`t${i} exited ${result.code}: ${result.stderr.trim()}`]));
      assert.deepEqual(failed, []);

      for (const [i, image] of suite.layout.images.entries()) {
        const res = await fetch(`${suite.registry.url}/v2/${repository}/manifests/t${i}`, { method: 'HEAD', headers: { accept: OCI_MANIFEST } });
        assert.equal(res.status, 200, `${repository}:t${i}`);
        assert.equal(res.headers.get('docker-content-digest'), image.manifestDigest, `${repository}:t${i}`);
      }

      if (round > 0) {
        const mounted = await mountsIn(suite.registry.logFile, repository);
        assert.ok(mounted.length > 0, `round ${round + 1} mounts blobs from the earlier rounds`);
        const twice = mounted.filter((digest, index) => mounted.indexOf(digest) !== index);
        assert.deepEqual(twice, [], `no blob is mounted into ${repository} once it is there`);
      }
    });
  }

  it('leaves a cache of whole entries and no claims behind', async () => {
    const names = await readdir(cacheDir);
    assert.deepEqual(names.filter((name) => name.endsWith('.tmp')), [], 'no temporary file is left');
    // Every push replaced the file whole; what it holds parses, and every entry is well formed.
    const file = JSON.parse(await readFile(join(cacheDir, 'digests.json'), 'utf8')) as { entries: Record<string, { locations?: unknown[] }> };
    const entries = Object.entries(file.entries);
    assert.ok(entries.length > 0);
    for (const [digest, entry] of entries) {
      assert.match(digest, /^sha256:[0-9a-f]{64}$/);
      for (const place of entry.locations ?? []) {
        assert.equal(typeof (place as { registry?: unknown }).registry, 'string', digest);
        assert.equal(typeof (place as { repository?: unknown }).repository, 'string', digest);
      }
    }
    assert.deepEqual(await readdir(join(cacheDir, 'claims')).catch(() => []), []);
  });
});

/** The digests the registry's own log shows mounted (POST …?mount=… answered 201) into `repository`, once per mount. */
async function mountsIn(logFile: string, repository: string): Promise<string[]> {
  const log = await readFile(logFile, 'utf8');
  const digests: string[] = [];
  for (const line of log.split('\n')) {
    if (!line.includes('response completed') || !line.includes('http.response.status=201')) continue;
    const uri = /http\.request\.uri="([^"]+)"/.exec(line)?.[1];
    if (uri === undefined || !uri.startsWith(`/v2/${repository}/blobs/uploads/`)) continue;
    const digest = new URLSearchParams(uri.split('?')[1] ?? '').get('mount');
    if (digest !== null) digests.push(digest);
  }
  return digests;
}
