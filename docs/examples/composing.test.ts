/**
 * The examples of docs/composing.md, run against the reference registry and read back with skopeo; and
 * composing.md shows each of them whole, as the file the test runs.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { gunzipSync } from 'node:zlib';

import { isEvent, type PushEvent } from '@rxpush/core';
import { createRegistryClient } from '@rxpush/registry-client';
import { push } from '@rxpush/pipeline';
import { lastValueFrom, toArray } from 'rxjs';

import { makeOciLayout, type OciLayoutFixture } from '../../tools/fixtures.ts';
import { startRegistry, type RunningRegistry } from '../../tools/registry.ts';
import { skopeoCopyToOci, skopeoInspectConfig, skopeoInspectRaw } from '../../test/helpers/skopeo.ts';
import { copyTags, isRelease } from './copy-release-tags.ts';
import { pushGenerated } from './layer-in-code.ts';
import { ciProgress } from './progress-sink.ts';

const run = promisify(execFile);
const here = dirname(fileURLToPath(import.meta.url));
const EXAMPLES = ['progress-sink.ts', 'layer-in-code.ts', 'copy-release-tags.ts'];

const PASSWORD = 'composing-s3cret';

describe('docs/composing.md', () => {
  let registry: RunningRegistry;
  /** The destination of the copy: TLS with its own CA, and htpasswd. */
  let secure: RunningRegistry;
  let work: string;
  let layout: OciLayoutFixture;

  before(async () => {
    work = await mkdtemp(join(tmpdir(), 'rxpush-composing-'));
    [registry, secure] = await Promise.all([startRegistry(), startRegistry({ tls: true, htpasswd: { bob: PASSWORD } })]);
    layout = await makeOciLayout(join(work, 'layout'), {
      images: [{ tags: ['latest'], layers: [{ files: 1, fileSize: 20_000, seed: 'sink-a' }, { files: 1, fileSize: 10_000, seed: 'sink-b' }] }],
    });
  });
  after(async () => {
    await Promise.all([registry?.stop(), secure?.stop()]);
    if (work !== undefined) await rm(work, { recursive: true, force: true });
  });

  it('shows every example whole, as the file that is run', async () => {
    const guide = await readFile(join(here, '..', 'composing.md'), 'utf8');
    for (const example of EXAMPLES) {
      const code = await readFile(join(here, example), 'utf8');
      assert.ok(guide.includes(`\`\`\`ts\n${code}\`\`\``), `composing.md shows docs/examples/${example} as it is`);
    }
  });

  /** Pushes the layout's image through ciProgress; the lines it wrote and the status it ended with. */
  function pushThroughSink(destination: string): Promise<{ lines: string[]; status: number }> {
    const lines: string[] = [];
    return new Promise((resolve) => {
      push({ source: `oci:${layout.dir}:latest`, destination, cacheDir: false }).subscribe(ciProgress((line) => lines.push(line), (status) => resolve({ lines, status })));
    });
  }

  it('a progress sink of our own: one line per settled layer, then the digest', async () => {
    const destination = `${registry.host}/composing/sink:1.0`;
    const first = await pushThroughSink(destination);
    assert.equal(first.status, 0);
    const [image] = layout.images;
    const ids = image!.layerDigests.map((digest) => digest.slice(7, 19));
    assert.deepEqual(first.lines.slice(0, 2).map((line) => line.replace(/^\[\d\/2\] (\w+) pushed \(\d+\.\d MB\)$/, '$1')).sort(), [...ids].sort());
    assert.equal(first.lines.at(-1), `${destination} is ${image!.manifestDigest}`);

    const second = await pushThroughSink(destination);
    assert.deepEqual(second.lines.slice(0, 2).map((line) => line.replace(/^\[\d\/2\] (\w+) already in the registry$/, '$1')).sort(), [...ids].sort());
    const failed = await pushThroughSink(`${registry.host}/composing/sink@sha256:${'0'.repeat(64)}`);
    assert.equal(failed.status, 1);
    assert.match(failed.lines.at(-1) ?? '', /^push failed: destination .* has a digest; push to a tag/);
  });

  it('a layer made in code: pushed without a file, and skopeo reads back its files and diff ID', async () => {
    const files = { 'hello.txt': 'made in code\n' };
    const events: PushEvent[] = await lastValueFrom(pushGenerated(`${registry.host}/composing/generated:1.0`, files).pipe(toArray()));
    const [pushed] = events.filter(isEvent('manifest-pushed'));
    assert.equal(pushed?.tag, '1.0');
    const manifest = (await skopeoInspectRaw(`docker://${registry.host}/composing/generated:1.0`)).json;
    assert.equal(manifest.layers.length, 1);
    assert.equal(manifest.layers[0].mediaType, 'application/vnd.oci.image.layer.v1.tar+gzip');
    // skopeo verifies every digest as it copies; the layer's tar then holds the file, and its sha256 is the config's diff ID.
    const copy = join(work, 'generated');
    await skopeoCopyToOci(`docker://${registry.host}/composing/generated:1.0`, copy);
    const tarBytes = gunzipSync(await readFile(join(copy, 'blobs', 'sha256', manifest.layers[0].digest.slice(7))));
    assert.ok(tarBytes.includes(Buffer.from('made in code\n')));
    const config = await skopeoInspectConfig(`docker://${registry.host}/composing/generated:1.0`);
    assert.deepEqual(config.rootfs.diff_ids, [`sha256:${createHash('sha256').update(tarBytes).digest('hex')}`]);
  });

  it('a copy that filters tags: only release tags reach the other registry, digests unchanged; within one registry, mounts', async () => {
    const releases = await makeOciLayout(join(work, 'releases'), {
      images: ['1.0.0', 'v1.1.0', 'latest', 'dev-branch'].map((tag) => ({ tags: [tag], layers: [{ files: 1, fileSize: 10_000, seed: 'shared' }, { files: 1, fileSize: 2_000, seed: tag }] })),
    });
    await lastValueFrom(push({ source: `oci:${releases.dir}`, destination: `${registry.host}/team/app`, allTags: true, cacheDir: false }).pipe(toArray()));
    const destination = { credentials: { username: 'bob', password: PASSWORD }, caFile: secure.caFile ?? '', dockerConfigDir: join(work, 'docker') };

    const copied = (await lastValueFrom(copyTags(`${registry.host}/team/app`, `${secure.host}/team/app`, isRelease, { destination }).pipe(toArray()))).filter(isEvent('manifest-pushed'));
    assert.deepEqual(copied.map((event) => event.tag).sort(), ['1.0.0', 'v1.1.0']);
    const client = createRegistryClient({ registry: secure.host, ...destination });
    try {
      assert.deepEqual((await client.listTags('team/app')).sort(), ['1.0.0', 'v1.1.0']);
    } finally {
      await client.close();
    }
    for (const tag of ['1.0.0', 'v1.1.0']) {
      const [from, to] = await Promise.all([
        skopeoInspectRaw(`${registry.host}/team/app:${tag}`),
        skopeoInspectRaw(`${secure.host}/team/app:${tag}`, { creds: `bob:${PASSWORD}` }),
      ]);
      assert.ok(from.bytes.equals(to.bytes), `${tag}: the manifest is copied byte for byte`);
    }

    const within = await lastValueFrom(copyTags(`${registry.host}/team/app`, `${registry.host}/release/app`).pipe(toArray()));
    assert.equal(within.filter((event) => event.type === 'pushed').length, 0, 'no blob is sent within one registry');
    assert.ok(within.some((event) => event.type === 'mounted' && event.from === 'team/app'));
    assert.equal(within.filter(isEvent('manifest-pushed')).length, 2);
  });

  it('runs all three as scripts', async () => {
    const sink = await run(process.execPath, ['--import', 'tsx', join(here, 'progress-sink.ts'), `oci:${layout.dir}:latest`, `${registry.host}/composing/script:1.0`], { env: { ...process.env, RXPUSH_CACHE_DIR: join(work, 'cache') } });
    assert.match(sink.stdout, /^\[1\/2\] [0-9a-f]{12} /m);
    const generated = await run(process.execPath, ['--import', 'tsx', join(here, 'layer-in-code.ts'), `${registry.host}/composing/script-generated:1.0`]);
    assert.match(generated.stdout, new RegExp(`^${registry.host}/composing/script-generated:1\\.0: sha256:[0-9a-f]{64}$`, 'm'));
    const copy = await run(process.execPath, ['--import', 'tsx', join(here, 'copy-release-tags.ts'), `${registry.host}/team/app`, `${registry.host}/script/app`]);
    assert.match(copy.stdout, /^2 tag\(s\) copied$/m);
  });
});
