import { realpath, stat } from 'node:fs/promises';
import { join } from 'node:path';

import { InvalidSourceError, SourceNotFoundError } from '@rxpush/core';

import { fileBlobSource } from './file-blob-source.js';
import { isNotFound, tildeHint } from '../shared/files.js';
import { findBlob, readSmallFile, type LayoutDir, type LayoutFiles } from './layout-files.js';

/** The files of an OCI image layout directory (`oci:PATH`); fails when PATH is not a directory. */
export async function openLayoutDirectory(dir: string): Promise<LayoutFiles> {
  const stats = await stat(dir).catch((err: unknown) => {
    if (isNotFound(err)) throw new SourceNotFoundError(dir, `OCI layout directory ${dir} does not exist; check PATH in oci:PATH[:REF]${tildeHint(dir, 'oci:')}`);
    throw err;
  });
  if (!stats.isDirectory()) {
    throw new InvalidSourceError(dir, `${dir} is not a directory; oci:PATH needs an OCI image layout directory (for a tar file use oci-archive:PATH)`);
  }
  const layout: LayoutDir = { dir, realDir: await realpath(dir) };
  return {
    transport: 'oci',
    location: dir,
    display: (name) => join(dir, name),
    readRootFile: (name, what) =>
      readSmallFile(join(dir, name), what).catch((err: unknown) => {
        if (isNotFound(err)) return undefined;
        throw err;
      }),
    findBlob: async (digest, what) => {
      const { path, size } = await findBlob(layout, digest, what);
      return {
        path,
        size,
        read: (whatNow) => readSmallFile(path, whatNow),
        source: (descriptor, role, diffId) => fileBlobSource(descriptor, role, path, diffId),
      };
    },
    notALayout: (why) =>
      new InvalidSourceError(dir,
        `${dir} is not an OCI image layout (${why}); point oci:PATH at a directory written by e.g. skopeo copy … oci:DIR or docker buildx build --output type=oci,tar=false`,
      ),
  };
}
