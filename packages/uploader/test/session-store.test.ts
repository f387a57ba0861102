import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtemp, readFile, readdir, rm, stat, symlink, writeFile } from 'node:fs/promises';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it, type TestContext } from 'node:test';

import { fileSessionStore } from '../src/session-store.ts';

async function dir(t: TestContext): Promise<string> {
  const path = await mkdtemp(join(tmpdir(), 'rxpush-sessions-'));
  t.after(() => rm(path, { recursive: true, force: true }));
  return path;
}

/** The one session file the store keeps in `cache`. */
async function sessionFile(cache: string): Promise<string> {
  const [name] = await readdir(join(cache, 'uploads'));
  return join(cache, 'uploads', name!);
}

const key = { registry: 'r.example', repository: 'app', blob: `sha256:${'a'.repeat(64)}`, size: 300 };
const session = { location: 'https://r.example/v2/app/blobs/uploads/u1?_state=s', offset: 128, chunkSize: 64 };

/** A store in a directory of its own, holding `session` for `key` as an upload that ended left it (kept, released). */
async function keptSession(t: TestContext): Promise<{ cache: string; store: ReturnType<typeof fileSessionStore> }> {
  const cache = await dir(t);
  const store = fileSessionStore(cache);
  await store.save(key, session);
  store.release(key);
  return { cache, store };
}

describe('fileSessionStore', () => {
  it('keeps a session for the same blob, repository and registry, readable by the user only, until forgotten', async (t) => {
    const { cache, store } = await keptSession(t);
    assert.deepEqual(await store.load(key), session);
    const [file] = await readdir(join(cache, 'uploads'));
    assert.equal((await stat(join(cache, 'uploads', file!))).mode & 0o777, 0o600);
    assert.equal(await store.load({ ...key, repository: 'other' }), undefined);
    assert.equal(await store.load({ ...key, size: 301 }), undefined, 'a blob of another size is another blob');
    await store.forget(key);
    assert.equal(await store.load(key), undefined);
  });

  it('treats what it cannot trust as no session: garbage, a symlink, a directory that cannot be made', async (t) => {
    const { cache, store } = await keptSession(t);
    const path = await sessionFile(cache);
    await writeFile(path, '{"registry": garbage');
    assert.equal(await store.load(key), undefined);
    await rm(path);
    await writeFile(join(cache, 'elsewhere.json'), JSON.stringify({ ...key, ...session }));
    await symlink(join(cache, 'elsewhere.json'), path);
    assert.equal(await store.load(key), undefined, 'only regular files are read');
    const blocked = join(cache, 'file');
    await writeFile(blocked, '');
    const broken = fileSessionStore(blocked);
    await broken.save(key, session);
    assert.equal(await broken.load(key), undefined);
  });

  it('leaves alone a session another running process saved (a push of the same blob at the same time), and resumes it once that process has ended', async (t) => {
    const { cache, store } = await keptSession(t);
    const file = await sessionFile(cache);
    const saved = JSON.parse(await readFile(file, 'utf8')) as Record<string, unknown>;
    assert.deepEqual([saved['pid'], saved['host']], [process.pid, hostname()]);
    const ownedBy = (owner: Record<string, unknown>): Promise<void> => writeFile(file, JSON.stringify({ ...saved, ...owner }));

    const other = spawn(process.execPath, ['-e', 'setTimeout(() => {}, 60_000)'], { stdio: 'ignore' });
    t.after(() => other.kill('SIGKILL'));
    await once(other, 'spawn');
    await ownedBy({ pid: other.pid });
    assert.equal(await store.load(key), undefined, 'a live session of another push');
    other.kill('SIGKILL');
    await once(other, 'exit');
    assert.deepEqual(await store.load(key), session, 'the push that saved it has ended');

    // One saved by this process (a push tried again in one library process), by another machine sharing the
    // directory (which cannot be asked), or by an rxpush that did not say: resumed as before.
    await ownedBy({ pid: process.pid });
    assert.deepEqual(await store.load(key), session);
    await ownedBy({ pid: 1, host: `not-${hostname()}` });
    assert.deepEqual(await store.load(key), session);
    await ownedBy({ pid: undefined, host: undefined });
    assert.deepEqual(await store.load(key), session);
  });

  it('leaves alone a session an upload still running in this process saved (two push() calls at once), until it ends', async (t) => {
    const cache = await dir(t);
    // Every push makes a store of its own: the upload that saved the session is another push's.
    const first = fileSessionStore(cache);
    const second = fileSessionStore(cache);
    await first.save(key, session);
    assert.equal(await second.load(key), undefined, 'the first upload is still sending into it');
    first.release(key);
    assert.deepEqual(await second.load(key), session, 'the first upload ended and kept it for a later push');
    await second.save(key, { ...session, offset: 192 });
    await first.forget(key);
    await second.save(key, { ...session, offset: 256 });
    assert.equal(await first.load(key), undefined, 'saved again by a running upload');
    second.release(key);
    assert.deepEqual(await first.load(key), { ...session, offset: 256 });
  });
});
