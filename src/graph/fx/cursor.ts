// A position in the lexer's token stream, with the checks every FX form's reader makes: what
// comes next, what was expected there, and an error that names the line and column.

import { Tok as TokKinds, type SourceText, type Token, type TokenStream } from './lexer.ts';

// A module-level copy: some transpilers turn every use of an imported binding into a getter call.
const Tok = TokKinds;

export const CLOSERS = new Set([')', ']', '}']);
export const OPENERS = new Set(['(', '[', '{']);

export class TokenCursor {
  readonly src: SourceText;
  readonly toks: TokenStream;
  pos = 0;

  constructor(src: SourceText, toks: TokenStream) {
    this.src = src;
    this.toks = toks;
  }

  peek(k = 0): Token {
    return this.toks.at(this.pos + k);
  }

  next(): Token {
    const t = this.toks.at(this.pos);
    if (t.kind !== Tok.Eof) this.pos++;
    return t;
  }

  /** Tokens before the current one will not be asked for again. */
  release(): void {
    this.toks.release(this.pos);
  }

  isPunct(t: Token, s: string): boolean {
    return t.kind === Tok.Punct && t.text === s;
  }

  isName(t: Token, s?: string): boolean {
    return t.kind === Tok.Name && (s === undefined || t.text === s);
  }

  /** The end of a line or of the text. */
  isLineEnd(t: Token): boolean {
    return t.kind === Tok.Newline || t.kind === Tok.Eof;
  }

  describe(t: Token): string {
    switch (t.kind) {
      case Tok.Newline:
        return 'end of line';
      case Tok.Eof:
        return 'end of input';
      case Tok.Str:
        return `string ${JSON.stringify(t.text.length > 40 ? t.text.slice(0, 40) + '…' : t.text)}`;
      case Tok.Comment:
        return 'a comment';
      default:
        return `'${t.text}'`;
    }
  }

  fail(t: Token, detail: string, expected?: string): never {
    throw this.src.error(detail, t.line, t.col, expected);
  }

  expectPunct(s: string, context: string): Token {
    const t = this.next();
    if (!this.isPunct(t, s)) this.fail(t, `expected '${s}' ${context}, found ${this.describe(t)}`, `'${s}'`);
    return t;
  }

  expectName(context: string, s?: string): Token {
    const t = this.next();
    if (!this.isName(t, s)) {
      this.fail(
        t,
        `expected ${s ? `'${s}'` : 'a name'} ${context}, found ${this.describe(t)}`,
        s ? `'${s}'` : 'a name',
      );
    }
    return t;
  }

  /** Ends a statement: an optional trailing comment, then the end of the line. */
  endStatement(context: string): void {
    if (this.peek().kind === Tok.Comment) this.next();
    const t = this.peek();
    if (t.kind === Tok.Newline) {
      this.next();
      return;
    }
    if (t.kind === Tok.Eof) return;
    this.fail(t, `expected end of line after ${context}, found ${this.describe(t)}`, 'end of line');
  }

  skipToEndOfLine(): void {
    while (!this.isLineEnd(this.peek())) this.next();
    if (this.peek().kind === Tok.Newline) this.next();
  }

  /** Skips a bracketed group starting at the current token; returns its closing token. */
  skipBalanced(): Token {
    let depth = 0;
    for (;;) {
      const t = this.next();
      if (t.kind === Tok.Eof) this.fail(t, 'unexpected end of input inside brackets', 'a closing bracket');
      if (t.kind === Tok.Punct && OPENERS.has(t.text)) depth++;
      else if (t.kind === Tok.Punct && CLOSERS.has(t.text) && --depth === 0) return t;
    }
  }

  /** Source text from the start of `a` to the end of `b`, on one line. */
  sourceBetween(a: Token, b: Token): string {
    const raw = this.src.text.slice(a.start, b.end);
    return raw.includes('\n') ? joinLines(raw) : raw;
  }

  /** `import …` / `from … import …` at the start of a line. */
  isImportAt(i: number): boolean {
    const t = this.toks.at(i);
    return t.kind === Tok.Name && (t.text === 'import' || t.text === 'from') && t.indent === 1;
  }

  /** `b8: type` — the name declarations print_readable puts above the class. */
  isDeclarationAt(i: number): boolean {
    const t = this.toks;
    return (
      t.at(i).kind === Tok.Name &&
      this.isPunct(t.at(i + 1), ':') &&
      t.at(i + 2).kind === Tok.Name &&
      this.isLineEnd(t.at(i + 3))
    );
  }

  /** Index of the first token that starts real content: past comments, imports and `b8: type` lines. */
  firstStatement(): number {
    let i = 0;
    const toks = this.toks;
    for (;;) {
      const t = toks.at(i);
      if (t.kind === Tok.Comment || t.kind === Tok.Newline) {
        i++;
        continue;
      }
      if (this.isImportAt(i) || this.isDeclarationAt(i)) {
        while (!this.isLineEnd(toks.at(i))) i++;
        continue;
      }
      return i;
    }
  }
}

/** Each line break with the blanks around it becomes one space (linear: no regex to backtrack). */
function joinLines(raw: string): string {
  const lines = raw.split('\n');
  const last = lines.length - 1;
  return lines.map((l, k) => (k === 0 ? l.trimEnd() : k === last ? l.trimStart() : l.trim())).join(' ');
}
