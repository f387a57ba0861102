import { SourceError } from '@rxpush/core';

/** True when `err` is a file system error with this code (ENOENT, EACCES, …). */
export function isCode(err: unknown, code: string): boolean {
  return typeof err === 'object' && err !== null && (err as { code?: unknown }).code === code;
}

/** True for "no such file" and "a path component is not a directory". */
export function isNotFound(err: unknown): boolean {
  return isCode(err, 'ENOENT') || isCode(err, 'ENOTDIR');
}

/**
 * The error for a data root this process may not read, with what to do: Docker keeps it readable by
 * root only, and membership of the docker group opens the daemon's socket, not these files.
 * Other errors are returned as they are.
 */
export function withPermissionHint(err: unknown, source: string): unknown {
  if (!isCode(err, 'EACCES') && !isCode(err, 'EPERM')) return err;
  const path = (err as NodeJS.ErrnoException).path ?? source;
  return new SourceError(
    'INVALID_SOURCE',
    path,
    `cannot read ${path} for ${source}: permission denied; the Docker data root is readable by root only: run rxpush as root (e.g. with sudo), or, as a member of the docker group, push docker-daemon:NAME:TAG through the daemon instead`,
    { cause: err },
  );
}
