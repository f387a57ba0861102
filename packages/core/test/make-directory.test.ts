import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdtemp, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';

import { makeDirectory } from '@rxpush/core';

describe('makeDirectory', () => {
  let root: string;
  before(async () => {
    root = await mkdtemp(join(tmpdir(), 'rxpush-mkdir-'));
  });
  after(async () => {
    await rm(root, { recursive: true, force: true });
  });

  it('makes every missing parent, with the mode asked for, and accepts a directory that is there', async () => {
    const path = join(root, 'a', 'b', 'c');
    await makeDirectory(path, 0o700);
    assert.ok((await stat(path)).isDirectory());
    assert.equal((await stat(join(root, 'a'))).mode & 0o777, 0o700);
    await makeDirectory(path, 0o700);
  });

  it('throws what mkdir said where a file is in the way', async () => {
    await writeFile(join(root, 'file'), '');
    await assert.rejects(makeDirectory(join(root, 'file')), { code: 'EEXIST' });
    await assert.rejects(makeDirectory(join(root, 'file', 'below')), { code: 'ENOTDIR' });
  });

  it('gives up under /proc/PID, where mkdir says ENOENT below a parent that exists (Node\'s recursive mkdir loops forever there)', { skip: !existsSync('/proc/self/fd') && 'no /proc here' }, async () => {
    await assert.rejects(makeDirectory(`/proc/${process.pid}/rxpush/cache`), { code: 'ENOENT' });
  });
});
