import assert from 'node:assert/strict';
import { mkdtemp, readdir, rm, stat, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it, type TestContext } from 'node:test';

import { fileSessionStore } from '../src/session-store.ts';

async function dir(t: TestContext): Promise<string> {
  const path = await mkdtemp(join(tmpdir(), 'rxpush-sessions-'));
  t.after(() => rm(path, { recursive: true, force: true }));
  return path;
}

const key = { registry: 'r.example', repository: 'app', blob: `sha256:${'a'.repeat(64)}`, size: 300 };
const session = { location: 'https://r.example/v2/app/blobs/uploads/u1?_state=s', offset: 128, chunkSize: 64 };

describe('fileSessionStore', () => {
  it('keeps a session for the same blob, repository and registry, readable by the user only, until forgotten', async (t) => {
    const cache = await dir(t);
    const store = fileSessionStore(cache);
    await store.save(key, session);
    assert.deepEqual(await store.load(key), session);
    const [file] = await readdir(join(cache, 'uploads'));
    assert.equal((await stat(join(cache, 'uploads', file!))).mode & 0o777, 0o600);
    assert.equal(await store.load({ ...key, repository: 'other' }), undefined);
    assert.equal(await store.load({ ...key, size: 301 }), undefined, 'a blob of another size is another blob');
    await store.forget(key);
    assert.equal(await store.load(key), undefined);
  });

  it('treats what it cannot trust as no session: garbage, a symlink, a directory that cannot be made', async (t) => {
    const cache = await dir(t);
    const store = fileSessionStore(cache);
    await store.save(key, session);
    const [file] = await readdir(join(cache, 'uploads'));
    const path = join(cache, 'uploads', file!);
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
});
