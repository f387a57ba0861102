import { constants } from 'node:fs';
import { open, realpath } from 'node:fs/promises';
import { posix } from 'node:path';

import { InvalidSourceError, SourceError } from '@rxpush/core';

import type { TarSplitFiles } from '../tar-split/assembly.js';
import { READ_THEN_CHECK, isCode, isNotFound } from '../shared/files.js';

/**
 * The path of a tar entry's name inside the layer directory, or undefined when it would leave it.
 *
 * Names are handled as latin1 strings: one character per byte, so names that are not UTF-8 keep their
 * bytes, while `/` and `.` (ASCII) keep their meaning for `posix.normalize`. Absolute names and names
 * that climb above the layer (`a/../../x`) are refused; Docker's own layers never have them.
 */
export function layerRelativePath(name: Buffer): string | undefined {
  const text = name.toString('latin1');
  if (text.includes('\0') || text.startsWith('/')) return undefined;
  const normal = posix.normalize(text).replace(/\/+$/, '');
  if (normal === '.' || normal === '..' || normal.startsWith('../') || normal === '') return undefined;
  return normal;
}

/** A name (or latin1 path) as people read it: UTF-8 where it is, replacement characters where not. */
export function displayName(latin1: string): string {
  return Buffer.from(latin1, 'latin1').toString('utf8');
}

/**
 * Opens files of one layer's directory for tar-split reassembly, refusing anything that would read
 * outside it: names that escape (see {@link layerRelativePath}), a symbolic link as the file itself
 * (O_NOFOLLOW), and parent directories that are or pass through symbolic links (a directory's real
 * path must be the path itself; checked once per directory). Everything opened is a regular file.
 *
 * `origin` names the layer in messages.
 */
export function layerFiles(dir: string, origin: string): TarSplitFiles {
  // The layer directory itself may sit behind links (a data root on another disk): only what is below it is checked.
  let root: Promise<string> | undefined;
  const checkedDirs = new Map<string, Promise<void>>();

  const checkDir = (realRoot: string, relDir: string): Promise<void> => {
    let checked = checkedDirs.get(relDir);
    if (checked === undefined) {
      const path = Buffer.from(`${realRoot}/${relDir}`, 'latin1');
      checked = realpath(path, { encoding: 'buffer' }).then(
        (real) => {
          if (!real.equals(path)) {
            throw new InvalidSourceError(displayName(path.toString('latin1')),
              `${displayName(path.toString('latin1'))} (a file of layer ${origin}) leads through a symbolic link to ${displayName(real.toString('latin1'))}: rxpush reads a layer's files only inside ${dir}; the layer's files are damaged, pull or load the image again`,
            );
          }
        },
        (err: unknown) => {
          if (isNotFound(err)) throw missing(`${realRoot}/${relDir}`);
          throw err;
        },
      );
      checkedDirs.set(relDir, checked);
    }
    return checked;
  };

  const missing = (latin1Path: string): SourceError => {
    const path = displayName(latin1Path);
    return new InvalidSourceError(path, `${path} (a file of layer ${origin}) is missing: the layer's files are damaged, pull or load the image again`);
  };

  return {
    async open(name) {
      const rel = layerRelativePath(name);
      if (rel === undefined) {
        throw new InvalidSourceError(origin,
          `layer ${origin} names the file "${name.toString('utf8')}", which is outside the layer: its tar-split metadata is damaged or crafted; rxpush refuses to read it`,
        );
      }
      root ??= realpath(dir).then((real) => Buffer.from(real, 'utf8').toString('latin1'));
      const realRoot = await root;
      const relDir = posix.dirname(rel);
      if (relDir !== '.') await checkDir(realRoot, relDir);
      const latin1Path = `${realRoot}/${rel}`;
      const path = displayName(latin1Path);
      const handle = await open(Buffer.from(latin1Path, 'latin1'), READ_THEN_CHECK | constants.O_NOFOLLOW).catch((err: unknown) => {
        if (isNotFound(err)) throw missing(latin1Path);
        if (isCode(err, 'ELOOP')) {
          throw new InvalidSourceError(path, `${path} (a file of layer ${origin}) is a symbolic link where the layer has a file with content; the layer's files are damaged, pull or load the image again`);
        }
        throw err;
      });
      try {
        const stats = await handle.stat();
        if (!stats.isFile()) {
          throw new InvalidSourceError(path, `${path} (a file of layer ${origin}) is not a regular file where the layer has one; the layer's files are damaged, pull or load the image again`);
        }
      } catch (err) {
        await handle.close();
        throw err;
      }
      return { handle, path };
    },
  };
}
