// FX text → Graph. One recursive-descent parser over the lexer's tokens covers every form FX
// prints (DESIGN.md "Formats"):
//   - print_readable modules: `class X(torch.nn.Module):` + `def forward(self, a: "bf16[…]", …):`,
//     node lines, `# File:` comments, `return (…)`, nested `class submod_N` modules;
//   - bare fragments: node lines only; names never defined become the graph's inputs;
//   - str(graph): `graph():` + `%mm : [num_users=2] = call_function[target=…](args = (…), kwargs = {…})`.
// Names are resolved after the whole body is read, so a use before a later definition is told
// apart from a name that is never defined.

import {
  checkInputSize,
  DEFAULT_MAX_BYTES,
  DEFAULT_MAX_NODES,
  MAX_SUBMODULE_DEPTH,
  type ImportWarning,
} from '../errors.ts';
import {
  float,
  type Arg,
  type Graph,
  type GraphForm,
  type Input,
  type Node,
  type Ref,
  type ValueType,
} from '../ir.ts';
import { lookupOp } from '../ops.ts';
import {
  checkNotBinary,
  PYTHON_KEYWORDS,
  SourceText,
  Tok as TokKinds,
  TokenStream,
  type Token,
} from './lexer.ts';
import { AnnotationError, parseTypeAnnotation, type ParsedAnnotation } from './typeAnnotation.ts';

export interface ParseFxOptions {
  /** Inputs longer than this are refused before any work (default 16 MB). */
  maxBytes?: number;
  /** Graphs with more nodes than this are refused (default 200,000; submodules count too). */
  maxNodes?: number;
  /** Named in errors (`file:line:col`). */
  fileName?: string;
}

export interface ParseFxResult {
  graph: Graph;
  warnings: ImportWarning[];
}

export { DEFAULT_MAX_BYTES, DEFAULT_MAX_NODES } from '../errors.ts';

/** Ops that are structure rather than computation: never reported as unknown. */
const STRUCTURAL_OPS = new Set(['call_module', 'get_attr']);

/** Python's infix operators as FX codegen prints `operator.*` calls (`mul = sym_size_int * 2`). */
export const INFIX_OPERATORS: Record<string, string> = {
  '+': 'operator.add',
  '-': 'operator.sub',
  '*': 'operator.mul',
  '/': 'operator.truediv',
  '//': 'operator.floordiv',
  '%': 'operator.mod',
  '**': 'operator.pow',
  '@': 'operator.matmul',
  '==': 'operator.eq',
  '!=': 'operator.ne',
  '<': 'operator.lt',
  '<=': 'operator.le',
  '>': 'operator.gt',
  '>=': 'operator.ge',
  '&': 'operator.and_',
  '|': 'operator.or_',
  '^': 'operator.xor',
  '<<': 'operator.lshift',
  '>>': 'operator.rshift',
};
export const PREFIX_OPERATORS: Record<string, string> = { '-': 'operator.neg', '~': 'operator.invert' };

// A module-level copy: some transpilers turn every use of an imported binding into a getter call.
const Tok = TokKinds;

const MAX_CLASS_DEPTH = MAX_SUBMODULE_DEPTH;

const CLOSERS = new Set([')', ']', '}']);
const OPENERS = new Set(['(', '[', '{']);

export function parseFx(text: string, opts: ParseFxOptions = {}): ParseFxResult {
  const maxBytes = opts.maxBytes ?? DEFAULT_MAX_BYTES;
  checkInputSize(text, maxBytes, opts.fileName);
  const src = new SourceText(text, opts.fileName);
  checkNotBinary(src);
  return new FxParser(src, new TokenStream(src), opts.maxNodes ?? DEFAULT_MAX_NODES).parse();
}

interface Use {
  name: string;
  line: number;
  col: number;
  /** Index of the node that reads it; Infinity for the return. */
  order: number;
}

interface Definition {
  line: number;
  /** -1 for inputs, else the node's index. */
  order: number;
}

/** One graph being built: the top level, or a nested submodule. */
class GraphBuilder {
  name: string;
  form: GraphForm;
  inputs: Input[] = [];
  nodes: Node[] = [];
  outputs: Arg[] | null = null;
  submodules: Record<string, Graph> = {};
  defs = new Map<string, Definition>();
  uses: Use[] = [];
  moduleCalls: { node: Node; line: number; col: number }[] = [];
  /** The `# File:` comment in force: FX prints it once for a run of nodes from one source line. */
  file: string | undefined;

  constructor(name: string, form: GraphForm) {
    this.name = name;
    this.form = form;
  }

  graph(): Graph {
    return {
      name: this.name,
      form: this.form,
      inputs: this.inputs,
      nodes: this.nodes,
      outputs: this.outputs,
      submodules: this.submodules,
    };
  }
}

class FxParser {
  private readonly src: SourceText;
  private readonly toks: TokenStream;
  private readonly maxNodes: number;
  private pos = 0;
  private nodeCount = 0;
  /** str(graph) form: refs carry `%`, bare words are strings. */
  private graphMode = false;
  /** Reading a `return`: bare names are refs even in str(graph) form. */
  private inReturn = false;
  private readonly warnings: ImportWarning[] = [];
  private readonly annotations = new Map<string, ParsedAnnotation>();
  private classDepth = 0;
  private b!: GraphBuilder;

  constructor(src: SourceText, toks: TokenStream, maxNodes: number) {
    this.src = src;
    this.toks = toks;
    this.maxNodes = maxNodes;
  }

  // --- token helpers ----------------------------------------------------------------------

  private peek(k = 0): Token {
    return this.toks.at(this.pos + k);
  }

  private next(): Token {
    const t = this.toks.at(this.pos);
    if (t.kind !== Tok.Eof) this.pos++;
    return t;
  }

  private isPunct(t: Token, s: string): boolean {
    return t.kind === Tok.Punct && t.text === s;
  }

  private isName(t: Token, s?: string): boolean {
    return t.kind === Tok.Name && (s === undefined || t.text === s);
  }

  private describe(t: Token): string {
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

  private fail(t: Token, detail: string, expected?: string): never {
    throw this.src.error(detail, t.line, t.col, expected);
  }

  private expectPunct(s: string, context: string): Token {
    const t = this.next();
    if (!this.isPunct(t, s)) this.fail(t, `expected '${s}' ${context}, found ${this.describe(t)}`, `'${s}'`);
    return t;
  }

  private expectName(context: string, s?: string): Token {
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
  private endStatement(context: string): void {
    if (this.peek().kind === Tok.Comment) this.next();
    const t = this.peek();
    if (t.kind === Tok.Newline) {
      this.next();
      return;
    }
    if (t.kind === Tok.Eof) return;
    this.fail(t, `expected end of line after ${context}, found ${this.describe(t)}`, 'end of line');
  }

  private skipToEndOfLine(): void {
    while (this.peek().kind !== Tok.Newline && this.peek().kind !== Tok.Eof) this.next();
    if (this.peek().kind === Tok.Newline) this.next();
  }

  /** Source text from the start of `a` to the end of `b`, on one line. */
  private sourceBetween(a: Token, b: Token): string {
    const raw = this.src.text.slice(a.start, b.end);
    return raw.includes('\n') ? joinLines(raw) : raw;
  }

  // --- entry ------------------------------------------------------------------------------

  parse(): ParseFxResult {
    const firstIndex = this.firstStatement();
    const first = this.toks.at(firstIndex);
    let graph: Graph;
    if (this.isName(first, 'class') || this.isName(first, 'def')) {
      this.pos = firstIndex;
      graph = this.isName(first, 'class') ? this.parseClass() : this.parseBareForward();
      this.expectOnlyCommentsLeft(graph.name);
    } else if (this.isName(first, 'graph') && this.isPunct(this.toks.at(firstIndex + 1), '(')) {
      this.pos = firstIndex;
      graph = this.parseGraphForm();
    } else if (first.kind === Tok.Eof) {
      this.fail(
        first,
        'no graph found: expected a module (class … def forward), node lines, or str(graph) text',
        'an FX graph',
      );
    } else {
      graph = this.parseFragment();
    }
    this.warnUnknownOps(graph);
    return { graph, warnings: this.warnings };
  }

  /** Index of the first token that starts real content: past comments, imports and `b8: type` lines. */
  private firstStatement(): number {
    let i = 0;
    const toks = this.toks;
    for (;;) {
      const t = toks.at(i);
      if (t.kind === Tok.Comment || t.kind === Tok.Newline) {
        i++;
        continue;
      }
      if (this.isImportAt(i) || this.isDeclarationAt(i)) {
        while (toks.at(i).kind !== Tok.Newline && toks.at(i).kind !== Tok.Eof) i++;
        continue;
      }
      return i;
    }
  }

  private isImportAt(i: number): boolean {
    const t = this.toks.at(i);
    return t.kind === Tok.Name && (t.text === 'import' || t.text === 'from') && t.indent === 1;
  }

  /** `b8: type` — the name declarations print_readable puts above the class. */
  private isDeclarationAt(i: number): boolean {
    const t = this.toks;
    return (
      t.at(i).kind === Tok.Name &&
      this.isPunct(t.at(i + 1), ':') &&
      t.at(i + 2).kind === Tok.Name &&
      (t.at(i + 3).kind === Tok.Newline || t.at(i + 3).kind === Tok.Eof)
    );
  }

  private expectOnlyCommentsLeft(className: string): void {
    for (;;) {
      const t = this.next();
      if (t.kind === Tok.Eof) return;
      if (t.kind === Tok.Comment || t.kind === Tok.Newline) continue;
      this.fail(
        t,
        `unexpected ${this.describe(t)} after the end of class ${className}: expected one module per text`,
        'end of input',
      );
    }
  }

  // --- module form --------------------------------------------------------------------------

  private parseClass(): Graph {
    const classTok = this.expectName('to start a module', 'class');
    if (++this.classDepth > MAX_CLASS_DEPTH)
      this.fail(classTok, `submodule classes nested deeper than ${MAX_CLASS_DEPTH} levels`);
    const nameTok = this.expectName('after class');
    if (this.isPunct(this.peek(), '(')) this.skipBalanced();
    this.expectPunct(':', `after class ${nameTok.text}(…)`);
    this.endStatement(`class ${nameTok.text}`);

    const outer = this.b;
    const b = (this.b = new GraphBuilder(nameTok.text, 'module'));
    let forward: Token | null = null;
    for (;;) {
      this.toks.release(this.pos);
      const t = this.peek();
      if (t.kind === Tok.Newline || t.kind === Tok.Comment) {
        this.next();
        continue;
      }
      if (t.kind === Tok.Eof || t.indent <= classTok.indent) break;
      if (this.isName(t, 'def')) {
        if (forward)
          this.fail(t, `class ${nameTok.text} has a second def (the first is at line ${forward.line})`);
        forward = t;
        this.parseForward(b);
      } else if (this.isName(t, 'class')) {
        const sub = this.parseClass();
        this.b = b;
        if (sub.name in b.submodules)
          this.fail(t, `duplicate submodule class ${sub.name} in ${nameTok.text}`);
        b.submodules[sub.name] = sub;
      } else {
        this.fail(
          t,
          `expected 'def forward(self, …):' or a nested class in class ${nameTok.text}, found ${this.describe(t)}`,
          "'def forward'",
        );
      }
    }
    if (!forward)
      this.fail(classTok, `class ${nameTok.text} has no 'def forward(self, …):'`, "'def forward'");
    this.resolve(b);
    for (const c of b.moduleCalls) {
      if (!(c.node.module! in b.submodules)) {
        throw this.src.error(
          `node '${c.node.name}' calls self.${c.node.module}, but class ${nameTok.text} defines no submodule ${c.node.module}`,
          c.line,
          c.col,
          `class ${c.node.module}`,
        );
      }
    }
    this.b = outer;
    this.classDepth--;
    return b.graph();
  }

  /** A `def forward(...)` pasted without its class. */
  private parseBareForward(): Graph {
    const b = (this.b = new GraphBuilder('GraphModule', 'module'));
    this.parseForward(b);
    this.resolve(b);
    for (const c of b.moduleCalls)
      this.warnings.push({
        line: c.line,
        node: c.node.name,
        message: `calls self.${c.node.module}, whose class is not in the text`,
      });
    return b.graph();
  }

  private parseForward(b: GraphBuilder): void {
    const defTok = this.expectName('', 'def');
    this.expectName(`after def (print_readable prints 'def forward')`, 'forward');
    this.expectPunct('(', 'after def forward');
    let first = true;
    while (!this.isPunct(this.peek(), ')')) {
      const p = this.next();
      if (this.isPunct(p, '*') || this.isPunct(p, '**'))
        this.fail(p, 'variadic parameters (*args) are not supported in forward()');
      if (p.kind !== Tok.Name || PYTHON_KEYWORDS.has(p.text))
        this.fail(
          p,
          `expected a parameter name in def forward(…), found ${this.describe(p)}`,
          'a parameter name',
        );
      let type: ValueType | null = null;
      if (this.isPunct(this.peek(), ':')) {
        this.next();
        const a = this.next();
        if (a.kind !== Tok.Str)
          this.fail(a, `expected a quoted type like "bf16[4, 8]" after '${p.text}:'`, 'a quoted type');
        type = this.annotation(a, p.text);
      }
      if (this.isPunct(this.peek(), '=')) {
        this.next();
        this.parseArg(); // a default value: not part of the graph
      }
      if (!(first && p.text === 'self')) this.defineInput(b, p, type);
      first = false;
      if (this.isPunct(this.peek(), ',')) {
        this.next();
        continue;
      }
      if (!this.isPunct(this.peek(), ')')) {
        this.fail(
          this.peek(),
          `expected ',' or ')' in def forward(…), found ${this.describe(this.peek())}`,
          "',' or ')'",
        );
      }
    }
    this.next();
    if (this.isPunct(this.peek(), '->')) {
      while (
        !this.isPunct(this.peek(), ':') &&
        this.peek().kind !== Tok.Newline &&
        this.peek().kind !== Tok.Eof
      )
        this.next();
    }
    this.expectPunct(':', 'at the end of def forward(…)');
    this.endStatement('def forward(…):');

    let returned: Token | null = null;
    for (;;) {
      this.toks.release(this.pos);
      const t = this.peek();
      if (t.kind === Tok.Newline) {
        this.next();
        continue;
      }
      if (t.kind === Tok.Comment) {
        this.comment(b);
        continue;
      }
      if (t.kind === Tok.Eof || t.indent <= defTok.indent) break;
      if (returned)
        this.fail(t, `unexpected statement after the return at line ${returned.line}`, 'end of forward');
      if (this.isName(t, 'return')) {
        returned = t;
        this.parseReturn(b);
      } else {
        this.parseNodeLine(b);
      }
    }
  }

  private comment(b: GraphBuilder): void {
    const t = this.next();
    const text = t.text.trimStart();
    if (text.startsWith('File: ')) b.file = text.slice(6);
    else if (text.startsWith('No stacktrace found')) b.file = undefined;
  }

  // --- fragment form ------------------------------------------------------------------------

  private parseFragment(): Graph {
    const b = (this.b = new GraphBuilder('fragment', 'fragment'));
    this.pos = 0;
    let returned: Token | null = null;
    for (;;) {
      this.toks.release(this.pos);
      const t = this.peek();
      if (t.kind === Tok.Eof) break;
      if (t.kind === Tok.Newline) {
        this.next();
        continue;
      }
      if (t.kind === Tok.Comment) {
        this.comment(b);
        continue;
      }
      if (this.isImportAt(this.pos) || this.isDeclarationAt(this.pos)) {
        this.skipToEndOfLine();
        continue;
      }
      if (this.isName(t, 'class') || this.isName(t, 'def')) {
        this.fail(
          t,
          `'${t.text}' after node lines: a text is either a module or a fragment of node lines`,
          'a node line',
        );
      }
      if (returned)
        this.fail(t, `unexpected statement after the return at line ${returned.line}`, 'end of input');
      if (this.isName(t, 'return')) {
        returned = t;
        this.parseReturn(b);
      } else {
        this.parseNodeLine(b);
      }
    }
    this.resolve(b);
    inferInputTypes(b);
    for (const c of b.moduleCalls)
      this.warnings.push({
        line: c.line,
        node: c.node.name,
        message: `calls self.${c.node.module}, whose class is not in the text`,
      });
    return b.graph();
  }

  // --- node lines ---------------------------------------------------------------------------

  private defineInput(b: GraphBuilder, t: Token, type: ValueType | null): void {
    const prev = b.defs.get(t.text);
    if (prev) this.fail(t, `duplicate name '${t.text}': already defined at line ${prev.line}`);
    b.defs.set(t.text, { line: t.line, order: -1 });
    b.inputs.push({ name: t.text, type, meta: { line: t.line } });
  }

  private newNode(b: GraphBuilder, t: Token, type: ValueType | null): Node {
    if (t.kind !== Tok.Name || PYTHON_KEYWORDS.has(t.text)) {
      this.fail(
        t,
        `expected a node line like 'name: "bf16[4, 8]" = torch.ops.aten.mm.default(a, b)', found ${this.describe(t)}`,
        'a node name',
      );
    }
    const prev = b.defs.get(t.text);
    if (prev) this.fail(t, `duplicate name '${t.text}': already defined at line ${prev.line}`);
    if (++this.nodeCount > this.maxNodes) {
      this.fail(
        t,
        `too many nodes: node '${t.text}' is number ${this.nodeCount}, over the limit of ${this.maxNodes} (maxNodes)`,
      );
    }
    b.defs.set(t.text, { line: t.line, order: b.nodes.length });
    const node: Node = { name: t.text, op: '', args: [], kwargs: {}, type, meta: { line: t.line } };
    if (b.file !== undefined) node.meta.file = b.file;
    return node;
  }

  private annotation(t: Token, owner: string): ValueType | null {
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

  /** `name[: "type"] = rhs[;  a = b = None]` */
  private parseNodeLine(b: GraphBuilder): void {
    const nameTok = this.next();
    if (nameTok.kind === Tok.Name && this.isPunct(this.peek(), ',')) {
      this.fail(this.peek(), `tuple unpacking ('${nameTok.text}, …= ') is not an FX node line`, "'='");
    }
    let type: ValueType | null = null;
    if (nameTok.kind === Tok.Name && this.isPunct(this.peek(), ':')) {
      this.next();
      const a = this.next();
      if (a.kind !== Tok.Str)
        this.fail(
          a,
          `expected a quoted type like "bf16[4, 8]" after '${nameTok.text}:', found ${this.describe(a)}`,
          'a quoted type',
        );
      type = this.annotation(a, nameTok.text);
    }
    const node = this.newNode(b, nameTok, type);
    this.expectPunct('=', `after '${nameTok.text}${type ? ': "…"' : ''}'`);
    this.parseRhs(b, node);
    // `;  a = b = None` frees values in the generated Python; the graph does not need it.
    if (this.isPunct(this.peek(), ';')) {
      while (
        this.peek().kind !== Tok.Newline &&
        this.peek().kind !== Tok.Eof &&
        this.peek().kind !== Tok.Comment
      )
        this.next();
    }
    this.endStatement(`node '${node.name}'`);
    b.nodes.push(node);
  }

  private parseRhs(b: GraphBuilder, node: Node): void {
    const t = this.peek();
    if (this.isName(t, 'self') && this.isPunct(this.peek(1), '.')) {
      this.next();
      this.next();
      const attr = this.expectName('after self.');
      if (this.isPunct(this.peek(), '(')) {
        node.op = 'call_module';
        node.module = attr.text;
        b.moduleCalls.push({ node, line: attr.line, col: attr.col });
        this.parseCallArgs(node, `self.${attr.text}`);
      } else {
        node.op = 'get_attr';
        node.args = [attr.text];
      }
      return;
    }
    if (t.kind === Tok.Punct && t.text in PREFIX_OPERATORS && this.peek(1).kind === Tok.Name) {
      this.next();
      node.op = PREFIX_OPERATORS[t.text];
      node.args = [this.parseOperand()];
      return;
    }
    if (t.kind === Tok.Name && !PYTHON_KEYWORDS.has(t.text)) {
      // A call target: `torch.ops.aten.mm.default`, `operator.getitem`, `torch.sym_sum`.
      let end = this.pos + 1;
      while (this.isPunct(this.toks.at(end), '.') && this.toks.at(end + 1).kind === Tok.Name) end += 2;
      if (this.isPunct(this.toks.at(end), '(')) {
        const target = this.sourceBetween(t, this.toks.at(end - 1));
        this.pos = end;
        node.op = opOfTarget(target);
        this.parseCallArgs(node, target);
        return;
      }
      if (end === this.pos + 1 && this.isPunct(this.toks.at(end), '[')) {
        const base = this.refUse(this.next());
        this.next(); // '['
        const index = this.parseArg();
        this.expectPunct(']', `to close '${t.text}[…'`);
        node.op = 'getitem';
        node.args = [base, index];
        return;
      }
    }
    // `a * b`, `2 * s0`: operator calls as FX codegen prints them.
    if (t.kind === Tok.Name || t.kind === Tok.Int || t.kind === Tok.Float || this.isPunct(t, '-')) {
      const save = this.pos;
      const left = this.parseOperand();
      const op = this.peek();
      if (op.kind === Tok.Punct && op.text in INFIX_OPERATORS) {
        this.next();
        node.op = INFIX_OPERATORS[op.text];
        node.args = [left, this.parseOperand()];
        return;
      }
      this.pos = save;
    }
    this.fail(
      t,
      `expected an op call like torch.ops.aten.mm.default(…), x[0] or a * b after '${node.name} =', found ${this.describe(t)}`,
      'an op call',
    );
  }

  private parseOperand(): Arg {
    const t = this.peek();
    if (t.kind === Tok.Name && !PYTHON_KEYWORDS.has(t.text) && t.text !== 'inf' && t.text !== 'nan') {
      this.next();
      return this.refUse(t);
    }
    if (t.kind === Tok.Int || t.kind === Tok.Float || this.isPunct(t, '-') || this.isName(t)) {
      const a = this.parseArg();
      if (
        typeof a === 'number' ||
        typeof a === 'boolean' ||
        (a && typeof a === 'object' && !Array.isArray(a) && a.kind === 'float')
      )
        return a;
      this.fail(t, `expected a name or a number as an operand, found ${this.describe(t)}`, 'an operand');
    }
    this.fail(t, `expected a name or a number as an operand, found ${this.describe(t)}`, 'an operand');
  }

  private refUse(t: Token): Ref {
    if (t.kind !== Tok.Name || PYTHON_KEYWORDS.has(t.text))
      this.fail(t, `expected a value name, found ${this.describe(t)}`, 'a name');
    const order = this.inReturn ? Infinity : this.b.nodes.length;
    // Most names are already defined; only the rest wait for resolve().
    const d = this.b.defs.get(t.text);
    if (!d || d.order >= order) this.b.uses.push({ name: t.text, line: t.line, col: t.col, order });
    return { kind: 'ref', name: t.text };
  }

  private parseCallArgs(node: Node, target: string): void {
    this.expectPunct('(', `after ${target}`);
    let sawKw: Token | null = null;
    while (!this.isPunct(this.peek(), ')')) {
      const t = this.peek();
      if (t.kind === Tok.Name && this.isPunct(this.peek(1), '=')) {
        this.next();
        this.next();
        if (t.text in node.kwargs) this.fail(t, `keyword argument '${t.text}' given twice to ${target}`);
        node.kwargs[t.text] = this.parseArg();
        sawKw = t;
      } else {
        if (sawKw)
          this.fail(
            t,
            `positional argument after keyword argument '${sawKw.text}' in ${target}(…)`,
            'a keyword argument',
          );
        node.args.push(this.parseArg());
      }
      const sep = this.peek();
      if (this.isPunct(sep, ',')) {
        this.next();
        continue;
      }
      if (!this.isPunct(sep, ')'))
        this.fail(
          sep,
          `expected ',' or ')' in the arguments of ${target}, found ${this.describe(sep)}`,
          "',' or ')'",
        );
    }
    this.next();
  }

  // --- arguments ------------------------------------------------------------------------------

  private parseArg(): Arg {
    const start = this.peek();
    const a = this.parsePrimary();
    if (this.graphMode && !this.inReturn) {
      // str(graph) prints strings without quotes (`tp:0`, `cuda:0`): take the words up to
      // the next separator as one string.
      const t = this.peek();
      if (!(
        this.isPunct(t, ',') ||
        (t.kind === Tok.Punct && CLOSERS.has(t.text)) ||
        t.kind === Tok.Newline ||
        t.kind === Tok.Eof
      )) {
        let last = this.toks.at(this.pos - 1);
        let depth = 0;
        for (;;) {
          const u = this.peek();
          if (u.kind === Tok.Newline || u.kind === Tok.Eof) break;
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
        break;
      default:
        this.fail(
          t,
          `expected an argument (a name, number, string, list or tuple), found ${this.describe(t)}`,
          'an argument',
        );
    }
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
    this.fail(
      t,
      `expected an argument (a name, number, string, list or tuple), found ${this.describe(t)}`,
      'an argument',
    );
  }

  /** Items up to `close`, after the opening bracket (or after a tuple's first item and comma). */
  private parseSequence(close: string, what: string): Arg[] {
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
      if (path.startsWith('torch.ops.')) return { kind: 'op', target: path.slice('torch.ops.'.length) };
      if (this.graphMode && !path.startsWith('torch.') && lookupOp(path)) return { kind: 'op', target: path };
      if (this.graphMode && !path.startsWith('torch.')) return path;
      return { kind: 'expr', text: path };
    }
    if (this.graphMode && !this.inReturn) return path;
    return this.refUse(t);
  }

  /** Skips a bracketed group starting at the current token; returns its closing token. */
  private skipBalanced(): Token {
    let depth = 0;
    for (;;) {
      const t = this.next();
      if (t.kind === Tok.Eof) this.fail(t, 'unexpected end of input inside brackets', 'a closing bracket');
      if (t.kind === Tok.Punct && OPENERS.has(t.text)) depth++;
      else if (t.kind === Tok.Punct && CLOSERS.has(t.text) && --depth === 0) return t;
    }
  }

  private parseReturn(b: GraphBuilder): void {
    const t = this.next();
    if (b.outputs) this.fail(t, 'a second return');
    this.inReturn = true;
    let v: Arg;
    try {
      v = this.peek().kind === Tok.Newline || this.peek().kind === Tok.Eof ? null : this.parseArg();
    } finally {
      this.inReturn = false;
    }
    if (Array.isArray(v)) b.outputs = v;
    else if (v && typeof v === 'object' && v.kind === 'tuple') b.outputs = v.items;
    else b.outputs = [v];
    this.endStatement('return');
  }

  // --- str(graph) form --------------------------------------------------------------------------

  private parseGraphForm(): Graph {
    const b = (this.b = new GraphBuilder('graph', 'graph'));
    this.graphMode = true;
    this.expectName('', 'graph');
    this.skipBalanced();
    this.expectPunct(':', 'after graph()');
    this.endStatement('graph():');
    let returned: Token | null = null;
    for (;;) {
      this.toks.release(this.pos);
      const t = this.peek();
      if (t.kind === Tok.Eof) break;
      if (t.kind === Tok.Newline || t.kind === Tok.Comment) {
        this.next();
        continue;
      }
      if (returned)
        this.fail(t, `unexpected statement after the return at line ${returned.line}`, 'end of input');
      if (this.isName(t, 'return')) {
        returned = t;
        this.parseReturn(b);
      } else if (this.isPunct(t, '%')) {
        if (this.parseGraphNode(b)) returned = t;
      } else {
        this.fail(t, `expected '%name : … = …' or 'return' in graph(), found ${this.describe(t)}`, "'%'");
      }
    }
    this.resolve(b);
    return b.graph();
  }

  /** One `%name : [num_users=N] = kind[target=T](args = (…), kwargs = {…})` line; true for `output`. */
  private parseGraphNode(b: GraphBuilder): boolean {
    this.next();
    const nameTok = this.expectName("after '%'");
    this.expectPunct(':', `after %${nameTok.text}`);
    // An optional type name, then `[num_users=N]` (`[#users=N]` in older PyTorch).
    for (;;) {
      const t = this.peek();
      if (this.isPunct(t, '[') || this.isPunct(t, '=')) break;
      if (t.kind === Tok.Newline || t.kind === Tok.Eof)
        this.fail(t, `expected '= kind[target=…]' after %${nameTok.text} :`, "'='");
      this.next();
    }
    if (this.isPunct(this.peek(), '[')) this.skipBalanced();
    this.expectPunct('=', `after %${nameTok.text} : [num_users=…]`);
    const kindTok = this.expectName('(placeholder, call_function, …)');
    this.expectPunct('[', `after ${kindTok.text}`);
    this.expectName(`in ${kindTok.text}[…]`, 'target');
    this.expectPunct('=', `after ${kindTok.text}[target`);
    const targetStart = this.peek();
    let targetEnd = targetStart;
    while (!this.isPunct(this.peek(), ']')) {
      const u = this.next();
      if (u.kind === Tok.Newline || u.kind === Tok.Eof)
        this.fail(u, `expected ']' to close ${kindTok.text}[target=…`, "']'");
      targetEnd = u;
    }
    if (targetEnd === targetStart && this.isPunct(targetStart, ']'))
      this.fail(targetStart, 'empty target', 'a target');
    const target = this.sourceBetween(targetStart, targetEnd);
    this.next();

    const kind = kindTok.text;
    if (kind === 'placeholder') {
      if (this.isPunct(this.peek(), '(')) this.skipBalanced(); // `(default=…)`
      this.defineInput(b, nameTok, null);
      const input = b.inputs[b.inputs.length - 1];
      input.type = this.trailingType(nameTok.text);
      this.endStatement(`%${nameTok.text}`);
      return false;
    }
    if (kind === 'output') {
      const { args } = this.graphCallArgs(kind);
      const v = args[0] ?? null;
      b.outputs = Array.isArray(v) ? v : v && typeof v === 'object' && v.kind === 'tuple' ? v.items : [v];
      // The refs were recorded as uses of a node; outputs may use anything defined.
      for (let i = b.uses.length - 1; i >= 0 && b.uses[i].order === b.nodes.length; i--)
        b.uses[i].order = Infinity;
      this.trailingType(nameTok.text);
      this.endStatement('output');
      return true;
    }
    const node = this.newNode(b, nameTok, null);
    if (kind === 'get_attr') {
      node.op = 'get_attr';
      node.args = [target];
    } else if (kind === 'call_function' || kind === 'call_method' || kind === 'call_module') {
      const { args, kwargs } = this.graphCallArgs(kind);
      node.args = args;
      node.kwargs = kwargs;
      if (kind === 'call_module') {
        node.op = 'call_module';
        node.module = target;
      } else {
        node.op = kind === 'call_method' ? `Tensor.${target}` : opOfTarget(target);
      }
    } else {
      this.fail(
        kindTok,
        `unknown node kind '${kind}': expected placeholder, get_attr, call_function, call_method, call_module or output`,
        'a node kind',
      );
    }
    node.type = this.trailingType(nameTok.text);
    this.endStatement(`%${nameTok.text}`);
    b.nodes.push(node);
    return false;
  }

  /** `(args = (…), kwargs = {…})` */
  private graphCallArgs(kind: string): { args: Arg[]; kwargs: Record<string, Arg> } {
    this.expectPunct('(', `after ${kind}[target=…]`);
    this.expectName(`in ${kind}(…)`, 'args');
    this.expectPunct('=', 'after args');
    const at = this.peek();
    if (!this.isPunct(at, '('))
      this.fail(at, `expected a tuple after 'args =', found ${this.describe(at)}`, "'('");
    this.next();
    const args = this.isPunct(this.peek(), ')') ? (this.next(), []) : this.parseSequence(')', 'tuple');
    const kwargs: Record<string, Arg> = {};
    if (this.isPunct(this.peek(), ',')) {
      this.next();
      this.expectName(`in ${kind}(…)`, 'kwargs');
      this.expectPunct('=', 'after kwargs');
      this.expectPunct('{', "after 'kwargs ='");
      while (!this.isPunct(this.peek(), '}')) {
        const k = this.next();
        if (k.kind !== Tok.Name && k.kind !== Tok.Str)
          this.fail(k, `expected a keyword name in kwargs, found ${this.describe(k)}`, 'a keyword');
        if (k.text in kwargs) this.fail(k, `keyword '${k.text}' given twice`);
        this.expectPunct(':', `after keyword '${k.text}'`);
        kwargs[k.text] = this.parseArg();
        const sep = this.peek();
        if (this.isPunct(sep, ',')) {
          this.next();
          continue;
        }
        if (!this.isPunct(sep, '}'))
          this.fail(sep, `expected ',' or '}' in kwargs, found ${this.describe(sep)}`, "',' or '}'");
      }
      this.next();
    }
    this.expectPunct(')', `to close ${kind}(args = …, kwargs = …)`);
    return { args, kwargs };
  }

  /** The `: "bf16[…]"` some dumps append to a str(graph) line. */
  private trailingType(owner: string): ValueType | null {
    if (!this.isPunct(this.peek(), ':')) return null;
    this.next();
    const a = this.next();
    if (a.kind !== Tok.Str)
      this.fail(
        a,
        `expected a quoted type like "bf16[4, 8]" after ':', found ${this.describe(a)}`,
        'a quoted type',
      );
    return this.annotation(a, owner);
  }

  // --- names ----------------------------------------------------------------------------------

  /**
   * Checks every use against the definitions. In a module every name must be defined above its
   * use; in a fragment a name defined nowhere is one of the fragment's inputs.
   */
  private resolve(b: GraphBuilder): void {
    for (const u of b.uses) {
      const d = b.defs.get(u.name);
      if (d && d.order < u.order) continue;
      if (d) {
        throw this.src.error(
          `'${u.name}' is used before its definition at line ${d.line}`,
          u.line,
          u.col,
          `a name defined above line ${u.line}`,
        );
      }
      if (b.form === 'fragment') {
        b.defs.set(u.name, { line: u.line, order: -1 });
        b.inputs.push({ name: u.name, type: null, meta: { line: u.line } });
        continue;
      }
      const where =
        b.form === 'graph'
          ? 'a placeholder nor a node above this line'
          : 'an input of forward() nor a node above this line';
      throw this.src.error(
        `name '${u.name}' is not defined: it is neither ${where}`,
        u.line,
        u.col,
        'a defined name',
      );
    }
  }

  private warnUnknownOps(g: Graph): void {
    const seen = new Set<string>();
    const visit = (graph: Graph): void => {
      const check = (op: string, n: Node): void => {
        if (seen.has(op) || STRUCTURAL_OPS.has(op)) return;
        seen.add(op);
        if (lookupOp(op)) return;
        this.warnings.push({
          line: n.meta.line ?? 1,
          node: n.name,
          message: `unknown op '${op}' (first used by '${n.name}' at line ${n.meta.line}): imported as an opaque node`,
        });
      };
      for (const n of graph.nodes) {
        check(n.op, n);
        // The op that auto_functionalized runs counts too.
        for (const a of n.args)
          if (a && typeof a === 'object' && !Array.isArray(a) && a.kind === 'op') check(a.target, n);
      }
      for (const s of Object.values(graph.submodules)) visit(s);
    };
    visit(g);
  }
}

/** Stands for an input's unknown type while asking the registry where a result's type comes from. */
const PROBE: ValueType = { kind: 'sym', expr: '<probe>' };

/**
 * A fragment's implicit inputs have no annotation; some types still follow from the text:
 * - the registry says the result has an argument's type (`all_reduce(x)`, `clone(x)`): probe each
 *   input argument and see whether the rule hands it back;
 * - `auto_functionalized(op, …)[k]`, k ≥ 1, is op's k-th mutated argument after the write, so
 *   that argument had the item's type.
 */
function inferInputTypes(b: GraphBuilder): void {
  const open = new Map<string, Input>();
  for (const i of b.inputs) if (i.type === null) open.set(i.name, i);
  if (open.size === 0) return;
  const byName = new Map<string, Node>();
  for (const n of b.nodes) byName.set(n.name, n);
  const learn = (a: Arg | undefined, t: ValueType): void => {
    if (!a || typeof a !== 'object' || Array.isArray(a) || a.kind !== 'ref') return;
    const input = open.get(a.name);
    if (!input) return;
    input.type = copyType(t);
    open.delete(a.name);
  };
  for (const n of b.nodes) {
    if (!n.type || open.size === 0) continue;
    const def = lookupOp(n.op);
    if (def?.infer) {
      for (const a of [...n.args, ...Object.values(n.kwargs)]) {
        if (!a || typeof a !== 'object' || Array.isArray(a) || a.kind !== 'ref' || !open.has(a.name))
          continue;
        const name = a.name;
        let same = false;
        try {
          same =
            def.infer(n, (x) =>
              x && typeof x === 'object' && !Array.isArray(x) && x.kind === 'ref' && x.name === name
                ? PROBE
                : undefined,
            ) === PROBE;
        } catch {
          // A rule that needs real shapes cannot answer the probe.
        }
        if (same) learn(a, n.type);
      }
    }
    const [base, index] = n.args;
    if (
      n.op === 'getitem' &&
      base &&
      typeof base === 'object' &&
      !Array.isArray(base) &&
      base.kind === 'ref' &&
      typeof index === 'number' &&
      index >= 1
    ) {
      const af = byName.get(base.name);
      const target = af?.op === 'higher_order.auto_functionalized' ? af.args[0] : undefined;
      if (!af || !target || typeof target !== 'object' || Array.isArray(target) || target.kind !== 'op')
        continue;
      const spec = lookupOp(target.target)?.args.filter((x) => x.mutates)[index - 1];
      if (spec) learn(af.kwargs[spec.name], n.type);
    }
  }
}

/** Each line break with the blanks around it becomes one space (linear: no regex to backtrack). */
function joinLines(raw: string): string {
  const lines = raw.split('\n');
  const last = lines.length - 1;
  return lines.map((l, k) => (k === 0 ? l.trimEnd() : k === last ? l.trimStart() : l.trim())).join(' ');
}

function copyType(t: ValueType): ValueType {
  return t.kind === 'sym'
    ? { kind: 'sym', expr: t.expr }
    : { kind: 'tensor', dtype: t.dtype, shape: t.shape.slice() };
}

/** The IR op for a call target: `torch.ops.` dropped, `operator.getitem` is `getitem`. */
export function opOfTarget(target: string): string {
  if (target.startsWith('torch.ops.')) return target.slice('torch.ops.'.length);
  if (
    target === 'operator.getitem' ||
    target === '_operator.getitem' ||
    target === '<built-in function getitem>'
  )
    return 'getitem';
  if (target.startsWith('_operator.')) return target.slice(1);
  const builtin = /^<built-in function (\w+)>$/.exec(target);
  if (builtin) return `operator.${builtin[1]}`;
  return target;
}

/** Python ints beyond 2^53 (sys.maxsize as a slice end) keep the nearest double. */
function parseIntLiteral(text: string): number {
  return Number(text);
}
