// A terminal's screen, for tests of what the progress display leaves on it: what matters to a person is the text
// where it ends up, not the escape sequences that put it there.

/**
 * A screen `columns` wide that applies what is written as a terminal does: text wraps at the last column, `\n`
 * goes to the start of the next row (a tty's output turns it into CR LF), `\r` to the start of this row, and the
 * only sequences the tty renderer writes: cursor up (`ESC[nA`, stopping at the top row), cursor down (`ESC[nB`),
 * erase the row (`ESC[2K`). Any other sequence fails the test. Both stdout and stderr may write to it.
 */
export function screen(columns: number) {
  const rows: string[][] = [[]];
  let row = 0;
  let column = 0;
  /** A character written in the last column leaves the cursor there; the next character wraps first. */
  let pendingWrap = false;
  const put = (char: string): void => {
    if (pendingWrap) {
      row += 1;
      column = 0;
      pendingWrap = false;
    }
    (rows[row] ??= [])[column] = char;
    if (column === columns - 1) pendingWrap = true;
    else column += 1;
  };
  return {
    isTTY: true as const,
    columns,
    write(text: string) {
      for (let i = 0; i < text.length; i += 1) {
        const char = text.charAt(i);
        if (char === '\x1b') {
          const sequence = /^\x1b\[(\d*)([ABK])/.exec(text.slice(i));
          if (sequence === null) throw new Error(`unexpected escape sequence at ${JSON.stringify(text.slice(i, i + 8))}`);
          const count = Number(sequence[1] === '' ? 1 : sequence[1]);
          if (sequence[2] === 'A') row = Math.max(0, row - count);
          else if (sequence[2] === 'B') row += count;
          else rows[row] = [];
          pendingWrap = false;
          i += sequence[0].length - 1;
        } else if (char === '\n') {
          row += 1;
          column = 0;
          pendingWrap = false;
        } else if (char === '\r') {
          column = 0;
          pendingWrap = false;
        } else {
          put(char);
        }
        rows[row] ??= [];
      }
      return true;
    },
    /** The screen's rows, trailing blanks cut, and the empty row the cursor rests on after a last `\n` left out. */
    get lines(): string[] {
      const shown = Array.from(rows, (cells) => Array.from(cells ?? [], (cell) => cell ?? ' ').join('').trimEnd());
      while (shown.length > 0 && shown.at(-1) === '') shown.pop();
      return shown;
    },
  };
}
