import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdir, readFile, unlink, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { promisify } from 'node:util';

import type { Digest } from '@rxpush/core';

import { screen } from '../packages/cli/test/screen.ts';
import { makeOciLayout } from '../tools/fixtures.ts';
import { assertOneLineError } from './helpers/assert-cli.ts';
import { useRegistry } from './helpers/registry-suite.ts';
import { CLI_BIN, homeIn, runCli } from './helpers/run-cli.ts';
import { skopeoInspectRaw } from './helpers/skopeo.ts';

const execFileAsync = promisify(execFile);
const blobPath = (dir: string, digest: string): string => join(dir, 'blobs', 'sha256', digest.slice('sha256:'.length));

describe('rxpush push (the CLI) against the reference registry', () => {
  const suite = useRegistry('cli', {
    images: [
      { tags: ['latest'], layers: [{ files: 2, fileSize: 100_000, seed: 'cli-base' }, { files: 1, fileSize: 20_000, seed: 'cli-app' }] },
      { tags: ['edge'], layers: [{ files: 2, fileSize: 100_000, seed: 'cli-base' }, { files: 1, fileSize: 20_000, seed: 'cli-edge' }] },
    ],
  });

  it('writes Docker jsonmessage lines ending with the aux digest, and the digest file', async () => {
    const digestfile = join(suite.work, 'digest');
    const result = await runCli(['push', `oci:${suite.layout.dir}:latest`, `${suite.registry.host}/cli/json:1.0`, '--progress', 'json', '--digestfile', digestfile]);
    assert.equal(result.code, 0, result.stderr);
    const messages = result.stdout.trimEnd().split('\n').map((line) => JSON.parse(line));
    const [image] = suite.layout.images;
    assert.deepEqual(messages.at(-1), { progressDetail: {}, aux: { Tag: '1.0', Digest: image!.manifestDigest, Size: image!.manifestSize } });
    assert.deepEqual(messages.at(-2), { status: `1.0: digest: ${image!.manifestDigest} size: ${image!.manifestSize}` });
    for (const layer of image!.layerDigests) {
      const id = layer.slice(7, 19);
      const statuses = messages.filter((m) => m.id === id).map((m) => m.status);
      assert.equal(statuses[0], 'Preparing');
      assert.equal(statuses.at(-1), 'Pushed');
    }
    assert.equal(await readFile(digestfile, 'utf8'), image!.manifestDigest);
    assert.equal((await skopeoInspectRaw(`docker://${suite.registry.host}/cli/json:1.0`)).json.layers.length, 2);
  });

  it('logs a warning on a terminal as one readable line, and as pino JSON on a pipe unless --log-format text', async () => {
    // The digest cache cannot be made under a file: a warning, and the push goes on without the cache.
    const notADirectory = join(suite.work, 'not-a-directory');
    await writeFile(notADirectory, 'a file');
    const env = { ...homeIn(join(suite.work, 'terminal-home')), RXPUSH_CACHE_DIR: join(notADirectory, 'cache'), NO_COLOR: '1' };
    const args = ['push', `oci:${suite.layout.dir}:latest`, `${suite.registry.host}/cli/terminal:1.0`];
    // script(1) runs the CLI on a pseudo-terminal (stdout and stderr both), as a user's shell would.
    const command = [process.execPath, CLI_BIN, ...args].map((word) => `'${word}'`).join(' ');
    const { stdout: shown } = await execFileAsync('script', ['-qec', command, '/dev/null'], { env: { ...process.env, ...env } });
    assert.match(shown, /^rxpush: warning: digest cache write failed \(\S+\/not-a-directory\/cache: a part of its path is a file, not a directory\); going on without it\r?$/m);
    assert.doesNotMatch(shown, /"level":/);
    assert.match(shown, /1\.0: digest: sha256:[a-f0-9]{64}/);
    // What the person sees: every layer's last state in its place above the warning (the cache is written once the
    // layers are up), none written over it. The pseudo-terminal has no size: rxpush takes it as 200 columns. A warning
    // in the middle of the display is packages/cli/test/main.test.ts's.
    const terminal = screen(200);
    terminal.write(shown);
    const layers = suite.layout.images[0]!.layerDigests.map((digest) => `${digest.slice(7, 19)}: Pushed`);
    const warningRow = terminal.lines.findIndex((line) => line.startsWith('rxpush: warning: digest cache write failed'));
    assert.ok(warningRow > 0, terminal.lines.join('\n'));
    // The cache is written as the manifest goes up: its line may come before the warning or after it.
    const aboveWarning = terminal.lines.slice(1, warningRow).filter((line) => !/^1\.0: digest: /.test(line));
    assert.deepEqual(aboveWarning.sort(), layers.sort(), terminal.lines.join('\n'));

    const piped = await runCli([...args.slice(0, 2), `${suite.registry.host}/cli/terminal:2.0`], { env });
    assert.equal(piped.code, 0, piped.stderr);
    const warning = JSON.parse(piped.stderr.trim().split('\n').find((l) => l.startsWith('{'))!) as { level: number; msg: string };
    assert.equal(warning.level, 40);
    assert.match(warning.msg, /^digest cache write failed/);

    // A CI job's log is a pipe that people read: --log-format text gives them the terminal's line.
    const text = await runCli([...args.slice(0, 2), `${suite.registry.host}/cli/terminal:3.0`, '--log-format', 'text'], { env });
    assert.equal(text.code, 0, text.stderr);
    assert.match(text.stderr, /^rxpush: warning: digest cache write failed \(\S+\/not-a-directory\/cache: a part of its path is a file, not a directory\); going on without it$/m);
    assert.doesNotMatch(text.stderr, /"level":/);
  });

  it('says "Layer already exists" for every layer on a second push', async () => {
    const args = ['push', `oci:${suite.layout.dir}:latest`, `${suite.registry.host}/cli/twice:latest`, '--progress', 'plain'];
    assert.equal((await runCli(args)).code, 0);
    const second = await runCli(args);
    assert.equal(second.code, 0, second.stderr);
    assert.match(second.stdout, /^The push refers to repository \[127\.0\.0\.1:\d+\/cli\/twice\]$/m);
    for (const layer of suite.layout.images[0]!.layerDigests) assert.match(second.stdout, new RegExp(`^${layer.slice(7, 19)}: Layer already exists$`, 'm'));
    assert.doesNotMatch(second.stdout, /Pushed/);
    assert.match(second.stdout, /^latest: digest: sha256:[a-f0-9]{64} size: \d+$/m);
  });

  it('redraws layer lines in place with --progress tty', async () => {
    const result = await runCli(['push', `oci:${suite.layout.dir}:edge`, `${suite.registry.host}/cli/tty:edge`, '--progress', 'tty']);
    assert.equal(result.code, 0, result.stderr);
    assert.match(result.stdout, /\x1b\[\d*A/, 'cursor moves up to redraw');
    assert.match(result.stdout, /edge: digest: sha256:[a-f0-9]{64} size: \d+/);
  });

  it('pushes every tag with --all-tags and converts with --format docker', async () => {
    const result = await runCli(['push', `oci:${suite.layout.dir}`, `${suite.registry.host}/cli/all`, '--all-tags', '--format', 'docker', '--quiet']);
    assert.equal(result.code, 0, result.stderr);
    assert.deepEqual(result.stdout.trimEnd().split('\n').sort(), [`${suite.registry.host}/cli/all:edge`, `${suite.registry.host}/cli/all:latest`]);
    const raw = await skopeoInspectRaw(`docker://${suite.registry.host}/cli/all:edge`);
    assert.equal(raw.json.mediaType, 'application/vnd.docker.distribution.manifest.v2+json');
  });

  describe('bad input gets one clear line and pushes nothing', () => {
    it('a missing directory', async () => {
      const result = await runCli(['push', `oci:${join(suite.work, 'nowhere')}`, `${suite.registry.host}/cli/bad:1`]);
      assertOneLineError(result, /nowhere/, 1);
      assert.equal(result.stdout, '', 'no "The push refers to repository" for a source that was never read');
    });

    it('an unknown transport, a usage error with nothing on stdout', async () => {
      const result = await runCli(['push', `oic:${suite.layout.dir}`, `${suite.registry.host}/cli/bad:1`, '--progress', 'plain']);
      assertOneLineError(result, /^rxpush: source "oic:[^"]+" has an unknown transport "oic:"; use one of oci:PATH\[:REF\], .*; see 'rxpush push --help'$/, 2);
      assert.equal(result.stdout, '');
    });

    it('a registry address without a repository, which Docker\'s rules would send to Docker Hub', async () => {
      for (const destination of [suite.registry.host, `docker://${suite.registry.host}`, 'localhost:5000', 'registry.example.com:443']) {
        const name = destination.replace('docker://', '');
        const prefix = destination.startsWith('docker://') ? 'docker://' : '';
        const result = await runCli(['push', `oci:${suite.layout.dir}`, destination, '--progress', 'plain']);
        assertOneLineError(
          result,
          new RegExp(`^rxpush: destination ${destination.replace(/[.]/g, '\\.')} names a registry but no repository \\(Docker's rules read it as docker\\.io/library/${name.replace(/[.]/g, '\\.')}\\); write ${prefix}REGISTRY/REPO\\[:TAG\\], e\\.g\\. ${destination.replace(/[.]/g, '\\.')}/app:1\\.0; see 'rxpush push --help'$`),
          2,
        );
        assert.equal(result.stdout, '');
      }
    });

    it('a directory that is not an OCI layout', async () => {
      const empty = join(suite.work, 'empty');
      await mkdir(empty, { recursive: true });
      assertOneLineError(await runCli(['push', `oci:${empty}`, `${suite.registry.host}/cli/bad:1`]), /oci-layout|OCI (image )?layout/i, 1);
    });

    it('a ref name that is no registry tag (OCI allows 1.0+build), before any blob is sent', async () => {
      const named = await makeOciLayout(join(suite.work, 'build-tag'), { images: [{ tags: ['1.0+build'], layers: [{ files: 1, fileSize: 5_000, seed: 'cli-build-tag' }] }] });
      const destination = `${suite.registry.host}/cli/build-tag`;
      const untagged = await runCli(['push', `oci:${named.dir}`, destination, '--progress', 'plain']);
      assertOneLineError(untagged, new RegExp(`^rxpush: the source's tag "1\\.0\\+build" is not a valid registry tag: letters, digits, _ \\. - \\(at most 128\\), not starting with \\. or -; give ${destination} a tag \\(${destination}:TAG\\); see 'rxpush push --help'$`), 2);
      const allTags = await runCli(['push', `oci:${named.dir}`, destination, '--all-tags']);
      assertOneLineError(allTags, /the source's tag "1\.0\+build" is not a valid registry tag: .*; push that image by itself, with SOURCE naming it and DEST a tag of yours/, 2);
      const [layer] = named.images[0]!.layerDigests;
      assert.equal(await suite.client.hasBlob('cli/build-tag', layer as Digest), undefined, 'no blob sent for a push that cannot be tagged');
      // Given a tag of its own, the image pushes.
      const tagged = await runCli(['push', `oci:${named.dir}:1.0+build`, `${destination}:1.0-build`, '--quiet']);
      assert.equal(tagged.code, 0, tagged.stderr);
      assert.equal((await suite.client.hasManifest('cli/build-tag', '1.0-build'))?.digest, named.images[0]!.manifestDigest);
    });

    it('an unknown ref, listing the ones there are', async () => {
      assertOneLineError(await runCli(['push', `oci:${suite.layout.dir}:nope`, `${suite.registry.host}/cli/bad:1`]), /nope.*(latest|edge)/, 1);
    });

    it('a malformed index.json', async () => {
      const broken = await makeOciLayout(join(suite.work, 'bad-index'));
      await writeFile(join(broken.dir, 'index.json'), '{"schemaVersion": 2, "manifests": [');
      assertOneLineError(await runCli(['push', `oci:${broken.dir}`, `${suite.registry.host}/cli/bad-index:1`]), /index\.json/, 1);
      assert.equal(await suite.client.hasManifest('cli/bad-index', '1'), undefined);
    });

    it('a blob missing from the layout', async () => {
      const broken = await makeOciLayout(join(suite.work, 'missing-blob'), { images: [{ tags: ['latest'], layers: [{ files: 1, fileSize: 1000, seed: 'gone' }] }] });
      await unlink(blobPath(broken.dir, broken.images[0]!.layerDigests[0]!));
      assertOneLineError(await runCli(['push', `oci:${broken.dir}`, `${suite.registry.host}/cli/missing:1`]), /missing|not found|no such/i, 1);
      assert.equal(await suite.client.hasManifest('cli/missing', '1'), undefined);
    });

    it('a layer whose bytes do not match its digest', async () => {
      const broken = await makeOciLayout(join(suite.work, 'mismatch'), { images: [{ tags: ['latest'], layers: [{ files: 1, fileSize: 1000, seed: 'flip' }] }] });
      const path = blobPath(broken.dir, broken.images[0]!.layerDigests[0]!);
      const bytes = await readFile(path);
      bytes.writeUInt8(bytes.readUInt8(100) ^ 0x01, 100);
      await writeFile(path, bytes);
      assertOneLineError(await runCli(['push', `oci:${broken.dir}`, `${suite.registry.host}/cli/mismatch:1`]), /does not match its digest/, 1);
      assert.equal(await suite.client.hasManifest('cli/mismatch', '1'), undefined);
    });

    it('a malformed destination', async () => {
      assertOneLineError(await runCli(['push', `oci:${suite.layout.dir}`, `${suite.registry.host}/Bad Name:1`]), /invalid image reference/, 1);
    });

    it('an unreachable registry', async () => {
      const port = await closedPort();
      const result = await runCli(['push', `oci:${suite.layout.dir}`, `127.0.0.1:${port}/cli/app:1`, '--progress', 'plain']);
      assertOneLineError(result, /^rxpush: GET http\S+\/v2\/ failed: connection refused/, 1);
      // The source was read: the header comes first, as docker push prints it before reaching the registry.
      assert.match(result.stdout, new RegExp(`^The push refers to repository \\[127\\.0\\.0\\.1:${port}/cli/app\\]\n`));
    });

    it('a missing argument is a usage error', async () => {
      assertOneLineError(await runCli(['push', `oci:${suite.layout.dir}`]), /DEST|argument/i, 2);
    });
  });
});

/** A loopback port nothing listens on. */
async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise((resolve) => server.close(resolve));
  return port;
}
