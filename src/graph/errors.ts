// Errors and warnings raised while importing a graph. Every error points at a place in the
// user's text (1-based line and column) so the UI can underline it and the CLI can print
// `file:line:col: message` like a compiler.

export interface ImportWarning {
  line: number;
  message: string;
  /** The node the warning is about, when there is one. */
  node?: string;
}

export interface GraphImportErrorOptions {
  /** File name, for `format()`. */
  source?: string;
  /** What the importer expected at that place (`')'`, `a type annotation`, …). */
  expected?: string;
  /** The text of the offending line, for the caret display. */
  lineText?: string;
}

export class GraphImportError extends Error {
  line: number;
  col: number;
  source?: string;
  expected?: string;
  lineText?: string;
  /** The message without the `line L, col C: ` prefix. */
  detail: string;

  constructor(detail: string, line: number, col: number, opts: GraphImportErrorOptions = {}) {
    super(`line ${line}, col ${col}: ${detail}`);
    this.name = 'GraphImportError';
    this.detail = detail;
    this.line = line;
    this.col = col;
    if (opts.source !== undefined) this.source = opts.source;
    if (opts.expected !== undefined) this.expected = opts.expected;
    if (opts.lineText !== undefined) this.lineText = opts.lineText;
  }

  /** `file:line:col: message`, then the offending line and a caret under the column. */
  format(): string {
    const head = `${this.source ?? '<input>'}:${this.line}:${this.col}: ${this.detail}`;
    if (this.lineText === undefined) return head;
    // Long lines (a 3 KB forward signature) are cut around the column so the caret stays visible.
    const max = 160;
    let text = this.lineText;
    let caret = this.col - 1;
    if (text.length > max) {
      const from = Math.max(0, Math.min(caret - max / 2, text.length - max));
      text = (from > 0 ? '…' : '') + text.slice(from, from + max) + (from + max < text.length ? '…' : '');
      caret = caret - from + (from > 0 ? 1 : 0);
    }
    // Keep tabs so the caret lines up under tab-indented text.
    const pad = text.slice(0, caret).replace(/[^\t]/g, ' ');
    return `${head}\n${text}\n${pad}^`;
  }
}
