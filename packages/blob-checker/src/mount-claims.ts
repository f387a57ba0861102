import { createHash } from 'node:crypto';
import { open, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';

import { CancelledError, makeDirectory, silentLogger, type Digest, type Logger } from '@rxpush/core';

/** The blob, and where it is to be mounted. */
export interface MountTarget {
  readonly registry: string;
  readonly repository: string;
  readonly digest: Digest;
}

/** Options of {@link MountClaims}. */
export interface MountClaimsOptions {
  /** A claim older than this belongs to a process that died: it is taken over (default 60 s). */
  readonly staleMs?: number;
  /** How often a waiting process looks again (default 50 ms, with jitter). */
  readonly pollMs?: number;
  readonly logger?: Logger;
}

/**
 * Claims, shared through a cache directory, that let one process at a time mount a blob into a repository.
 *
 * Why: the reference registry links a mounted blob by rewriting the repository's link file in place
 * (truncate, then write) and does not prime its descriptor cache, so a manifest PUT that verifies the
 * blob while another client mounts it again can read an empty link and fail with DIGEST_INVALID. Pushes
 * started together all see the blob missing and would all mount it; with claims only the first mounts,
 * and the others, once it is done, look again and find the blob there.
 *
 * A claim is a file created exclusively under `dir/claims/`, removed when the work is done. A directory
 * that cannot be written means no claims: the work runs unguarded, as a cache never stops a push.
 *
 * @example
 * const claims = new MountClaims(cache.dir);
 * await claims.hold({ registry, repository, digest }, signal, () => headThenMount());
 */
export class MountClaims {
  readonly #dir: string;
  readonly #staleMs: number;
  readonly #pollMs: number;
  readonly #logger: Logger;

  constructor(dir: string, options: MountClaimsOptions = {}) {
    this.#dir = join(dir, 'claims');
    this.#staleMs = options.staleMs ?? 60_000;
    this.#pollMs = options.pollMs ?? 50;
    this.#logger = options.logger ?? silentLogger;
  }

  /**
   * Runs `work` while holding the claim on `target`. While another process holds it, waits; once that
   * one is done, `recheck` (if given) runs first, unclaimed, so that waiters who find their answer there
   * (the blob has arrived) go on side by side instead of taking turns. Fails with what `work` or
   * `recheck` throw, or `CancelledError` when `signal` aborts the wait.
   */
  async hold<T>(target: MountTarget, signal: AbortSignal, work: () => Promise<T>, recheck?: () => Promise<T | undefined>): Promise<T> {
    const path = join(this.#dir, claimName(target));
    for (;;) {
      const state = await this.#tryAcquire(path);
      if (state === 'unguarded') return work();
      if (state === 'held') {
        try {
          return await work();
        } finally {
          await rm(path, { force: true }).catch(() => {});
        }
      }
      this.#logger.debug({ path }, 'another push is mounting this blob; waiting for it');
      await this.#waitGone(path, signal);
      const answer = await recheck?.();
      if (answer !== undefined) return answer;
    }
  }

  async #tryAcquire(path: string): Promise<'held' | 'busy' | 'unguarded'> {
    for (;;) {
      try {
        const file = await open(path, 'wx');
        await file.writeFile(`${process.pid}\n`).finally(() => file.close());
        return 'held';
      } catch (error) {
        const code = (error as NodeJS.ErrnoException).code;
        if (code === 'EEXIST') return 'busy';
        if (code === 'ENOENT' && (await makeDirectory(this.#dir).then(() => true, () => false))) continue;
        return this.#unguarded(error);
      }
    }
  }

  /** Until the claim file is gone; a claim older than `staleMs` is removed as its holder's death. */
  async #waitGone(path: string, signal: AbortSignal): Promise<void> {
    for (;;) {
      if (signal.aborted) throw new CancelledError();
      const age = await stat(path).then((s) => Date.now() - s.mtimeMs, () => undefined);
      if (age === undefined) return;
      if (age > this.#staleMs) {
        this.#logger.debug({ path, ageMs: age }, 'taking over a stale mount claim');
        await rm(path, { force: true }).catch(() => {});
        return;
      }
      await delay(this.#pollMs * (0.5 + Math.random()), undefined, { signal }).catch(() => {
        throw new CancelledError();
      });
    }
  }

  #unguarded(error: unknown): 'unguarded' {
    this.#logger.debug({ err: error, dir: this.#dir }, 'mount claims cannot be kept; mounting unguarded');
    return 'unguarded';
  }
}

function claimName({ registry, repository, digest }: MountTarget): string {
  return createHash('sha256').update(`${registry}\n${repository}\n${digest}`).digest('hex');
}
