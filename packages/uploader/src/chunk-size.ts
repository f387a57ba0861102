import { UsageError } from '@rxpush/core';

/** Below this, a chunked upload is thousands of requests per layer for no gain (unless the registry asks for less). */
export const MIN_CHUNK_SIZE = 64 * 1024;

/**
 * The size of the PATCH chunks to send: the one asked for, raised to the registry's OCI-Chunk-Min-Length.
 *
 * @throws {UsageError} when the asked size is below 64 KiB and the registry does not accept chunks that small
 *   (its OCI-Chunk-Min-Length, when it sends one, lowers the floor to itself).
 * @example chunkSizeFor(1024 * 1024, 5 * 1024 * 1024) // 5242880
 */
export function chunkSizeFor(asked: number, registryMin: number | undefined): number {
  const floor = Math.min(MIN_CHUNK_SIZE, registryMin ?? MIN_CHUNK_SIZE);
  if (asked < floor) {
    const why = floor === MIN_CHUNK_SIZE ? 'below 64 KiB, every layer would take thousands of requests' : `the registry asks for chunks of at least ${floor} bytes`;
    throw new UsageError(`--chunk-size ${asked} bytes is too small: ${why}; use --chunk-size ${floor === MIN_CHUNK_SIZE ? '64KiB' : floor} or more`);
  }
  return Math.max(asked, registryMin ?? 0);
}
