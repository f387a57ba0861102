/**
 * A copy whose SOURCE registry's answers are changed on the way (a gateway, a caching proxy or a broken
 * registry in front of it), one kind of request and one change at a time. Whatever happens, a copy ends in
 * one of two ways: exit 0 with the source's manifest under the destination's tag, byte for byte (same
 * digest), or exit 1 with one `rxpush: ` line and nothing under the tag. The destination is the same
 * registry reached directly, under another name, so every blob is really fetched from the source.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { before, describe, it } from 'node:test';

import { MediaType } from '@rxpush/core';

import { assertCleanFailure } from './helpers/assert-cli.ts';
import type { Fault } from './helpers/fault-proxy.ts';
import { useProxiedRegistry } from './helpers/proxied-registry.ts';
import { runCli } from './helpers/run-cli.ts';

/** Which GETs of the source are changed; a blob's path is known once the image is pushed. */
const REQUESTS: Record<string, RegExp | 'config' | 'layer'> = {
  'manifest GET': /\/manifests\//,
  'config GET': 'config',
  'layer GET': 'layer',
  'tags GET': /\/tags\/list/,
};

const CHANGES: Record<string, Fault> = {
  'answered 200 with no body': { kind: 'status', status: 200, body: '' },
  'answered 200 with other bytes': { kind: 'status', status: 200, headers: { 'content-type': 'application/json' }, body: '{"schemaVersion":2}' },
  'answered 204': { kind: 'status', status: 204, body: '' },
  'answered 304': { kind: 'status', status: 304, body: '' },
  'answered 401 without a challenge': { kind: 'status', status: 401, body: '' },
  'answered 403': { kind: 'status', status: 403, body: '' },
  'answered 404 without a reason': { kind: 'status', status: 404, body: '' },
  'answered 500 with an HTML page': { kind: 'status', status: 500, headers: { 'content-type': 'text/html' }, body: '<html>oops</html>' },
  'answered with an HTML page': { kind: 'status', status: 200, headers: { 'content-type': 'text/html' }, body: '<html>sign in</html>' },
  'redirected to itself': { kind: 'redirect', status: 307, location: '/v2/' },
  'without Content-Type': { kind: 'rewrite', dropHeaders: ['content-type'] },
  'without Docker-Content-Digest': { kind: 'rewrite', dropHeaders: ['docker-content-digest'] },
  'without Content-Length': { kind: 'rewrite', dropHeaders: ['content-length'] },
  'with a digest header that is not one': { kind: 'add-headers', headers: { 'docker-content-digest': 'garbage' } },
  'with another digest header': { kind: 'add-headers', headers: { 'docker-content-digest': `sha256:${'0'.repeat(64)}` } },
  'with a longer Content-Length': { kind: 'add-headers', headers: { 'content-length': '999999' } },
  'reset': { kind: 'reset' },
  'lost once': { kind: 'lose-response' },
};

describe('a copy whose source registry answers are changed on the way lands whole or fails in one line', () => {
  const env = useProxiedRegistry('mutated-copy', [{ tags: ['latest'], layers: [{ files: 2, fileSize: 100_000, seed: 'mutated-copy-1' }] }]);
  let blobPaths: Record<'config' | 'layer', RegExp>;
  let n = 0;
  before(async () => {
    const image = env.layout.images[0]!;
    const pushed = await runCli(['push', `oci:${env.layout.dir}:latest`, `${env.registry.host}/src/app:1`, '--quiet'], { env: { RXPUSH_CACHE_DIR: join(env.work, 'cache-src') } });
    assert.equal(pushed.code, 0, pushed.stderr);
    blobPaths = { config: new RegExp(`/blobs/${image.configDigest}$`), layer: new RegExp(`/blobs/${image.layerDigests[0]}$`) };
  });

  for (const [request, target] of Object.entries(REQUESTS)) {
    for (const [change, fault] of Object.entries(CHANGES)) {
      it(`${request} ${change}`, async () => {
        const repository = `dst/c${(n += 1)}`;
        const path = typeof target === 'string' ? blobPaths[target] : target;
        env.proxy.addFault({ method: 'GET', path, ...(fault.kind === 'lose-response' || fault.kind === 'reset' ? { nth: 1 } : {}), fault });
        const allTags = request === 'tags GET';
        const source = `docker://${env.proxy.host}/src/app${allTags ? '' : ':1'}`;
        const result = await runCli(['copy', source, `${env.registry.host}/${repository}${allTags ? '' : ':1'}`, ...(allTags ? ['--all-tags'] : []), '--src-plain-http', '--retries', '1', '--timeout', '2s', '--progress', 'plain'], {
          env: { RXPUSH_CACHE_DIR: join(env.work, `cache-${n}`) },
        });
        env.proxy.clearFaults();
        const tagged = await env.direct.hasManifest(repository, '1');
        const image = env.layout.images[0]!;
        if (result.code === 0) {
          assert.equal(tagged?.digest, image.manifestDigest, `exit 0, so the image is under its tag; stderr: ${result.stderr}`);
          const stored = await env.direct.getManifest(repository, '1', { accept: [MediaType.ociManifest] });
          assert.equal(stored.digest, image.manifestDigest);
          return;
        }
        const line = assertCleanFailure(result);
        assert.equal(tagged, undefined, 'nothing under the tag');
        // The source is a registry: there is no image to re-export, and an answer read part-way names its request.
        assert.doesNotMatch(line, /re-export|Body Timeout Error/);
        if (typeof target === 'string' && fault.kind === 'status' && fault.status === 200) assert.match(line, /; \S+ sent other bytes than the manifest names \(it, or a proxy in front of it, changed them\); nothing was tagged at the destination, copy again$/);
      });
    }
  }
});
