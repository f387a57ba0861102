import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, it } from 'node:test';

import { MediaType } from '@rxpush/core';

import { useRegistry } from './helpers/registry-suite.ts';
import { runCli } from './helpers/run-cli.ts';
import { skopeoCopyToOci, skopeoInspectRaw } from './helpers/skopeo.ts';

const EMPTY_CONFIG = 'application/vnd.oci.empty.v1+json';
const sha256 = (bytes: Buffer): string => `sha256:${createHash('sha256').update(bytes).digest('hex')}`;
const blobPath = (dir: string, digest: string): string => join(dir, 'blobs', 'sha256', digest.slice('sha256:'.length));

/**
 * The reference registry has no referrers API, so a manifest with `subject` pushed there must be listed by
 * rxpush in the subject's referrers tag (`sha256-<hex>`), as the distribution spec's tag schema describes.
 */
describe('manifests with a subject, pushed to a registry without the referrers API', () => {
  const suite = useRegistry('referrers', { images: [{ tags: ['latest'], layers: [{ files: 2, fileSize: 30_000, seed: 'referred' }] }] });

  /** Writes a blob into the suite's layout; returns its descriptor. */
  const addBlob = async (mediaType: string, bytes: Buffer) => {
    const digest = sha256(bytes);
    await writeFile(blobPath(suite.layout.dir, digest), bytes);
    return { mediaType, digest, size: bytes.length };
  };
  /** Writes a manifest into the layout and names it `name` in index.json. */
  const addManifest = async (name: string, document: object) => {
    const descriptor = await addBlob(MediaType.ociManifest, Buffer.from(JSON.stringify(document)));
    const indexFile = join(suite.layout.dir, 'index.json');
    const index = JSON.parse(await readFile(indexFile, 'utf8')) as { manifests: object[] };
    index.manifests.push({ ...descriptor, annotations: { 'org.opencontainers.image.ref.name': name } });
    await writeFile(indexFile, JSON.stringify(index));
    return descriptor;
  };
  const image = () => suite.layout.images[0]!;
  const subject = () => ({ mediaType: MediaType.ociManifest, digest: image().manifestDigest, size: image().manifestSize });
  const referrersTag = () => `sha256-${image().manifestDigest.slice('sha256:'.length)}`;
  const artifact = async (name: string, artifactType: string | undefined, configType: string) => {
    const config = await addBlob(configType, Buffer.from('{}'));
    const layer = await addBlob('application/vnd.example.note', Buffer.from(`a note called ${name}\n`));
    return addManifest(name, {
      schemaVersion: 2,
      mediaType: MediaType.ociManifest,
      ...(artifactType !== undefined && { artifactType }),
      config,
      layers: [layer],
      subject: subject(),
      annotations: { 'org.example.name': name },
    });
  };
  const push = (ref: string, tag: string) => runCli(['push', '--progress', 'plain', `oci:${suite.layout.dir}:${ref}`, `${suite.registry.host}/refs/app:${tag}`]);
  const listed = async () => (await skopeoInspectRaw(`docker://${suite.registry.host}/refs/app:${referrersTag()}`)).json as { mediaType: string; manifests: object[] };

  it('starts the subject referrers index, adds to it, and lists a manifest once however often it is pushed', async () => {
    assert.equal((await push('latest', 'latest')).code, 0);
    const sbom = await artifact('sbom', 'application/spdx+json', EMPTY_CONFIG);
    const note = await artifact('note', undefined, 'application/vnd.example.note.config.v1+json');

    const first = await push('sbom', 'sbom');
    assert.equal(first.code, 0, first.stderr);
    assert.match(first.stdout, new RegExp(`^sbom: listed in the referrers tag ${referrersTag()}$`, 'm'));
    const sbomEntry = { ...sbom, artifactType: 'application/spdx+json', annotations: { 'org.example.name': 'sbom' } };
    assert.deepEqual(await listed(), { schemaVersion: 2, mediaType: MediaType.ociIndex, manifests: [sbomEntry] });

    // Without artifactType, the spec gives a manifest's config type.
    assert.equal((await push('note', 'note')).code, 0);
    const noteEntry = { ...note, artifactType: 'application/vnd.example.note.config.v1+json', annotations: { 'org.example.name': 'note' } };
    assert.deepEqual((await listed()).manifests, [sbomEntry, noteEntry]);

    // Pushed again, under another tag: listed once.
    assert.equal((await push('sbom', 'sbom-again')).code, 0);
    assert.deepEqual((await listed()).manifests, [sbomEntry, noteEntry]);
    // skopeo pulls the index and every artifact it lists.
    await skopeoCopyToOci(`docker://${suite.registry.host}/refs/app@${sbom.digest}`, join(suite.work, 'pulled-sbom'));

    // A copy to another repository lists it there.
    const copied = await runCli(['copy', '--progress', 'plain', `docker://${suite.registry.host}/refs/app@${sbom.digest}`, `${suite.registry.host}/refs/copied:sbom`]);
    assert.equal(copied.code, 0, copied.stderr);
    assert.match(copied.stdout, new RegExp(`^sbom: listed in the referrers tag ${referrersTag()}$`, 'm'));
    const there = await skopeoInspectRaw(`docker://${suite.registry.host}/refs/copied:${referrersTag()}`);
    assert.deepEqual(there.json.manifests, [sbomEntry]);
  });

  it('lists every referrer of a subject pushed in one go (--all-tags), none lost to another', async () => {
    // Manifests of one push go up side by side: each referrer's update of the tag must see the others'.
    const made = [await artifact('sig-a', 'application/vnd.example.sig', EMPTY_CONFIG), await artifact('sig-b', 'application/vnd.example.sig', EMPTY_CONFIG)];
    const index = JSON.parse(await readFile(join(suite.layout.dir, 'index.json'), 'utf8')) as { manifests: { digest: string; annotations?: Record<string, string> }[] };
    const referrers = index.manifests.filter((entry) => entry.digest !== image().manifestDigest).map((entry) => entry.digest);
    assert.ok(referrers.length >= 3 && made.every((m) => referrers.includes(m.digest)), referrers.join(', '));
    const result = await runCli(['push', '--all-tags', `oci:${suite.layout.dir}`, `${suite.registry.host}/refs/all`]);
    assert.equal(result.code, 0, result.stderr);
    const there = (await skopeoInspectRaw(`docker://${suite.registry.host}/refs/all:${referrersTag()}`)).json as { manifests: { digest: string }[] };
    assert.deepEqual(there.manifests.map((m) => m.digest).sort(), [...referrers].sort());
  });

  it('refuses to overwrite a referrers tag that holds an image, and says the manifest is pushed', async () => {
    // A tag of that name someone pushed an image to: not rxpush's to replace.
    await artifact('other', 'application/vnd.example.other', EMPTY_CONFIG);
    const clash = await runCli(['push', `oci:${suite.layout.dir}:latest`, `${suite.registry.host}/clash/app:${referrersTag()}`]);
    assert.equal(clash.code, 0, clash.stderr);
    const result = await runCli(['push', `oci:${suite.layout.dir}:other`, `${suite.registry.host}/clash/app:other`]);
    assert.equal(result.code, 1);
    assert.equal(
      result.stderr,
      `rxpush: the tag ${referrersTag()} of clash/app holds a ${MediaType.ociManifest} that is not an OCI index of referrers, where the distribution spec keeps the referrers of ${image().manifestDigest}: the manifest is pushed, but not listed as a referrer; move that tag away and push again\n`,
    );
    assert.equal((await skopeoInspectRaw(`docker://${suite.registry.host}/clash/app:other`)).json.artifactType, 'application/vnd.example.other');
  });
});
