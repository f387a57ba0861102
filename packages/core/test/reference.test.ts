import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import { assertNamesRepository, formatReference, isValidRepository, parseDigest, parseReference, shortId } from '@rxpush/core';

const hex = 'a'.repeat(64);

describe('parseReference', () => {
  it('reads a registry with a port, a nested repository and a tag', () => {
    assert.deepEqual(parseReference('localhost:5000/team/app:1.0'), { registry: 'localhost:5000', repository: 'team/app', tag: '1.0' });
  });

  it("normalises Docker Hub's names as Docker does", () => {
    assert.deepEqual(parseReference('alpine'), { registry: 'docker.io', repository: 'library/alpine' });
    assert.deepEqual(parseReference('index.docker.io/user/app:v2'), { registry: 'docker.io', repository: 'user/app', tag: 'v2' });
    assert.deepEqual(parseReference('docker://registry-1.docker.io/busybox'), { registry: 'docker.io', repository: 'library/busybox' });
  });

  it('treats a first component as a registry only when it looks like a host', () => {
    assert.equal(parseReference('user/app').registry, 'docker.io');
    assert.equal(parseReference('registry.example/app').registry, 'registry.example');
    assert.equal(parseReference('localhost/app').registry, 'localhost');
    assert.equal(parseReference('[::1]:5000/app').registry, '[::1]:5000');
  });

  it('reads a digest, with or without a tag', () => {
    assert.deepEqual(parseReference(`localhost:5000/app@sha256:${hex}`), { registry: 'localhost:5000', repository: 'app', digest: `sha256:${hex}` });
    assert.equal(parseReference(`localhost:5000/app:1@sha256:${hex}`).tag, '1');
  });

  it('refuses what Docker refuses, saying why', () => {
    assert.throws(() => parseReference(''), /is empty/);
    assert.throws(() => parseReference('localhost:5000/App:1'), /must be lowercase/);
    assert.throws(() => parseReference('localhost:5000/app:-bad'), /tag "-bad" is not valid/);
    assert.throws(() => parseReference('localhost:5000/app@sha256:abc'), /is not a sha256 digest/);
    assert.throws(() => parseReference('localhost:5000/'), /repository name is missing/);
    assert.throws(() => parseReference('local host/app'), /white space/);
    assert.throws(() => parseReference('127.0.0.1:99999/app:1'), /registry "127\.0\.0\.1:99999" has port 99999: a port is 1 to 65535/);
    assert.throws(() => parseReference('localhost:0/app'), /has port 0/);
    assert.equal(parseReference('[::1]:65535/app').registry, '[::1]:65535');
    assert.throws(() => parseReference(`r.example/${'a'.repeat(260)}`), /longer than 255/);
  });

  it('writes a reference back in canonical form', () => {
    assert.equal(formatReference(parseReference('alpine:3')), 'docker.io/library/alpine:3');
  });
});

describe('digests and names', () => {
  it('accepts sha256 with 64 lowercase hex digits and nothing else', () => {
    assert.equal(parseDigest(`sha256:${hex}`), `sha256:${hex}`);
    for (const bad of [`sha256:${hex.toUpperCase()}`, `sha256:${hex}0`, `md5:${hex}`, `sha256:../../${hex.slice(6)}`, 42]) {
      assert.throws(() => parseDigest(bad), /expected sha256: followed by 64 lowercase hex digits/);
    }
  });

  it('shows a value that is not a string as JSON, and names one that is not there as missing', () => {
    const shown = (value: unknown): string => {
      try {
        parseDigest(value, 'digest of layers[0]');
      } catch (error) {
        return (error as Error).message.split(';')[0]!;
      }
      return 'accepted';
    };
    assert.equal(shown(null), 'invalid digest of layers[0]: null');
    assert.equal(shown({ a: 1 }), 'invalid digest of layers[0]: {"a":1}');
    assert.equal(shown([]), 'invalid digest of layers[0]: []');
    assert.equal(shown(42), 'invalid digest of layers[0]: 42');
    assert.equal(shown('x'.repeat(100)), `invalid digest of layers[0]: "${'x'.repeat(80)}…"`);
    assert.equal(shown(undefined), 'missing digest of layers[0]');
    assert.equal(shown(10n), 'invalid digest of layers[0]: 10');
  });

  it("gives Docker's 12-character short id", () => {
    assert.equal(shortId(`sha256:${'0123456789ab'}${'f'.repeat(52)}`), '0123456789ab');
  });

  it("checks repository paths with Docker's grammar", () => {
    assert.ok(isValidRepository('team/app-1.x'));
    assert.ok(!isValidRepository('team//app'));
    assert.ok(!isValidRepository('../app'));
    assert.ok(!isValidRepository('App'));
  });

  it('refuses a registry address alone, which Docker\'s rules read as an image on Docker Hub, and passes the rest', () => {
    const refused = (reference: string): string | undefined => {
      try {
        assertNamesRepository(reference, 'destination');
      } catch (error) {
        assert.equal((error as { code?: string }).code, 'USAGE');
        return (error as Error).message;
      }
      return undefined;
    };
    assert.equal(
      refused('localhost:5000'),
      "destination localhost:5000 names a registry but no repository (Docker's rules read it as docker.io/library/localhost:5000); write REGISTRY/REPO[:TAG], e.g. localhost:5000/app:1.0",
    );
    assert.equal(
      refused('docker://10.0.0.5:5000'),
      "destination docker://10.0.0.5:5000 names a registry but no repository (Docker's rules read it as docker.io/library/10.0.0.5:5000); write docker://REGISTRY/REPO[:TAG], e.g. docker://10.0.0.5:5000/app:1.0",
    );
    assert.match(refused('registry.example.com:443') ?? '', /^destination registry\.example\.com:443 names a registry but no repository/);
    // An image name with a tag that looks like a port is still an image name: no dot, not localhost.
    for (const fine of ['app:5000', 'localhost:5000/app', 'localhost/app:1', 'registry.example.com/app:443', 'docker://localhost:5000/app']) assert.equal(refused(fine), undefined, fine);
  });
});
