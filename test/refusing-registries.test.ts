/**
 * Registries that serve pulls but take no pushes: one in read-only maintenance, one that is a pull-through
 * cache (a mirror). Both answer the push 405; the user gets one line saying what such a registry is.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';

import { startRegistry, type RunningRegistry } from '../tools/registry.ts';
import { assertOneLineError } from './helpers/assert-cli.ts';
import { useRegistry } from './helpers/registry-suite.ts';
import { runCli } from './helpers/run-cli.ts';

const REFUSED = /^rxpush: POST http:\/\/127\.0\.0\.1:\d+\/v2\/app\/blobs\/uploads\/ → 405 .*; the registry does not take this request here: it may be read-only or a pull-through cache \(a mirror\); push to a registry that accepts pushes$/;

describe('pushing to registries that take no pushes', () => {
  const readOnly = useRegistry('read-only', { registry: { readOnly: true }, images: [{ tags: ['latest'], layers: [{ files: 1, fileSize: 10_000, seed: 'refused' }] }] });
  let mirror: RunningRegistry | undefined;
  before(async () => {
    mirror = await startRegistry({ proxyOf: readOnly.registry.url });
  });
  after(async () => {
    await mirror?.stop();
  });

  it('names read-only mode as a likely cause, and pushes nothing', async () => {
    const result = await runCli(['push', `oci:${readOnly.layout.dir}:latest`, `${readOnly.registry.host}/app:1`, '--progress', 'plain']);
    assertOneLineError(result, REFUSED);
    assert.equal(await readOnly.client.hasManifest('app', '1'), undefined);
  });

  it('says the same of a pull-through cache, which answers UNSUPPORTED', async () => {
    const result = await runCli(['push', `oci:${readOnly.layout.dir}:latest`, `${mirror!.host}/app:1`, '--progress', 'plain']);
    assertOneLineError(result, REFUSED);
    assert.match(result.stderr, /→ 405 UNSUPPORTED: The operation is unsupported; the registry/);
  });
});
