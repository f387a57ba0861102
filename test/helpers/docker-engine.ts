/**
 * A suite's private Docker Engine, for the end-to-end tests that load images into dockerd or pull back
 * what rxpush pushed. Where dockerd cannot run (not root, docker.io not installed), the tests that need
 * it are skipped saying why, and the rest of the suite still runs.
 */
import { after, before, type TestContext } from 'node:test';

import { startDockerd, type RunningDockerd, type StartDockerdOptions } from '../../tools/dockerd.ts';

export interface SuiteDockerd {
  /** The engine; throws when there is none (a test calls `require` first). Set once the `before` hook has run. */
  readonly engine: RunningDockerd;
  /** Why there is no engine, once the `before` hook has run; undefined when there is one. */
  readonly skipped: string | undefined;
  /** Marks test `t` skipped, saying why, when there is no engine; true when there is one. */
  require(t: TestContext): boolean;
}

/**
 * Registers the suite's hooks (call it inside `describe`): dockerd starts in a `before` hook and is stopped
 * after the last test, even on failure. Hooks run in the order they are registered, so a suite's own `before`
 * that needs the engine goes after this call, and one whose files `options` names goes before it.
 *
 * @example
 * const dockerd = useDockerd();
 * it('pulls back what was pushed', async (t) => {
 *   if (!dockerd.require(t)) return;
 *   await dockerd.engine.docker(['pull', ref]);
 * });
 */
export function useDockerd(options: StartDockerdOptions | (() => StartDockerdOptions) = {}): SuiteDockerd {
  let engine: RunningDockerd | undefined;
  let skipped: string | undefined;
  before(async () => {
    const started = await startDockerd(typeof options === 'function' ? options() : options);
    if ('skipped' in started) skipped = started.skipped;
    else engine = started;
  });
  after(() => engine?.stop());
  return {
    get engine(): RunningDockerd {
      if (engine === undefined) throw new Error(`no Docker engine: ${skipped ?? 'its before hook has not run'}`);
      return engine;
    },
    get skipped() {
      return skipped;
    },
    require(t) {
      if (skipped !== undefined) t.skip(`no Docker engine: ${skipped}`);
      return skipped === undefined;
    },
  };
}
