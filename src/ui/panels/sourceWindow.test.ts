import { describe, expect, it } from 'vitest';
import { MAX_SHOWN_CHARS, lineBounds, lineStarts, shownLine, visibleRows } from './sourceWindow.ts';
import { QWEN_TP2 } from '../testFixtures.ts';

describe("the source error view's window", () => {
  it('finds every line of a real dump as split would, without the strings', () => {
    const starts = lineStarts(QWEN_TP2);
    const lines = QWEN_TP2.split('\n');
    expect(starts.length).toBe(lines.length);
    lines.forEach((l, i) => {
      const [a, b] = lineBounds(QWEN_TP2, starts, i);
      expect(QWEN_TP2.slice(a, b)).toBe(l.replace(/\r$/, ''));
    });
    expect([...lineStarts('')]).toEqual([0]);
    expect([...lineStarts('a\r\nb\n')]).toEqual([0, 3, 5]);
    expect(shownLine('a\r\nb\n', lineStarts('a\r\nb\n'), 0).text).toBe('a');
  });

  it('a 50 MB paste: 632,913 lines indexed, a window of rows drawn', () => {
    const line = 'x'.repeat(78);
    const text = `${line}\n`.repeat(632_912) + line;
    expect(text.length).toBeGreaterThan(50_000_000);
    const starts = lineStarts(text);
    expect(starts.length).toBe(632_913);
    const [from, to] = visibleRows(300_000 * 17, 400, 17, starts.length);
    expect([from, to]).toEqual([300_000 - 20, 300_000 + 24 + 20]);
    expect(visibleRows(0, 400, 17, 10)).toEqual([0, 10]);
    expect(visibleRows(-50, 0, 17, 3)).toEqual([0, 3]);
  });

  it('cuts a long line around the error column, keeping the caret under it', () => {
    const long = 'a'.repeat(30_000) + 'X' + 'b'.repeat(30_000);
    const starts = lineStarts(long);
    const s = shownLine(long, starts, 0, 30_001);
    expect(s.text.length).toBeLessThan(MAX_SHOWN_CHARS + 40);
    expect(s.text[s.caret!]).toBe('X');
    expect(s.text.startsWith('…')).toBe(true);
    expect(s.text.endsWith('… (60001 characters)')).toBe(true);
    const start = shownLine(long, starts, 0);
    expect(start.text.startsWith('aaa')).toBe(true);
    expect(start.caret).toBeUndefined();
    expect(shownLine(long, starts, 0, 3).caret).toBe(2);
  });
});
