import type { FileHandle } from 'node:fs/promises';
import type { Readable } from 'node:stream';

import type { OpenOptions } from '@rxpush/core';
import { InvalidSourceError, SourceError, UnsupportedError } from '@rxpush/core';

import { MAX_DOCUMENT_SIZE } from '../oci/layout-files.js';
import { openTarMember, openTarMemberFile, readTarMember, type TarIndex, type TarMember } from '../oci/tar-index.js';

/** A file of a `docker save` archive, found by the name the archive's metadata gives it. */
export interface ArchiveFile {
  /** The name it was asked for. */
  readonly name: string;
  /** The regular-file member that holds its bytes, once links are followed. */
  readonly member: TarMember;
  /** `ARCHIVE:NAME`, as messages and blob origins name it. */
  readonly origin: string;
}

const COMPRESSIONS: readonly [string, Buffer][] = [
  ['gzip', Buffer.from([0x1f, 0x8b])],
  ['zstd', Buffer.from([0x28, 0xb5, 0x2f, 0xfd])],
  ['xz', Buffer.from([0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00])],
  ['bzip2', Buffer.from('BZh')],
];

// Linux's limit on links followed while resolving one path.
const MAX_LINKS = 40;

/**
 * The files of an indexed `docker save` archive. Symbolic and hard links are followed inside the archive
 * (docker save links repeated layers to the first copy, skopeo links layer directories to `<diffID>.tar`),
 * but a link that leads outside the archive, or loops, is refused with the entry's name.
 */
export class ArchiveFiles {
  readonly #index: TarIndex;
  readonly archive: string;

  constructor(index: TarIndex) {
    this.#index = index;
    this.archive = index.path;
  }

  /** `ARCHIVE:NAME`. */
  origin(name: string): string {
    return `${this.archive}:${name}`;
  }

  /** The names of the archive's top-level directories (a legacy archive's layers). */
  directories(): string[] {
    const names = new Set<string>();
    for (const name of this.#index.members.keys()) {
      const slash = name.indexOf('/');
      if (slash > 0) names.add(name.slice(0, slash));
      else if (this.#index.members.get(name)?.type === 'directory') names.add(name);
    }
    return [...names];
  }

  /** The file `name` (a normalised member name), or undefined when the archive has nothing by that name. */
  find(name: string, what: string): ArchiveFile | undefined {
    const member = this.#resolve(name, what);
    if (member === undefined) return undefined;
    if (member.type !== 'file') throw this.#invalid(`${this.origin(name)} (${what}) is not a regular file but a ${member.type}; the archive is damaged, re-export the image`);
    return { name, member, origin: this.origin(name) };
  }

  /** The file `name`; a SourceError saying `why` it was expected when it is missing. */
  require(name: string, what: string, why: string): ArchiveFile {
    const file = this.find(name, what);
    if (file === undefined) throw this.#invalid(`${this.origin(name)} (${what}) is missing: ${why}; the archive is incomplete, re-export the image`);
    return file;
  }

  /** Reads a small file (manifest, config, layer JSON) whole. */
  async read(file: ArchiveFile, what: string, maxSize = MAX_DOCUMENT_SIZE): Promise<Buffer> {
    if (file.member.size > maxSize) {
      throw this.#invalid(`${file.origin} (${what}) is ${file.member.size} bytes, more than the ${maxSize} a manifest or config may have; the archive is damaged, re-export the image`);
    }
    return readTarMember(this.#index, file.member);
  }

  /**
   * Fails unless a layer file is a plain tar. Docker writes layer tars uncompressed (its diff ID is the
   * file's hash); a compressed one from another tool would only fail later, at its digest check.
   */
  async checkPlainTar(file: ArchiveFile, what: string): Promise<void> {
    const head = await readTarMember(this.#index, { ...file.member, size: Math.min(file.member.size, 6) });
    const compression = COMPRESSIONS.find(([, magic]) => head.subarray(0, magic.length).equals(magic))?.[0];
    if (compression !== undefined) {
      throw new UnsupportedError(
        `${file.origin} (${what}) is ${compression}-compressed; rxpush pushes docker-save layers that are plain tars, as docker save writes them: re-create the archive with docker save`,
      );
    }
  }

  /** Streams a file's bytes straight from the archive, in 1 MiB reads. */
  open(file: ArchiveFile, options?: OpenOptions): Promise<Readable> {
    return openTarMember(this.#index, file.member, options);
  }

  /** The archive, checked unchanged, for a reader of a file's bytes into buffers of its own: they start at `offsetOf(file)`. */
  openFile(options?: OpenOptions): Promise<FileHandle> {
    return openTarMemberFile(this.#index, options);
  }

  /** Where a file's bytes start in the archive. */
  offsetOf(file: ArchiveFile): number {
    return file.member.offset;
  }

  /** Follows links component by component, the way a file system resolves a path, refusing to leave the archive. */
  #resolve(name: string, what: string): TarMember | undefined {
    const { members } = this.#index;
    let parts = name.split('/');
    let links = 0;
    for (let i = 0; i < parts.length; ) {
      const here = parts.slice(0, i + 1).join('/');
      const member = members.get(here);
      const isLast = i === parts.length - 1;
      if (member?.type !== 'symlink' && !(member?.type === 'hardlink' && isLast)) {
        i++;
        continue;
      }
      if (++links > MAX_LINKS) throw this.#invalid(`${this.origin(name)} (${what}) goes through more than ${MAX_LINKS} links (they loop); re-create the archive with docker save`);
      const target = member.linkname ?? '';
      const outside = (): SourceError =>
        this.#invalid(
          `${this.origin(name)} (${what}) is a link ${here === name ? '' : `through ${here} `}to "${target}", which leads outside the archive; rxpush refuses links out of an archive: re-create it with docker save`,
        );
      if (target.startsWith('/')) throw outside();
      // A symbolic link is relative to its directory; a hard link names a member from the archive's root.
      const base = member.type === 'symlink' ? parts.slice(0, i) : [];
      const joined: string[] = [];
      for (const part of [...base, ...target.split('/'), ...parts.slice(i + 1)]) {
        if (part === '' || part === '.') continue;
        if (part !== '..') joined.push(part);
        else if (joined.pop() === undefined) throw outside();
      }
      parts = joined;
      i = 0;
    }
    return members.get(parts.join('/'));
  }

  #invalid(message: string): SourceError {
    return new InvalidSourceError(this.archive, message);
  }
}
