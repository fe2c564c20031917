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

/** Import limits: a paste this large is a mistake, not a graph (a 10,000-node dump is ~2 MB). */
export const DEFAULT_MAX_BYTES = 16 * 1024 * 1024;
export const DEFAULT_MAX_NODES = 200_000;
/** Brackets (FX) and nested argument lists or values (JSON): far deeper than any real graph; bounds recursion. */
export const MAX_NESTING_DEPTH = 64;
/** Submodules inside submodules: FX nests a few levels. */
export const MAX_SUBMODULE_DEPTH = 32;

function formatBytes(n: number): string {
  if (n >= 1024 * 1024) return `${(n / (1024 * 1024)).toFixed(1)} MB`;
  if (n >= 1024) return `${(n / 1024).toFixed(1)} KB`;
  return `${n} bytes`;
}

/** UTF-8 size without encoding the whole text. */
function utf8Length(text: string, stopAbove: number): number {
  let bytes = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c < 0x80) bytes += 1;
    else if (c < 0x800) bytes += 2;
    else if (c >= 0xd800 && c <= 0xdbff) {
      bytes += 4;
      i++;
    } else bytes += 3;
    if (bytes > stopAbove) return bytes;
  }
  return bytes;
}

/** Refuses a text over `maxBytes` (UTF-8) before any other work, naming its size and the limit. */
export function checkInputSize(text: string, maxBytes: number, fileName?: string): void {
  // Every UTF-16 unit is at least one UTF-8 byte and at most three, so most texts are decided
  // by their length alone; only the ambiguous band is measured.
  if (text.length * 3 <= maxBytes) return;
  const bytes = text.length > maxBytes ? null : utf8Length(text, maxBytes);
  if (bytes !== null && bytes <= maxBytes) return;
  refuseInputSize(
    bytes === null ? `at least ${formatBytes(text.length)} (${text.length} characters)` : sizeOf(bytes),
    maxBytes,
    fileName,
  );
}

/** Refuses an input of `bytes` (a file or a blob, not read yet) over `maxBytes`, as checkInputSize does. */
export function checkByteSize(bytes: number, maxBytes: number, fileName?: string): void {
  if (bytes > maxBytes) refuseInputSize(sizeOf(bytes), maxBytes, fileName);
}

const sizeOf = (bytes: number) =>
  bytes < 1024 ? formatBytes(bytes) : `${formatBytes(bytes)} (${bytes} bytes)`;

function refuseInputSize(size: string, maxBytes: number, fileName: string | undefined): never {
  const opts = fileName === undefined ? {} : { source: fileName };
  throw new GraphImportError(
    `input is ${size}, over the limit of ${formatBytes(maxBytes)} (maxBytes = ${maxBytes}); ` +
      'import a smaller dump or raise maxBytes',
    1,
    1,
    opts,
  );
}
