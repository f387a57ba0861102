/**
 * Test helpers: layer tars built with tar-stream, split into tar-split metadata the way
 * github.com/vbatts/tar-split's disassembler does (raw header bytes and padding as segments, one
 * file entry per header with its content's size and CRC-64), and the layer's files written to disk.
 * The encoder is for tests only: rxpush reads tar-split, it never writes it.
 */
import { link, mkdir, symlink, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { gzipSync } from 'node:zlib';

import tar from 'tar-stream';

import { Crc64 } from '../src/tar-split/crc64.js';

export type TarEntrySpec =
  | { readonly type: 'file'; readonly name: string; readonly content: string | Buffer }
  | { readonly type: 'directory'; readonly name: string }
  | { readonly type: 'symlink'; readonly name: string; readonly linkname: string }
  | { readonly type: 'link'; readonly name: string; readonly linkname: string };

/** One line of a tar-split file, as tar-split's JSON packer writes it. */
export interface TarSplitLine {
  type: 1 | 2;
  name?: string;
  name_raw?: string;
  size?: number;
  payload: string | null;
  position: number;
}

const EPOCH = new Date('2020-01-01T00:00:00Z');
const LONG_NAME = `data/${'long-file-name-'.repeat(8)}end.txt`;

/**
 * A layer with every kind of entry a tar-split has to get right: directories (one empty), files,
 * an empty file, a hard link, symbolic links, a name over 100 characters (a PAX header), a whiteout
 * and an opaque-directory marker.
 */
export const TRICKY_LAYER: readonly TarEntrySpec[] = [
  { type: 'directory', name: 'data/' },
  { type: 'directory', name: 'data/empty/' },
  { type: 'file', name: 'data/hello.txt', content: 'hello from a tricky layer\n' },
  { type: 'file', name: 'data/empty-file', content: '' },
  { type: 'file', name: 'data/big.bin', content: Buffer.alloc(300_000, 0x5a) },
  { type: 'link', name: 'data/hello-hardlink.txt', linkname: 'data/hello.txt' },
  { type: 'symlink', name: 'data/hello-symlink', linkname: 'hello.txt' },
  { type: 'symlink', name: 'data/dangling', linkname: '/nowhere/at/all' },
  { type: 'file', name: LONG_NAME, content: 'a name longer than ustar allows\n' },
  { type: 'file', name: 'data/.wh.gone.txt', content: '' },
  { type: 'directory', name: 'data/opaque/' },
  { type: 'file', name: 'data/opaque/.wh..wh..opq', content: '' },
  { type: 'file', name: 'data/opaque/kept.txt', content: 'only this survives in opaque/\n' },
];

/** The tar of `entries`, as tar-stream writes it (PAX headers for long names). */
export async function buildTar(entries: readonly TarEntrySpec[]): Promise<Buffer> {
  const pack = tar.pack();
  const chunks: Buffer[] = [];
  pack.on('data', (chunk) => void chunks.push(chunk as Buffer));
  const done = new Promise<void>((ok, fail) => {
    pack.on('end', () => ok());
    pack.on('error', fail);
  });
  for (const entry of entries) {
    const common = { name: entry.name, mtime: EPOCH, uid: 0, gid: 0 };
    await new Promise<void>((ok, fail) => {
      const callback = (err?: Error | null) => (err ? fail(err) : ok());
      if (entry.type === 'file') pack.entry({ ...common, type: 'file', mode: 0o644 }, Buffer.from(entry.content), callback);
      else if (entry.type === 'directory') pack.entry({ ...common, type: 'directory', mode: 0o755 }, callback);
      else pack.entry({ ...common, type: entry.type, linkname: entry.linkname, mode: 0o777 }, callback);
    });
  }
  pack.finalize();
  await done;
  return Buffer.concat(chunks);
}

/** Splits a tar into tar-split lines: what Docker stores as a layer's tar-split.json.gz. */
export function splitTar(archive: Buffer): TarSplitLine[] {
  const lines: Omit<TarSplitLine, 'position'>[] = [];
  let segment: Buffer[] = [];
  const flush = () => {
    lines.push({ type: 2, payload: Buffer.concat(segment).toString('base64') });
    segment = [];
  };
  let offset = 0;
  let override: string | undefined;
  while (offset + 512 <= archive.length) {
    const header = archive.subarray(offset, offset + 512);
    if (header.every((byte) => byte === 0)) break;
    const type = String.fromCharCode(header[156] ?? 0);
    const size = parseInt(header.subarray(124, 136).toString('latin1').replace(/\0.*$/, '').trim() || '0', 8);
    const dataEnd = offset + 512 + size;
    const next = offset + 512 + Math.ceil(size / 512) * 512;
    const data = archive.subarray(offset + 512, dataEnd);
    if (type === 'x' || type === 'g' || type === 'L') {
      // Metadata entries are part of the next header as tar-split sees it: raw bytes, no file.
      if (type === 'x') override = paxPath(data) ?? override;
      if (type === 'L') override = data.toString('utf8').replace(/\0.*$/s, '');
      segment.push(archive.subarray(offset, next));
      offset = next;
      continue;
    }
    segment.push(header);
    flush();
    const name = override ?? ustarName(header);
    override = undefined;
    const content = type === '0' || type === '\0' ? data : Buffer.alloc(0);
    lines.push({
      type: 1,
      name,
      ...(content.length > 0 && { size: content.length }),
      payload: content.length > 0 ? new Crc64().update(content).digest().toString('base64') : null,
    });
    segment.push(archive.subarray(dataEnd, next));
    offset = next;
  }
  segment.push(archive.subarray(offset));
  flush();
  return lines.map((line, position) => ({ ...line, position }));
}

/** Tar-split lines as the gzipped newline-delimited JSON file Docker keeps. */
export function tarSplitFile(lines: readonly TarSplitLine[]): Buffer {
  return gzipSync(Buffer.from(lines.map((line) => `${JSON.stringify(line)}\n`).join('')));
}

/** Writes the files of `entries` under `dir`, as a storage driver holds a layer. */
export async function writeLayerFiles(dir: string, entries: readonly TarEntrySpec[]): Promise<void> {
  await mkdir(dir, { recursive: true });
  for (const entry of entries) {
    const path = join(dir, entry.name);
    await mkdir(entry.type === 'directory' ? path : dirname(path), { recursive: true });
    if (entry.type === 'file') await writeFile(path, entry.content);
    else if (entry.type === 'symlink') await symlink(entry.linkname, path);
    else if (entry.type === 'link') await link(join(dir, entry.linkname), path);
  }
}

function ustarName(header: Buffer): string {
  const field = (from: number, to: number) => header.subarray(from, to).toString('utf8').replace(/\0.*$/s, '');
  const name = field(0, 100);
  const prefix = header.subarray(257, 263).toString('latin1').startsWith('ustar') ? field(345, 500) : '';
  return prefix ? `${prefix}/${name}` : name;
}

function paxPath(data: Buffer): string | undefined {
  for (const record of data.toString('utf8').split('\n')) {
    const match = /^\d+ path=(.*)$/s.exec(record);
    if (match) return match[1];
  }
  return undefined;
}
