/**
 * The registry's answers changed on the way, one kind of request and one change at a time, as a gateway, a caching
 * proxy or a broken registry would change them: other statuses (in the registry's place, or after it acted),
 * headers dropped, a Location emptied, a digest header that is not one, an answer lost. Whatever happens, a push
 * ends in one of two ways: exit 0 with the image under its tag exactly as in the layout, or exit 1 with one
 * `rxpush: ` line and no other manifest under the tag. (Fuzzing this table by hand found a made-up 201 to the
 * manifest PUT taken for a push.) hostile-registry.test.ts and faults.test.ts check the wording of single cases.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { before, describe, it } from 'node:test';

import { assertCleanFailure, assertOneLineError } from './helpers/assert-cli.ts';
import type { Fault } from './helpers/fault-proxy.ts';
import { useProxiedRegistry } from './helpers/proxied-registry.ts';
import { runCli } from './helpers/run-cli.ts';

const REQUESTS: Record<string, { method: string; path: RegExp }> = {
  'blob HEAD': { method: 'HEAD', path: /\/blobs\/sha256:/ },
  'upload POST': { method: 'POST', path: /\/blobs\/uploads\/$/ },
  'upload PUT': { method: 'PUT', path: /\/blobs\/uploads\/.*digest=/ },
  'manifest PUT': { method: 'PUT', path: /\/manifests\// },
};

const CHANGES: Record<string, Fault> = {
  'answered 200 in its place': { kind: 'status', status: 200, body: '' },
  'answered 201 in its place': { kind: 'status', status: 201, body: '' },
  'answered 204 in its place': { kind: 'status', status: 204, body: '' },
  'answered 304 in its place': { kind: 'status', status: 304, body: '' },
  'answered 404 in its place': { kind: 'status', status: 404, body: '' },
  'answered 409 in its place, without a reason': { kind: 'status', status: 409, body: '' },
  'answered with an HTML page': { kind: 'status', status: 200, headers: { 'content-type': 'text/html' }, body: '<html>sign in</html>' },
  'turned into 200': { kind: 'rewrite', status: 200 },
  'turned into 204': { kind: 'rewrite', status: 204 },
  'without Docker-Content-Digest': { kind: 'rewrite', dropHeaders: ['docker-content-digest'] },
  'without Location': { kind: 'rewrite', dropHeaders: ['location'] },
  'without Content-Length': { kind: 'rewrite', dropHeaders: ['content-length'] },
  'with an empty Location': { kind: 'rewrite', location: () => '' },
  'with a digest header that is not one': { kind: 'add-headers', headers: { 'docker-content-digest': 'garbage' } },
  'lost once': { kind: 'lose-response' },
};

describe('a push whose registry answers are changed on the way lands whole or fails in one line', () => {
  const env = useProxiedRegistry('mutated', [{ tags: ['latest'], layers: [{ files: 2, fileSize: 100_000, seed: 'mutated-1' }, { files: 1, fileSize: 3_000, seed: 'mutated-2' }] }]);
  let n = 0;

  for (const [request, match] of Object.entries(REQUESTS)) {
    for (const [change, fault] of Object.entries(CHANGES)) {
      it(`${request} ${change}`, async () => {
        const repository = `mutated/c${(n += 1)}`;
        env.proxy.addFault({ ...match, ...(fault.kind === 'lose-response' && { nth: 1 }), fault });
        const result = await runCli(['push', `oci:${env.layout.dir}:latest`, `${env.proxy.host}/${repository}:1.0`, '--progress', 'plain', '--retries', '1', '--timeout', '10s'], {
          env: { RXPUSH_CACHE_DIR: join(env.work, `cache-${n}`) },
        });
        env.proxy.clearFaults();
        const tagged = await env.direct.hasManifest(repository, '1.0');
        const image = env.layout.images[0]!;
        if (result.code === 0) {
          assert.equal(tagged?.digest, image.manifestDigest, `exit 0, so the image is under its tag; stderr: ${result.stderr}`);
          return;
        }
        const line = assertCleanFailure(result);
        assert.ok(tagged === undefined || tagged.digest === image.manifestDigest, 'no other manifest under the tag');
        // An answer that gives no reason is said to give none, and where to look (a HEAD answer cannot give one).
        if (fault.kind === 'status' && fault.status === 409 && match.method !== 'HEAD') assert.match(line, / → 409; the registry refused the request without saying why \(no error code or message\); its log says more/);
      });
    }
  }
});

describe('rxpush verify with the signature\'s answers changed on the way', () => {
  const env = useProxiedRegistry('mutated-verify', [{ tags: ['latest'], layers: [{ files: 1, fileSize: 2_000, seed: 'mutated-verify' }] }]);
  const PAYLOAD = /\/mutated\/signed\/blobs\/sha256:/;
  let key: string;
  before(async () => {
    key = join(env.work, 'key.pem');
    assert.equal((await runCli(['keygen', '--out', key])).code, 0);
    // Signed through the proxy: the signature names the registry by the address verify asks.
    const pushed = await runCli(['push', `oci:${env.layout.dir}:latest`, `${env.proxy.host}/mutated/signed:1.0`, '--quiet', '--sign-key', key], { env: { RXPUSH_CACHE_DIR: join(env.work, 'cache-signed') } });
    assert.equal(pushed.code, 0, pushed.stderr);
  });
  const verify = () => runCli(['verify', `${env.proxy.host}/mutated/signed:1.0`, '--key', `${key}.pub`, '--retries', '0', '--timeout', '5s']);

  it('verifies when nothing is changed', async () => {
    const result = await verify();
    assert.equal(result.code, 0, result.stderr);
  });

  it('says a signature payload answered with other bytes could not be checked, not that another key made it', async () => {
    env.proxy.addFault({ method: 'GET', path: PAYLOAD, fault: { kind: 'status', status: 200, body: '' } });
    assertOneLineError(await verify(), /: no signature of \S+ could be checked: the payload sha256:[0-9a-f]{64} of a signature in mutated\/signed:sha256-[0-9a-f]{64}\.sig is larger than a payload can be, or its bytes do not match its digest; the registry \(or a proxy\) changed it/);
  });

  it('names the request when the registry breaks off sending a payload', async () => {
    env.proxy.addFault({ method: 'GET', path: PAYLOAD, fault: { kind: 'add-headers', headers: { 'content-length': '99999' } } });
    assertOneLineError(await verify(), /^rxpush: GET 127\.0\.0\.1:\d+\/v2\/mutated\/signed\/blobs\/sha256:[0-9a-f]{64} failed: the registry broke off sending it \(.+\); try again$/);
  });
});


describe('rxpush inspect with the registry\'s answers changed on the way', () => {
  const env = useProxiedRegistry('mutated-inspect', [{ tags: ['latest'], layers: [{ files: 1, fileSize: 2_000, seed: 'mutated-inspect' }] }]);
  before(async () => {
    const pushed = await runCli(['push', `oci:${env.layout.dir}:latest`, `${env.proxy.host}/mutated/inspected:1.0`, '--quiet'], { env: { RXPUSH_CACHE_DIR: join(env.work, 'cache-inspected') } });
    assert.equal(pushed.code, 0, pushed.stderr);
  });
  const inspect = (...flags: string[]) => runCli(['inspect', `${env.proxy.host}/mutated/inspected:1.0`, ...flags, '--retries', '0', '--timeout', '5s']);
  const MANIFEST = { method: 'GET', path: /\/manifests\/1\.0$/ };
  const CONFIG = { method: 'GET', path: /\/blobs\/sha256:/ };

  it('prints the manifest and config when nothing is changed', async () => {
    const result = await inspect();
    assert.equal(result.code, 0, result.stderr);
    assert.equal((JSON.parse(result.stdout) as { digest: string }).digest, env.layout.images[0]!.manifestDigest);
  });

  it('refuses, even with --raw, a page that came in place of the manifest', async () => {
    env.proxy.addFault({ ...MANIFEST, fault: { kind: 'status', status: 200, headers: { 'content-type': 'text/html' }, body: '<html>sign in</html>' } });
    for (const flags of [[], ['--raw'], ['--config']]) {
      const result = await inspect(...flags);
      assertOneLineError(result, /: the manifest of \S+ came as text\/html, not an image manifest or index; is 127\.0\.0\.1:\d+ a registry \(a proxy or login page may answer in its place\)\?$/);
      assert.equal(result.stdout, '', 'nothing printed');
    }
  });

  it('refuses a config whose bytes are not the ones its digest names, printing nothing', async () => {
    env.proxy.addFault({ ...CONFIG, fault: { kind: 'status', status: 200, body: '{"architecture":"forged"}' } });
    const result = await inspect('--config');
    assertOneLineError(result, /config sha256:[0-9a-f]{64}: its bytes hash to sha256:[0-9a-f]{64}, not sha256:[0-9a-f]{64}; the source \(or a proxy in front of it\) changed it$/);
    assert.doesNotMatch(result.stdout, /forged/);
  });

  it('says the registry lacks the config the manifest names', async () => {
    env.proxy.addFault({ ...CONFIG, fault: { kind: 'status', status: 404, body: '' } });
    assertOneLineError(await inspect(), /: the manifest of \S+ names the config sha256:[0-9a-f]{64}, which the registry does not have \(GET \S+ → 404\); the image is incomplete there$/);
  });
});
