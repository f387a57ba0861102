import type { Terminal } from './run-push.js';

/**
 * A process stream (stdout) that may be closed by its reader: `rxpush push … | head -1` closes the pipe
 * after one line, and the next write fails with EPIPE. Progress is only a view of the push, so once
 * the reader is gone the output is dropped, the push goes on, and it ends with the status it would
 * have had; without this, the EPIPE would end the process with a stack trace mid-push.
 *
 * @example const stdout = closableOutput(process.stdout)
 */
export function closableOutput(stream: NodeJS.WriteStream): Terminal {
  let closed = false;
  stream.on('error', () => {
    // EPIPE, or any failure of the stream itself: there is no one left to show progress to.
    closed = true;
  });
  return {
    get isTTY() {
      return stream.isTTY;
    },
    get columns() {
      return stream.columns;
    },
    write(text: string) {
      if (closed || stream.destroyed || !stream.writable) return false;
      return stream.write(text);
    },
  };
}
