import { constants } from 'node:fs';
import { lstat, open, realpath } from 'node:fs/promises';
import { join, sep } from 'node:path';

import type { BlobSource, Descriptor, Digest } from '@rxpush/core';
import { BlobMissingError, InvalidSourceError, SourceError, splitDigest } from '@rxpush/core';

import { READ_THEN_CHECK, isCode, isNotFound } from '../shared/files.js';

/** Manifests, indexes and configs are small; anything bigger is not one and is not read into memory. */
export const MAX_DOCUMENT_SIZE = 4 * 1024 * 1024;

/**
 * The files of an OCI image layout wherever they are kept (a directory, a tar archive): what
 * readLayout reads through, so every check runs the same over each of them.
 */
export interface LayoutFiles {
  /** How the user names such a layout (`oci`, `oci-archive`), for messages and record sources. */
  readonly transport: string;
  /** The directory or archive as the user gave it. */
  readonly location: string;
  /** What messages call the file at `name`, a path relative to the layout's root. */
  display(name: string): string;
  /** Reads a small file at the layout's root (oci-layout, index.json) whole; undefined when there is none. */
  readRootFile(name: string, what: string): Promise<Buffer | undefined>;
  /** Finds the blob of a validated digest, checked to be a regular file inside the layout. */
  findBlob(digest: Digest, what: string): Promise<LayoutBlob>;
  /** The error for a layout without oci-layout or index.json, saying how to make one. */
  notALayout(why: string): SourceError;
}

/** A blob found in a layout. */
export interface LayoutBlob {
  /** What messages call it. */
  readonly path: string;
  readonly size: number;
  /** Reads it whole: for manifests, indexes and configs only (capped at MAX_DOCUMENT_SIZE). */
  read(what: string): Promise<Buffer>;
  /** The blob as a stored BlobSource whose `open()` streams it. */
  source(descriptor: Descriptor, role: 'config' | 'layer', diffId?: Digest): BlobSource;
}

/** An image layout directory: the path as the user gave it and its real path, for containment checks. */
export interface LayoutDir {
  readonly dir: string;
  readonly realDir: string;
}

/** A blob file found in a layout and checked to be a regular file inside it. */
export interface BlobFile {
  readonly path: string;
  readonly size: number;
}

/**
 * Finds the file of a blob, refusing links and paths that leave the layout. `digest` must already be
 * validated (parseDigest), as it becomes part of the path.
 */
export async function findBlob(layout: LayoutDir, digest: Digest, what: string): Promise<BlobFile> {
  const { algorithm, hex } = splitDigest(digest);
  const path = join(layout.dir, 'blobs', algorithm, hex);
  const stats = await lstat(path).catch((err: unknown) => {
    if (isNotFound(err)) throw new BlobMissingError(digest, path, `${what} names it; the layout is incomplete, re-export the image`);
    throw err;
  });
  if (stats.isSymbolicLink()) {
    throw new InvalidSourceError(path, `${path} (${what}) is a symbolic link: rxpush reads only regular files inside the layout; replace the link with the blob itself`);
  }
  if (!stats.isFile()) {
    throw new InvalidSourceError(path, `${path} (${what}) is not a regular file; the layout is damaged, re-export the image`);
  }
  // blobs/ or blobs/<algorithm> may themselves be links that lead elsewhere.
  const real = await realpath(path);
  if (!real.startsWith(layout.realDir + sep)) {
    throw new InvalidSourceError(path, `${path} (${what}) resolves to ${real}, outside the layout ${layout.realDir}; rxpush refuses blobs outside the layout, copy them in`);
  }
  return { path, size: stats.size };
}

/**
 * Reads a small file whole, refusing links at the last path component, non-files and files over `maxSize`.
 * Rejects with the file system error (ENOENT …) when it cannot be opened, for the caller to explain.
 */
export async function readSmallFile(path: string, what: string, maxSize = MAX_DOCUMENT_SIZE): Promise<Buffer> {
  const handle = await open(path, READ_THEN_CHECK | constants.O_NOFOLLOW).catch((err: unknown) => {
    if (isCode(err, 'ELOOP')) throw new InvalidSourceError(path, `${path} (${what}) is a symbolic link: rxpush reads only regular files inside the layout; replace the link with the file itself`);
    throw err;
  });
  try {
    const stats = await handle.stat();
    if (!stats.isFile()) throw new InvalidSourceError(path, `${path} (${what}) is not a regular file; the layout is damaged, re-export the image`);
    if (stats.size > maxSize) {
      throw new InvalidSourceError(path, `${path} (${what}) is ${stats.size} bytes, more than the ${maxSize} a manifest, index or config may have; the layout is damaged, re-export the image`);
    }
    return await handle.readFile();
  } finally {
    await handle.close();
  }
}

/** Fails when a blob file's size is not the size its descriptor records. */
export function checkSize(path: string, actual: number, expected: number, what: string): void {
  if (actual !== expected) {
    throw new InvalidSourceError(path, `${path} (${what}) is ${actual} bytes but its descriptor says ${expected}; the blob is truncated or replaced, re-export the image`);
  }
}
