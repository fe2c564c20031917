// What every FX form reads alike: type annotations, definitions and uses of names, and
// arguments (names, numbers, strings, lists, tuples, `torch.ops.…` values). A form's module
// reads its own headers and node lines with these (see parse.ts for the forms).

import { normalizeTarget } from '../call.ts';
import type { ImportWarning } from '../errors.ts';
import { float, type Arg, type Node, type Ref, type ValueType } from '../ir.ts';
import { lookupOp } from '../ops.ts';
import { CLOSERS, OPENERS, TokenCursor } from './cursor.ts';
import { PYTHON_KEYWORDS, Tok as TokKinds, type SourceText, type Token, type TokenStream } from './lexer.ts';
import { INPUT_ORDER, Scope } from './scope.ts';
import { AnnotationError, parseTypeAnnotation, type ParsedAnnotation } from './typeAnnotation.ts';

// A module-level copy: some transpilers turn every use of an imported binding into a getter call.
const Tok = TokKinds;

export class FxReader extends TokenCursor {
  readonly warnings: ImportWarning[] = [];
  private readonly maxNodes: number;
  private nodeCount = 0;
  private readonly annotations = new Map<string, ParsedAnnotation>();
  /** The graph being read: the top level, or the submodule class being read. */
  scope!: Scope;
  /** str(graph) form: refs carry `%`, bare words are strings. */
  graphMode = false;
  /** Reading a `return`: bare names are refs even in str(graph) form. */
  inReturn = false;

  constructor(src: SourceText, toks: TokenStream, maxNodes: number) {
    super(src, toks);
    this.maxNodes = maxNodes;
  }

  // --- types and names ----------------------------------------------------------------------

  annotation(t: Token, owner: string): ValueType | null {
    try {
      // Dumps repeat a few shapes thousands of times.
      let parsed = this.annotations.get(t.text);
      if (!parsed) this.annotations.set(t.text, (parsed = parseTypeAnnotation(t.text)));
      else if (parsed.type) parsed = { ...parsed, type: copyType(parsed.type) };
      if (parsed.warning)
        this.warnings.push({ line: t.line, node: owner, message: `type of '${owner}': ${parsed.warning}` });
      return parsed.type;
    } catch (e) {
      if (!(e instanceof AnnotationError)) throw e;
      // +1 for the opening quote: annotations carry no escapes, so offsets map to columns.
      throw this.src.error(
        e.message,
        t.line,
        t.col + 1 + Math.min(e.offset, t.end - t.start - 2),
        e.expected,
      );
    }
  }

  /** The quoted type after a `:` already read: `"bf16[4, 8]"`. */
  quotedType(owner: string, after: string, sayFound = true): ValueType | null {
    const a = this.next();
    if (a.kind !== Tok.Str) {
      const found = sayFound ? `, found ${this.describe(a)}` : '';
      this.fail(a, `expected a quoted type like "bf16[4, 8]" after ${after}${found}`, 'a quoted type');
    }
    return this.annotation(a, owner);
  }

  defineInput(t: Token, type: ValueType | null): void {
    this.scope.define(this.src, t, INPUT_ORDER);
    this.scope.graph.input(t.text, type, { line: t.line });
  }

  /** A node named by `t`, defined here; the caller fills in what it computes and adds it. */
  beginNode(t: Token, type: ValueType | null): Node {
    if (t.kind !== Tok.Name || PYTHON_KEYWORDS.has(t.text)) {
      this.fail(
        t,
        `expected a node line like 'name: "bf16[4, 8]" = torch.ops.aten.mm.default(a, b)', found ${this.describe(t)}`,
        'a node name',
      );
    }
    const scope = this.scope;
    scope.define(this.src, t, scope.graph.nodeCount);
    if (++this.nodeCount > this.maxNodes) {
      this.fail(
        t,
        `too many nodes: node '${t.text}' is number ${this.nodeCount}, over the limit of ${this.maxNodes} (maxNodes)`,
      );
    }
    const node: Node = { name: t.text, op: '', args: [], kwargs: {}, type, meta: { line: t.line } };
    if (scope.file !== undefined) node.meta.file = scope.file;
    return node;
  }

  refUse(t: Token): Ref {
    if (t.kind !== Tok.Name || PYTHON_KEYWORDS.has(t.text))
      this.fail(t, `expected a value name, found ${this.describe(t)}`, 'a name');
    return this.scope.use(t, this.inReturn ? Infinity : this.scope.graph.nodeCount);
  }

  // --- arguments ------------------------------------------------------------------------------

  parseArg(): Arg {
    const start = this.peek();
    const a = this.parsePrimary();
    if (this.graphMode && !this.inReturn) {
      // str(graph) prints strings without quotes (`tp:0`, `cuda:0`): take the words up to
      // the next separator as one string.
      const t = this.peek();
      if (!(this.isPunct(t, ',') || (t.kind === Tok.Punct && CLOSERS.has(t.text)) || this.isLineEnd(t))) {
        let last = this.toks.at(this.pos - 1);
        let depth = 0;
        for (;;) {
          const u = this.peek();
          if (this.isLineEnd(u)) break;
          if (u.kind === Tok.Punct && depth === 0 && (u.text === ',' || CLOSERS.has(u.text))) break;
          if (u.kind === Tok.Punct && OPENERS.has(u.text)) depth++;
          if (u.kind === Tok.Punct && CLOSERS.has(u.text)) depth--;
          last = this.next();
        }
        return this.sourceBetween(start, last);
      }
    }
    return a;
  }

  private parsePrimary(): Arg {
    const t = this.next();
    switch (t.kind) {
      case Tok.Int:
        return parseIntLiteral(t.text);
      case Tok.Float:
        return float(Number(t.text));
      case Tok.Str:
        return t.text;
      case Tok.Name:
        return this.parseNamed(t);
      case Tok.Punct:
        return this.parseBracketed(t);
      default:
        return this.notAnArgument(t);
    }
  }

  private notAnArgument(t: Token): never {
    this.fail(
      t,
      `expected an argument (a name, number, string, list or tuple), found ${this.describe(t)}`,
      'an argument',
    );
  }

  /** An argument that starts with punctuation: a negative number, a list, tuple or dict, a `%ref`. */
  private parseBracketed(t: Token): Arg {
    switch (t.text) {
      case '-': {
        const u = this.next();
        if (u.kind === Tok.Int) return -parseIntLiteral(u.text);
        if (u.kind === Tok.Float) return float(-Number(u.text));
        if (this.isName(u, 'inf')) return float(-Infinity);
        if (this.isName(u, 'nan')) return float(NaN);
        return this.fail(u, `expected a number after '-', found ${this.describe(u)}`, 'a number');
      }
      case '[':
        return this.parseSequence(']', 'list');
      case '(': {
        if (this.isPunct(this.peek(), ')')) {
          this.next();
          return { kind: 'tuple', items: [] };
        }
        const first = this.parseArg();
        if (this.isPunct(this.peek(), ')')) {
          this.next();
          return first;
        }
        this.expectPunct(',', 'in a tuple');
        const rest = this.parseSequence(')', 'tuple');
        return { kind: 'tuple', items: [first, ...rest] };
      }
      case '{': {
        // Dicts are rare in node arguments; keep them verbatim.
        this.pos--;
        const end = this.skipBalanced();
        return { kind: 'expr', text: this.sourceBetween(t, end) };
      }
      case '%':
        if (this.graphMode) return this.refUse(this.expectName("after '%'"));
        break;
    }
    return this.notAnArgument(t);
  }

  /** Items up to `close`, after the opening bracket (or after a tuple's first item and comma). */
  parseSequence(close: string, what: string): Arg[] {
    const items: Arg[] = [];
    while (!this.isPunct(this.peek(), close)) {
      items.push(this.parseArg());
      const sep = this.peek();
      if (this.isPunct(sep, ',')) {
        this.next();
        continue;
      }
      if (!this.isPunct(sep, close))
        this.fail(
          sep,
          `expected ',' or '${close}' in a ${what}, found ${this.describe(sep)}`,
          `',' or '${close}'`,
        );
    }
    this.next();
    return items;
  }

  private parseNamed(t: Token): Arg {
    switch (t.text) {
      case 'None':
        return null;
      case 'True':
        return true;
      case 'False':
        return false;
      case 'inf':
        return float(Infinity);
      case 'nan':
        return float(NaN);
    }
    let last = t;
    while (this.isPunct(this.peek(), '.') && this.peek(1).kind === Tok.Name) {
      this.next();
      last = this.next();
    }
    if (this.isPunct(this.peek(), '(')) {
      // A call inside the arguments: `device(type='cuda', index=0)`, kept verbatim.
      const end = this.skipBalanced();
      return { kind: 'expr', text: this.sourceBetween(t, end) };
    }
    const path = this.sourceBetween(t, last);
    if (last !== t) {
      if (path.startsWith('torch.ops.')) return { kind: 'op', target: normalizeTarget(path) };
      if (this.graphMode && !path.startsWith('torch.') && lookupOp(path)) return { kind: 'op', target: path };
      if (this.graphMode && !path.startsWith('torch.')) return path;
      return { kind: 'expr', text: path };
    }
    if (this.graphMode && !this.inReturn) return path;
    return this.refUse(t);
  }

  /** The values after `return`, or in str(graph)'s output node: a tuple or list is its items. */
  returnedValues(): Arg[] {
    this.inReturn = true;
    let v: Arg;
    try {
      v = this.isLineEnd(this.peek()) ? null : this.parseArg();
    } finally {
      this.inReturn = false;
    }
    return outputsOf(v);
  }
}

/** A returned value as the list of outputs: a tuple or list is its items. */
export function outputsOf(v: Arg): Arg[] {
  if (Array.isArray(v)) return v;
  if (v && typeof v === 'object' && v.kind === 'tuple') return v.items;
  return [v];
}

export function copyType(t: ValueType): ValueType {
  return t.kind === 'sym'
    ? { kind: 'sym', expr: t.expr }
    : { kind: 'tensor', dtype: t.dtype, shape: t.shape.slice() };
}

/** Python ints beyond 2^53 (sys.maxsize as a slice end) keep the nearest double. */
function parseIntLiteral(text: string): number {
  return Number(text);
}
