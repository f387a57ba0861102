import assert from 'node:assert/strict';
import { mkdir, open, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { buffer } from 'node:stream/consumers';
import { describe, it } from 'node:test';

import { indexTar, openTarMember, readTarMember } from '../src/oci/tar-index.js';
import { tempDir } from './layouts.js';
import { run, writeArchive } from './oci-archives.js';

/** Rewrites the header at `offset` with `edit` and fixes its checksum, as a writer of that form would have. */
async function editHeader(file: string, offset: number, edit: (header: Buffer) => void): Promise<void> {
  const handle = await open(file, 'r+');
  try {
    const header = Buffer.alloc(512);
    await handle.read(header, 0, 512, offset);
    edit(header);
    header.fill(0x20, 148, 156);
    let sum = 0;
    for (const byte of header) sum += byte;
    header.write(`${sum.toString(8).padStart(6, '0')}\0 `, 148, 'latin1');
    await handle.write(header, 0, 512, offset);
  } finally {
    await handle.close();
  }
}

describe('indexTar', () => {
  it('indexes members by normalised name, with their data offsets, sizes and types', async (t) => {
    const dir = await tempDir(t);
    const file = join(dir, 'a.tar');
    await writeArchive(file, [
      { name: './', type: 'directory' },
      { name: './one', content: Buffer.from('first') },
      { name: 'sub//two', content: Buffer.alloc(700, 7) },
      { name: 'sub/link', type: 'symlink', linkname: '../one' },
      { name: 'sub/hard', type: 'link', linkname: 'one' },
      { name: 'empty', content: Buffer.alloc(0) },
    ]);
    const index = await indexTar(file);
    assert.deepEqual([...index.members.keys()], ['one', 'sub/two', 'sub/link', 'sub/hard', 'empty']);
    assert.deepEqual(index.members.get('one'), { name: 'one', type: 'file', offset: 1024, size: 5 });
    assert.deepEqual(index.members.get('sub/link'), { name: 'sub/link', type: 'symlink', offset: 3584, size: 0, linkname: '../one' });
    assert.equal(index.members.get('sub/hard')?.type, 'hardlink');
    const two = index.members.get('sub/two');
    assert.ok(two);
    assert.deepEqual(await readTarMember(index, two), Buffer.alloc(700, 7));
    assert.deepEqual(await buffer(await openTarMember(index, two)), Buffer.alloc(700, 7));
    const empty = index.members.get('empty');
    assert.ok(empty);
    assert.equal((await buffer(await openTarMember(index, empty))).length, 0);
  });

  it('reads long names and link targets from GNU and pax headers', async (t) => {
    const dir = await tempDir(t);
    const long = `${'a'.repeat(90)}/${'b'.repeat(90)}/${'c'.repeat(90)}`;
    await mkdir(join(dir, 'src', long), { recursive: true });
    await writeFile(join(dir, 'src', long, 'file'), 'long');
    await symlink(`../${'t'.repeat(150)}`, join(dir, 'src', 'link'));
    for (const format of ['gnu', 'pax']) {
      const file = join(dir, `${format}.tar`);
      await run('tar', [`--format=${format}`, '-C', join(dir, 'src'), '-cf', file, '.']);
      const index = await indexTar(file);
      const member = index.members.get(`${long}/file`);
      assert.equal(member?.type, 'file', format);
      assert.equal((await readTarMember(index, member)).toString(), 'long');
      assert.equal(index.members.get('link')?.linkname, `../${'t'.repeat(150)}`, format);
    }
  });

  it('reads sizes in base-256 and from pax size records', async (t) => {
    const dir = await tempDir(t);
    const file = join(dir, 'a.tar');
    const content = Buffer.alloc(1500, 'z');
    await writeArchive(file, [{ name: 'big', content }]);
    // GNU writes sizes of 8 GiB and more in base-256; the same encoding of a small size must read the same.
    await editHeader(file, 0, (header) => {
      header.fill(0, 124, 136);
      header.writeUInt8(0x80, 124);
      header.writeUInt16BE(content.length, 134);
    });
    const index = await indexTar(file);
    assert.equal(index.members.get('big')?.size, 1500);
    assert.deepEqual(await readTarMember(index, index.members.get('big')!), content);

    // pax writes such sizes as a record, and the header's own size field may then say anything.
    const pax = join(dir, 'pax.tar');
    await writeArchive(pax, [{ name: 'big', content, pax: { size: String(content.length) } }]);
    await editHeader(pax, 1024, (header) => header.write('00000000000\0', 124, 'latin1'));
    const paxIndex = await indexTar(pax);
    assert.deepEqual(await readTarMember(paxIndex, paxIndex.members.get('big')!), content);
  });

  it('reads an old directory entry: a regular type with a name ending in a slash', async (t) => {
    const file = join(await tempDir(t), 'old.tar');
    await writeArchive(file, [{ name: 'dir/', type: 'directory' }, { name: 'dir/file', content: Buffer.from('x') }]);
    await editHeader(file, 0, (header) => header.writeUInt8(0, 156));
    const index = await indexTar(file);
    assert.equal(index.members.get('dir')?.type, 'directory');
    assert.equal(index.members.get('dir/file')?.type, 'file');
  });
});
