// The IR: a small, explicit graph in the spirit of torch.fx.
// A Graph is an ordered list of Nodes plus its inputs and outputs. Values are
// referred to by name: a Ref names either a graph input or a node.

/**
 * dtypes as FX annotations spell them: `f8e4m3fn` is torch.float8_e4m3fn (vLLM's FP8 on CUDA),
 * `f8e4m3fnuz` / `f8e5m2fnuz` ROCm's (MI300), `f8e5m2` the FP8 KV cache's, `f8e8m0fnu` the MX
 * block scales', `f4e2m1fn_x2` two NVFP4 values packed in a byte. Each with its size, whether it
 * holds real numbers (the runtime keeps those in the run's float dtype) and torch's name for it.
 */
export const DTYPES = {
  bf16: { bytes: 2, float: true, torch: 'torch.bfloat16' },
  f16: { bytes: 2, float: true, torch: 'torch.float16' },
  f32: { bytes: 4, float: true, torch: 'torch.float32' },
  f64: { bytes: 8, float: true, torch: 'torch.float64' },
  i64: { bytes: 8, float: false, torch: 'torch.int64' },
  i32: { bytes: 4, float: false, torch: 'torch.int32' },
  i16: { bytes: 2, float: false, torch: 'torch.int16' },
  i8: { bytes: 1, float: false, torch: 'torch.int8' },
  u8: { bytes: 1, float: false, torch: 'torch.uint8' },
  b8: { bytes: 1, float: false, torch: 'torch.bool' },
  f8e4m3fn: { bytes: 1, float: true, torch: 'torch.float8_e4m3fn' },
  f8e4m3fnuz: { bytes: 1, float: true, torch: 'torch.float8_e4m3fnuz' },
  f8e5m2: { bytes: 1, float: true, torch: 'torch.float8_e5m2' },
  f8e5m2fnuz: { bytes: 1, float: true, torch: 'torch.float8_e5m2fnuz' },
  f8e8m0fnu: { bytes: 1, float: true, torch: 'torch.float8_e8m0fnu' },
  f4e2m1fn_x2: { bytes: 1, float: true, torch: 'torch.float4_e2m1fn_x2' },
} as const satisfies Record<string, { bytes: number; float: boolean; torch: string }>;
export type DType = keyof typeof DTYPES;

export const DTYPE_BYTES = Object.fromEntries(Object.entries(DTYPES).map(([k, v]) => [k, v.bytes])) as Record<
  DType,
  number
>;

/** How torch spells each dtype (`torch.float32`), as a dtype argument prints it. */
export const TORCH_DTYPE_NAMES = Object.fromEntries(
  Object.entries(DTYPES).map(([k, v]) => [k, v.torch]),
) as Record<DType, string>;

const FROM_TORCH: Readonly<Record<string, DType>> = {
  ...Object.fromEntries(Object.entries(DTYPES).map(([k, v]) => [v.torch, k as DType])),
  'torch.float': 'f32',
  'torch.half': 'f16',
  'torch.double': 'f64',
  'torch.long': 'i64',
  'torch.int': 'i32',
};

/** The IR dtype a `torch.<dtype>` expression argument names; undefined for anything else. */
export function torchDtype(a: Arg | undefined): DType | undefined {
  return a && typeof a === 'object' && !Array.isArray(a) && a.kind === 'expr'
    ? FROM_TORCH[a.text]
    : undefined;
}

export const isFloatDType = (d: string): boolean => Object.hasOwn(DTYPES, d) && DTYPES[d as DType].float;

/** A dimension: a concrete size, or a symbolic expression as FX prints it (`s72`, `2*s0`). */
export type Dim = number | string;

export interface TensorType {
  kind: 'tensor';
  dtype: DType;
  shape: Dim[];
}

/** A symbolic integer input (`"Sym(s72)"`). */
export interface SymType {
  kind: 'sym';
  expr: string;
}

export type ValueType = TensorType | SymType;

/** Reference to a graph input or a node's result. */
export interface Ref {
  kind: 'ref';
  name: string;
}
/** A Python float (kept apart from ints so `1e-05` and `1.0` print back as floats). */
export interface FloatLit {
  kind: 'float';
  value: number;
}
/** An op passed as a value (auto_functionalized's first argument). */
export interface OpLit {
  kind: 'op';
  target: string;
}
/** A Python tuple (lists are plain arrays). */
export interface TupleLit {
  kind: 'tuple';
  items: Arg[];
}
/** Any other Python expression, kept verbatim: `torch.bfloat16`, `device(type='cuda', index=0)`. */
export interface ExprLit {
  kind: 'expr';
  text: string;
}

/** An argument: Python None / bool / int / str, or one of the tagged forms above, or a list. */
export type Arg = null | boolean | number | string | Ref | FloatLit | OpLit | TupleLit | ExprLit | Arg[];

export interface Provenance {
  /** 1-based line of the node in the text it was imported from. */
  line?: number;
  /** The `# File: path:line in fn, code: ...` comment that preceded the node, without `# File: `. */
  file?: string;
  /** Set by a rewrite: which pass made this node, from which nodes of its input graph. */
  madeBy?: { pass: string; from: string[] };
}

export interface Node {
  name: string;
  /**
   * Fully qualified op: `aten.slice.Tensor`, `vllm.all_reduce.default`,
   * `higher_order.auto_functionalized`, `getitem`, or `call_module` (target in `module`).
   */
  op: string;
  args: Arg[];
  kwargs: Record<string, Arg>;
  /**
   * The result type as annotated (`"bf16[s72, 3072]"`); null for tuple-valued nodes printed
   * without annotation (auto_functionalized, split_with_sizes). Multi-result types are derived
   * by the registry (see `resultTypes`).
   */
  type: ValueType | null;
  /** For `call_module` nodes: the submodule's name (`submod_0`). */
  module?: string;
  meta: Provenance;
}

export interface Input {
  name: string;
  type: ValueType | null;
  meta: Provenance;
}

export type GraphForm = 'module' | 'fragment' | 'graph';

export interface Graph {
  /** The class name for `module` form (`GraphModule`, `<lambda>`), else a label. */
  name: string;
  form: GraphForm;
  inputs: Input[];
  nodes: Node[];
  /** The returned values, or null when the text had no `return` (a fragment). */
  outputs: Arg[] | null;
  /** Nested `class submod_N` modules, by name. */
  submodules: Record<string, Graph>;
}

export const ref = (name: string): Ref => ({ kind: 'ref', name });
export const float = (value: number): FloatLit => ({ kind: 'float', value });

export function isRef(a: Arg): a is Ref {
  return typeof a === 'object' && a !== null && !Array.isArray(a) && a.kind === 'ref';
}

// The argument walkers: every pass, index and view that asks which values a node reads, or
// rewrites them, goes through these (lists and tuples opened, in order).

/** An argument that is not a list or a tuple. */
export type ArgLeaf = Exclude<Arg, Arg[] | TupleLit>;

/** Calls `f` for every leaf of an argument, in order. */
export function forEachLeaf(a: Arg, f: (leaf: ArgLeaf) => void): void {
  if (Array.isArray(a)) {
    for (let i = 0; i < a.length; i++) forEachLeaf(a[i]!, f);
    return;
  }
  if (a !== null && typeof a === 'object' && a.kind === 'tuple') {
    for (let i = 0; i < a.items.length; i++) forEachLeaf(a.items[i]!, f);
    return;
  }
  f(a);
}

/** Calls `f` for every value name an argument refers to. */
export function forEachRef(a: Arg, f: (name: string) => void): void {
  forEachLeaf(a, (leaf) => {
    if (isRef(leaf)) f(leaf.name);
  });
}

/** Every value name a node reads, in argument order (positional, then keywords). */
export function forEachInput(n: Node, f: (name: string) => void): void {
  for (let j = 0; j < n.args.length; j++) forEachRef(n.args[j]!, f);
  for (const kw in n.kwargs) forEachRef(n.kwargs[kw]!, f);
}

/**
 * `a` with every leaf replaced by `f(leaf)`. Lists and tuples are rebuilt only where a leaf
 * changed, so an argument nothing touched is returned as it was (graphs share unchanged parts).
 */
export function mapArg(a: Arg, f: (leaf: ArgLeaf) => Arg): Arg {
  if (Array.isArray(a)) {
    let out: Arg[] | null = null;
    for (let i = 0; i < a.length; i++) {
      const r = mapArg(a[i]!, f);
      if (r !== a[i] && !out) out = a.slice(0, i);
      if (out) out.push(r);
    }
    return out ?? a;
  }
  if (a !== null && typeof a === 'object' && a.kind === 'tuple') {
    const items = mapArg(a.items, f) as Arg[];
    return items === a.items ? a : { kind: 'tuple', items };
  }
  return f(a);
}

/** Every Ref inside an argument (lists and tuples included), in order. */
export function refsOf(a: Arg, out: string[] = []): string[] {
  forEachRef(a, (r) => out.push(r));
  return out;
}

/** Names a node reads, args then kwargs. */
export function nodeInputs(n: Node): string[] {
  const out: string[] = [];
  forEachInput(n, (r) => out.push(r));
  return out;
}

/** Numeric value of an int or float literal, else undefined. */
export function numberOf(a: Arg | undefined): number | undefined {
  if (typeof a === 'number') return a;
  if (a && typeof a === 'object' && !Array.isArray(a) && a.kind === 'float') return a.value;
  return undefined;
}

/** Map from value name to the names of nodes that read it (`'output'` for the graph's return), in graph order. */
export function usersOf(g: Graph): Map<string, string[]> {
  const users = new Map<string, string[]>();
  let reader = '';
  const addUse = (r: string) => {
    let u = users.get(r);
    if (!u) users.set(r, (u = []));
    // A node reading a value twice is one user (a node's reads come one after another).
    if (u.length === 0 || u[u.length - 1] !== reader) u.push(reader);
  };
  for (const n of g.nodes) {
    reader = n.name;
    forEachInput(n, addUse);
  }
  if (g.outputs) {
    reader = 'output';
    for (const a of g.outputs) forEachRef(a, addUse);
  }
  return users;
}

export function cloneGraph(g: Graph): Graph {
  return structuredClone(g);
}

export function shapeToString(t: TensorType): string {
  return `${t.dtype}[${t.shape.join(', ')}]`;
}

export function numel(t: TensorType): number | undefined {
  let n = 1;
  for (const d of t.shape) {
    if (typeof d !== 'number') return undefined;
    n *= d;
  }
  return n;
}

/** The graph without source line numbers, which printing moves: what a round trip must keep. */
export function withoutSourceLines(g: Graph): Graph {
  const strip = <T extends { meta: Provenance }>(x: T): T => {
    const { line: _line, ...meta } = x.meta;
    return { ...x, meta };
  };
  const submodules: Record<string, Graph> = {};
  for (const k in g.submodules) submodules[k] = withoutSourceLines(g.submodules[k]);
  return { ...g, inputs: g.inputs.map(strip), nodes: g.nodes.map(strip), submodules };
}
