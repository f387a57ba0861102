/** Shared by tests that check what rxpush leaves running. */
import { readFile } from 'node:fs/promises';

/**
 * Resolves once the process `pid` no longer runs: gone, or a zombie (killed, waiting to be reaped by a
 * parent that may have exited itself). Never resolves while it runs: the test's own timeout ends a wait on a leak.
 */
export async function waitGone(pid: number): Promise<void> {
  for (;;) {
    try {
      process.kill(pid, 0);
    } catch {
      return;
    }
    const stat = await readFile(`/proc/${pid}/stat`, 'utf8').catch(() => '');
    // The state follows the command name in parentheses, which may itself hold spaces and parentheses.
    if (stat === '' || stat.slice(stat.lastIndexOf(')') + 2).startsWith('Z')) return;
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

/** The process id a script wrote to `file` (ending with a newline), once it is there. */
export async function pidIn(file: string): Promise<number> {
  for (;;) {
    const text = await readFile(file, 'utf8').catch(() => '');
    if (text.endsWith('\n')) return Number(text.trim());
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}
