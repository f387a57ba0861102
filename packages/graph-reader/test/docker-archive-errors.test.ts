import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtemp, readFile, rm, truncate, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it, type TestContext } from 'node:test';
import { gzipSync } from 'node:zlib';

import { entry, makeDockerSave, makeLegacyDockerSave, type DockerSaveFixture, type TarEntry } from './docker-save-fixtures.js';
import { pipeAt } from './layouts.js';
import { fails, invalid } from './read.js';

async function tempDir(t: TestContext): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'rxpush-docker-archive-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

const image = { repoTags: ['app:1'], layers: [{ a: 'a' }, { b: 'b' }] };

async function archive(t: TestContext, edit?: (entries: TarEntry[], fixture: { layers: string[]; config: string }) => TarEntry[] | void): Promise<DockerSaveFixture> {
  const path = join(await tempDir(t), 'image.tar');
  return makeDockerSave(path, {
    images: [image],
    ...(edit !== undefined && {
      edit: (entries: TarEntry[]) => {
        const manifest = JSON.parse(String(entry(entries, 'manifest.json').data));
        return edit(entries, { layers: manifest[0].Layers, config: manifest[0].Config });
      },
    }),
  });
}

function setManifest(entries: TarEntry[], change: (item: Record<string, any>) => void): void {
  const manifest = entry(entries, 'manifest.json');
  const items = JSON.parse(String(manifest.data));
  change(items[0]);
  manifest.data = JSON.stringify(items);
}

describe('readImages from docker-archive: fails clearly', () => {
  describe('on a file that is not a whole docker save archive', () => {
    it('when the file does not exist', async (t) => {
      const path = join(await tempDir(t), 'absent.tar');
      await fails(`docker-archive:${path}`, { code: 'SOURCE_NOT_FOUND', message: /^docker archive .*absent\.tar does not exist; check PATH in docker-archive:PATH\[:NAME:TAG\]$/ });
      await fails('docker-archive:~/rxpush-absent.tar', { code: 'SOURCE_NOT_FOUND', message: /does not exist; check PATH in docker-archive:PATH\[:NAME:TAG\] \(the shell expands ~ only at the start of a word, not after docker-archive:; write docker-archive:\$HOME\/rxpush-absent\.tar\)$/ });
    });

    it('when PATH is a directory', async (t) => {
      const dir = await tempDir(t);
      await fails(`docker-archive:${dir}`, invalid(/is a directory; docker-archive:PATH needs the tar file docker save writes/));
    });

    it('when PATH is a pipe (docker save piped in), without waiting for a writer', { timeout: 5_000 }, async (t) => {
      const path = join(await tempDir(t), 'image.tar');
      const pipe = await pipeAt(t, path);
      await fails(`docker-archive:${path}`, invalid(/image\.tar is a pipe, not a file: rxpush reads an archive in place, at random; save it to a file first \(docker save -o FILE\)/));
      assert.equal(pipe.waited(), false, 'it was refused at once, not after waiting in open() for a writer');
    });

    it('when the archive is truncated inside a layer', async (t) => {
      const fixture = await archive(t);
      const bytes = await readFile(fixture.path);
      await truncate(fixture.path, bytes.indexOf(Buffer.from('manifest.json')) - 700);
      await fails(`docker-archive:${fixture.path}`, invalid(/image\.tar is truncated: .*; copy or export the archive again/));
    });

    it('when a tar header is corrupt', async (t) => {
      const fixture = await archive(t);
      const bytes = await readFile(fixture.path);
      const at = bytes.indexOf(Buffer.from('manifest.json')) + 3;
      bytes.writeUInt8(bytes.readUInt8(at) ^ 0xff, at);
      await writeFile(fixture.path, bytes);
      await fails(`docker-archive:${fixture.path}`, invalid(/image\.tar is corrupt: the tar header at byte \d+ has a bad checksum/));
    });

    it('when it is compressed', async (t) => {
      const fixture = await archive(t);
      await writeFile(fixture.path, gzipSync(await readFile(fixture.path)));
      await fails(`docker-archive:${fixture.path}`, invalid(/is gzip-compressed; gunzip it first/));
    });

    it('when it has neither manifest.json nor repositories', async (t) => {
      const fixture = await archive(t, (entries) => entries.filter((e) => e.name !== 'manifest.json' && e.name !== 'repositories'));
      await fails(`docker-archive:${fixture.path}`, invalid(/image\.tar is not a docker save archive: it has neither manifest\.json nor a legacy repositories file/));
    });

    it('when manifest.json is not JSON', async (t) => {
      const fixture = await archive(t, (entries) => void (entry(entries, 'manifest.json').data = '[{'));
      await fails(`docker-archive:${fixture.path}`, invalid(/image\.tar:manifest\.json is not JSON/));
    });
  });

  describe('on entries that lead outside the archive', () => {
    it('when manifest.json names a layer with ../', async (t) => {
      const fixture = await archive(t, (entries) => setManifest(entries, (item) => (item.Layers[1] = '../../etc/passwd')));
      await fails(`docker-archive:${fixture.path}`, invalid(/manifest\.json has entry 0 "Layers"\[1\] "\.\.\/\.\.\/etc\/passwd", which leads outside the archive; rxpush refuses it/));
    });

    it('when manifest.json names an absolute config', async (t) => {
      const fixture = await archive(t, (entries) => setManifest(entries, (item) => (item.Config = '/etc/passwd')));
      await fails(`docker-archive:${fixture.path}`, invalid(/has entry 0 "Config" "\/etc\/passwd", which leads outside the archive/));
    });

    it('when a layer is a symbolic link out of the archive', async (t) => {
      const fixture = await archive(t, (entries, { layers }) => {
        Object.assign(entry(entries, layers[1] ?? ''), { type: 'symlink', linkname: '../../../etc/shadow', data: undefined });
      });
      await fails(`docker-archive:${fixture.path}`, invalid(/image\.tar:[a-f0-9]{64}\/layer\.tar \(layer 2 of 2\) is a link to "\.\.\/\.\.\/\.\.\/etc\/shadow", which leads outside the archive/));
    });

    it('when a layer is an absolute symbolic link', async (t) => {
      const fixture = await archive(t, (entries, { layers }) => {
        Object.assign(entry(entries, layers[0] ?? ''), { type: 'symlink', linkname: '/etc/shadow', data: undefined });
      });
      await fails(`docker-archive:${fixture.path}`, invalid(/layer\.tar \(layer 1 of 2\) is a link to "\/etc\/shadow", which leads outside the archive/));
    });

    it('when a layer directory is a link that climbs out', async (t) => {
      const fixture = await archive(t, (entries, { layers }) => {
        const dir = (layers[0] ?? '').split('/')[0] ?? '';
        return [...entries.filter((e) => !e.name.startsWith(`${dir}`)), { name: dir, type: 'symlink', linkname: '..' }];
      });
      await fails(`docker-archive:${fixture.path}`, invalid(/layer\.tar \(layer 1 of 2\) is a link through [a-f0-9]{64} to "\.\.", which leads outside the archive/));
    });

    it('when the tar has a member named with ../', async (t) => {
      const fixture = await archive(t, (entries) => [...entries, { name: '../evil', data: 'x' }]);
      await fails(`docker-archive:${fixture.path}`, invalid(/has a member named "\.\.\/evil", which leads outside the archive/));
    });

    it('when links loop', async (t) => {
      const fixture = await archive(t, (entries, { layers }) => {
        Object.assign(entry(entries, layers[0] ?? ''), { type: 'symlink', linkname: `../${layers[1]}`, data: undefined });
        Object.assign(entry(entries, layers[1] ?? ''), { type: 'symlink', linkname: `../${layers[0]}`, data: undefined });
      });
      await fails(`docker-archive:${fixture.path}`, invalid(/goes through more than 40 links \(they loop\)/));
    });
  });

  describe('on an image whose parts do not fit', () => {
    it('when the config lists more diff IDs than there are layers', async (t) => {
      const fixture = await archive(t, (entries) => setManifest(entries, (item) => item.Layers.pop()));
      await fails(`docker-archive:${fixture.path}`, invalid(/\.json lists 2 layer diff IDs \(rootfs\.diff_ids\) but .*manifest\.json \(image 0\) names 1 layers/));
    });

    it('when the config is not the one its name says', async (t) => {
      const fixture = await archive(t, (entries, { config }) => void (entry(entries, config).data = '{"rootfs":{"diff_ids":[]}}'));
      await fails(`docker-archive:${fixture.path}`, { code: 'DIGEST_MISMATCH', message: /image\.tar:[a-f0-9]{64}\.json does not match its digest/ });
    });

    it('when a layer is missing', async (t) => {
      const fixture = await archive(t, (entries, { layers }) => entries.filter((e) => e.name !== layers[1]));
      await fails(`docker-archive:${fixture.path}`, invalid(/image\.tar:[a-f0-9]{64}\/layer\.tar \(layer 2 of 2\) is missing: .*manifest\.json names it; the archive is incomplete/));
    });

    it('when a layer is gzip-compressed', async (t) => {
      const fixture = await archive(t, (entries, { layers }) => {
        const layer = entry(entries, layers[0] ?? '');
        layer.data = gzipSync(layer.data as Buffer);
      });
      await fails(`docker-archive:${fixture.path}`, { code: 'UNSUPPORTED', message: /layer\.tar \(layer 1 of 2\) is gzip-compressed; rxpush pushes docker-save layers that are plain tars/ });
    });

    it('when a config diff ID is not a digest', async (t) => {
      const fixture = await archive(t, (entries, { config }) => {
        const bytes = JSON.stringify({ rootfs: { diff_ids: ['sha256:nope', 'x'] } });
        const renamed = `${require256(bytes)}.json`;
        Object.assign(entry(entries, config), { name: renamed, data: bytes });
        setManifest(entries, (item) => (item.Config = renamed));
      });
      await fails(`docker-archive:${fixture.path}`, { code: 'INVALID_DIGEST', message: /invalid rootfs\.diff_ids\[0\] of .*\.json: "sha256:nope"/ });
    });
  });

  describe('on a choice of image the archive cannot satisfy', () => {
    it('when NAME:TAG is not in the archive, listing what is', async (t) => {
      const fixture = await archive(t);
      await fails(`docker-archive:${fixture.path}:app:2`, { code: 'SOURCE_NOT_FOUND', message: /^no image app:2 in .*image\.tar; it has app:1$/ });
    });

    it('when there are several images and none is chosen', async (t) => {
      const path = join(await tempDir(t), 'two.tar');
      await makeDockerSave(path, { images: [image, { repoTags: ['other:3'], layers: [{ c: 'c' }] }] });
      await fails(`docker-archive:${path}`, invalid(/holds 2 images; choose one as docker-archive:.*:NAME:TAG or push them all with --all-tags \(it has app:1, other:3\)/));
    });

    it('when @INDEX is past the last image', async (t) => {
      const fixture = await archive(t);
      await fails(`docker-archive:${fixture.path}:@3`, { code: 'SOURCE_NOT_FOUND', message: /has 1 image\(s\), so there is no image @3/ });
    });

    it('when NAME has no tag', async () => {
      await fails('docker-archive:./x.tar:app', { code: 'USAGE', message: /names app without a tag; use docker-archive:PATH\[:NAME:TAG\]/ });
    });

    it('when there is no PATH', async () => {
      await fails('docker-archive::app:1', { code: 'USAGE', message: /names no file/ });
    });

    it('when all tags are asked for with a NAME:TAG', async (t) => {
      const fixture = await archive(t);
      await fails(`docker-archive:${fixture.path}:app:1`, { code: 'USAGE', message: /names an image but all tags were asked for/ }, { allTags: true });
    });
  });

  describe('on a legacy archive', () => {
    const legacy = { repoTags: ['old:1'], layers: [{ a: 'a' }, { b: 'b' }, { c: 'c' }] };
    async function legacyArchive(t: TestContext, edit: (entries: TarEntry[], ids: string[]) => TarEntry[] | void): Promise<string> {
      const path = join(await tempDir(t), 'legacy.tar');
      let ids: string[] = [];
      // The IDs are only known once built: build once to learn them, then again with the edit.
      ids = (await makeLegacyDockerSave(path, { images: [legacy] })).images[0]?.layerIds ?? [];
      await makeLegacyDockerSave(path, { images: [legacy], edit: (entries) => edit(entries, ids) });
      return path;
    }
    const setJson = (entries: TarEntry[], id: string, change: (json: Record<string, unknown>) => void) => {
      const file = entry(entries, `${id}/json`);
      const json = JSON.parse(String(file.data));
      change(json);
      file.data = JSON.stringify(json);
    };

    it('when the parent chain loops', async (t) => {
      const path = await legacyArchive(t, (entries, [base, , top]) => setJson(entries, base ?? '', (json) => (json.parent = top)));
      await fails(`docker-archive:${path}`, invalid(/the parent chain of .*repositories \(old:1\) loops: .*[a-f0-9]{64}\/json names [a-f0-9]{64} as its parent, which is already in the chain/));
    });

    it('when a parent is missing, naming it and who names it', async (t) => {
      const path = await legacyArchive(t, (entries, [base, mid]) => entries.filter((e) => !e.name.startsWith(base ?? '') || mid === undefined));
      await fails(`docker-archive:${path}`, invalid(/^layer [a-f0-9]{64} is missing from .*legacy\.tar: .*legacy\.tar:[a-f0-9]{64}\/json names it as its parent, but there is no [a-f0-9]{64}\/json/));
    });

    it('when repositories names a top layer that is not there', async (t) => {
      const path = await legacyArchive(t, (entries) => void (entry(entries, 'repositories').data = JSON.stringify({ old: { 1: 'f'.repeat(64) } })));
      await fails(`docker-archive:${path}`, invalid(/^layer f{64} is missing from .*: .*repositories \(old:1\) names it as its top layer/));
    });

    it('when repositories names something that is not a layer ID', async (t) => {
      const path = await legacyArchive(t, (entries) => void (entry(entries, 'repositories').data = JSON.stringify({ old: { 1: '../x' } })));
      await fails(`docker-archive:${path}`, invalid(/repositories has old:1 pointing to "\.\.\/x", not a layer ID of 64 hex digits/));
    });

    it('when a layer json names a parent that is not a layer ID', async (t) => {
      const path = await legacyArchive(t, (entries, [, , top]) => setJson(entries, top ?? '', (json) => (json.parent = '../../etc')));
      await fails(`docker-archive:${path}`, invalid(/[a-f0-9]{64}\/json has "parent" "\.\.\/\.\.\/etc", not a layer ID of 64 hex digits/));
    });

    it('when a layer tar is missing', async (t) => {
      const path = await legacyArchive(t, (entries, [, mid]) => entries.filter((e) => e.name !== `${mid}/layer.tar`));
      await fails(`docker-archive:${path}`, invalid(/[a-f0-9]{64}\/layer\.tar \(layer [a-f0-9]{64}\) is missing: .*\/json describes it/));
    });
  });
});

function require256(text: string): string {
  return createHash('sha256').update(text).digest('hex');
}
