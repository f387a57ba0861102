// Event builders and an output collector for the CLI's tests.
import type { Digest, ManifestPushedEvent, ProgressEvent } from '@rxpush/core';

export const A = 'aaaaaaaaaaaa';
export const B = 'bbbbbbbbbbbb';
export const CONFIG = 'cccccccccccc';
export const MANIFEST_DIGEST = `sha256:${'d'.repeat(64)}` as Digest;

const digestOf = (id: string): Digest => `sha256:${id.charAt(0).repeat(64)}` as Digest;
const blob = (id: string, role: 'layer' | 'config' = 'layer') => ({ id, key: digestOf(id), role });

export const preparing = (id: string, role?: 'layer' | 'config'): ProgressEvent => ({ type: 'preparing', ...blob(id, role) });
export const waiting = (id: string, role?: 'layer' | 'config'): ProgressEvent => ({ type: 'waiting', ...blob(id, role) });
export const exists = (id: string, role?: 'layer' | 'config'): ProgressEvent => ({ type: 'exists', ...blob(id, role), digest: digestOf(id) });
export const mounted = (id: string, from: string): ProgressEvent => ({ type: 'mounted', ...blob(id), digest: digestOf(id), from });
export const pushing = (id: string, current: number, total?: number, role?: 'layer' | 'config'): ProgressEvent => ({
  type: 'pushing',
  ...blob(id, role),
  current,
  ...(total !== undefined && { total }),
});
export const pushed = (id: string, role?: 'layer' | 'config'): ProgressEvent => ({ type: 'pushed', ...blob(id, role), digest: digestOf(id), size: 2_000_000 });
export const retrying = (delayMs: number, id?: string): ProgressEvent => ({
  type: 'retrying',
  attempt: 1,
  delayMs,
  reason: 'ECONNRESET',
  ...(id !== undefined && { id }),
});
export const manifestPushed = (tag: string | undefined, digest: Digest = MANIFEST_DIGEST): ManifestPushedEvent => ({
  type: 'manifest-pushed',
  registry: 'localhost:5000',
  repository: 'app',
  ...(tag !== undefined && { tag }),
  digest,
  size: 528,
  mediaType: 'application/vnd.oci.image.manifest.v1+json',
});

/** Collects what is written, like a stream would receive it. */
export function sink(terminal: { isTTY?: boolean; columns?: number } = {}) {
  return {
    ...terminal,
    text: '',
    write(chunk: string) {
      this.text += chunk;
      return true;
    },
  };
}
