import assert from 'node:assert/strict';
import { readdir, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { describe, it } from 'node:test';

import { fileReason } from '../src/file-reason.ts';

const failure = (promise: Promise<unknown>): Promise<unknown> => promise.then(() => assert.fail('expected a failure'), (error: unknown) => error);

describe('fileReason', () => {
  it('says in words what is wrong with a path, never Node\'s message with its syscall', async () => {
    assert.equal(fileReason(await failure(readFile('/nonexistent/x'))), 'it does not exist');
    assert.equal(fileReason(await failure(readdir('/etc/passwd')), 'directory'), 'it is not a directory');
    assert.equal(fileReason(await failure(readFile('/etc/passwd/x'))), 'it does not exist');
    assert.equal(fileReason(await failure(readFile(tmpdir()))), 'it is a directory, not a file');
    assert.equal(fileReason(Object.assign(new Error('EACCES: permission denied, open \'/x\''), { code: 'EACCES' })), 'permission denied');
    assert.equal(fileReason(Object.assign(new Error('x'), { code: 'EROFS' })), 'it is on a read-only file system');
    assert.equal(fileReason(Object.assign(new Error('ENOSPC: no space left on device, write'), { code: 'ENOSPC' })), 'the disk is full');
    assert.equal(fileReason(Object.assign(new Error('x'), { code: 'EDQUOT' })), 'the disk quota is used up');
    assert.equal(fileReason(new Error('something else')), 'something else');
  });

  it('says of a file being made that its directory is not there, or that its path runs through a file', async () => {
    assert.equal(fileReason(await failure(writeFile('/nonexistent/x', '')), 'new file'), 'its directory does not exist');
    assert.equal(fileReason(await failure(writeFile('/etc/passwd/x', '')), 'new file'), 'a part of its path is a file, not a directory');
    assert.equal(fileReason(await failure(writeFile(tmpdir(), '')), 'new file'), 'it is a directory, not a file');
  });
});
