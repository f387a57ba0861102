import assert from 'node:assert/strict';
import { open, readFile, truncate, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { gzipSync } from 'node:zlib';

import { pipeAt, tempDir, type Json } from './layouts.js';
import { archive, blobMember, type ArchiveEntry } from './oci-archives.js';
import { fails, invalid } from './read.js';

const escape = (text: string) => text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

function member(entries: ArchiveEntry[], name: string): ArchiveEntry {
  const found = entries.find((e) => e.name === name);
  assert.ok(found, name);
  return found;
}

function json(entry: ArchiveEntry): Json {
  return JSON.parse(Buffer.from(entry.content ?? []).toString('utf8')) as Json;
}

/** The offset of the header of the member `name` in a tar file that tar-stream wrote (names fit in the header). */
async function headerOffset(file: string, name: string): Promise<number> {
  const bytes = await readFile(file);
  for (let offset = 0; offset + 512 <= bytes.length; ) {
    const header = bytes.subarray(offset, offset + 512);
    if (header.every((b) => b === 0)) break;
    const found = header.toString('latin1', 0, 100).replace(/\0.*$/s, '');
    if (found === name) return offset;
    const size = parseInt(header.toString('latin1', 124, 136).replace(/\0.*$/s, '').trim() || '0', 8);
    offset += 512 + Math.ceil(size / 512) * 512;
  }
  throw new Error(`no member ${name} in ${file}`);
}

async function overwrite(file: string, offset: number, bytes: Uint8Array): Promise<void> {
  const handle = await open(file, 'r+');
  try {
    await handle.write(bytes, 0, bytes.length, offset);
  } finally {
    await handle.close();
  }
}

describe('readImages from oci-archive: fails clearly', () => {
  describe('on a file that is not a readable tar', () => {
    it('when the archive does not exist', async (t) => {
      const file = join(await tempDir(t), 'absent.tar');
      await fails(`oci-archive:${file}`, { name: 'SourceNotFoundError', code: 'SOURCE_NOT_FOUND', message: /^OCI archive .*absent\.tar does not exist; check PATH in oci-archive:PATH\[:REF\]$/ });
      await fails('oci-archive:~/rxpush-absent.tar', { code: 'SOURCE_NOT_FOUND', message: /\(the shell expands ~ only at the start of a word, not after oci-archive:; write oci-archive:\$HOME\/rxpush-absent\.tar\)$/ });
    });

    it('when PATH is a directory', async (t) => {
      const dir = await tempDir(t);
      await fails(`oci-archive:${dir}`, invalid(/is a directory; oci-archive:PATH needs a tar file \(for an OCI layout directory use oci:PATH\)/));
    });

    it('when PATH is a pipe, without waiting for a writer', { timeout: 5_000 }, async (t) => {
      const file = join(await tempDir(t), 'image.tar');
      const pipe = await pipeAt(t, file);
      await fails(`oci-archive:${file}`, invalid(/image\.tar is a pipe, not a file: rxpush reads an archive in place, at random; save it to a file first/));
      assert.equal(pipe.waited(), false, 'it was refused at once, not after waiting in open() for a writer');
    });

    it('when PATH names no archive', async () => {
      await fails('oci-archive::latest', { name: 'UsageError', code: 'USAGE', message: /names no archive: use oci-archive:PATH\[:REF\]/ });
    });

    it('when the file is empty', async (t) => {
      const file = join(await tempDir(t), 'empty.tar');
      await writeFile(file, '');
      await fails(`oci-archive:${file}`, invalid(/empty\.tar is empty, not a tar archive$/));
    });

    it('when the file is not a tar', async (t) => {
      const file = join(await tempDir(t), 'text.tar');
      await writeFile(file, 'hello '.repeat(200));
      await fails(`oci-archive:${file}`, invalid(/text\.tar is not a tar archive \(its first 512 bytes are not a tar header\)/));
    });

    it('when it is gzip-compressed, saying to gunzip it', async (t) => {
      const { file } = await archive(t);
      const gz = `${file}.gz`;
      await writeFile(gz, gzipSync(await readFile(file)));
      await fails(`oci-archive:${gz}`, invalid(/image\.tar\.gz is gzip-compressed; gunzip it first/));
    });

    it('when it is truncated inside a blob', async (t) => {
      const { file, fixture } = await archive(t);
      const layer = fixture.images[0]?.layerDigests[1] ?? '';
      await truncate(file, (await headerOffset(file, blobMember(layer))) + 512 + 100);
      await fails(`oci-archive:${file}`, invalid(new RegExp(`${escape(file)} is truncated: the member whose header is at byte \\d+ needs \\d+ bytes from byte \\d+, but the file ends at byte \\d+; copy or export the archive again$`)));
    });

    it('when it is truncated inside a header', async (t) => {
      const { file } = await archive(t);
      await truncate(file, (await headerOffset(file, 'index.json')) + 100);
      await fails(`oci-archive:${file}`, invalid(/is truncated: it ends at byte \d+, inside the tar header at byte \d+/));
    });

    it('when it ends without the end-of-archive marker', async (t) => {
      const { file } = await archive(t);
      const last = await headerOffset(file, 'index.json');
      const bytes = await readFile(file);
      const size = parseInt(bytes.toString('latin1', last + 124, last + 135), 8);
      await truncate(file, last + 512 + Math.ceil(size / 512) * 512);
      await fails(`oci-archive:${file}`, invalid(/is truncated: it ends at byte \d+ without the end-of-archive marker/));
    });

    it('when a header is corrupt', async (t) => {
      const { file } = await archive(t);
      const offset = await headerOffset(file, 'index.json');
      await overwrite(file, offset + 3, Buffer.from('X'));
      await fails(`oci-archive:${file}`, invalid(new RegExp(`${escape(file)} is corrupt: the tar header at byte ${offset} has a bad checksum; copy or export the archive again$`)));
    });

    it('when a header was wiped, leaving data after the end-of-archive block', async (t) => {
      const { file } = await archive(t);
      const offset = await headerOffset(file, 'index.json');
      await overwrite(file, offset, Buffer.alloc(512));
      await fails(`oci-archive:${file}`, invalid(/is corrupt: it has data after the end-of-archive block at byte \d+/));
    });
  });

  describe('on members that lead elsewhere', () => {
    it('when a member climbs out with ..', async (t) => {
      const { file } = await archive(t, undefined, (entries) => void entries.push({ name: '../evil', content: Buffer.from('x') }));
      await fails(`oci-archive:${file}`, invalid(/has a member named "\.\.\/evil", which leads outside the archive; rxpush refuses archives with absolute or "\.\." member names/));
    });

    it('when a member hides .. inside its name', async (t) => {
      const { file } = await archive(t, undefined, (entries) => void entries.push({ name: 'blobs/sha256/../../../etc/passwd', content: Buffer.from('x') }));
      await fails(`oci-archive:${file}`, invalid(/has a member named "blobs\/sha256\/\.\.\/\.\.\/\.\.\/etc\/passwd", which leads outside the archive/));
    });

    it('when a member has an absolute name', async (t) => {
      const { file } = await archive(t, undefined, (entries) => void entries.push({ name: '/etc/passwd', content: Buffer.from('x') }));
      await fails(`oci-archive:${file}`, invalid(/has a member named "\/etc\/passwd", which leads outside the archive/));
    });

    it('when a blob is a symbolic link', async (t) => {
      const { file, fixture } = await archive(t, undefined, (entries) => {
        const layer = member(entries, blobMember(fixtureLayer(entries, 1)));
        layer.type = 'symlink';
        layer.linkname = '/etc/passwd';
      });
      const manifest = fixture.images[0]?.manifestDigest;
      await fails(
        `oci-archive:${file}`,
        invalid(new RegExp(`blobs/sha256/[0-9a-f]{64} in ${escape(file)} \\(layer 2 of manifest ${manifest}\\) is a symbolic link to "/etc/passwd": rxpush reads only regular files in the archive`)),
      );
    });

    it('when a blob is a hard link to another member', async (t) => {
      const { file } = await archive(t, undefined, (entries) => {
        const layer = member(entries, blobMember(fixtureLayer(entries, 0)));
        layer.type = 'link';
        layer.linkname = 'oci-layout';
      });
      await fails(`oci-archive:${file}`, invalid(/\(layer 1 of manifest sha256:[0-9a-f]{64}\) is a hard link to "oci-layout": rxpush reads only regular files in the archive/));
    });

    it('when index.json is a symbolic link', async (t) => {
      const { file } = await archive(t, undefined, (entries) => {
        const index = member(entries, 'index.json');
        index.type = 'symlink';
        index.linkname = '../index.json';
      });
      await fails(`oci-archive:${file}`, invalid(/index\.json in .* \(the layout index\) is a symbolic link to "\.\.\/index\.json"/));
    });

    it('when a blob is a directory', async (t) => {
      const { file } = await archive(t, undefined, (entries) => {
        const layer = member(entries, blobMember(fixtureLayer(entries, 2)));
        layer.type = 'directory';
      });
      await fails(`oci-archive:${file}`, invalid(/\(layer 3 of manifest sha256:[0-9a-f]{64}\) is not a regular file; the archive is damaged/));
    });
  });

  describe('on a layout that is incomplete or damaged', () => {
    it('when oci-layout is missing', async (t) => {
      const { file } = await archive(t, undefined, (entries) => entries.filter((e) => e.name !== 'oci-layout'));
      await fails(`oci-archive:${file}`, invalid(new RegExp(`^${escape(file)} is not an OCI image archive \\(oci-layout in ${escape(file)} is missing\\); point oci-archive:PATH at a tar written by`)));
    });

    it('when index.json is missing', async (t) => {
      const { file } = await archive(t, undefined, (entries) => entries.filter((e) => e.name !== 'index.json'));
      await fails(`oci-archive:${file}`, invalid(/is not an OCI image archive \(index\.json in .* is missing\)/));
    });

    it('when index.json is larger than a document may be', async (t) => {
      const { file } = await archive(t, undefined, (entries) => {
        const index = member(entries, 'index.json');
        index.content = Buffer.from(JSON.stringify({ ...json(index), annotations: { padding: 'x'.repeat(5 * 1024 * 1024) } }));
      });
      await fails(`oci-archive:${file}`, invalid(/index\.json in .* \(the layout index\) is \d+ bytes, more than the 4194304/));
    });

    it('when an index.json entry has a malformed digest', async (t) => {
      const { file } = await archive(t, undefined, (entries) => {
        const index = member(entries, 'index.json');
        const edited = json(index);
        edited.manifests[0].digest = 'sha256:../../oci-layout';
        index.content = Buffer.from(JSON.stringify(edited));
      });
      await fails(`oci-archive:${file}`, { name: 'DigestFormatError', code: 'INVALID_DIGEST', message: /^invalid digest of manifests\[0\] in index\.json in .*: "sha256:\.\.\/\.\.\/oci-layout"/ });
    });

    it('when the ref is unknown, listing the refs it has', async (t) => {
      const { file } = await archive(t);
      await fails(`oci-archive:${file}:nope`, { name: 'SourceNotFoundError', code: 'SOURCE_NOT_FOUND', message: new RegExp(`^no image named "nope" in index\\.json in ${escape(file)}; it has: latest$`) });
    });

    it('when several images are in it and none is named latest', async (t) => {
      const two = { images: [{ tags: ['a'], layers: [{ files: 1, fileSize: 10, seed: 'a' }] }, { tags: ['b'], layers: [{ files: 1, fileSize: 10, seed: 'b' }] }] };
      const { file } = await archive(t, two);
      await fails(`oci-archive:${file}`, invalid(new RegExp(`holds 2 images and none is named "latest"; choose one as oci-archive:${escape(file)}:REF or push them all with --all-tags`)));
    });

    it('when the manifest is missing', async (t) => {
      const { file, fixture } = await archive(t, undefined, (entries) => entries.filter((e) => !e.name.endsWith(fixtureManifest(entries).slice(7))));
      const manifest = fixture.images[0]?.manifestDigest ?? '';
      await fails(`oci-archive:${file}`, { name: 'BlobMissingError', code: 'BLOB_MISSING', message: new RegExp(`^blob ${manifest} is missing from ${blobMember(manifest)} in ${escape(file)}: manifest ${manifest} names it; the archive is incomplete, re-export the image$`) });
    });

    it('when a layer is missing', async (t) => {
      const { file, fixture } = await archive(t, undefined, (entries) => {
        const layer = blobMember(fixtureLayer(entries, 2));
        return entries.filter((e) => e.name !== layer);
      });
      const [image] = fixture.images;
      await fails(`oci-archive:${file}`, { name: 'BlobMissingError', code: 'BLOB_MISSING', message: new RegExp(`^blob ${image?.layerDigests[2]} is missing from .* in ${escape(file)}: layer 3 of manifest ${image?.manifestDigest} names it`) });
    });

    it('when a layer member is not the size its descriptor says', async (t) => {
      const { file, fixture } = await archive(t, undefined, (entries) => {
        const layer = member(entries, blobMember(fixtureLayer(entries, 0)));
        layer.content = Buffer.from(layer.content ?? []).subarray(0, 100);
      });
      const [image] = fixture.images;
      await fails(
        `oci-archive:${file}`,
        invalid(new RegExp(`${blobMember(image?.layerDigests[0] ?? '')} in ${escape(file)} \\(layer 1 of manifest ${image?.manifestDigest}\\) is 100 bytes but its descriptor says \\d+; the blob is truncated or replaced`)),
      );
    });

    it('when the config does not hash to its digest', async (t) => {
      const { file, fixture } = await archive(t, undefined, (entries) => {
        const config = member(entries, blobMember(fixtureConfig(entries)));
        const edited = json(config);
        edited.os = 'xxxxx';
        config.content = Buffer.from(JSON.stringify(edited));
      });
      const config = fixture.images[0]?.configDigest ?? '';
      await fails(`oci-archive:${file}`, { name: 'DigestMismatchError', code: 'DIGEST_MISMATCH', message: new RegExp(`^${blobMember(config)} in ${escape(file)} does not match its digest: expected ${config}, read sha256:`) });
    });
  });
});

// The tests edit members before the fixture's digests are at hand; these read them from the members.
function fixtureManifest(entries: ArchiveEntry[]): string {
  return json(member(entries, 'index.json')).manifests[0].digest as string;
}

function fixtureDocument(entries: ArchiveEntry[]): Json {
  return json(member(entries, blobMember(fixtureManifest(entries))));
}

function fixtureLayer(entries: ArchiveEntry[], i: number): string {
  return fixtureDocument(entries).layers[i].digest as string;
}

function fixtureConfig(entries: ArchiveEntry[]): string {
  return fixtureDocument(entries).config.digest as string;
}
