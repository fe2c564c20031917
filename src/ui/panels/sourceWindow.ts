// What the source error view draws of a text that may be 50 MB: line offsets found in one pass
// (no array of line strings), the rows a scroll position shows, and a long line cut to a window
// around the column that matters. The view puts only those rows in the DOM.

/** Longest part of a line put on screen; the error line's window is centred on its column. */
export const MAX_SHOWN_CHARS = 2000;

/** Where each line starts (offsets into `text`); line i is text[starts[i], starts[i+1] - 1). */
export function lineStarts(text: string): Uint32Array {
  // One pass; the array doubles as it fills (a 50 MB paste has ~1M lines).
  let starts = new Uint32Array(1024);
  let count = 1;
  for (let i = text.indexOf('\n'); i >= 0; i = text.indexOf('\n', i + 1)) {
    if (count === starts.length) {
      const grown = new Uint32Array(starts.length * 2);
      grown.set(starts);
      starts = grown;
    }
    starts[count++] = i + 1;
  }
  return starts.subarray(0, count);
}

/** Line `i` (0-based) as [start, end) offsets, without its newline or a trailing \r. */
export function lineBounds(text: string, starts: Uint32Array, i: number): [number, number] {
  const start = starts[i];
  let end = i + 1 < starts.length ? starts[i + 1] - 1 : text.length;
  if (end > start && text.charCodeAt(end - 1) === 13) end--;
  return [start, end];
}

/** The part of a line to show and where the caret falls in it: cut around `col` (1-based) when long. */
export function shownLine(
  text: string,
  starts: Uint32Array,
  i: number,
  col?: number,
): { text: string; caret?: number } {
  const [start, end] = lineBounds(text, starts, i);
  const full = end - start;
  if (full <= MAX_SHOWN_CHARS)
    return col === undefined
      ? { text: text.slice(start, end) }
      : { text: text.slice(start, end), caret: col - 1 };
  const from =
    col === undefined ? 0 : Math.max(0, Math.min(col - 1 - MAX_SHOWN_CHARS / 2, full - MAX_SHOWN_CHARS));
  const head = from > 0 ? '…' : '';
  const tail = from + MAX_SHOWN_CHARS < full ? `… (${full} characters)` : '';
  const shown = head + text.slice(start + from, start + from + MAX_SHOWN_CHARS) + tail;
  return col === undefined ? { text: shown } : { text: shown, caret: col - 1 - from + head.length };
}
/** Rows [from, to) to draw for a scroll position, with `overscan` rows either side. */
export function visibleRows(
  scrollTop: number,
  height: number,
  rowPx: number,
  rows: number,
  overscan = 20,
): [number, number] {
  const first = Math.floor(Math.max(0, scrollTop) / rowPx);
  const from = Math.max(0, first - overscan);
  const to = Math.min(rows, first + Math.ceil(Math.max(height, rowPx) / rowPx) + overscan);
  return [from, Math.max(from, to)];
}
