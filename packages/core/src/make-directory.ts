import { mkdir, stat } from 'node:fs/promises';
import { dirname } from 'node:path';

/**
 * `mkdir -p` that always ends. Node's `mkdir(path, { recursive: true })` retries forever, burning a core
 * and keeping the process alive, where mkdir answers ENOENT under a parent that exists (anywhere under
 * /proc/PID, for one: a cache directory set there stalled every push). This makes each missing parent
 * once, from the top down, and throws what mkdir said when a directory still cannot be made.
 *
 * @example await makeDirectory(join(cacheDir, 'uploads'), 0o700)
 */
export async function makeDirectory(path: string, mode?: number): Promise<void> {
  const options = mode === undefined ? undefined : { mode };
  try {
    await mkdir(path, options);
    return;
  } catch (error) {
    if (await isDirectoryAfter(error, path)) return;
    const parent = dirname(path);
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT' || parent === path) throw error;
    await makeDirectory(parent, mode);
  }
  // The parent exists now: one more try, and whatever mkdir says is the answer.
  try {
    await mkdir(path, options);
  } catch (error) {
    if (!(await isDirectoryAfter(error, path))) throw error;
  }
}

/** Whether mkdir failed only because the directory is already there (made meanwhile by someone else too). */
async function isDirectoryAfter(error: unknown, path: string): Promise<boolean> {
  if ((error as NodeJS.ErrnoException).code !== 'EEXIST') return false;
  return stat(path).then((info) => info.isDirectory(), () => false);
}
