/** Helpers that tar real OCI image layouts (with tar-stream, GNU tar or skopeo) and damage the archives. */
import { execFile } from 'node:child_process';
import { createWriteStream } from 'node:fs';
import { readFile, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import type { TestContext } from 'node:test';
import { promisify } from 'node:util';

import tar from 'tar-stream';

import type { MakeOciLayoutOptions, OciLayoutFixture } from '../../../tools/fixtures.js';
import { blobPath, layout, tempDir } from './layouts.js';

export const run = promisify(execFile);

/** One member to write: a file (default), a directory, or a link. */
export interface ArchiveEntry {
  name: string;
  type?: 'file' | 'directory' | 'symlink' | 'link';
  linkname?: string;
  content?: Uint8Array;
  /** pax records to write before it. */
  pax?: Record<string, string>;
}

/** The members of a layout directory, as `skopeo copy … oci-archive:` writes them. */
export async function layoutEntries(dir: string): Promise<ArchiveEntry[]> {
  const entries: ArchiveEntry[] = [
    { name: 'oci-layout', content: await readFile(join(dir, 'oci-layout')) },
    { name: 'index.json', content: await readFile(join(dir, 'index.json')) },
    { name: 'blobs/', type: 'directory' },
  ];
  for (const algorithm of await readdir(join(dir, 'blobs'))) {
    entries.push({ name: `blobs/${algorithm}/`, type: 'directory' });
    for (const hex of (await readdir(join(dir, 'blobs', algorithm))).sort()) {
      entries.push({ name: `blobs/${algorithm}/${hex}`, content: await readFile(join(dir, 'blobs', algorithm, hex)) });
    }
  }
  return entries;
}

/** Writes `entries` as a tar file with tar-stream. */
export async function writeArchive(file: string, entries: readonly ArchiveEntry[]): Promise<void> {
  const pack = tar.pack();
  const written = pipeline(pack, createWriteStream(file));
  for (const { name, type = 'file', linkname, content, pax } of entries) {
    await new Promise<void>((ok, fail) => {
      const header = { name, type, mode: type === 'directory' ? 0o755 : 0o644, mtime: new Date(0), ...(linkname !== undefined && { linkname }), ...(pax !== undefined && { pax }) };
      const done = (err?: Error | null) => (err ? fail(err) : ok());
      if (type === 'file') pack.entry(header, Buffer.from(content ?? []), done);
      else pack.entry(header, done);
    });
  }
  pack.finalize();
  await written;
}

/** The member name of a blob. */
export function blobMember(digest: string): string {
  return `blobs/sha256/${digest.slice('sha256:'.length)}`;
}

export interface ArchiveFixture {
  fixture: OciLayoutFixture;
  /** The tar file. */
  file: string;
  entries: ArchiveEntry[];
}

/**
 * A layout in a temporary directory and its tar (written with tar-stream), removed when the test ends.
 * `edit` may change the members before they are written.
 */
export async function archive(t: TestContext, options?: MakeOciLayoutOptions, edit?: (entries: ArchiveEntry[]) => ArchiveEntry[] | void): Promise<ArchiveFixture> {
  const fixture = await layout(t, options);
  const file = join(await tempDir(t), 'image.tar');
  let entries = await layoutEntries(fixture.dir);
  entries = edit?.(entries) ?? entries;
  await writeArchive(file, entries);
  return { fixture, file, entries };
}

/** The bytes of a layout's blob. */
export function readBlob(fixture: OciLayoutFixture, digest: string): Promise<Buffer> {
  return readFile(blobPath(fixture.dir, digest));
}
