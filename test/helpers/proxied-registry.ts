/**
 * A suite's world for fault tests: the reference registry behind a fault-injecting proxy, a client that
 * talks to the registry directly (to check what landed), and an OCI layout of generated images.
 */
import { after, afterEach, before } from 'node:test';

import type { RegistryClient } from '@rxpush/registry-client';

import type { ImageSpec } from '../../tools/fixtures.ts';
import { startFaultProxy, type FaultProxy } from './fault-proxy.ts';
import { useRegistry, type RegistrySuite } from './registry-suite.ts';

export interface ProxiedRegistry extends RegistrySuite {
  proxy: FaultProxy;
  /** A client of the registry itself, bypassing the proxy (the suite's `client`). */
  readonly direct: RegistryClient;
}

/**
 * Registers the suite's hooks (call it inside `describe`): everything starts before the first test, the
 * proxy's faults are cleared after each test, and all is stopped and removed after the last, even on failure.
 * The fields are set once the `before` hooks have run.
 */
export function useProxiedRegistry(name: string, images: ImageSpec[]): ProxiedRegistry {
  let proxy: FaultProxy | undefined;
  // Hooks run in the order they are registered: this one first, so the proxy closes before the registry behind it stops.
  after(() => proxy?.close());
  const suite = useRegistry(name, { images });
  before(async () => {
    proxy = await startFaultProxy({ target: suite.registry.host });
  });
  afterEach(() => proxy?.clearFaults());
  return {
    get registry() {
      return suite.registry;
    },
    get client() {
      return suite.client;
    },
    get direct() {
      return suite.client;
    },
    get work() {
      return suite.work;
    },
    get layout() {
      return suite.layout;
    },
    get proxy() {
      return proxy!;
    },
  };
}
