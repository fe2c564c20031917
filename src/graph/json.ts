// The IR as versioned JSON (`fusionlab.graph/1`): what the UI, its worker, the CLI and the agent
// pass between them. graphFromJson trusts nothing: every field is checked and an error names
// the JSON path that is wrong.
//
// JSON has no NaN or ±Infinity, so a FloatLit holding one is written with its Python spelling
// as the value: {"kind": "float", "value": "inf" | "-inf" | "nan"} (and "-0.0" for negative zero).

import {
  checkInputSize,
  DEFAULT_MAX_BYTES,
  DEFAULT_MAX_NODES,
  GraphImportError,
  MAX_NESTING_DEPTH,
  MAX_SUBMODULE_DEPTH,
} from './errors.ts';
import { isFxName } from './fx/lexer.ts';
import {
  DTYPE_BYTES,
  mapArg,
  type Arg,
  type ArgLeaf,
  type DType,
  type Dim,
  type Graph,
  type GraphForm,
  type Input,
  type Node,
  type Provenance,
  type ValueType,
} from './ir.ts';

export const GRAPH_SCHEMA = 'fusionlab.graph/1';

export interface GraphJson {
  schema: 'fusionlab.graph/1';
  graph: Graph;
}

const FORMS: readonly GraphForm[] = ['module', 'fragment', 'graph'];
/** Deeper nesting than any real argument; stops a hostile document from exhausting the stack. */
const MAX_ARG_DEPTH = MAX_NESTING_DEPTH;
const SPECIAL_FLOATS: Record<string, number> = { inf: Infinity, '-inf': -Infinity, nan: NaN, '-0.0': -0 };

export function graphToJson(g: Graph): GraphJson {
  return { schema: GRAPH_SCHEMA, graph: encodeGraph(g) };
}

function encodeGraph(g: Graph): Graph {
  const submodules: Record<string, Graph> = {};
  for (const k in g.submodules) submodules[k] = encodeGraph(g.submodules[k]);
  return {
    ...g,
    nodes: g.nodes.map((n) => ({
      ...n,
      args: n.args.map(encodeArg),
      kwargs: mapValues(n.kwargs, encodeArg),
    })),
    outputs: g.outputs && g.outputs.map(encodeArg),
    submodules,
  };
}

function mapValues<T>(r: Record<string, T>, f: (v: T) => T): Record<string, T> {
  const out: Record<string, T> = {};
  for (const k in r) out[k] = f(r[k]);
  return out;
}

function encodeArg(a: Arg): Arg {
  return mapArg(a, encodeLeaf);
}

function encodeLeaf(a: ArgLeaf): Arg {
  if (a === null || typeof a !== 'object') return a;
  if (a.kind === 'float' && (!Number.isFinite(a.value) || Object.is(a.value, -0))) {
    const text = Number.isNaN(a.value)
      ? 'nan'
      : a.value === Infinity
        ? 'inf'
        : a.value === -Infinity
          ? '-inf'
          : '-0.0';
    // The one place the JSON shape differs from the in-memory IR (see the header comment).
    return { kind: 'float', value: text as unknown as number };
  }
  return a;
}

/** JSON text → Graph, with JSON syntax errors located by line and column. */
export function graphFromJsonText(
  text: string,
  opts: { fileName?: string; maxBytes?: number; maxNodes?: number } = {},
): Graph {
  checkInputSize(text, opts.maxBytes ?? DEFAULT_MAX_BYTES, opts.fileName);
  let x: unknown;
  try {
    x = JSON.parse(text);
  } catch (e) {
    // The engine's message quotes the text around the error (newlines and all) and, for some
    // errors, gives no position: locate it ourselves so the error is one line with a place.
    const found = jsonSyntaxError(text) ?? { offset: text.length, what: 'not valid JSON' };
    const lineStart = text.lastIndexOf('\n', found.offset - 1) + 1;
    let line = 1;
    for (let i = text.indexOf('\n'); i >= 0 && i < lineStart; i = text.indexOf('\n', i + 1)) line++;
    const lineEnd = text.indexOf('\n', lineStart);
    const o: { source?: string; lineText?: string } = {
      lineText: text.slice(lineStart, lineEnd < 0 ? text.length : lineEnd),
    };
    if (opts.fileName !== undefined) o.source = opts.fileName;
    throw new GraphImportError(`invalid JSON: ${found.what}`, line, found.offset - lineStart + 1, o);
  }
  try {
    return graphFromJson(x, opts);
  } catch (e) {
    if (!(e instanceof JsonPathError)) throw e;
    // Point at the value the path names (or, for a missing field, its object) in the user's text.
    const offset = jsonPathOffset(text, e.path);
    if (offset === null) throw e;
    const { line, col, lineText } = placeOf(text, offset);
    const o: { source?: string; lineText?: string; expected?: string } = { lineText, expected: e.expected };
    if (opts.fileName !== undefined) o.source = opts.fileName;
    throw new GraphImportError(e.detail, line, col, o);
  }
}

/** Line, column (1-based) and the line's text at an offset. */
function placeOf(text: string, offset: number): { line: number; col: number; lineText: string } {
  const lineStart = text.lastIndexOf('\n', offset - 1) + 1;
  let line = 1;
  for (let i = text.indexOf('\n'); i >= 0 && i < lineStart; i = text.indexOf('\n', i + 1)) line++;
  const lineEnd = text.indexOf('\n', lineStart);
  return {
    line,
    col: offset - lineStart + 1,
    lineText: text.slice(lineStart, lineEnd < 0 ? text.length : lineEnd),
  };
}

/** A validation error naming a JSON path ($.graph.nodes[3].op); graphFromJsonText turns the path into a place. */
class JsonPathError extends GraphImportError {
  constructor(
    readonly path: string,
    detail: string,
    expected: string,
    source: string | undefined,
  ) {
    super(detail, 1, 1, source === undefined ? { expected } : { source, expected });
  }
}

/** `$.a.b[3].c` → ['a', 'b', 3, 'c']; null for a path this cannot split (a key holding '.' or '['). */
function pathParts(path: string): (string | number)[] | null {
  if (!path.startsWith('$')) return null;
  const parts: (string | number)[] = [];
  const re = /\.([^.[\]…]+)|\[(\d+)\]/y;
  re.lastIndex = 1;
  while (re.lastIndex < path.length) {
    const m = re.exec(path);
    if (!m) return null;
    parts.push(m[1] !== undefined ? m[1] : Number(m[2]));
  }
  return parts;
}

/**
 * Offset in a valid JSON text of the value at `path`, or of the nearest enclosing value that
 * exists (a missing field points at its object). Iterative, like the syntax scanner.
 */
export function jsonPathOffset(text: string, path: string): number | null {
  const target = pathParts(path);
  if (!target) return null;
  // Each open container: an object or a list, which key or index is being read in it, and whether it is on the path.
  const stack: { obj: boolean; at: string | number; onPath: boolean }[] = [];
  let best = -1;
  let bestDepth = -1;
  let i = 0;
  const skipSpace = () => {
    while (i < text.length && ' \t\n\r'.includes(text[i])) i++;
  };
  const readString = (): string => {
    const start = i;
    for (i++; i < text.length && text[i] !== '"'; i++) if (text[i] === '\\') i++;
    i++;
    return JSON.parse(text.slice(start, i)) as string;
  };
  /** Whether the value about to start is on the target path (each container knows whether it is). */
  const onPath = () => {
    const top = stack[stack.length - 1];
    return !top || (top.onPath && stack.length <= target.length && top.at === target[stack.length - 1]);
  };
  for (;;) {
    skipSpace();
    if (i >= text.length) break;
    // A value starts here.
    if (onPath()) {
      if (stack.length > bestDepth) {
        best = i;
        bestDepth = stack.length;
      }
      if (stack.length === target.length) return i;
    }
    const c = text[i];
    if (c === '{' || c === '[') {
      const here = onPath();
      stack.push({ obj: c === '{', at: c === '[' ? 0 : '', onPath: here });
      i++;
      skipSpace();
      if (text[i] === '}' || text[i] === ']') {
        stack.pop();
        i++;
      } else if (c === '{') {
        stack[stack.length - 1].at = readString();
        skipSpace();
        i++;
        continue;
      } else continue;
    } else if (c === '"') readString();
    else while (i < text.length && !',]} \t\n\r'.includes(text[i])) i++;
    // After a value: the next member, or the end of one or more containers.
    for (;;) {
      skipSpace();
      const top = stack[stack.length - 1];
      if (!top) return best >= 0 ? best : null;
      if (text[i] === ',') {
        i++;
        skipSpace();
        if (top.obj) {
          top.at = readString();
          skipSpace();
          i++;
        } else top.at = (top.at as number) + 1;
        break;
      }
      stack.pop();
      i++;
    }
  }
  return best >= 0 ? best : null;
}

const JSON_NUMBER = /-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?/y;
const JSON_LITERAL = /true|false|null/y;

function showChar(text: string, i: number): string {
  return i >= text.length ? 'end of input' : JSON.stringify(text[i]);
}

/**
 * The first syntax error of a JSON text (offset and what was expected), or null when it parses.
 * Iterative, so a hostile nesting depth costs memory for a stack of brackets, not call stack.
 */
export function jsonSyntaxError(text: string): { offset: number; what: string } | null {
  const open: string[] = [];
  let i = 0;
  const skip = () => {
    while (i < text.length && ' \t\n\r'.includes(text[i])) i++;
  };
  const fail = (expected: string) => ({
    offset: i,
    what: `expected ${expected}, found ${showChar(text, i)}`,
  });
  /** Scans a string at i; returns an error or null (i is then past the closing quote). */
  const string = (): { offset: number; what: string } | null => {
    const start = i;
    for (i++; i < text.length; i++) {
      const c = text.charCodeAt(i);
      if (c === 0x22) {
        i++;
        return null;
      }
      if (c < 0x20) return { offset: i, what: 'a control character inside a string (escape it)' };
      if (c === 0x5c) {
        const n = text[i + 1];
        if (n === 'u') {
          if (!/^[0-9a-fA-F]{4}$/.test(text.slice(i + 2, i + 6)))
            return { offset: i, what: 'a \\u escape needs 4 hex digits' };
          i += 5;
        } else if (n !== undefined && '"\\/bfnrt'.includes(n)) i++;
        else return { offset: i, what: `unknown escape \\${n ?? ''}` };
      }
    }
    return { offset: start, what: 'a string that is never closed' };
  };
  let want: 'value' | 'after' = 'value';
  for (;;) {
    skip();
    if (want === 'value') {
      const c = text[i];
      if (c === '{' || c === '[') {
        open.push(c);
        i++;
        skip();
        if (text[i] === (c === '{' ? '}' : ']')) {
          open.pop();
          i++;
          want = 'after';
          continue;
        }
        if (c === '[') continue;
      } else if (c === '"') {
        const err = string();
        if (err) return err;
        want = 'after';
        continue;
      } else {
        for (const re of [JSON_NUMBER, JSON_LITERAL]) {
          re.lastIndex = i;
          if (re.test(text)) {
            i = re.lastIndex;
            want = 'after';
            break;
          }
        }
        if (want === 'value') return fail('a value');
        continue;
      }
    } else {
      const top = open[open.length - 1];
      if (top === undefined) return i < text.length ? fail('the end of the document') : null;
      const close = top === '{' ? '}' : ']';
      if (text[i] === close) {
        open.pop();
        i++;
        continue;
      }
      if (text[i] !== ',') return fail(`',' or '${close}'`);
      i++;
      skip();
      want = 'value';
      if (top === '[') continue;
    }
    // In an object: a key and a colon come before the value.
    if (text[i] !== '"') return fail('a property name in double quotes');
    const err = string();
    if (err) return err;
    skip();
    if (text[i] !== ':') return fail("':'");
    i++;
    want = 'value';
  }
}

export function graphFromJson(x: unknown, opts: { fileName?: string; maxNodes?: number } = {}): Graph {
  const v = new JsonValidator(opts.fileName, opts.maxNodes ?? DEFAULT_MAX_NODES);
  const root = v.object(x, '$');
  v.keys(root, '$', ['schema', 'graph']);
  if (root.schema !== GRAPH_SCHEMA) {
    v.fail('$.schema', `expected '${GRAPH_SCHEMA}', found ${v.show(root.schema)}`);
  }
  return v.graph(root.graph, '$.graph', 0);
}

/** Whether a parsed JSON value nests deeper than `limit` (walked with an explicit stack). */
function nestsDeeperThan(x: unknown, limit: number): boolean {
  const stack: [unknown, number][] = [[x, 0]];
  while (stack.length) {
    const [v, d] = stack.pop()!;
    if (typeof v !== 'object' || v === null) continue;
    if (d >= limit) return true;
    for (const c of Array.isArray(v) ? v : Object.values(v))
      if (typeof c === 'object' && c !== null) stack.push([c, d + 1]);
  }
  return false;
}

type Obj = Record<string, unknown>;

/** A ref as decoded, with where it stands. */
interface RefRead {
  name: string;
  path: string;
}

class JsonValidator {
  private nodeCount = 0;
  /** Where a decoded ref is noted: the reads of the node (or outputs) being decoded. */
  private reads: RefRead[] = [];
  private readonly source: string | undefined;
  private readonly maxNodes: number;

  constructor(source: string | undefined, maxNodes: number) {
    this.source = source;
    this.maxNodes = maxNodes;
  }

  fail(path: string, detail: string): never {
    // A path down a hostile nesting would fill the screen: keep where it starts and ends.
    const shown = path.length > 160 ? `${path.slice(0, 60)}…${path.slice(-80)}` : path;
    throw new JsonPathError(path, `${shown}: ${detail}`, detail, this.source);
  }

  show(x: unknown): string {
    if (x === undefined) return 'nothing';
    if (nestsDeeperThan(x, MAX_NESTING_DEPTH))
      return Array.isArray(x) ? 'a deeply nested list' : 'a deeply nested object';
    const s = JSON.stringify(x);
    return s === undefined ? typeof x : s.length > 40 ? s.slice(0, 40) + '…' : s;
  }

  object(x: unknown, path: string): Obj {
    if (typeof x !== 'object' || x === null || Array.isArray(x))
      this.fail(path, `expected an object, found ${this.show(x)}`);
    return x as Obj;
  }

  array(x: unknown, path: string): unknown[] {
    if (!Array.isArray(x)) this.fail(path, `expected an array, found ${this.show(x)}`);
    return x;
  }

  string(x: unknown, path: string, nonEmpty = true): string {
    if (typeof x !== 'string' || (nonEmpty && x === ''))
      this.fail(path, `expected a ${nonEmpty ? 'non-empty ' : ''}string, found ${this.show(x)}`);
    return x;
  }

  keys(o: Obj, path: string, allowed: string[], required: string[] = allowed): void {
    for (const k of required) if (!(k in o)) this.fail(`${path}.${k}`, 'missing');
    for (const k in o)
      if (!allowed.includes(k))
        this.fail(`${path}.${k}`, `unknown field (expected one of ${allowed.join(', ')})`);
  }

  graph(x: unknown, path: string, depth: number): Graph {
    if (depth > MAX_SUBMODULE_DEPTH)
      this.fail(path, `submodules nested deeper than ${MAX_SUBMODULE_DEPTH} levels`);
    const o = this.object(x, path);
    this.keys(o, path, ['name', 'form', 'inputs', 'nodes', 'outputs', 'submodules']);
    const name = this.string(o.name, `${path}.name`);
    if (!FORMS.includes(o.form as GraphForm))
      this.fail(`${path}.form`, `expected one of ${FORMS.join(', ')}, found ${this.show(o.form)}`);
    const defined = new Set<string>();
    const define = (n: string, p: string) => {
      // Names are what FX text calls values, so a graph from JSON can always be written as FX.
      if (!isFxName(n))
        this.fail(
          p,
          `${this.show(n)} is not a name FX text can hold (an ASCII identifier, not a Python keyword)`,
        );
      if (defined.has(n)) this.fail(p, `duplicate name '${n}'`);
      defined.add(n);
    };
    const inputs = this.array(o.inputs, `${path}.inputs`).map((i, k) => {
      const input = this.input(i, `${path}.inputs[${k}]`);
      define(input.name, `${path}.inputs[${k}].name`);
      return input;
    });
    // The refs each node reads (and, last, the outputs), noted as they are decoded: see checkRefs.
    const reads: RefRead[][] = [];
    const nodes = this.array(o.nodes, `${path}.nodes`).map((n, k) => {
      if (++this.nodeCount > this.maxNodes)
        this.fail(`${path}.nodes[${k}]`, `too many nodes: over the limit of ${this.maxNodes} (maxNodes)`);
      reads.push((this.reads = []));
      const node = this.node(n, `${path}.nodes[${k}]`);
      define(node.name, `${path}.nodes[${k}].name`);
      return node;
    });
    reads.push((this.reads = []));
    const outputs =
      o.outputs === null
        ? null
        : this.array(o.outputs, `${path}.outputs`).map((a, k) => this.arg(a, `${path}.outputs[${k}]`, 0));
    const subs = this.object(o.submodules, `${path}.submodules`);
    const submodules: Record<string, Graph> = {};
    for (const k in subs) submodules[k] = this.graph(subs[k], `${path}.submodules.${k}`, depth + 1);
    const g: Graph = { name, form: o.form as GraphForm, inputs, nodes, outputs, submodules };
    this.checkRefs(g, path, reads);
    return g;
  }

  /**
   * Every ref names an input or an earlier node of the same graph, as in FX text: a graph is
   * an ordered list, so a use before the definition (a cycle, too) is refused where it is.
   * `reads[k]` are node k's refs with their paths, `reads[nodes.length]` the outputs'.
   */
  private checkRefs(g: Graph, path: string, reads: RefRead[][]): void {
    const inputs = new Set(g.inputs.map((i) => i.name));
    const position = new Map<string, number>();
    g.nodes.forEach((n, k) => position.set(n.name, k));
    const check = (at: number): void => {
      for (const { name, path: p } of reads[at] ?? []) {
        if (inputs.has(name)) continue;
        const k = position.get(name);
        if (k === undefined) this.fail(p, `'${name}' is neither an input nor a node of this graph`);
        if (k >= at) {
          this.fail(
            p,
            `'${name}' is used before it is defined (at ${path}.nodes[${k}]): a node must follow the nodes it reads, so no cycle can form`,
          );
        }
      }
    };
    g.nodes.forEach((n, k) => {
      check(k);
      if (n.op === 'call_module' && Object.keys(g.submodules).length > 0 && !(n.module! in g.submodules)) {
        this.fail(`${path}.nodes[${k}].module`, `no submodule '${n.module}' in this graph`);
      }
    });
    check(g.nodes.length);
  }

  input(x: unknown, path: string): Input {
    const o = this.object(x, path);
    this.keys(o, path, ['name', 'type', 'meta']);
    return {
      name: this.string(o.name, `${path}.name`),
      type: this.valueType(o.type, `${path}.type`),
      meta: this.meta(o.meta, `${path}.meta`),
    };
  }

  node(x: unknown, path: string): Node {
    const o = this.object(x, path);
    this.keys(
      o,
      path,
      ['name', 'op', 'args', 'kwargs', 'type', 'module', 'meta'],
      ['name', 'op', 'args', 'kwargs', 'type', 'meta'],
    );
    const n: Node = {
      name: this.string(o.name, `${path}.name`),
      op: this.string(o.op, `${path}.op`),
      args: this.array(o.args, `${path}.args`).map((a, k) => this.arg(a, `${path}.args[${k}]`, 0)),
      kwargs: {},
      type: this.valueType(o.type, `${path}.type`),
      meta: this.meta(o.meta, `${path}.meta`),
    };
    const kw = this.object(o.kwargs, `${path}.kwargs`);
    for (const k in kw) n.kwargs[k] = this.arg(kw[k], `${path}.kwargs.${k}`, 0);
    if (o.module !== undefined) n.module = this.string(o.module, `${path}.module`);
    if (n.op === 'call_module' && n.module === undefined)
      this.fail(`${path}.module`, 'missing: a call_module node names its submodule');
    return n;
  }

  valueType(x: unknown, path: string): ValueType | null {
    if (x === null) return null;
    const o = this.object(x, path);
    if (o.kind === 'sym') {
      this.keys(o, path, ['kind', 'expr']);
      return { kind: 'sym', expr: this.string(o.expr, `${path}.expr`) };
    }
    if (o.kind !== 'tensor')
      this.fail(`${path}.kind`, `expected 'tensor' or 'sym', found ${this.show(o.kind)}`);
    this.keys(o, path, ['kind', 'dtype', 'shape']);
    if (typeof o.dtype !== 'string' || !(o.dtype in DTYPE_BYTES)) {
      this.fail(
        `${path}.dtype`,
        `expected one of ${Object.keys(DTYPE_BYTES).join(', ')}, found ${this.show(o.dtype)}`,
      );
    }
    const shape: Dim[] = this.array(o.shape, `${path}.shape`).map((d, k) => {
      if (typeof d === 'number' && Number.isSafeInteger(d) && d >= 0) return d;
      if (typeof d === 'string' && d.trim() !== '') return d;
      return this.fail(
        `${path}.shape[${k}]`,
        `expected a size (integer ≥ 0) or a symbol, found ${this.show(d)}`,
      );
    });
    return { kind: 'tensor', dtype: o.dtype as DType, shape };
  }

  meta(x: unknown, path: string): Provenance {
    const o = this.object(x, path);
    const m: Provenance = {};
    for (const k in o) {
      const v = o[k];
      if (k === 'line') {
        if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 1)
          this.fail(`${path}.line`, `expected a line number ≥ 1, found ${this.show(v)}`);
        m.line = v;
      } else if (k === 'file') {
        m.file = this.string(v, `${path}.file`, false);
      } else if (k === 'madeBy') {
        const mb = this.object(v, `${path}.madeBy`);
        this.keys(mb, `${path}.madeBy`, ['pass', 'from']);
        m.madeBy = {
          pass: this.string(mb.pass, `${path}.madeBy.pass`),
          from: this.array(mb.from, `${path}.madeBy.from`).map((f, j) =>
            this.string(f, `${path}.madeBy.from[${j}]`),
          ),
        };
      } else {
        // Provenance grows as passes record more; keep what we do not know verbatim.
        if (nestsDeeperThan(v, MAX_NESTING_DEPTH))
          this.fail(`${path}.${k}`, `nested deeper than ${MAX_NESTING_DEPTH} levels`);
        (m as Record<string, unknown>)[k] = structuredClone(v);
      }
    }
    return m;
  }

  arg(x: unknown, path: string, depth: number): Arg {
    if (depth > MAX_ARG_DEPTH) this.fail(path, `arguments nested deeper than ${MAX_ARG_DEPTH} levels`);
    if (x === null || typeof x === 'boolean' || typeof x === 'string') return x;
    if (typeof x === 'number') {
      if (!Number.isFinite(x)) this.fail(path, `expected a finite number, found ${x}`);
      return x;
    }
    if (Array.isArray(x)) return x.map((a, k) => this.arg(a, `${path}[${k}]`, depth + 1));
    const o = this.object(x, path);
    switch (o.kind) {
      case 'ref': {
        this.keys(o, path, ['kind', 'name']);
        const name = this.string(o.name, `${path}.name`);
        this.reads.push({ name, path: `${path}.name` });
        return { kind: 'ref', name };
      }
      case 'float': {
        this.keys(o, path, ['kind', 'value']);
        const val = o.value;
        if (typeof val === 'number' && Number.isFinite(val)) return { kind: 'float', value: val };
        if (typeof val === 'string' && val in SPECIAL_FLOATS)
          return { kind: 'float', value: SPECIAL_FLOATS[val] };
        return this.fail(
          `${path}.value`,
          `expected a finite number or one of 'inf', '-inf', 'nan', '-0.0', found ${this.show(val)}`,
        );
      }
      case 'op':
        this.keys(o, path, ['kind', 'target']);
        return { kind: 'op', target: this.string(o.target, `${path}.target`) };
      case 'tuple':
        this.keys(o, path, ['kind', 'items']);
        return {
          kind: 'tuple',
          items: this.array(o.items, `${path}.items`).map((a, k) =>
            this.arg(a, `${path}.items[${k}]`, depth + 1),
          ),
        };
      case 'expr':
        this.keys(o, path, ['kind', 'text']);
        return { kind: 'expr', text: this.string(o.text, `${path}.text`) };
      default:
        return this.fail(
          `${path}.kind`,
          `expected an argument: null, boolean, number, string, list, or an object of kind ref, float, op, tuple or expr; found kind ${this.show(o.kind)}`,
        );
    }
  }
}
