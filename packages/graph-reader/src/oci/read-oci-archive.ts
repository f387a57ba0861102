import { stat } from 'node:fs/promises';

import type { BlobSource, Descriptor, Digest, OpenOptions, SourceRecord } from '@rxpush/core';
import { BlobMissingError, InvalidSourceError, SourceNotFoundError, splitDigest } from '@rxpush/core';

import { isNotFound, tildeHint } from '../shared/files.js';
import { MAX_DOCUMENT_SIZE, type LayoutBlob, type LayoutFiles } from './layout-files.js';
import { indexTar, memberPath, openTarMember, openTarMemberFile, readTarMember, type TarIndex, type TarMember } from './tar-index.js';
import { storedBlobSource } from './file-blob-source.js';
import { readLayout, type ReadOciLayoutOptions } from './read-oci-layout.js';
import type { OciReference } from './reference.js';

/**
 * Reads the images a reference selects from a tarred OCI image layout (`oci-archive:PATH[:REF]`, as
 * `skopeo copy … oci-archive:FILE` writes it) in place: the tar is indexed by its headers, documents
 * are read from their offsets and each blob streams straight out of the archive. Every check of an
 * `oci:` layout applies, as the same reader runs over the archive's files.
 */
export async function readOciArchive(reference: OciReference, options: ReadOciLayoutOptions): Promise<SourceRecord[]> {
  return readLayout(await openOciArchive(reference.dir), reference.ref, options);
}

async function openOciArchive(path: string): Promise<LayoutFiles> {
  const stats = await stat(path).catch((err: unknown) => {
    if (isNotFound(err)) throw new SourceNotFoundError(path, `OCI archive ${path} does not exist; check PATH in oci-archive:PATH[:REF]${tildeHint(path, 'oci-archive:')}`);
    throw err;
  });
  if (stats.isDirectory()) {
    throw new InvalidSourceError(path, `${path} is a directory; oci-archive:PATH needs a tar file (for an OCI layout directory use oci:PATH)`);
  }
  const index = await indexTar(path);
  const display = (name: string) => memberPath(index, name);

  /** The member `name` when it is a regular file; links are refused, not followed. */
  const regularFile = (name: string, what: string): TarMember | undefined => {
    const member = index.members.get(name);
    if (member === undefined) return undefined;
    if (member.type === 'symlink' || member.type === 'hardlink') {
      const kind = member.type === 'symlink' ? 'a symbolic link' : 'a hard link';
      throw new InvalidSourceError(path,
        `${display(name)} (${what}) is ${kind} to "${member.linkname ?? ''}": rxpush reads only regular files in the archive; re-create the archive with the file itself`,
      );
    }
    if (member.type !== 'file') throw new InvalidSourceError(path, `${display(name)} (${what}) is not a regular file; the archive is damaged, re-export the image`);
    return member;
  };
  const readSmall = async (name: string, member: TarMember, what: string): Promise<Buffer> => {
    if (member.size > MAX_DOCUMENT_SIZE) {
      throw new InvalidSourceError(path,
        `${display(name)} (${what}) is ${member.size} bytes, more than the ${MAX_DOCUMENT_SIZE} a manifest, index or config may have; the archive is damaged, re-export the image`,
      );
    }
    return readTarMember(index, member);
  };

  return {
    transport: 'oci-archive',
    location: path,
    display,
    readRootFile: async (name, what) => {
      const member = regularFile(name, what);
      return member === undefined ? undefined : readSmall(name, member, what);
    },
    findBlob: async (digest, what): Promise<LayoutBlob> => {
      // `digest` is validated, so its hex is a safe member name.
      const { algorithm, hex } = splitDigest(digest);
      const name = `blobs/${algorithm}/${hex}`;
      const member = regularFile(name, what);
      if (member === undefined) throw new BlobMissingError(digest, display(name), `${what} names it; the archive is incomplete, re-export the image`);
      return {
        path: display(name),
        size: member.size,
        read: (whatNow) => readSmall(name, member, whatNow),
        source: (descriptor, role, diffId) => memberBlobSource(index, member, display(name), descriptor, role, diffId),
      };
    },
    notALayout: (why) =>
      new InvalidSourceError(path,
        `${path} is not an OCI image archive (${why}); point oci-archive:PATH at a tar written by e.g. skopeo copy … oci-archive:FILE or docker buildx build --output type=oci,dest=FILE`,
      ),
  };
}

/**
 * A stored blob whose bytes are a member of the archive, streamed from its offset on each `open()`, or read
 * from it into the uploader's own buffers (`openFile`, `fileOffset`).
 */
function memberBlobSource(index: TarIndex, member: TarMember, origin: string, descriptor: Descriptor, role: 'config' | 'layer', diffId?: Digest): BlobSource {
  const source = storedBlobSource(descriptor, role, origin, (options?: OpenOptions) => openTarMember(index, member, options), diffId);
  // The descriptor's size is the member's, or the blob is not what the index says: the digest check refuses it.
  if (member.size !== descriptor.size) return source;
  return { ...source, openFile: (options?: OpenOptions) => openTarMemberFile(index, options), fileOffset: member.offset };
}
