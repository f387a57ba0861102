/** Helpers that build and then damage real OCI image layouts in temporary directories. */
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { constants } from 'node:fs';
import { mkdtemp, open, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestContext } from 'node:test';
import { promisify } from 'node:util';

import { makeOciLayout, type MakeOciLayoutOptions, type OciLayoutFixture } from '../../../tools/fixtures.js';

// Loose on purpose: the tests write damaged documents.
export type Json = Record<string, any>;

/** A fresh layout in its own temporary directory, removed when the test ends. */
export async function layout(t: TestContext, options?: MakeOciLayoutOptions): Promise<OciLayoutFixture> {
  const dir = await tempDir(t);
  return makeOciLayout(dir, options);
}

export async function tempDir(t: TestContext): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'rxpush-graph-reader-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

/**
 * Puts a named pipe (FIFO) at `path`, as `rxpush push docker-archive:<(docker save app)` gives. Should a reader
 * still wait in open() for a writer after 3 s (the bug the tests look for), the pipe is opened for writing and
 * closed: the reader is let go, the test process can end, and `waited()` says so for the test to fail.
 */
export async function pipeAt(t: TestContext, path: string): Promise<{ waited(): boolean }> {
  await rm(path, { force: true });
  await promisify(execFile)('mkfifo', [path]);
  let waited = false;
  const letGo = setTimeout(() => {
    waited = true;
    void open(path, constants.O_RDWR | constants.O_NONBLOCK).then((handle) => handle.close());
  }, 3_000);
  t.after(() => clearTimeout(letGo));
  return { waited: () => waited };
}

export function blobPath(dir: string, digest: string): string {
  return join(dir, 'blobs', 'sha256', digest.slice('sha256:'.length));
}

/** Writes bytes as a blob and returns its descriptor fields. */
export async function writeBlob(dir: string, content: string | Uint8Array): Promise<{ digest: string; size: number }> {
  const bytes = typeof content === 'string' ? Buffer.from(content) : content;
  const digest = `sha256:${createHash('sha256').update(bytes).digest('hex')}`;
  await writeFile(blobPath(dir, digest), bytes);
  return { digest, size: bytes.length };
}

export async function readJson(path: string): Promise<Json> {
  return JSON.parse(await readFile(path, 'utf8')) as Json;
}

export async function editIndex(dir: string, edit: (index: Json) => void): Promise<void> {
  const file = join(dir, 'index.json');
  const index = await readJson(file);
  edit(index);
  await writeFile(file, JSON.stringify(index));
}

/**
 * Replaces a manifest with `edit`ed bytes stored under their own digest, and points index.json at them,
 * as a tool that wrote a bad manifest would have. Returns the new digest.
 */
export async function editManifest(dir: string, digest: string, edit: (manifest: Json) => string | void): Promise<string> {
  const manifest = await readJson(blobPath(dir, digest));
  const replaced = edit(manifest);
  const written = await writeBlob(dir, replaced ?? JSON.stringify(manifest));
  await editIndex(dir, (index) => {
    for (const entry of index.manifests) {
      if (entry.digest === digest) Object.assign(entry, written);
    }
  });
  return written.digest;
}

/** Adds an OCI index over the images' manifests (or `children`) to index.json, named `name`. Returns its descriptor fields. */
export async function addIndex(fixture: OciLayoutFixture, name: string, children?: Json[]): Promise<{ digest: string; size: number }> {
  const platforms = [
    { architecture: 'amd64', os: 'linux' },
    { architecture: 'arm64', os: 'linux', variant: 'v8' },
  ];
  const index = {
    schemaVersion: 2,
    mediaType: 'application/vnd.oci.image.index.v1+json',
    manifests:
      children ??
      fixture.images.map((image, i) => ({
        mediaType: image.manifestMediaType,
        digest: image.manifestDigest,
        size: image.manifestSize,
        platform: platforms[i % platforms.length],
      })),
  };
  const written = await writeBlob(fixture.dir, JSON.stringify(index));
  await editIndex(fixture.dir, (top) => {
    top.manifests.push({ mediaType: index.mediaType, ...written, annotations: { 'org.opencontainers.image.ref.name': name } });
  });
  return written;
}
