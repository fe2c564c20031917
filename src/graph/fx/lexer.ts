// A hand-written, single-pass lexer for the Python subset that FX prints. Linear time: every
// character is looked at a bounded number of times, no regular expressions on the input.
//
// Brackets are balanced here, so the parser never sees an unclosed one. A line break inside
// brackets joins lines (Python's implicit continuation) only where a printer would break a line:
// after `,` or an opening bracket, or before a closing one. Anywhere else the line was cut short,
// and the error points at its end rather than at some later line.

import { GraphImportError, MAX_NESTING_DEPTH } from '../errors.ts';

export const Tok = { Name: 0, Int: 1, Float: 2, Str: 3, Punct: 4, Comment: 5, Newline: 6, Eof: 7 } as const;
export type Tok = (typeof Tok)[keyof typeof Tok];

export interface Token {
  kind: Tok;
  /** Names, numbers and punctuation: the source text; strings: the decoded value; comments: text after `#`. */
  text: string;
  line: number;
  col: number;
  /** Offsets into the source: [start, end). */
  start: number;
  end: number;
  /** Indentation of the token's line: 1 + its leading width, tabs to multiples of 8. */
  indent: number;
}

const PUNCT2 = new Set(['//', '**', '<=', '>=', '==', '!=', '->', '<<', '>>']);
const PUNCT1 = '()[]{},:;.=%-+*/@<>~&|^!';
const PUNCT2_SECOND = '/*=<>';
/** PUNCT1 and PUNCT2_SECOND by character code, so telling punctuation apart searches no string. */
const IS_PUNCT1 = charCodeSet(PUNCT1);
const IS_PUNCT2_SECOND = charCodeSet(PUNCT2_SECOND);

function charCodeSet(chars: string): Uint8Array {
  const set = new Uint8Array(128);
  for (let k = 0; k < chars.length; k++) set[chars.charCodeAt(k)] = 1;
  return set;
}
/** Far deeper than any FX argument; bounds the parser's recursion on hostile input. */
export const MAX_BRACKET_DEPTH = MAX_NESTING_DEPTH;
const CLOSER: Record<string, string> = { '(': ')', '[': ']', '{': '}' };

export class SourceText {
  readonly text: string;
  readonly fileName?: string;
  private starts: number[] | null = null;

  constructor(text: string, fileName?: string) {
    this.text = text;
    if (fileName !== undefined) this.fileName = fileName;
  }

  lineStarts(): number[] {
    if (this.starts) return this.starts;
    const s = [0];
    const t = this.text;
    for (let i = t.indexOf('\n'); i >= 0; i = t.indexOf('\n', i + 1)) s.push(i + 1);
    return (this.starts = s);
  }

  lineText(line: number): string {
    const s = this.lineStarts();
    const from = s[line - 1] ?? this.text.length;
    let to = line < s.length ? s[line] - 1 : this.text.length;
    if (to > from && this.text.charCodeAt(to - 1) === 13) to--;
    return this.text.slice(from, to);
  }

  /** 1-based line and column of an offset. */
  position(offset: number): { line: number; col: number } {
    const s = this.lineStarts();
    let lo = 0;
    let hi = s.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (s[mid] <= offset) lo = mid;
      else hi = mid - 1;
    }
    return { line: lo + 1, col: offset - s[lo] + 1 };
  }

  error(detail: string, line: number, col: number, expected?: string): GraphImportError {
    const opts: { source?: string; expected?: string; lineText: string } = { lineText: this.lineText(line) };
    if (this.fileName !== undefined) opts.source = this.fileName;
    if (expected !== undefined) opts.expected = expected;
    return new GraphImportError(detail, line, col, opts);
  }

  errorAt(detail: string, offset: number, expected?: string): GraphImportError {
    const p = this.position(offset);
    return this.error(detail, p.line, p.col, expected);
  }
}

function isNameStart(c: number): boolean {
  return (c >= 97 && c <= 122) || (c >= 65 && c <= 90) || c === 95;
}
function isNameChar(c: number): boolean {
  return isNameStart(c) || (c >= 48 && c <= 57);
}
/** Python's reserved words: never a node name, never a value reference. */
export const PYTHON_KEYWORDS = new Set([
  'False',
  'None',
  'True',
  'and',
  'as',
  'assert',
  'async',
  'await',
  'break',
  'class',
  'continue',
  'def',
  'del',
  'elif',
  'else',
  'except',
  'finally',
  'for',
  'from',
  'global',
  'if',
  'import',
  'in',
  'is',
  'lambda',
  'nonlocal',
  'not',
  'or',
  'pass',
  'raise',
  'return',
  'try',
  'while',
  'with',
  'yield',
]);

/** Whether FX text can hold `s` as a value's name (an ASCII identifier that is not a keyword). */
export function isFxName(s: string): boolean {
  if (s.length === 0 || !isNameStart(s.charCodeAt(0)) || PYTHON_KEYWORDS.has(s)) return false;
  for (let i = 1; i < s.length; i++) if (!isNameChar(s.charCodeAt(i))) return false;
  return true;
}

function isDigit(c: number): boolean {
  return c >= 48 && c <= 57;
}

function describeChar(ch: string): string {
  const cp = ch.codePointAt(0) ?? 0;
  const hex = `U+${cp.toString(16).toUpperCase().padStart(4, '0')}`;
  return cp < 32 || cp === 127 ? hex : `'${ch}' (${hex})`;
}

/** Rejects text that is not text at all, before any other work. */
export function checkNotBinary(src: SourceText): void {
  const t = src.text;
  const nul = t.indexOf('\0');
  const bad = t.indexOf('\uFFFD');
  if (nul < 0 && bad < 0) return;
  const at = nul < 0 ? bad : bad < 0 ? nul : Math.min(nul, bad);
  const what = at === nul ? 'a NUL byte' : 'an invalid UTF-8 sequence (U+FFFD)';
  throw src.errorAt(`binary data: ${what}; this is not FX text (expected a UTF-8 text dump)`, at);
}

/**
 * Tokens on demand, one logical line at a time. The parser releases what it has finished
 * with, so tokens die young instead of all 200k of a large dump living until the end.
 */
export class TokenStream {
  private readonly src: SourceText;
  private buf: Token[] = [];
  /** Absolute index of buf[0]. */
  private base = 0;
  private done = false;
  // Lexer state between logical lines.
  private readonly open: Token[] = [];
  private line = 1;
  private lineStart = 0;
  private indent = 1;
  private atLineStart = true;
  private lineHasTokens = false;
  private i = 0;
  private prev: Token | null = null;

  constructor(src: SourceText) {
    this.src = src;
  }

  /** Token number `k` of the text; past the end, the Eof token. */
  at(k: number): Token {
    while (k - this.base >= this.buf.length && !this.done) this.lexLogicalLine();
    const idx = k - this.base;
    if (idx < 0) throw new Error(`token ${k} was already released`);
    return this.buf[idx < this.buf.length ? idx : this.buf.length - 1];
  }

  /** Tokens before `k` will not be asked for again. */
  release(k: number): void {
    const drop = k - this.base;
    if (drop > 1024 && drop * 2 > this.buf.length) {
      this.buf = this.buf.slice(drop);
      this.base = k;
    }
  }

  private push(kind: Tok, text: string, start: number, end: number): Token {
    const tok: Token = {
      kind,
      text,
      line: this.line,
      col: start - this.lineStart + 1,
      start,
      end,
      indent: this.indent,
    };
    this.buf.push(tok);
    this.prev = tok;
    this.lineHasTokens = true;
    return tok;
  }

  private unclosedError(at: number): GraphImportError {
    const o = this.open[this.open.length - 1];
    const col = at - this.lineStart + 1;
    const where = o.line === this.line ? `col ${o.col}` : `line ${o.line}, col ${o.col}`;
    const close = CLOSER[o.text];
    return this.src.error(
      `expected '${close}' to close '${o.text}' opened at ${where}`,
      this.line,
      col,
      `'${close}'`,
    );
  }

  /** Lexes up to and including the next Newline token (or to the end). */
  private lexLogicalLine(): void {
    const t = this.src.text;
    const n = t.length;
    let i = this.i;
    // Blanks, names and comments, the commonest, are read here; the rest by the steps below.
    while (i < n) {
      if (this.atLineStart) {
        i = this.lexIndent(i);
        continue;
      }
      const c = t.charCodeAt(i);
      if (c === 10) {
        const ended = this.lexLineBreak(i);
        i++;
        if (ended) {
          this.i = i;
          return;
        }
        continue;
      }
      if (c === 32 || c === 9 || c === 12 || c === 13) {
        i++;
        continue;
      }
      if (isNameStart(c)) {
        let j = i + 1;
        while (j < n && isNameChar(t.charCodeAt(j))) j++;
        this.push(Tok.Name, t.slice(i, j), i, j);
        i = j;
        continue;
      }
      if (c === 35 /* # */ && this.open.length === 0) {
        i = this.lexComment(i);
        continue;
      }
      if (c === 39 || c === 34) {
        const from = i;
        i = lexString(this.src, t, i, this.line, this.lineStart, (value, end) =>
          this.push(Tok.Str, value, from, end),
        );
        continue;
      }
      if (isDigit(c) || (c === 46 && isDigit(t.charCodeAt(i + 1)))) {
        i = this.lexNumber(i);
        continue;
      }
      if (c === 60 /* < */) {
        const end = this.lexLambdaClassName(i);
        if (end > 0) {
          i = end;
          continue;
        }
      }
      i = this.lexPunct(i);
    }
    this.i = i;
    this.lexEnd(n);
  }

  private lexComment(i: number): number {
    const t = this.src.text;
    let j = i + 1;
    while (j < t.length && t.charCodeAt(j) !== 10) j++;
    let end = j;
    if (end > i + 1 && t.charCodeAt(end - 1) === 13) end--;
    this.push(Tok.Comment, t.slice(i + 1, end), i, end);
    return j;
  }

  /** Measures indentation as Python does (a tab advances to the next multiple of 8). */
  private lexIndent(i: number): number {
    const t = this.src.text;
    const n = t.length;
    let j = i;
    let width = 0;
    for (; j < n; j++) {
      const w = t.charCodeAt(j);
      if (w === 32) width++;
      else if (w === 9) width = (Math.floor(width / 8) + 1) * 8;
      else if (w !== 12) break;
    }
    this.indent = width + 1;
    this.atLineStart = false;
    return j;
  }

  /**
   * The line break at `i`: the end of a logical line (true), a blank line, or inside brackets a
   * continuation where a printer would break a line.
   */
  private lexLineBreak(i: number): boolean {
    const t = this.src.text;
    const n = t.length;
    let ended = false;
    if (this.open.length > 0) {
      const last = this.prev!;
      const afterBreakable = last.kind === Tok.Punct && (last.text === ',' || last.text in CLOSER);
      let j = i + 1;
      while (j < n && t.charCodeAt(j) <= 32) j++;
      const nextCloses = j < n && (t[j] === ')' || t[j] === ']' || t[j] === '}');
      if (!afterBreakable && !nextCloses) {
        this.i = i;
        throw this.unclosedError(i);
      }
    } else if (this.lineHasTokens) {
      this.push(Tok.Newline, '\n', i, i + 1);
      ended = true;
    }
    this.line++;
    this.lineStart = i + 1;
    this.atLineStart = true;
    this.lineHasTokens = false;
    return ended;
  }

  /** `class <lambda>(torch.nn.Module):` — the class name is not an identifier. 0: not one. */
  private lexLambdaClassName(i: number): number {
    const prev = this.prev;
    if (!prev || prev.kind !== Tok.Name || prev.text !== 'class' || prev.line !== this.line) return 0;
    const t = this.src.text;
    let j = i + 1;
    while (j < t.length && isNameChar(t.charCodeAt(j))) j++;
    if (t.charCodeAt(j) !== 62 /* > */) return 0;
    this.push(Tok.Name, t.slice(i, j + 1), i, j + 1);
    return j + 1;
  }

  private lexNumber(i: number): number {
    const t = this.src.text;
    const n = t.length;
    let j = i;
    let isFloat = false;
    while (j < n && isDigit(t.charCodeAt(j))) j++;
    if (t.charCodeAt(j) === 46 /* . */) {
      isFloat = true;
      j++;
      while (j < n && isDigit(t.charCodeAt(j))) j++;
    }
    const e = t.charCodeAt(j);
    if (e === 101 || e === 69) {
      let k = j + 1;
      const sign = t.charCodeAt(k);
      if (sign === 43 || sign === 45) k++;
      if (isDigit(t.charCodeAt(k))) {
        while (k < n && isDigit(t.charCodeAt(k))) k++;
        j = k;
        isFloat = true;
      }
    }
    if (j < n && isNameChar(t.charCodeAt(j))) {
      throw this.src.error(
        `malformed number '${t.slice(i, j + 1)}'`,
        this.line,
        i - this.lineStart + 1,
        'a number',
      );
    }
    this.push(isFloat ? Tok.Float : Tok.Int, t.slice(i, j), i, j);
    return j;
  }

  /** Brackets (kept balanced), `#` inside them, and operators; anything else is an error. */
  private lexPunct(i: number): number {
    const t = this.src.text;
    const ch = t[i];
    if (ch === '(' || ch === '[' || ch === '{') {
      if (this.open.length >= MAX_BRACKET_DEPTH) {
        throw this.src.error(
          `brackets nested deeper than ${MAX_BRACKET_DEPTH} levels`,
          this.line,
          i - this.lineStart + 1,
        );
      }
      this.open.push(this.push(Tok.Punct, ch, i, i + 1));
      return i + 1;
    }
    if (ch === ')' || ch === ']' || ch === '}') {
      this.close(i, ch);
      return i + 1;
    }
    if (ch === '#') {
      // Inside brackets `#` is not a comment in what FX prints: `[#users=1]` in older str(graph).
      this.push(Tok.Punct, ch, i, i + 1);
      return i + 1;
    }
    if (IS_PUNCT2_SECOND[t.charCodeAt(i + 1)] === 1) {
      const two = t.slice(i, i + 2);
      if (PUNCT2.has(two)) {
        this.push(Tok.Punct, two, i, i + 2);
        return i + 2;
      }
    }
    if (IS_PUNCT1[t.charCodeAt(i)] === 1) {
      this.push(Tok.Punct, ch, i, i + 1);
      return i + 1;
    }
    const cp = t.codePointAt(i) ?? t.charCodeAt(i);
    throw this.src.error(
      `unexpected character ${describeChar(String.fromCodePoint(cp))}`,
      this.line,
      i - this.lineStart + 1,
    );
  }

  /** The closing bracket `ch` at `i`: it must close the innermost open one. */
  private close(i: number, ch: string): void {
    const o = this.open[this.open.length - 1];
    if (!o)
      throw this.src.error(`unmatched '${ch}': no bracket is open here`, this.line, i - this.lineStart + 1);
    if (CLOSER[o.text] !== ch) {
      const col = i - this.lineStart + 1;
      const where = o.line === this.line ? `col ${o.col}` : `line ${o.line}, col ${o.col}`;
      throw this.src.error(
        `expected '${CLOSER[o.text]}' to close '${o.text}' opened at ${where}, found '${ch}'`,
        this.line,
        col,
        `'${CLOSER[o.text]}'`,
      );
    }
    this.open.pop();
    this.push(Tok.Punct, ch, i, i + 1);
  }

  /** The end of the text: no bracket may be open; a last Newline, then Eof. */
  private lexEnd(n: number): void {
    if (this.open.length > 0) throw this.unclosedError(n);
    if (this.lineHasTokens) this.push(Tok.Newline, '\n', n, n);
    this.buf.push({
      kind: Tok.Eof,
      text: '',
      line: this.line,
      col: n - this.lineStart + 1,
      start: n,
      end: n,
      indent: 1,
    });
    this.done = true;
  }
}

const ESCAPES: Record<string, string> = {
  n: '\n',
  t: '\t',
  r: '\r',
  '\\': '\\',
  "'": "'",
  '"': '"',
  '0': '\0',
  a: '\x07',
  b: '\b',
  f: '\f',
  v: '\v',
};

/** Lexes a one-line Python string literal starting at `start`; returns the offset after it. */
function lexString(
  src: SourceText,
  t: string,
  start: number,
  line: number,
  lineStart: number,
  emit: (value: string, end: number) => void,
): number {
  const quote = t.charCodeAt(start);
  let i = start + 1;
  let value = '';
  let chunk = i;
  for (;;) {
    const c = t.charCodeAt(i);
    if (i >= t.length || c === 10 || (c === 13 && t.charCodeAt(i + 1) === 10)) {
      const q = String.fromCharCode(quote);
      throw src.error(
        `unterminated string: expected ${q} to close the string opened at col ${start - lineStart + 1}`,
        line,
        i - lineStart + 1,
        q,
      );
    }
    if (c === quote) {
      value += t.slice(chunk, i);
      emit(value, i + 1);
      return i + 1;
    }
    if (c === 92 /* \ */) {
      value += t.slice(chunk, i);
      const e = t[i + 1];
      if (e === 'x' || e === 'u') {
        const len = e === 'x' ? 2 : 4;
        const hex = t.slice(i + 2, i + 2 + len);
        if (hex.length !== len || !/^[0-9a-fA-F]+$/.test(hex)) {
          throw src.error(
            `bad escape '\\${e}${hex}' in string`,
            line,
            i - lineStart + 1,
            `${len} hex digits`,
          );
        }
        value += String.fromCharCode(parseInt(hex, 16));
        i += 2 + len;
      } else if (e !== undefined && e in ESCAPES) {
        value += ESCAPES[e];
        i += 2;
      } else if (e === undefined || e === '\n' || e === '\r') {
        i += 1; // the line ends here: reported as unterminated on the next turn
      } else {
        value += '\\' + e; // Python keeps unknown escapes verbatim
        i += 2;
      }
      chunk = i;
      continue;
    }
    i++;
  }
}
