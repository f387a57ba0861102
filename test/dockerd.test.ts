import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { describe, it } from 'node:test';
import { startDockerd } from '../tools/dockerd.ts';
import { makeOciLayout } from '../tools/fixtures.ts';
import { startRegistry } from '../tools/registry.ts';
import { skopeoCopy } from './helpers/skopeo.ts';

describe('startDockerd', () => {
  it('runs a private engine that loads a fixture and pulls it from a loopback registry', async (t) => {
    const engine = await startDockerd();
    if ('skipped' in engine) {
      t.skip(`no Docker engine: ${engine.skipped}`);
      return;
    }
    const dir = await mkdtemp(join(tmpdir(), 'rxpush-dockerd-test-'));
    t.after(() => rm(dir, { recursive: true, force: true }));
    const registry = await startRegistry();
    t.after(() => registry.stop());
    try {
      assert.ok(existsSync(engine.socket));
      const { images } = await makeOciLayout(join(dir, 'layout'));
      const image = images[0];
      assert.ok(image);

      // docker load: the fixture as a docker-save archive.
      const archive = join(dir, 'image.tar');
      await skopeoCopy(`oci:${join(dir, 'layout')}:latest`, `docker-archive:${archive}:fixtures/loaded:v1`);
      const loaded = await engine.docker(['load', '-i', archive]);
      assert.match(loaded.stdout, /Loaded image: fixtures\/loaded:v1/);
      const layers = await engine.docker(['image', 'inspect', '--format', '{{json .RootFS.Layers}}', 'fixtures/loaded:v1']);
      assert.deepEqual(JSON.parse(layers.stdout), image.diffIds);

      // docker pull over plain HTTP from the loopback registry.
      const ref = `${registry.host}/fixtures/pulled:v1`;
      await skopeoCopy(`oci:${join(dir, 'layout')}:latest`, ref);
      await engine.docker(['pull', ref]);
      const digests = await engine.docker(['image', 'inspect', '--format', '{{json .RepoDigests}}', ref]);
      assert.deepEqual(JSON.parse(digests.stdout), [`${registry.host}/fixtures/pulled@${image.manifestDigest}`]);
    } finally {
      await engine.stop();
    }
    assert.equal(existsSync(dirname(engine.socket)), false);
  });
});
