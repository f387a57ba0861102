import { InvalidSourceError } from '@rxpush/core';

import { isCode } from '../shared/files.js';


/**
 * The error for a data root this process may not read, with what to do: Docker keeps it readable by
 * root only, and membership of the docker group opens the daemon's socket, not these files.
 * Other errors are returned as they are.
 */
export function withPermissionHint(err: unknown, source: string): unknown {
  if (!isCode(err, 'EACCES') && !isCode(err, 'EPERM')) return err;
  const path = (err as NodeJS.ErrnoException).path ?? source;
  return new InvalidSourceError(path,
    `cannot read ${path} for ${source}: permission denied; the Docker data root is readable by root only: run rxpush as root (e.g. with sudo), or, as a member of the docker group, push docker-daemon:NAME:TAG through the daemon instead`,
    { cause: err },
  );
}
