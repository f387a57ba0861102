/**
 * A suite's world for fault tests: the reference registry behind a fault-injecting proxy, a client that
 * talks to the registry directly (to check what landed), and an OCI layout of generated images.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, afterEach, before } from 'node:test';

import { RegistryClient } from '@rxpush/registry-client';

import { makeOciLayout, type ImageSpec, type OciLayoutFixture } from '../../tools/fixtures.ts';
import { startRegistry, type RunningRegistry } from '../../tools/registry.ts';
import { startFaultProxy, type FaultProxy } from './fault-proxy.ts';

export interface ProxiedRegistry {
  registry: RunningRegistry;
  proxy: FaultProxy;
  /** A client of the registry itself, bypassing the proxy. */
  direct: RegistryClient;
  /** A temporary directory of the suite's own, removed after it. */
  work: string;
  layout: OciLayoutFixture;
}

/**
 * Registers the suite's hooks (call it inside `describe`): everything starts before the first test, the
 * proxy's faults are cleared after each test, and all is stopped and removed after the last, even on failure.
 * The fields are set once the `before` hook has run.
 */
export function useProxiedRegistry(name: string, images: ImageSpec[]): ProxiedRegistry {
  const env = {} as ProxiedRegistry;
  before(async () => {
    env.work = await mkdtemp(join(tmpdir(), `rxpush-${name}-`));
    env.registry = await startRegistry();
    env.proxy = await startFaultProxy({ target: env.registry.host });
    env.direct = new RegistryClient({ registry: env.registry.host });
    env.layout = await makeOciLayout(join(env.work, 'layout'), { images });
  });
  afterEach(() => env.proxy?.clearFaults());
  after(async () => {
    await env.direct?.close();
    await env.proxy?.close();
    await env.registry?.stop();
    if (env.work !== undefined) await rm(env.work, { recursive: true, force: true });
  });
  return env;
}
