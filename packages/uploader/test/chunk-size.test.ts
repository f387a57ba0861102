import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import { chunkSizeFor } from '../src/chunk-size.ts';

describe('chunkSizeFor', () => {
  it("raises the chunk size to the registry's OCI-Chunk-Min-Length", () => {
    assert.equal(chunkSizeFor(1024 * 1024, 5 * 1024 * 1024), 5 * 1024 * 1024);
    assert.equal(chunkSizeFor(1024 * 1024, undefined), 1024 * 1024);
  });

  it('refuses chunks below 64 KiB as a usage error, unless the registry asks for less', () => {
    assert.throws(() => chunkSizeFor(65_535, undefined), { code: 'USAGE', message: /^--chunk-size 65535 bytes is too small: below 64 KiB/ });
    assert.throws(() => chunkSizeFor(1000, 4096), { code: 'USAGE', message: /the registry asks for chunks of at least 4096 bytes; use --chunk-size 4096 or more$/ });
    assert.equal(chunkSizeFor(65_536, undefined), 65_536);
    assert.equal(chunkSizeFor(8192, 4096), 8192);
  });
});
