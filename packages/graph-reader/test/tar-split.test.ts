import assert from 'node:assert/strict';
import { mkdir, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { buffer } from 'node:stream/consumers';
import { describe, it, type TestContext } from 'node:test';
import { gzipSync } from 'node:zlib';

import { PushError } from '@rxpush/core';

import { layerFiles, layerRelativePath } from '../src/docker-root/layer-files.js';
import { assembleTarSplit } from '../src/tar-split/assembly.js';
import { Crc64 } from '../src/tar-split/crc64.js';
import { readTarSplitEntries, type TarSplitLimits } from '../src/tar-split/entries.js';
import { tempDir } from './data-roots.js';
import { TRICKY_LAYER, buildTar, splitTar, tarSplitFile, writeLayerFiles, type TarEntrySpec, type TarSplitLine } from './tar-splits.js';

/** A layer laid out as Docker keeps it: its tar-split file and its files, plus the tar they must rebuild. */
async function storedLayer(t: TestContext, entries: readonly TarEntrySpec[], edit?: (lines: TarSplitLine[]) => TarSplitLine[]) {
  const dir = await tempDir(t);
  const archive = await buildTar(entries);
  const lines = splitTar(archive);
  const tarSplit = join(dir, 'tar-split.json.gz');
  await writeFile(tarSplit, tarSplitFile(edit ? edit(lines) : lines));
  const files = join(dir, 'files');
  await writeLayerFiles(files, entries);
  return { dir, archive, tarSplit, files };
}

function rebuild(tarSplit: string, files: string, limits?: TarSplitLimits): Promise<Buffer> {
  return buffer(assembleTarSplit(readTarSplitEntries(tarSplit, limits), layerFiles(files, 'layer L'), { origin: 'layer L' }));
}

function rejectsWith(code: string, pattern: RegExp): (error: unknown) => boolean {
  return (error) => {
    assert.ok(error instanceof PushError, `expected a PushError, got ${String(error)}`);
    assert.equal(error.code, code);
    assert.match(error.message, pattern);
    return true;
  };
}

const simple: TarEntrySpec[] = [
  { type: 'directory', name: 'etc/' },
  { type: 'file', name: 'etc/hostname', content: 'box\n' },
  { type: 'file', name: 'etc/motd', content: 'welcome\n' },
];

describe('CRC-64/ISO', () => {
  it('gives the check value of the ISO polynomial for "123456789", as Go computes it', () => {
    assert.equal(new Crc64().update(Buffer.from('123456789')).digest().toString('hex'), 'b90956c775a41001');
  });

  it('gives the same value whether bytes come in one piece or many', () => {
    const bytes = Buffer.from(Array.from({ length: 1000 }, (_, i) => (i * 7) % 256));
    const whole = new Crc64().update(bytes).digest();
    const pieces = new Crc64();
    for (let i = 0; i < bytes.length; i += 13) pieces.update(bytes.subarray(i, i + 13));
    assert.deepEqual(pieces.digest(), whole);
  });
});

describe('assembleTarSplit', () => {
  it('rebuilds a layer with links, long names, whiteouts and empty entries byte for byte', async (t) => {
    const layer = await storedLayer(t, TRICKY_LAYER);
    // The tar really has what it is meant to test: a PAX header, a hard link, a symlink.
    assert.ok(layer.archive.includes('path='));
    assert.deepEqual(await rebuild(layer.tarSplit, layer.files), layer.archive);
  });

  it('streams a layer in pieces of about a megabyte, never as one buffer', async (t) => {
    const layer = await storedLayer(t, [{ type: 'file', name: 'big', content: Buffer.alloc(6 * 1024 * 1024, 1) }]);
    const sizes: number[] = [];
    for await (const chunk of assembleTarSplit(readTarSplitEntries(layer.tarSplit), layerFiles(layer.files, 'L'), { origin: 'L' })) sizes.push((chunk as Buffer).length);
    // A reader may get what the stream buffered (its 1 MiB high-water mark) merged with one more piece.
    assert.ok(sizes.length >= 3, `read in ${sizes.length} pieces`);
    assert.ok(Math.max(...sizes) <= 2 * 1024 * 1024 + 1024, `a piece of ${Math.max(...sizes)} bytes`);
  });

  it('reads names that are not UTF-8 from name_raw', async (t) => {
    const dir = await tempDir(t);
    const name = Buffer.from([0x63, 0x61, 0x66, 0xe9]); // "café" in latin1
    await mkdir(join(dir, 'files'));
    await writeFile(Buffer.concat([Buffer.from(join(dir, 'files') + '/'), name]), 'bytes');
    const lines: TarSplitLine[] = [
      { type: 2, payload: Buffer.from('HEADER').toString('base64'), position: 0 },
      { type: 1, name_raw: name.toString('base64'), size: 5, payload: new Crc64().update(Buffer.from('bytes')).digest().toString('base64'), position: 1 },
      { type: 2, payload: Buffer.from('END').toString('base64'), position: 2 },
    ];
    await writeFile(join(dir, 'ts.gz'), tarSplitFile(lines));
    assert.equal((await rebuild(join(dir, 'ts.gz'), join(dir, 'files'))).toString(), 'HEADERbytesEND');
  });

  it('fails with DIGEST_MISMATCH naming the file when its content changed', async (t) => {
    const layer = await storedLayer(t, simple);
    await writeFile(join(layer.files, 'etc/motd'), 'WELCOME\n');
    await assert.rejects(rebuild(layer.tarSplit, layer.files), rejectsWith('DIGEST_MISMATCH', /etc\/motd \(a file of layer layer L\) does not match its digest: expected crc64:/));
  });

  it('fails with DIGEST_MISMATCH when a file has another size than the layer recorded', async (t) => {
    const layer = await storedLayer(t, simple);
    await writeFile(join(layer.files, 'etc/hostname'), 'a longer host name\n');
    await assert.rejects(rebuild(layer.tarSplit, layer.files), rejectsWith('DIGEST_MISMATCH', /etc\/hostname .* is 19 bytes, but the layer recorded 4/));
  });

  it('names a missing file', async (t) => {
    const layer = await storedLayer(t, simple, (lines) => lines.map((line) => (line.name === 'etc/motd' ? { ...line, name: 'etc/gone' } : line)));
    await assert.rejects(rebuild(layer.tarSplit, layer.files), rejectsWith('INVALID_SOURCE', /etc\/gone \(a file of layer layer L\) is missing/));
  });

  for (const [escape, why] of [
    ['../../etc/passwd', 'climbs out'],
    ['etc/../../outside', 'climbs out after normalisation'],
    ['/etc/passwd', 'is absolute'],
  ] as const) {
    it(`refuses a file name that ${why} (${escape})`, async (t) => {
      const layer = await storedLayer(t, simple, (lines) => lines.map((line) => (line.name === 'etc/motd' ? { ...line, name: escape } : line)));
      await assert.rejects(rebuild(layer.tarSplit, layer.files), rejectsWith('INVALID_SOURCE', /which is outside the layer/));
    });
  }

  it('refuses to read through a directory that is a symbolic link', async (t) => {
    const layer = await storedLayer(t, simple);
    const elsewhere = join(layer.dir, 'elsewhere');
    await mkdir(elsewhere);
    await writeFile(join(elsewhere, 'motd'), 'welcome\n');
    await writeFile(join(elsewhere, 'hostname'), 'box\n');
    const { rm } = await import('node:fs/promises');
    await rm(join(layer.files, 'etc'), { recursive: true });
    await symlink(elsewhere, join(layer.files, 'etc'));
    await assert.rejects(rebuild(layer.tarSplit, layer.files), rejectsWith('INVALID_SOURCE', /leads through a symbolic link/));
  });

  it('refuses a symbolic link where the layer has a file with content', async (t) => {
    const layer = await storedLayer(t, simple);
    const { rm } = await import('node:fs/promises');
    await rm(join(layer.files, 'etc/motd'));
    await symlink('/etc/hostname', join(layer.files, 'etc/motd'));
    await assert.rejects(rebuild(layer.tarSplit, layer.files), rejectsWith('INVALID_SOURCE', /etc\/motd .* is a symbolic link/));
  });
});

describe('readTarSplitEntries', () => {
  it('reads segments and files with their positions', async (t) => {
    const layer = await storedLayer(t, simple);
    const entries = [];
    for await (const entry of readTarSplitEntries(layer.tarSplit)) entries.push(entry);
    assert.deepEqual(entries.map((e) => e.position), entries.map((_, i) => i));
    const files = entries.filter((e) => e.kind === 'file');
    assert.deepEqual(files.map((e) => [e.name.toString(), e.size]), [['etc/', 0], ['etc/hostname', 4], ['etc/motd', 8]]);
  });

  const damaged: [string, (layer: Awaited<ReturnType<typeof storedLayer>>) => Promise<void>, RegExp][] = [
    ['a file that is not gzip', (l) => writeFile(l.tarSplit, 'not gzip at all'), /cannot be decompressed \(incorrect header check\)/],
    ['a truncated gzip file', async (l) => {
      const { readFile } = await import('node:fs/promises');
      const bytes = await readFile(l.tarSplit);
      await writeFile(l.tarSplit, bytes.subarray(0, bytes.length - 12));
    }, /cannot be decompressed \(unexpected end of file\)/],
    ['a line that is not JSON', (l) => writeFile(l.tarSplit, gzipSync('{"type":2,"payload":"","position":0}\n{oops\n')), /entry 1 that is not JSON/],
    ['an entry out of position', (l) => writeFile(l.tarSplit, gzipSync('{"type":2,"payload":"","position":0}\n{"type":2,"payload":"","position":5}\n')), /entry 1 at position 5/],
    ['an entry of unknown type', (l) => writeFile(l.tarSplit, gzipSync('{"type":7,"payload":null,"position":0}\n')), /unknown type 7/],
    ['a file entry without its CRC', (l) => writeFile(l.tarSplit, gzipSync('{"type":1,"name":"a","size":3,"payload":null,"position":0}\n')), /without its 8-byte CRC-64/],
    ['a payload that is not base64', (l) => writeFile(l.tarSplit, gzipSync('{"type":2,"payload":"!!","position":0}\n')), /payload is not base64/],
    ['no entries at all', (l) => writeFile(l.tarSplit, gzipSync('')), /holds no entries/],
    ['a symbolic link in place of the file', async (l) => {
      const { rename } = await import('node:fs/promises');
      await rename(l.tarSplit, `${l.tarSplit}.real`);
      await symlink(`${l.tarSplit}.real`, l.tarSplit);
    }, /is a symbolic link; Docker writes a regular file there/],
  ];
  for (const [what, damage, message] of damaged) {
    it(`refuses ${what}, naming the file`, async (t) => {
      const layer = await storedLayer(t, simple);
      await damage(layer);
      await assert.rejects(rebuild(layer.tarSplit, layer.files), (error: Error & { code?: string }) => {
        assert.equal(error.code, 'INVALID_SOURCE');
        assert.ok(error.message.startsWith(`${layer.tarSplit} `), error.message);
        assert.match(error.message, message);
        assert.match(error.message, /pull or load the image into Docker again/);
        return true;
      });
    });
  }

  it('stops inflating a gzip bomb at the cap', async (t) => {
    const layer = await storedLayer(t, simple);
    // 16 MiB of newlines compress to a few KiB.
    await writeFile(layer.tarSplit, gzipSync(Buffer.alloc(16 * 1024 * 1024, 0x0a)));
    await assert.rejects(rebuild(layer.tarSplit, layer.files, { maxBytes: 4 * 1024 * 1024 }), rejectsWith('INVALID_SOURCE', /decompresses to more than 4194304 bytes/));
  });

  it('refuses an entry longer than the cap without holding it', async (t) => {
    const layer = await storedLayer(t, simple);
    await writeFile(layer.tarSplit, gzipSync(Buffer.alloc(4 * 1024 * 1024, 0x20)));
    await assert.rejects(rebuild(layer.tarSplit, layer.files, { maxEntryBytes: 1024 * 1024 }), rejectsWith('INVALID_SOURCE', /more than the 1048576 bytes allowed/));
  });
});

describe('layerRelativePath', () => {
  it('keeps names inside the layer, normalised, and refuses the rest', () => {
    const of = (name: string) => layerRelativePath(Buffer.from(name));
    assert.equal(of('etc/passwd'), 'etc/passwd');
    assert.equal(of('./etc//x/../passwd'), 'etc/passwd');
    assert.equal(of('dir/'), 'dir');
    for (const bad of ['..', '../x', 'a/../../x', '/etc/passwd', '.', '', 'a\0b']) assert.equal(of(bad), undefined, bad);
  });
});
