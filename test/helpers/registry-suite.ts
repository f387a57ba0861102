/**
 * A suite's world for end-to-end pushes: the reference registry started with the config the suite needs,
 * a client that reads what landed, a temporary directory, and an OCI layout of generated images in it.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before } from 'node:test';

import { RegistryClient } from '@rxpush/registry-client';

import { makeOciLayout, type ImageSpec, type OciLayoutFixture } from '../../tools/fixtures.ts';
import { startRegistry, type RegistryOptions, type RunningRegistry } from '../../tools/registry.ts';

export interface RegistrySuite {
  registry: RunningRegistry;
  /** A client of the registry with no credentials and no CA of its own, made on first use. */
  readonly client: RegistryClient;
  /** A temporary directory of the suite's own, removed after it. */
  work: string;
  /** An OCI layout (`work/layout`) of the suite's images. */
  layout: OciLayoutFixture;
}

export interface UseRegistryOptions {
  /** How the registry is started (TLS, htpasswd, token auth, schema 1); plain HTTP by default. */
  registry?: RegistryOptions;
  /** The images of the layout; makeOciLayout's default image when not given. */
  images?: ImageSpec[];
}

/**
 * Registers the suite's hooks (call it inside `describe`): everything starts before the first test and is
 * stopped and removed after the last, even on failure. The fields are set once the `before` hook has run;
 * a suite's own `before` registered after this call runs after it, and can use them.
 *
 * @example
 * const suite = useRegistry('cli', { images: [{ tags: ['latest'], layers: [{ files: 1, fileSize: 1_000, seed: 'cli' }] }] });
 * it('pushes', async () => {
 *   assert.equal((await runCli(['push', `oci:${suite.layout.dir}:latest`, `${suite.registry.host}/app:1`])).code, 0);
 *   assert.ok(await suite.client.hasManifest('app', '1'));
 * });
 */
export function useRegistry(name: string, options: UseRegistryOptions = {}): RegistrySuite {
  let client: RegistryClient | undefined;
  const suite = {
    get client(): RegistryClient {
      client ??= new RegistryClient({ registry: suite.registry.host });
      return client;
    },
  } as RegistrySuite;
  before(async () => {
    suite.work = await mkdtemp(join(tmpdir(), `rxpush-${name}-`));
    suite.registry = await startRegistry(options.registry);
    suite.layout = await makeOciLayout(join(suite.work, 'layout'), options.images === undefined ? {} : { images: options.images });
  });
  after(async () => {
    await client?.close();
    await suite.registry?.stop();
    if (suite.work !== undefined) await rm(suite.work, { recursive: true, force: true });
  });
  return suite;
}
