import { createReadStream } from 'node:fs';
import { open, type FileHandle } from 'node:fs/promises';
import { Readable } from 'node:stream';

import type { OpenOptions } from '@rxpush/core';
import { InvalidSourceError, SourceError } from '@rxpush/core';

import { READ_THEN_CHECK } from '../shared/files.js';

// Archives are read in place: a tar is a sequence of 512-byte headers, each followed by its member's
// data padded to 512 bytes, so reading only the headers (and skipping the data by offset) indexes an
// archive of any size in a few reads, and each member can later be streamed from its offset.
const BLOCK = 512;
// Big reads: layers stream straight to the network, and 1 MiB chunks keep syscalls few.
const READ_CHUNK = 1024 * 1024;
// pax and GNU long-name records hold a few names; anything bigger is not one.
const MAX_EXTENDED_HEADER = 1024 * 1024;
// After the end-of-archive block only zero padding may follow (tar pads to 10 KiB records); this much is checked.
const MAX_TRAILER_CHECK = 64 * 1024;

/** One member of a tar archive, as its headers describe it. */
export interface TarMember {
  /** The name, normalised: relative, without `.` or empty components or a trailing slash. */
  readonly name: string;
  readonly type: 'file' | 'directory' | 'symlink' | 'hardlink' | 'other';
  /** Where its data starts in the archive. */
  readonly offset: number;
  readonly size: number;
  /** Where a symbolic or hard link points, as recorded. */
  readonly linkname?: string;
}

/** The members of a tar archive by name (the last of a name wins, as when extracting), and what was indexed. */
export interface TarIndex {
  readonly path: string;
  readonly members: ReadonlyMap<string, TarMember>;
  /** The archive file when it was indexed; reads check it has not changed since. */
  readonly stamp: FileStamp;
}

interface FileStamp {
  readonly dev: number;
  readonly ino: number;
  readonly size: number;
  readonly mtimeMs: number;
}

/** Names and links set by a pax or GNU extended header for the member that follows it. */
interface Pending {
  path?: string;
  linkpath?: string;
  size?: number;
  at: number;
}

/**
 * Indexes a plain tar archive (ustar, pax or GNU) by reading its headers only. Fails with a
 * SourceError naming the archive when it is compressed, not a tar, truncated or corrupt, or has a
 * member whose name is absolute or climbs out with `..`.
 */
export async function indexTar(path: string): Promise<TarIndex> {
  const handle = await open(path, READ_THEN_CHECK);
  try {
    const stats = await handle.stat();
    if (stats.isFIFO() || stats.isSocket()) {
      throw invalid(path, `${path} is a pipe, not a file: rxpush reads an archive in place, at random; save it to a file first (docker save -o FILE)`);
    }
    if (stats.isCharacterDevice()) throw invalid(path, `${path} is a device (a terminal?), not a file: give the archive's file, or pipe it in`);
    if (!stats.isFile()) throw invalid(path, `${path} is not a regular file; it must be a tar archive`);
    const stamp: FileStamp = { dev: stats.dev, ino: stats.ino, size: stats.size, mtimeMs: stats.mtimeMs };
    const members = new Map<string, TarMember>();
    const end = stats.size;
    const block = Buffer.alloc(BLOCK);
    let offset = 0;
    let pending: Pending | undefined;

    for (;;) {
      if (offset + BLOCK > end) {
        if (offset === 0) throw invalid(path, `${path} is ${end === 0 ? 'empty' : `${end} bytes`}, not a tar archive`);
        throw truncated(path, offset === end ? `it ends at byte ${end} without the end-of-archive marker` : `it ends at byte ${end}, inside the tar header at byte ${offset}`);
      }
      await readExactly(handle, block, offset, path);
      if (offset === 0) checkNotCompressed(path, block);
      if (block.every((byte) => byte === 0)) {
        if (pending !== undefined) throw corrupt(path, `the extended header at byte ${pending.at} is followed by no member`);
        await checkTrailer(handle, path, offset + BLOCK, end);
        break;
      }
      if (!checksumMatches(block)) {
        if (offset === 0) throw invalid(path, `${path} is not a tar archive (its first 512 bytes are not a tar header)`);
        throw corrupt(path, `the tar header at byte ${offset} has a bad checksum`);
      }

      const flag = String.fromCharCode(block.readUInt8(156));
      const headerSize = parseNumber(block, 124, 12);
      if (headerSize === undefined) throw corrupt(path, `the tar header at byte ${offset} has a malformed size`);
      const size = flag === 'x' || flag === 'L' || flag === 'K' || flag === 'g' ? headerSize : (pending?.size ?? headerSize);
      const dataOffset = offset + BLOCK;
      if (dataOffset + size > end) {
        throw truncated(path, `the member whose header is at byte ${offset} needs ${size} bytes from byte ${dataOffset}, but the file ends at byte ${end}`);
      }

      if (flag === 'x' || flag === 'L' || flag === 'K') {
        if (size > MAX_EXTENDED_HEADER) throw corrupt(path, `the extended header at byte ${offset} is ${size} bytes, more than a name record can be`);
        const data = Buffer.alloc(size);
        await readExactly(handle, data, dataOffset, path);
        pending ??= { at: offset };
        if (flag === 'x') Object.assign(pending, parsePax(data, () => corrupt(path, `the pax header at byte ${offset} is malformed`)));
        else if (flag === 'L') pending.path = cString(data, 0, data.length);
        else pending.linkpath = cString(data, 0, data.length);
      } else if (flag !== 'g') {
        // A global pax header ('g') holds defaults like mtime; nothing rxpush reads.
        const member = memberOf(path, block, flag, pending, dataOffset, size);
        if (member !== undefined) members.set(member.name, member);
        pending = undefined;
      }
      offset = dataOffset + Math.ceil(size / BLOCK) * BLOCK;
    }
    return { path, members, stamp };
  } finally {
    await handle.close();
  }
}

/** What messages call a member: `NAME in ARCHIVE`. */
export function memberPath(index: TarIndex, name: string): string {
  return `${name} in ${index.path}`;
}

/** Reads a (small) member whole. */
export async function readTarMember(index: TarIndex, member: TarMember): Promise<Buffer> {
  const handle = await openUnchanged(index);
  try {
    const bytes = Buffer.alloc(member.size);
    await readExactly(handle, bytes, member.offset, index.path);
    return bytes;
  } finally {
    await handle.close();
  }
}

/** Streams a member's data from the archive, after checking the archive is the file that was indexed. */
/**
 * The archive, opened and checked unchanged since it was indexed, for a reader of `member`'s bytes (from its
 * `offset`, `size` of them) into buffers of its own. The caller closes the handle.
 */
export async function openTarMemberFile(index: TarIndex, options?: OpenOptions): Promise<FileHandle> {
  options?.signal?.throwIfAborted();
  return openUnchanged(index);
}

export async function openTarMember(index: TarIndex, member: TarMember, options?: OpenOptions): Promise<Readable> {
  options?.signal?.throwIfAborted();
  const handle = await openUnchanged(index);
  if (member.size === 0) {
    await handle.close();
    return Readable.from([]);
  }
  return createReadStream(index.path, {
    fd: handle,
    start: member.offset,
    end: member.offset + member.size - 1,
    highWaterMark: READ_CHUNK,
    ...(options?.signal !== undefined && { signal: options.signal }),
  });
}

async function openUnchanged(index: TarIndex): Promise<FileHandle> {
  const { path, stamp } = index;
  const handle = await open(path, READ_THEN_CHECK).catch((err: unknown) => {
    if ((err as { code?: unknown }).code === 'ENOENT') throw invalid(path, `${path} was removed after it was read; push again`);
    throw err;
  });
  const stats = await handle.stat().catch(async (err: unknown) => {
    await handle.close();
    throw err;
  });
  if (stats.dev !== stamp.dev || stats.ino !== stamp.ino || stats.size !== stamp.size || stats.mtimeMs !== stamp.mtimeMs) {
    await handle.close();
    throw invalid(path, `${path} changed after it was read (it was replaced or written to); push again once nothing writes to it`);
  }
  return handle;
}

function memberOf(path: string, block: Buffer, flag: string, pending: Pending | undefined, offset: number, size: number): TarMember | undefined {
  // POSIX ustar splits long names into prefix + name; GNU's magic ("ustar  ") uses those bytes for other things.
  const ustar = block.toString('latin1', 257, 263) === 'ustar\0';
  const prefix = ustar ? cString(block, 345, 155) : '';
  const shortName = cString(block, 0, 100);
  const raw = pending?.path ?? (prefix !== '' ? `${prefix}/${shortName}` : shortName);
  const linkname = pending?.linkpath ?? cString(block, 157, 100);

  let type: TarMember['type'];
  if (flag === '0' || flag === '7' || flag === '\0') type = flag === '\0' && raw.endsWith('/') ? 'directory' : 'file';
  else if (flag === '5') type = 'directory';
  else if (flag === '2') type = 'symlink';
  else if (flag === '1') type = 'hardlink';
  else type = 'other';

  if (raw.startsWith('/') || raw.split('/').includes('..')) {
    throw invalid(path, `${path} has a member named "${raw}", which leads outside the archive; rxpush refuses archives with absolute or ".." member names, re-create it with relative names`);
  }
  const name = raw
    .split('/')
    .filter((part) => part !== '' && part !== '.')
    .join('/');
  // The root directory ("./"), which some writers include.
  if (name === '') return undefined;
  return { name, type, offset, size, ...((type === 'symlink' || type === 'hardlink') && { linkname }) };
}

function checkNotCompressed(path: string, block: Buffer): void {
  const magic = block.subarray(0, 6);
  const compressions: [string, string, Buffer][] = [
    ['gzip', 'gunzip', Buffer.from([0x1f, 0x8b])],
    ['zstd', 'unzstd', Buffer.from([0x28, 0xb5, 0x2f, 0xfd])],
    ['xz', 'unxz', Buffer.from([0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00])],
    ['bzip2', 'bunzip2', Buffer.from('BZh')],
  ];
  for (const [name, tool, signature] of compressions) {
    if (magic.subarray(0, signature.length).equals(signature)) {
      throw invalid(path, `${path} is ${name}-compressed; ${tool} it first: rxpush reads a plain tar in place, and a compressed one cannot be read at random`);
    }
  }
}

/** The header checksum: the sum of its bytes with the checksum field read as spaces (unsigned, or signed as old tars wrote). */
function checksumMatches(block: Buffer): boolean {
  const recorded = parseNumber(block, 148, 8);
  if (recorded === undefined) return false;
  let unsigned = 0;
  let signed = 0;
  for (let i = 0; i < BLOCK; i++) {
    const byte = i >= 148 && i < 156 ? 0x20 : block.readUInt8(i);
    unsigned += byte;
    signed += byte >= 0x80 ? byte - 0x100 : byte;
  }
  return recorded === unsigned || recorded === signed;
}

/** A numeric field: octal text (NUL or space terminated), or GNU's base-256 for values that do not fit. */
function parseNumber(block: Buffer, start: number, length: number): number | undefined {
  const first = block.readUInt8(start);
  if (first & 0x80) {
    if (first === 0xff) return undefined; // negative
    let value = first & 0x7f;
    for (let i = 1; i < length; i++) value = value * 256 + block.readUInt8(start + i);
    return Number.isSafeInteger(value) ? value : undefined;
  }
  const text = block.toString('latin1', start, start + length).replace(/[\0 ]+$/, '').replace(/^ +/, '');
  if (!/^[0-7]*$/.test(text)) return undefined;
  const value = text === '' ? 0 : parseInt(text, 8);
  return Number.isSafeInteger(value) ? value : undefined;
}

/** pax records, `LENGTH KEY=VALUE\n`: the keys that change where a member is and what it is called. */
function parsePax(data: Buffer, malformed: () => SourceError): Partial<Pending> {
  const result: Partial<Pending> = {};
  let at = 0;
  while (at < data.length) {
    if (data.readUInt8(at) === 0) break; // NUL padding
    const space = data.indexOf(0x20, at);
    const length = space < 0 ? NaN : Number(data.toString('latin1', at, space));
    if (!Number.isSafeInteger(length) || length <= space - at || at + length > data.length || data.readUInt8(at + length - 1) !== 0x0a) throw malformed();
    const record = data.toString('utf8', space + 1, at + length - 1);
    const equals = record.indexOf('=');
    if (equals < 0) throw malformed();
    const key = record.slice(0, equals);
    const value = record.slice(equals + 1);
    if (key === 'path') result.path = value;
    else if (key === 'linkpath') result.linkpath = value;
    else if (key === 'size') {
      if (!/^\d+$/.test(value) || !Number.isSafeInteger(Number(value))) throw malformed();
      result.size = Number(value);
    }
    at += length;
  }
  return result;
}

/** A NUL-terminated string field. */
function cString(block: Buffer, start: number, length: number): string {
  const field = block.subarray(start, start + length);
  const nul = field.indexOf(0);
  return field.toString('utf8', 0, nul < 0 ? field.length : nul);
}

/** After the end-of-archive block, only zero padding: anything else means a header was wiped. */
async function checkTrailer(handle: FileHandle, path: string, from: number, end: number): Promise<void> {
  const length = Math.min(end - from, MAX_TRAILER_CHECK);
  if (length <= 0) return;
  const rest = Buffer.alloc(length);
  await readExactly(handle, rest, from, path);
  if (!rest.every((byte) => byte === 0)) throw corrupt(path, `it has data after the end-of-archive block at byte ${from - BLOCK}`);
}

async function readExactly(handle: FileHandle, buffer: Buffer, position: number, path: string): Promise<void> {
  let done = 0;
  while (done < buffer.length) {
    const { bytesRead } = await handle.read(buffer, done, buffer.length - done, position + done);
    // The file shrank since it was measured.
    if (bytesRead === 0) throw truncated(path, `it ends at byte ${position + done}, before the ${buffer.length} bytes at byte ${position}`);
    done += bytesRead;
  }
}

function invalid(path: string, message: string): SourceError {
  return new InvalidSourceError(path, message);
}

function truncated(path: string, why: string): SourceError {
  return invalid(path, `${path} is truncated: ${why}; copy or export the archive again`);
}

function corrupt(path: string, why: string): SourceError {
  return invalid(path, `${path} is corrupt: ${why}; copy or export the archive again`);
}
