// Planning: a Graph becomes a list of kernel steps over storages and strided views, before any
// device work. Views (slice, t, view, split, getitem) cost nothing; auto_functionalized is
// unwrapped; ops without a kernel but with an annotated type are fed from seeded inputs; ops that
// can be neither are collected and reported together. Shapes are computed here and checked
// against the graph's annotations (mapped through the preset).

import type { Arg, Graph, Node, TensorType, ValueType } from '../graph/ir.ts';
import { isRef, numberOf } from '../graph/ir.ts';
import { isFxOp, lookupOp, type FxOp } from '../graph/ops.ts';
import { dimValue, SizeExprError } from '../graph/sizeExpr.ts';
import { RunError } from './runError.ts';
import { PRESETS, GPT_OSS, presetDim, type Preset, type PresetName } from './presets.ts';

import {
  KERNELS,
  assertNever,
  elementwiseOp,
  type ElementwiseOpDef,
  type Kernel,
  type KernelName,
  type MapFn,
  type StorageDType,
  type View,
  type InputRole,
} from '../graph/opTable.ts';
export type { FusedNormRounding, InputRole, Kernel, MapFn, StorageDType, View } from '../graph/opTable.ts';

export type FloatDType = 'bf16' | 'f16' | 'f32';

export interface Storage {
  id: string;
  dtype: StorageDType;
  shape: number[];
  numel: number;
}

export type Step = Kernel & { node: string; op: string };

/** Steps that run across ranks (every rank meets the others); the rest run on each rank alone. */
export type CollectiveStep = Extract<Step, { kernel: CollectiveKernel }>;
type CollectiveKernel = {
  [K in KernelName]: (typeof KERNELS)[K]['collective'] extends true ? K : never;
}[KernelName];
export function isCollective(s: Step): s is CollectiveStep {
  return KERNELS[s.kernel].collective;
}

/** Sequence parallelism's and async TP's ops, as the passes emit them. */
const REDUCE_SCATTER_OP = 'vllm.reduce_scatter.default' satisfies FxOp;
const ALL_GATHER_OP = 'vllm.all_gather.default' satisfies FxOp;
const FUSED_MM_RS_OP = 'symm_mem.fused_matmul_reduce_scatter.default' satisfies FxOp;
const FUSED_AG_MM_OP = 'symm_mem.fused_all_gather_matmul.default' satisfies FxOp;

export interface PlanOutput {
  name: string;
  view: View;
}

export interface Plan {
  graph: string;
  preset: Preset;
  dtype: FloatDType;
  ranks: number;
  tokens: number;
  storages: Map<string, Storage>;
  steps: Step[];
  outputs: PlanOutput[];
  /** Nodes whose values come from seeded inputs because no kernel computes them. */
  fed: string[];
  /** Storages whose last reader is step i, freed after it. */
  freeAfter: Map<number, string[]>;
}

export interface PlanOptions {
  preset: PresetName;
  dtype: FloatDType;
  ranks: number;
  tokens?: number;
}

type Value =
  | { t: 'tensor'; view: View }
  | { t: 'tuple'; items: (Value | null)[] }
  | { t: 'none' }
  | { t: 'sym'; value: number };

interface Hint {
  role: InputRole;
  range?: number;
  shape?: number[];
  dtype?: StorageDType;
}

const contiguousStrides = (shape: number[]) => {
  const s = new Array<number>(shape.length);
  let acc = 1;
  for (let i = shape.length - 1; i >= 0; i--) {
    s[i] = acc;
    acc *= shape[i];
  }
  return s;
};
export const numelOf = (shape: number[]) => shape.reduce((a, b) => a * b, 1);

export function isContiguous(v: View): boolean {
  const c = contiguousStrides(v.shape);
  return v.shape.every((d, i) => d === 1 || v.strides[i] === c[i]);
}

/** A view as `rows × cols` with unit column stride and one row stride, or null. */
export function asRows(v: View): { offset: number; rows: number; cols: number; rowStride: number } | null {
  const n = v.shape.length;
  if (n === 0) return { offset: v.offset, rows: 1, cols: 1, rowStride: 1 };
  const cols = v.shape[n - 1];
  if (cols !== 1 && v.strides[n - 1] !== 1) return null;
  let rows = 1;
  let rowStride = cols;
  let expect: number | null = null;
  for (let i = n - 2; i >= 0; i--) {
    if (v.shape[i] === 1) continue;
    if (expect === null) {
      rowStride = v.strides[i];
      expect = v.strides[i] * v.shape[i];
    } else if (v.strides[i] !== expect) return null;
    else expect = v.strides[i] * v.shape[i];
    rows *= v.shape[i];
  }
  return { offset: v.offset, rows, cols, rowStride };
}

// f8e4m3fn values are held in the run dtype (each is exact in bf16).
const FLOAT_DTYPES = new Set(['bf16', 'f16', 'f32', 'f64', 'f8e4m3fn']);

/** Spellings outside the op registry that the planner still lowers: aliases of registered ops, SymInt arithmetic. */
const UNREGISTERED_LOWERED = [
  'aten.contiguous.default',
  'aten._unsafe_view.default',
  'aten.split.Tensor',
  'aten.alias.default',
  'aten.zeros.default',
  'aten.new_zeros.default',
  'operator.add',
  'operator.sub',
  'operator.mul',
  'operator.floordiv',
] as const;
/** What `lowerCall`'s switch must handle, every case of it (elementwise ops lower through their table entry). */
type LoweredOp = FxOp | (typeof UNREGISTERED_LOWERED)[number];
const isLoweredOp = (op: string): op is LoweredOp =>
  isFxOp(op) || (UNREGISTERED_LOWERED as readonly string[]).includes(op);
/** Ops that yield a tensor of zeros (or uninitialised memory, which we zero for determinism). */
const ZERO_OPS = [
  'aten.empty.memory_format',
  'aten.empty_like.default',
  'aten.zeros.default',
  'aten.zeros_like.default',
  'aten.new_zeros.default',
] as const satisfies readonly LoweredOp[];
const IDENTITY_OPS = [
  'aten.detach.default',
  '_c10d_functional.wait_tensor.default',
  'aten.alias.default',
] as const satisfies readonly LoweredOp[];
const RESHAPE_OPS = [
  'aten.view.default',
  'aten.reshape.default',
  'aten._unsafe_view.default',
] as const satisfies readonly LoweredOp[];
const isOneOf = <T extends string>(ops: readonly T[], op: string): op is T =>
  (ops as readonly string[]).includes(op);

export function normalizeTarget(t: string): string {
  return t.replace(/^torch\.ops\./, '');
}

/** Value of a symbolic dim expression (`s72`, `2*s0`) with every symbol bound to `tokens`. */
export function evalDim(d: number | string, tokens: number, where: string): number {
  try {
    return dimValue(d, tokens);
  } catch (e) {
    if (e instanceof SizeExprError)
      throw new RunError('input', `${where}: cannot evaluate the dim: ${e.message}`);
    throw e;
  }
}

export function buildPlan(g: Graph, opts: PlanOptions): Plan {
  const preset = PRESETS[opts.preset];
  const tokens = opts.tokens ?? preset.tokens;
  const ranks = opts.ranks;
  if (!Number.isInteger(ranks) || ranks < 1)
    throw new RunError('input', `ranks must be a positive integer, got ${ranks}`);
  const storages = new Map<string, Storage>();
  const steps: Step[] = [];
  const values = new Map<string, Value>();
  const fed: string[] = [];
  /** Nodes whose value is one known number everywhere (aten.full): `where` reads them as its scalar word. */
  const constants = new Map<string, number>();
  /** Graph inputs a node wrote in place (copy_ at the end of a piecewise graph): outputs too. */
  const writtenInputs: string[] = [];
  const unsupported: string[] = [];
  const inputs = new Map(g.inputs.map((i) => [i.name, i]));
  const nodesByName = new Map(g.nodes.map((n) => [n.name, n]));
  const hints = roleHints(g);
  const itemTypes = new Map<string, (ValueType | null)[]>();
  for (const n of g.nodes) {
    if (n.op !== 'getitem' || !isRef(n.args[0]) || !n.type) continue;
    const i = numberOf(n.args[1]);
    if (i === undefined) continue;
    const l = itemTypes.get(n.args[0].name) ?? [];
    while (l.length <= i) l.push(null);
    l[i] = n.type;
    itemTypes.set(n.args[0].name, l);
  }

  const mapDim = (d: number | string, where: string) =>
    typeof d === 'number' ? presetDim(preset, d) : evalDim(d, tokens, where);
  const storageDtype = (dt: string): StorageDType => (FLOAT_DTYPES.has(dt) ? opts.dtype : 'i32');
  const mapType = (t: TensorType, where: string) => ({
    dtype: storageDtype(t.dtype),
    shape: t.shape.map((d) => mapDim(d, where)),
  });

  const newStorage = (id: string, dtype: StorageDType, shape: number[]): View => {
    let sid = id;
    for (let k = 2; storages.has(sid); k++) sid = `${id}#${k}`;
    storages.set(sid, { id: sid, dtype, shape, numel: numelOf(shape) });
    return { storage: sid, dtype, offset: 0, shape, strides: contiguousStrides(shape) };
  };
  const push = (node: Node, k: Kernel) => steps.push({ ...k, node: node.name, op: node.op } as Step);

  const seedValue = (
    name: string,
    dtype: StorageDType,
    shape: number[],
    hint: Hint,
    node: Node | null,
  ): View => {
    const v = newStorage(name, dtype, shape);
    const perRank = ['weight', 'bias', 'embedding', 'fed'].includes(hint.role);
    steps.push({
      kernel: 'seed',
      name,
      role: hint.role,
      perRank,
      range: hint.range,
      out: v.storage,
      node: node?.name ?? name,
      op: node?.op ?? 'input',
    });
    return v;
  };

  /** Resolve an argument to a value; graph inputs materialize on first use (typed, or typed by `hint`). */
  const resolve = (a: Arg, where: Node, hint?: Hint): Value | null => {
    if (a === null) return { t: 'none' };
    if (!isRef(a)) return null;
    const have = values.get(a.name);
    if (have) return have;
    const inp = inputs.get(a.name);
    // The role seen from the whole graph wins (a router's weight stays replicated); shape and range come from this use.
    const h: Hint = {
      role: hints.get(a.name)?.role ?? hint?.role ?? 'activation',
      range: hint?.range,
      shape: hint?.shape,
      dtype: hint?.dtype,
    };
    if (h.role === 'indices' && h.range === undefined) h.range = preset.vocab;
    let val: Value;
    if (inp && inp.type?.kind === 'sym') {
      val = { t: 'sym', value: evalDim(inp.type.expr, tokens, inp.name) };
    } else if (inp && inp.type?.kind === 'tensor') {
      const mt = mapType(inp.type, inp.name);
      val = { t: 'tensor', view: seedValue(a.name, mt.dtype, mt.shape, h, null) };
    } else if (!nodesByName.has(a.name) && h.shape) {
      // A fragment's free name: typed by how it is used.
      val = { t: 'tensor', view: seedValue(a.name, h.dtype ?? opts.dtype, h.shape, h, null) };
    } else {
      throw new RunError(
        'input',
        `node ${where.name} (${where.op}) reads '${a.name}', which has no type: give the input an annotation ("bf16[s72, 2880]")`,
        { node: where.name, op: where.op },
      );
    }
    values.set(a.name, val);
    return val;
  };
  const tensor = (a: Arg, where: Node, what: string, hint?: Hint): View => {
    const v = resolve(a, where, hint);
    if (!v || v.t !== 'tensor')
      throw new RunError('input', `node ${where.name} (${where.op}): ${what} must be a tensor`, {
        node: where.name,
        op: where.op,
      });
    return v.view;
  };
  const fail = (n: Node, msg: string): never => {
    throw new RunError('validation', `node ${n.name} (${n.op}): ${msg}`, { node: n.name, op: n.op });
  };
  /** A reduce-scatter / all-gather along tokens over this run's ranks, of a token count they split evenly. */
  const tokenDimCollective = (
    n: Node,
    dim: Arg | undefined,
    worldSize: Arg | undefined,
    tokenRows: number,
  ) => {
    const where = { node: n.name, op: n.op };
    if ((numberOf(dim ?? null) ?? 0) !== 0)
      throw new RunError(
        'input',
        `node ${n.name} (${n.op}): dim ${JSON.stringify(dim)} is not the token dim 0; only token-dim collectives run`,
        where,
      );
    const ws = numberOf(worldSize ?? null);
    if (ws !== undefined && ws !== ranks)
      throw new RunError(
        'input',
        `node ${n.name} (${n.op}): the graph splits over world_size ${ws} but the run has ${ranks} rank(s); use --ranks ${ws}`,
        where,
      );
    if (tokenRows % ranks !== 0)
      throw new RunError(
        'input',
        `node ${n.name} (${n.op}): ${tokenRows} tokens do not split over ${ranks} ranks; use a token count divisible by ${ranks} (--tokens ${Math.ceil(tokenRows / ranks) * ranks})`,
        where,
      );
  };

  const contiguous = (v: View, n: Node): View => {
    if (isContiguous(v)) return v;
    const out = newStorage(`${n.name}.contiguous`, v.dtype, v.shape);
    push(n, { kernel: 'copy', x: v, out: out.storage });
    return out;
  };
  const rowsOrCopy = (v: View, n: Node): View => (asRows(v) ? v : contiguous(v, n));

  /**
   * `src` written into `dst` in place (copy_, an in-place op called directly, v2's write-back): a
   * copy when dst is its whole storage, else a scatter of src through dst's window into a copy of
   * the storage, copied back over it.
   */
  const writeInto = (n: Node, dst: View, src: View): void => {
    if (dst.shape.join() !== src.shape.join()) fail(n, `writes [${src.shape}] into a view of [${dst.shape}]`);
    const st = storages.get(dst.storage)!;
    if (inputs.has(dst.storage) && !writtenInputs.includes(dst.storage)) writtenInputs.push(dst.storage);
    if (dst.offset === 0 && numelOf(dst.shape) === st.numel && isContiguous(dst)) {
      // The whole storage, perhaps under another shape ([T, H, D] over [T, H·D]): a flat copy.
      const flat = contiguous(src, n);
      push(n, {
        kernel: 'copy',
        x: { ...flat, shape: st.shape, strides: contiguousStrides(st.shape) },
        out: dst.storage,
      });
      return;
    }
    const whole: View = {
      storage: st.id,
      dtype: st.dtype,
      offset: 0,
      shape: st.shape,
      strides: contiguousStrides(st.shape),
    };
    const tmp = newStorage(`${n.name}.${dst.storage}`, st.dtype, st.shape);
    scatterThrough(n, whole, src, dst.offset, dst.strides, tmp.storage);
    push(n, { kernel: 'copy', x: tmp, out: dst.storage });
  };

  /** A scatter step writing src through the window (at, strides) of a contiguous out; refused where the window overlaps itself. */
  const scatterThrough = (
    n: Node,
    base: View,
    src: View,
    at: number,
    strides: number[],
    out: string,
  ): void => {
    const order = src.shape
      .map((_, d) => d)
      .filter((d) => src.shape[d] > 1)
      .sort((a, b) => strides[b] - strides[a]);
    let inner = 1;
    for (let k = order.length - 1; k >= 0; k--) {
      const d = order[k];
      if (strides[d] < inner)
        fail(n, `writes through a window whose strides [${strides}] overlap (sizes [${src.shape}])`);
      inner = strides[d] * (src.shape[d] - 1) + 1;
    }
    push(n, { kernel: 'scatter', base, src, at, strides, out });
  };

  /** A Python number, a SymInt or a size string: the map kernel's scalar word, not a tensor. */
  const isScalarArg = (a: Arg | undefined): boolean => {
    if (a === undefined || a === null) return false;
    if (numberOf(a) !== undefined || typeof a === 'string') return true;
    if (!isRef(a)) return false;
    return values.get(a.name)?.t === 'sym' || inputs.get(a.name)?.type?.kind === 'sym';
  };

  /** An op of ELEMENTWISE_OPS: `add` (tensor + alpha · tensor) or one map function. */
  const lowerElementwise = (
    n: Node,
    op: string,
    ew: ElementwiseOpDef,
    arg: (i: number) => Arg,
    num: (i: number, fallback: number) => number,
    symInt: (a: Arg, fallback: number) => number,
  ): Value | 'unsupported' => {
    const a = tensor(arg(0), n, 'self');
    const dtype = n.type?.kind === 'tensor' ? mapType(n.type, n.name).dtype : a.dtype;
    const emit = (fn: MapFn, b: View | null, scalar: number): Value => {
      const shape = b
        ? (broadcastShape(a.shape, b.shape) ?? fail(n, `cannot broadcast [${a.shape}] with [${b.shape}]`))
        : a.shape;
      const out = newStorage(n.name, dtype, shape);
      push(n, { kernel: 'map', fn, a, b, scalar, out: out.storage });
      return { t: 'tensor', view: out };
    };
    if (ew.unary) return emit(ew.unary, null, 0);
    if (ew.number && isScalarArg(arg(1))) {
      // add(x, 2.0, alpha=3) is x + 6.0; sizes compared with token ids follow the preset's sizes.
      const s = ew.number.size
        ? symInt(arg(1), 0)
        : (numberOf(arg(1)) ?? fail(n, `other must be a number, got ${JSON.stringify(arg(1))}`));
      return emit(ew.number.fn, null, op === 'aten.add.Tensor' ? s * num(2, 1) : s);
    }
    if (!ew.tensor || isScalarArg(arg(1))) return 'unsupported';
    const b = tensor(arg(1), n, 'other', { role: 'activation', shape: a.shape, dtype: a.dtype });
    if (ew.tensor.fn === 'add') {
      const shape =
        broadcastShape(a.shape, b.shape) ?? fail(n, `cannot broadcast [${a.shape}] with [${b.shape}]`);
      const out = newStorage(n.name, a.dtype, shape);
      push(n, { kernel: 'add', a, b, alpha: num(2, 1), out: out.storage });
      return { t: 'tensor', view: out };
    }
    return emit(ew.tensor.fn, b, ew.tensor.scalarArg === undefined ? 0 : num(ew.tensor.scalarArg, 0));
  };

  /** Lower a (possibly functionalized) op call; returns the tuple auto_functionalized would. */
  const lowerCall = (
    n: Node,
    op: string,
    get: (i: number, name: string) => Arg | undefined,
  ): Value | 'unsupported' => {
    const def = lookupOp(op);
    const arg = (i: number) => {
      const spec = def?.args[i];
      const v = get(i, spec?.name ?? `#${i}`);
      return v === undefined ? (spec?.default ?? null) : v;
    };
    const num = (i: number, fallback: number) => numberOf(arg(i)) ?? fallback;
    const symInt = (a: Arg, fallback: number): number => {
      const x = numberOf(a);
      if (x !== undefined) return presetDim(preset, x);
      if (isRef(a)) {
        const v = resolve(a, n);
        if (v?.t === 'sym') return v.value;
      }
      if (typeof a === 'string') return evalDim(a, tokens, n.name);
      return fallback;
    };
    const T = (v: View): Value => ({ t: 'tensor', view: v });
    const ew = elementwiseOp(op);
    if (ew) return lowerElementwise(n, op, ew, arg, num, symInt);
    if (!isLoweredOp(op)) return 'unsupported';
    if (isOneOf(IDENTITY_OPS, op)) return T(tensor(arg(0), n, 'self'));
    if (isOneOf(ZERO_OPS, op)) {
      const like = op.endsWith('_like.default') ? tensor(arg(0), n, 'self') : null;
      const mt =
        n.type?.kind === 'tensor'
          ? mapType(n.type, n.name)
          : like
            ? { dtype: like.dtype, shape: like.shape }
            : null;
      return mt ? T(seedValue(n.name, mt.dtype, mt.shape, { role: 'zeros' }, n)) : 'unsupported';
    }
    switch (op) {
      case 'aten.slice.Tensor': {
        const x = tensor(arg(0), n, 'self');
        let dim = num(1, 0);
        if (dim < 0) dim += x.shape.length;
        const size = x.shape[dim];
        const clampIdx = (i: number) => Math.min(Math.max(i < 0 ? i + size : i, 0), size);
        const start = clampIdx(arg(2) === null ? 0 : symInt(arg(2), 0));
        const end = clampIdx(arg(3) === null ? size : symInt(arg(3), size));
        const step = num(4, 1);
        const shape = [...x.shape];
        const strides = [...x.strides];
        shape[dim] = Math.max(0, Math.ceil((end - start) / step));
        strides[dim] *= step;
        return T({ ...x, offset: x.offset + start * x.strides[dim], shape, strides });
      }
      case 'aten.t.default': {
        const x = tensor(arg(0), n, 'self');
        if (x.shape.length < 2) return T(x);
        return T({ ...x, shape: [x.shape[1], x.shape[0]], strides: [x.strides[1], x.strides[0]] });
      }
      case 'aten.clone.default':
      case 'aten.contiguous.default': {
        const x = tensor(arg(0), n, 'self');
        const out = newStorage(n.name, x.dtype, x.shape);
        push(n, { kernel: 'copy', x, out: out.storage });
        return T(out);
      }
      case 'aten.constant_pad_nd.default': {
        const x = tensor(arg(0), n, 'self');
        const pad = arg(1);
        if (!Array.isArray(pad) || pad.length % 2 || pad.length / 2 > x.shape.length)
          fail(n, 'pad must be pairs, one per trailing dim');
        const lo = new Array(x.shape.length).fill(0);
        const shape = [...x.shape];
        const annotated = n.type?.kind === 'tensor' ? mapType(n.type, n.name).shape : null;
        for (let p = 0; p < (pad as Arg[]).length / 2; p++) {
          const d = x.shape.length - 1 - p;
          const a = symInt((pad as Arg[])[2 * p], 0);
          // The padded size follows the preset (3072 → 48), so the high pad is what reaches it.
          const b = annotated ? annotated[d] - x.shape[d] - a : symInt((pad as Arg[])[2 * p + 1], 0);
          if (a < 0 || b < 0) fail(n, `negative padding (${a}, ${b}) on dim ${d} is not supported`);
          lo[d] = a;
          shape[d] = x.shape[d] + a + b;
        }
        const out = newStorage(n.name, x.dtype, shape);
        push(n, { kernel: 'pad', x, lo, value: numberOf(arg(2)) ?? 0, out: out.storage });
        return T(out);
      }
      case 'aten.unsqueeze.default': {
        const x = tensor(arg(0), n, 'self');
        let dim = num(1, 0);
        if (dim < 0) dim += x.shape.length + 1;
        const shape = [...x.shape];
        const strides = [...x.strides];
        shape.splice(dim, 0, 1);
        strides.splice(dim, 0, dim < x.shape.length ? x.strides[dim] * x.shape[dim] : 1);
        return T({ ...x, shape, strides });
      }
      case 'aten.view.default':
      case 'aten.reshape.default':
      case 'aten._unsafe_view.default': {
        let x = tensor(arg(0), n, 'self');
        const sizes = arg(1);
        if (!Array.isArray(sizes)) fail(n, 'size must be a list');
        const total = numelOf(x.shape);
        const shape = (sizes as Arg[]).map((s) => symInt(s, -1));
        const infer = shape.indexOf(-1);
        if (infer >= 0) shape[infer] = total / numelOf(shape.filter((_, i) => i !== infer));
        if (numelOf(shape) !== total) fail(n, `cannot view [${x.shape}] as [${shape}]`);
        x = contiguous(x, n);
        return T({ ...x, shape, strides: contiguousStrides(shape) });
      }
      case 'aten.split_with_sizes.default':
      case 'aten.split.Tensor': {
        const x = tensor(arg(0), n, 'self');
        let dim = num(2, 0);
        if (dim < 0) dim += x.shape.length;
        const sz = arg(1);
        const sizes = Array.isArray(sz)
          ? sz.map((s) => symInt(s, 0))
          : (() => {
              const each = symInt(sz, 1);
              const out: number[] = [];
              for (let r = x.shape[dim]; r > 0; r -= each) out.push(Math.min(each, r));
              return out;
            })();
        if (sizes.reduce((a, b) => a + b, 0) !== x.shape[dim])
          fail(n, `split sizes [${sizes}] do not add up to dim ${dim} of [${x.shape}]`);
        let off = 0;
        const items: Value[] = sizes.map((s) => {
          const shape = [...x.shape];
          shape[dim] = s;
          const v = T({ ...x, offset: x.offset + off * x.strides[dim], shape });
          off += s;
          return v;
        });
        return { t: 'tuple', items };
      }
      case 'aten.mm.default':
      case 'aten.addmm.default': {
        const off = op === 'aten.addmm.default' ? 1 : 0;
        const a = tensor(arg(off), n, 'mat1');
        const b = tensor(arg(off + 1), n, 'mat2', { role: 'weight' });
        if (a.shape.length !== 2 || b.shape.length !== 2 || a.shape[1] !== b.shape[0])
          fail(n, `mm of [${a.shape}] and [${b.shape}]`);
        const bias = off ? tensor(arg(0), n, 'self', { role: 'bias', shape: [b.shape[1]] }) : null;
        if (bias && !broadcastShape([a.shape[0], b.shape[1]], bias.shape))
          fail(n, `bias [${bias.shape}] does not broadcast to [${a.shape[0]}, ${b.shape[1]}]`);
        const out = newStorage(n.name, a.dtype, [a.shape[0], b.shape[1]]);
        push(n, {
          kernel: 'gemm',
          a,
          b,
          bias,
          alpha: off ? num(4, 1) : 1,
          beta: off ? num(3, 1) : 0,
          out: out.storage,
        });
        return T(out);
      }
      case 'aten.embedding.default': {
        const w = rowsOrCopy(tensor(arg(0), n, 'weight'), n);
        const idx = contiguous(tensor(arg(1), n, 'indices', { role: 'indices', range: w.shape[0] }), n);
        const out = newStorage(n.name, w.dtype, [...idx.shape, w.shape[1]]);
        push(n, { kernel: 'embedding', weight: w, indices: idx, out: out.storage });
        return T(out);
      }
      case '_C.rms_norm.default': {
        const x = rowsOrCopy(tensor(arg(1), n, 'input'), n);
        const w = tensor(arg(2), n, 'weight', { role: 'norm-weight', shape: [x.shape[x.shape.length - 1]] });
        const out = newStorage(`${n.name}.result`, x.dtype, x.shape);
        push(n, { kernel: 'rms_norm', x, w, eps: num(3, 1e-6), out: out.storage });
        return { t: 'tuple', items: [{ t: 'none' }, T(out)] };
      }
      case '_C.fused_add_rms_norm.default': {
        const x = rowsOrCopy(tensor(arg(0), n, 'input'), n);
        const residual = rowsOrCopy(tensor(arg(1), n, 'residual', { role: 'activation', shape: x.shape }), n);
        const w = tensor(arg(2), n, 'weight', { role: 'norm-weight', shape: [x.shape[x.shape.length - 1]] });
        if (residual.shape.join() !== x.shape.join())
          fail(n, `residual [${residual.shape}] and input [${x.shape}] differ`);
        const out = newStorage(`${n.name}.input`, x.dtype, x.shape);
        const res = newStorage(`${n.name}.residual`, x.dtype, x.shape);
        push(n, {
          kernel: 'fused_add_rms_norm',
          x,
          residual,
          w,
          eps: num(3, 1e-6),
          out: out.storage,
          residualOut: res.storage,
        });
        return { t: 'tuple', items: [{ t: 'none' }, T(out), T(res)] };
      }
      case 'vllm.all_reduce.default':
      case '_c10d_functional.all_reduce.default': {
        // Only sums have a kernel; another reduce_op (max, avg) is fed like any op without one.
        if (op.startsWith('_c10d') && typeof arg(1) === 'string' && arg(1) !== 'sum') return 'unsupported';
        const x = contiguous(tensor(arg(0), n, 'tensor'), n);
        const out = newStorage(n.name, x.dtype, x.shape);
        push(n, { kernel: 'all_reduce', x, out: out.storage });
        return T(out);
      }
      case '_C.static_scaled_fp8_quant.default': {
        const x = contiguous(tensor(arg(1), n, 'input'), n);
        const scale = tensor(arg(2), n, 'scale', { role: 'norm-weight', shape: [1] });
        const out = newStorage(`${n.name}.result`, x.dtype, x.shape);
        push(n, { kernel: 'fp8_quant', x, scale, satfinite: false, out: out.storage });
        return { t: 'tuple', items: [{ t: 'none' }, T(out)] };
      }
      case REDUCE_SCATTER_OP:
      case ALL_GATHER_OP: {
        const x = contiguous(tensor(get(0, 'tensor') ?? null, n, 'tensor'), n);
        tokenDimCollective(
          n,
          get(1, 'dim'),
          get(2, 'world_size'),
          op === REDUCE_SCATTER_OP ? x.shape[0] : x.shape[0] * ranks,
        );
        const shape = [...x.shape];
        shape[0] = op === REDUCE_SCATTER_OP ? x.shape[0] / ranks : x.shape[0] * ranks;
        const out = newStorage(n.name, x.dtype, shape);
        push(n, { kernel: op === REDUCE_SCATTER_OP ? 'reduce_scatter' : 'all_gather', x, out: out.storage });
        return T(out);
      }
      case FUSED_MM_RS_OP: {
        // The local matmul, then the reduce-scatter of its rows: the values (and the order of every
        // sum) of mm → reduce_scatter. Chunking and overlap are a schedule, not a different sum.
        const a = tensor(get(0, 'A') ?? null, n, 'A');
        const b = tensor(get(1, 'B') ?? null, n, 'B', { role: 'weight' });
        if (a.shape.length !== 2 || b.shape.length !== 2 || a.shape[1] !== b.shape[0])
          fail(n, `mm of [${a.shape}] and [${b.shape}]`);
        const reduceOp = get(2, 'reduce_op');
        if (reduceOp !== 'sum')
          fail(n, `reduce_op ${JSON.stringify(reduceOp ?? null)}: only 'sum' is supported`);
        tokenDimCollective(n, get(3, 'scatter_dim'), ranks, a.shape[0]);
        const mm = newStorage(`${n.name}.mm`, a.dtype, [a.shape[0], b.shape[1]]);
        push(n, { kernel: 'gemm', a, b, bias: null, alpha: 1, beta: 0, out: mm.storage });
        const out = newStorage(n.name, a.dtype, [a.shape[0] / ranks, b.shape[1]]);
        push(n, { kernel: 'reduce_scatter', x: mm, out: out.storage });
        return T(out);
      }
      case FUSED_AG_MM_OP: {
        const x = contiguous(tensor(get(0, 'A_shard') ?? null, n, 'A_shard'), n);
        const bs = get(1, 'Bs');
        if (!Array.isArray(bs) || bs.length === 0) fail(n, 'Bs must be a list of weights');
        tokenDimCollective(n, get(2, 'gather_dim'), ranks, x.shape[0] * ranks);
        const ag = newStorage(`${n.name}.gathered`, x.dtype, [x.shape[0] * ranks, x.shape[1]]);
        push(n, { kernel: 'all_gather', x, out: ag.storage });
        const mms: Value[] = (bs as Arg[]).map((w, i) => {
          const b = tensor(w, n, `Bs[${i}]`, { role: 'weight' });
          if (b.shape.length !== 2 || b.shape[0] !== x.shape[1])
            fail(n, `mm of [${ag.shape}] and [${b.shape}]`);
          const out = newStorage(`${n.name}.mm${i}`, x.dtype, [ag.shape[0], b.shape[1]]);
          push(n, { kernel: 'gemm', a: ag, b, bias: null, alpha: 1, beta: 0, out: out.storage });
          return T(out);
        });
        return { t: 'tuple', items: [T(ag), { t: 'tuple', items: mms }] };
      }
      case 'vllm.flashinfer_trtllm_fused_allreduce_norm.default': {
        const code = num(7, 1);
        // 1: all-reduce + residual + RMSNorm; 2: the same + static FP8 quant of the normed output.
        if (code !== 1 && code !== 2)
          fail(
            n,
            `pattern_code ${code} is not supported (1: all-reduce + residual + RMSNorm, 2: + static FP8 quant)`,
          );
        const x = contiguous(tensor(arg(0), n, 'allreduce_in'), n);
        const residual = rowsOrCopy(tensor(arg(1), n, 'residual', { role: 'activation', shape: x.shape }), n);
        const normOut = arg(2);
        const w = tensor(arg(5), n, 'rms_gamma', {
          role: 'norm-weight',
          shape: [x.shape[x.shape.length - 1]],
        });
        const out = newStorage(`${n.name}.norm`, x.dtype, x.shape);
        const res = newStorage(`${n.name}.residual`, x.dtype, x.shape);
        push(n, {
          kernel: 'fused_allreduce_norm',
          x,
          residual,
          w,
          eps: num(6, 1e-6),
          out: out.storage,
          residualOut: res.storage,
        });
        // Pattern 2's quant_out ([4]): FlashInfer's saturating cast of the normed output (bf16) · 1/scale.
        let quant: Value = { t: 'none' };
        if (code === 2) {
          const scale = tensor(arg(14), n, 'scale_factor', { role: 'norm-weight', shape: [1] });
          const q = newStorage(`${n.name}.quant`, x.dtype, x.shape);
          push(n, { kernel: 'fp8_quant', x: out, scale, satfinite: true, out: q.storage });
          quant = T(q);
        }
        // Pattern 1 with norm_out None: the normed output over allreduce_in, ar + residual over
        // residual. With norm_out given, vLLM passes allreduce_in as the residual output: ar +
        // residual lands in allreduce_in ([1]) and residual ([2]) is left as it was.
        const items: Value[] =
          normOut === null
            ? [{ t: 'none' }, T(out), T(res), { t: 'none' }, quant, { t: 'none' }]
            : [{ t: 'none' }, T(res), T(residual), T(out), quant, { t: 'none' }];
        return { t: 'tuple', items };
      }
      case 'aten.sym_size.int': {
        const x = tensor(arg(0), n, 'self');
        const d = num(1, 0);
        return {
          t: 'sym',
          value:
            x.shape[d < 0 ? d + x.shape.length : d] ??
            fail(n, `dim ${d} is outside the ${x.shape.length}-d self`),
        };
      }
      case 'operator.add':
      case 'operator.sub':
      case 'operator.mul':
      case 'operator.floordiv': {
        // SymInt arithmetic of a decomposed graph (sizes and offsets of as_strided views).
        const a = symInt(arg(0), NaN),
          b = symInt(arg(1), NaN);
        if (Number.isNaN(a) || Number.isNaN(b)) return 'unsupported';
        const v =
          op === 'operator.add'
            ? a + b
            : op === 'operator.sub'
              ? a - b
              : op === 'operator.mul'
                ? a * b
                : Math.floor(a / b);
        return { t: 'sym', value: v };
      }
      case 'aten.as_strided.default': {
        // A view of self's storage: the offset counts from the storage's start, as PyTorch's.
        const x = tensor(arg(0), n, 'self');
        const list = (a: Arg): Arg[] =>
          Array.isArray(a) ? a : a && typeof a === 'object' && !isRef(a) && a.kind === 'tuple' ? a.items : [];
        const shape = list(arg(1)).map((d) => symInt(d, NaN));
        const strides = list(arg(2)).map((d) => symInt(d, NaN));
        const offset = arg(3) === null ? x.offset : symInt(arg(3), NaN);
        if (
          shape.length !== strides.length ||
          [...shape, ...strides, offset].some((v) => !Number.isInteger(v) || v < 0)
        )
          fail(n, 'size, stride and storage_offset must be non-negative integers of one rank');
        const st = storages.get(x.storage)!;
        const last = offset + shape.reduce((acc, d, i) => acc + (d - 1) * strides[i], 0);
        if (shape.every((d) => d > 0) && last >= st.numel)
          fail(n, `reaches element ${last} of a storage of ${st.numel}`);
        return T({ ...x, offset, shape, strides });
      }
      case 'aten.permute.default': {
        const x = tensor(arg(0), n, 'self');
        const dims = arg(1);
        const rank = x.shape.length;
        const ds = Array.isArray(dims)
          ? dims.map((d) => {
              const v = numberOf(d) ?? NaN;
              return v < 0 ? v + rank : v;
            })
          : [];
        if (ds.length !== rank || new Set(ds).size !== rank || ds.some((d) => !(d >= 0 && d < rank)))
          fail(n, `dims ${JSON.stringify(dims)} are not a permutation of the ${rank} dims`);
        return T({ ...x, shape: ds.map((d) => x.shape[d]), strides: ds.map((d) => x.strides[d]) });
      }
      case 'aten.full.default': {
        const value = numberOf(arg(1));
        const size = arg(0);
        if (value === undefined || !Array.isArray(size)) return 'unsupported';
        const mt =
          n.type?.kind === 'tensor'
            ? mapType(n.type, n.name)
            : { dtype: opts.dtype, shape: size.map((d) => symInt(d, 1)) };
        const zeros = seedValue(
          value === 0 ? n.name : `${n.name}.zeros`,
          mt.dtype,
          mt.shape,
          { role: 'zeros' },
          n,
        );
        constants.set(n.name, value);
        if (value === 0) return T(zeros);
        const out = newStorage(n.name, mt.dtype, mt.shape);
        push(n, { kernel: 'map', fn: 'adds', a: zeros, b: null, scalar: value, out: out.storage });
        return T(out);
      }
      case 'aten.where.self': {
        // Inductor writes masked_fill as where(mask, full([], v), x): a map with v as its scalar word.
        const constOf = (a: Arg) => numberOf(a) ?? (isRef(a) ? constants.get(a.name) : undefined);
        const cond = tensor(arg(0), n, 'condition');
        const onTrue = constOf(arg(1)),
          onFalse = constOf(arg(2));
        if (onTrue === undefined && onFalse === undefined) return 'unsupported';
        const x = tensor(onTrue !== undefined ? arg(2) : arg(1), n, onTrue !== undefined ? 'other' : 'self');
        const dtype = n.type?.kind === 'tensor' ? mapType(n.type, n.name).dtype : x.dtype;
        let mask = cond;
        if (onTrue === undefined) {
          const not = newStorage(`${n.name}.not`, cond.dtype, cond.shape);
          push(n, { kernel: 'map', fn: 'not', a: cond, b: null, scalar: 0, out: not.storage });
          mask = not;
        }
        const shape =
          broadcastShape(x.shape, mask.shape) ??
          fail(n, `cannot broadcast [${x.shape}] with [${mask.shape}]`);
        const out = newStorage(n.name, dtype, shape);
        push(n, {
          kernel: 'map',
          fn: 'masked_fill',
          a: x,
          b: mask,
          scalar: (onTrue ?? onFalse)!,
          out: out.storage,
        });
        return T(out);
      }
      case 'aten.slice_scatter.default': {
        const base = tensor(arg(0), n, 'self');
        let dim = num(2, 0);
        if (dim < 0) dim += base.shape.length;
        const size = base.shape[dim];
        if (size === undefined) fail(n, `dim ${num(2, 0)} is outside the ${base.shape.length}-d self`);
        const clampIdx = (i: number) => Math.min(Math.max(i < 0 ? i + size : i, 0), size);
        const start = clampIdx(arg(3) === null ? 0 : symInt(arg(3), 0));
        const end = clampIdx(arg(4) === null ? size : symInt(arg(4), size));
        const step = num(5, 1);
        const want = [...base.shape];
        want[dim] = Math.max(0, Math.ceil((end - start) / step));
        const src = tensor(arg(1), n, 'src', { role: 'activation', shape: want, dtype: base.dtype });
        if (src.shape.join() !== want.join())
          fail(
            n,
            `src [${src.shape}] does not fill self[${start}:${end}:${step}] along dim ${dim} ([${want}])`,
          );
        const out = newStorage(n.name, base.dtype, base.shape);
        const cs = contiguousStrides(base.shape);
        scatterThrough(
          n,
          base,
          src,
          start * cs[dim],
          cs.map((c, d) => (d === dim ? c * step : c)),
          out.storage,
        );
        return T(out);
      }
      case 'aten.copy_.default': {
        const dst = tensor(arg(0), n, 'self');
        writeInto(
          n,
          dst,
          tensor(arg(1), n, 'src', { role: 'activation', shape: dst.shape, dtype: dst.dtype }),
        );
        return T(dst);
      }
      case '_C.silu_and_mul.default': {
        const x = tensor(arg(1), n, 'input');
        const last = x.shape.length - 1;
        const d = x.shape[last] / 2;
        if (!Number.isInteger(d))
          fail(n, `input's last dim ${x.shape[last]} is odd: it must hold the gate and up halves`);
        const gate: View = { ...x, shape: [...x.shape.slice(0, last), d] };
        const up: View = { ...gate, offset: x.offset + d * x.strides[last] };
        const out = newStorage(`${n.name}.result`, x.dtype, gate.shape);
        push(n, { kernel: 'map', fn: 'silu_mul', a: gate, b: up, scalar: 0, out: out.storage });
        return { t: 'tuple', items: [{ t: 'none' }, T(out)] };
      }
      case '_C.rotary_embedding.default': {
        const cache = contiguous(tensor(arg(4), n, 'cos_sin_cache'), n);
        if (cache.shape.length !== 2 || cache.shape[1] % 2)
          fail(n, `cos_sin_cache [${cache.shape}] must be [positions, rotary dims] with an even rotary size`);
        const positions = tensor(arg(0), n, 'positions', { role: 'indices', range: cache.shape[0] });
        const headSize = symInt(arg(3), 0);
        const neox = arg(5) !== false;
        const rotate = (a: Arg, what: string): Value => {
          if (a === null) return { t: 'none' };
          const x = tensor(a, n, what);
          if (
            x.shape.length !== 2 ||
            x.shape[0] !== positions.shape[0] ||
            x.shape[1] % headSize ||
            cache.shape[1] > headSize
          ) {
            fail(
              n,
              `${what} [${x.shape}] must be [tokens = ${positions.shape[0]}, heads · ${headSize}] with at most ${headSize} rotary dims (cache [${cache.shape}])`,
            );
          }
          const out = newStorage(`${n.name}.${what}`, x.dtype, x.shape);
          push(n, { kernel: 'rotary', x, positions, cache, headSize, neox, out: out.storage });
          return T(out);
        };
        return { t: 'tuple', items: [{ t: 'none' }, rotate(arg(1), 'query'), rotate(arg(2), 'key')] };
      }
      case 'vllm.unified_attention_with_output.default': {
        const q = tensor(arg(0), n, 'query'),
          k = tensor(arg(1), n, 'key'),
          v = tensor(arg(2), n, 'value');
        const [Tq, H, D] = q.shape;
        const ok =
          q.shape.length === 3 &&
          k.shape.length === 3 &&
          k.shape.join() === v.shape.join() &&
          k.shape[0] === Tq &&
          k.shape[2] === D &&
          H % k.shape[1] === 0;
        if (!ok)
          fail(
            n,
            `query [${q.shape}], key [${k.shape}], value [${v.shape}] must be [tokens, heads, head size] with the query heads a multiple of the kv heads`,
          );
        const out = newStorage(`${n.name}.output`, q.dtype, q.shape);
        push(n, { kernel: 'attention', q, k, v, out: out.storage });
        return { t: 'tuple', items: [{ t: 'none' }, T(out), { t: 'none' }] };
      }
      case 'vllm.moe_forward.default': {
        const x = rowsOrCopy(
          tensor(arg(0), n, 'hidden_states', {
            role: 'activation',
            shape: [tokens, presetDim(preset, GPT_OSS.hiddenPadded)],
          }),
          n,
        );
        const logits = rowsOrCopy(
          tensor(arg(1), n, 'router_logits', { role: 'activation', shape: [x.shape[0], GPT_OSS.experts20b] }),
          n,
        );
        const layer = typeof arg(2) === 'string' ? (arg(2) as string) : n.name;
        const experts = logits.shape[logits.shape.length - 1];
        if (preset.intermediate % ranks)
          throw new RunError(
            'input',
            `node ${n.name} (${n.op}): the MoE intermediate size ${preset.intermediate} (preset ${preset.name}) does not split over ${ranks} ranks`,
            { node: n.name, op: n.op },
          );
        // moe-unpad's MoE (vLLM #30647) reads GPT-OSS's unpadded hidden size while its weights keep
        // the padded width: the step pads into the kernel's alignment and hands back the unpadded
        // columns, so the values are the pad → MoE → slice ones, bit for bit.
        const unpadded = presetDim(preset, GPT_OSS.hidden),
          padded = presetDim(preset, GPT_OSS.hiddenPadded);
        if (x.shape.length === 2 && x.shape[1] === unpadded && padded > unpadded) {
          const xp = newStorage(`${n.name}.aligned`, x.dtype, [x.shape[0], padded]);
          push(n, { kernel: 'pad', x, lo: [0, 0], value: 0, out: xp.storage });
          const out = newStorage(n.name, x.dtype, xp.shape);
          push(n, {
            kernel: 'moe',
            x: xp,
            logits,
            layer,
            experts,
            topK: Math.min(preset.topK, experts),
            intermediate: preset.intermediate,
            out: out.storage,
          });
          return T({ ...out, shape: [...x.shape] });
        }
        const out = newStorage(n.name, x.dtype, x.shape);
        push(n, {
          kernel: 'moe',
          x,
          logits,
          layer,
          experts,
          topK: Math.min(preset.topK, experts),
          intermediate: preset.intermediate,
          out: out.storage,
        });
        return T(out);
      }
      // No kernel: fed from the node's annotated type (or reported when it has none).
      case '_c10d_functional.all_gather_into_tensor.default':
      case '_c10d_functional.reduce_scatter_tensor.default':
        // Async collectives: vLLM's graphs use vllm.all_gather / vllm.reduce_scatter, which run.
        return 'unsupported';
      case 'aten.sub.Tensor':
        // No map function subtracts yet.
        return 'unsupported';
      case '_C.scaled_fp4_quant.default':
        // NVFP4 packing (two e2m1 per byte, swizzled block scales) has no kernel.
        return 'unsupported';
      // The node loop takes these apart itself; as the op inside auto_functionalized they are meaningless.
      case 'getitem':
      case 'higher_order.auto_functionalized':
      case 'higher_order.auto_functionalized_v2':
        return 'unsupported';
      default:
        return assertNever(op, 'op');
    }
  };

  /**
   * auto_functionalized_v2: each mutated argument is a view of one of `_all_bases` (the base
   * itself, `_x_slice_dim/_start/_end`, or `_x_size/_stride/_storage_offset`); the op runs on
   * those views and the results are [its return, each base with the new values written in].
   */
  const lowerAutoFunctionalizedV2 = (n: Node): Value | 'unsupported' => {
    const target =
      n.args[0] && typeof n.args[0] === 'object' && !Array.isArray(n.args[0]) && n.args[0].kind === 'op'
        ? normalizeTarget(n.args[0].target)
        : null;
    const def = target ? lookupOp(target) : undefined;
    const basesArg = n.kwargs['_all_bases'];
    if (!target || !def || !Array.isArray(basesArg)) return 'unsupported';
    const bases = basesArg.map((b, i) => contiguous(tensor(b, n, `_all_bases[${i}]`), n));
    const items = (a: Arg | undefined): Arg[] =>
      Array.isArray(a) ? a : a && typeof a === 'object' && a.kind === 'tuple' ? a.items : [];
    const views = new Map<string, { base: number; view: View }>();
    for (const a of def.args.filter((x) => x.mutates)) {
      const bi = numberOf(n.kwargs[`_${a.name}_base_index`] ?? null);
      if (bi === undefined) continue;
      const base = bases[bi] ?? fail(n, `_${a.name}_base_index ${bi} is outside _all_bases`);
      let view = base;
      if (`_${a.name}_slice_dim` in n.kwargs) {
        const dim = numberOf(n.kwargs[`_${a.name}_slice_dim`]) ?? 0;
        const size = base.shape[dim];
        const start = Math.min(symInt0(n, n.kwargs[`_${a.name}_slice_start`] ?? 0), size);
        const end = Math.min(symInt0(n, n.kwargs[`_${a.name}_slice_end`] ?? size), size);
        const shape = [...base.shape];
        shape[dim] = end - start;
        view = { ...base, offset: base.offset + start * base.strides[dim], shape };
      } else if (`_${a.name}_size` in n.kwargs) {
        const shape = items(n.kwargs[`_${a.name}_size`]).map((d) => symInt0(n, d));
        const strides = items(n.kwargs[`_${a.name}_stride`]).map((d) => symInt0(n, d));
        view = {
          ...base,
          offset: base.offset + symInt0(n, n.kwargs[`_${a.name}_storage_offset`] ?? 0),
          shape,
          strides,
        };
      }
      const name = `${n.name}.${a.name}`;
      values.set(name, { t: 'tensor', view });
      views.set(a.name, { base: bi, view });
    }
    const r = lowerCall(n, target, (_i, name) =>
      views.has(name) ? { kind: 'ref', name: `${n.name}.${name}` } : n.kwargs[name],
    );
    if (r === 'unsupported') return 'unsupported';
    const results = r.t === 'tuple' ? r.items : [r];
    // New bases: a copy of each, then every mutated view's result written into its box.
    const newBases = bases.map((b, i) => {
      const out = newStorage(`${n.name}[${i + 1}]`, b.dtype, b.shape);
      push(n, { kernel: 'copy', x: b, out: out.storage });
      return out;
    });
    def.args
      .filter((x) => x.mutates)
      .forEach((a, k) => {
        const v = views.get(a.name);
        const res = results[k + 1];
        if (!v || !res || res.t !== 'tensor') return;
        const base = bases[v.base];
        writeInto(
          n,
          { ...v.view, storage: newBases[v.base].storage, offset: v.view.offset - base.offset },
          res.view,
        );
      });
    return {
      t: 'tuple',
      items: [results[0] ?? { t: 'none' }, ...newBases.map((b): Value => ({ t: 'tensor', view: b }))],
    };
  };
  const symInt0 = (n: Node, a: Arg): number => {
    const x = numberOf(a);
    if (x !== undefined) return presetDim(preset, x);
    if (isRef(a)) {
      const v = resolve(a, n);
      if (v?.t === 'sym') return v.value;
    }
    if (typeof a === 'string') return evalDim(a, tokens, n.name);
    return fail(n, `cannot read the size ${JSON.stringify(a)}`);
  };

  /** A node with no kernel: fed from a seeded input when its result types are known. */
  const feed = (n: Node, types: (ValueType | null)[] | null): Value | null => {
    if (!types || types.length === 0) return null;
    const items: (Value | null)[] = [];
    for (let i = 0; i < types.length; i++) {
      const t = types[i];
      if (t === null) {
        items.push({ t: 'none' });
        continue;
      }
      if (t.kind !== 'tensor') return null;
      const mt = mapType(t, n.name);
      const name =
        types.length === 1 && !n.type ? `${n.name}[${i}]` : types.length === 1 ? n.name : `${n.name}[${i}]`;
      items.push({ t: 'tensor', view: seedValue(name, mt.dtype, mt.shape, { role: 'fed' }, n) });
    }
    fed.push(n.name);
    return types.length === 1 && n.type ? items[0] : { t: 'tuple', items };
  };

  for (const n of g.nodes) {
    let result: Value | 'unsupported' | null;
    try {
      if (n.op === 'getitem') {
        const src = resolve(n.args[0], n);
        const idx = numberOf(n.args[1]) ?? -1;
        if (unsupported.length && (!src || src.t !== 'tuple')) {
          values.set(n.name, { t: 'none' });
          continue;
        }
        if (!src || src.t !== 'tuple' || !src.items[idx])
          fail(n, `item ${idx} of '${refName(n.args[0])}' does not exist`);
        result = (src as { items: Value[] }).items[idx];
      } else if (n.op === 'higher_order.auto_functionalized_v2') {
        const r = lowerAutoFunctionalizedV2(n);
        if (r === 'unsupported') {
          unsupported.push(`${n.name} (${n.op})`);
          values.set(n.name, { t: 'none' });
          continue;
        }
        result = r;
      } else if (n.op === 'higher_order.auto_functionalized') {
        const target =
          n.args[0] && typeof n.args[0] === 'object' && !Array.isArray(n.args[0]) && n.args[0].kind === 'op'
            ? normalizeTarget(n.args[0].target)
            : null;
        if (!target) fail(n, 'the first argument must be the op to run');
        const r = lowerCall(n, target!, (_i, name) => n.kwargs[name]);
        if (r === 'unsupported') {
          const def = lookupOp(target!);
          // The functionalized results are [return, mutated args…]: their types are the mutated args' types.
          const types: (ValueType | null)[] | null = def
            ? [
                null,
                ...def.args
                  .filter((a) => a.mutates)
                  .map((a) => {
                    const v = n.kwargs[a.name];
                    if (v === null || v === undefined) return null;
                    const rv = isRef(v) ? safeType(v.name) : null;
                    return rv;
                  }),
              ]
            : null;
          // An op outside the registry: its results are typed by the getitem nodes that read them.
          const fromUsers = itemTypes.get(n.name);
          const known = types && types.slice(1).some((t) => t) ? types : (fromUsers ?? null);
          result = known ? feed(n, known) : null;
          if (!result) {
            unsupported.push(`${n.name} (${target})`);
            values.set(n.name, { t: 'none' });
            continue;
          }
        } else {
          result = r.t === 'tuple' ? r : { t: 'tuple', items: [r] };
        }
      } else {
        const get = (i: number, name: string) => (i < n.args.length ? n.args[i] : n.kwargs[name]);
        const r = lowerCall(n, normalizeTarget(n.op), get);
        const mutated = lookupOp(normalizeTarget(n.op))?.args.filter((a) => a.mutates) ?? [];
        if (r !== 'unsupported' && r.t === 'tuple' && mutated.length && n.op !== 'aten.copy_.default') {
          // An in-place call (after decompose_auto_functionalized): the new values go back into the arguments.
          const specs = lookupOp(normalizeTarget(n.op))!.args;
          mutated.forEach((a, k) => {
            const item = r.items[k + 1];
            const target = get(specs.indexOf(a), a.name);
            if (item?.t === 'tensor' && target && isRef(target))
              writeInto(n, tensor(target, n, a.name), item.view);
          });
          values.set(n.name, { t: 'none' });
          continue;
        }
        if (r === 'unsupported') {
          result = n.type && n.type.kind === 'tensor' ? feed(n, [n.type]) : null;
          if (!result) {
            unsupported.push(`${n.name} (${n.op})`);
            values.set(n.name, { t: 'none' });
            continue;
          }
        } else result = r;
      }
    } catch (e) {
      if (e instanceof RunError && e.kind === 'input' && unsupported.length) {
        values.set(n.name, { t: 'none' });
        continue;
      }
      throw e;
    }
    if (result && result.t === 'tensor' && n.type?.kind === 'tensor') {
      const want = mapType(n.type, n.name).shape;
      if (want.join() !== result.view.shape.join())
        fail(
          n,
          `computed shape [${result.view.shape}] but the graph says [${want}] (after the preset's sizes)`,
        );
    }
    values.set(n.name, result ?? { t: 'none' });
  }
  if (unsupported.length) {
    throw new RunError(
      'unsupported-ops',
      `no kernel and no annotated type to feed from: ${unsupported.join(', ')}`,
      { node: unsupported[0].split(' ')[0] },
    );
  }

  function safeType(name: string): ValueType | null {
    const v = values.get(name);
    if (v?.t === 'tensor')
      return { kind: 'tensor', dtype: v.view.dtype === 'i32' ? 'i32' : 'bf16', shape: v.view.shape };
    const inp = inputs.get(name);
    if (inp?.type) return inp.type;
    return nodesByName.get(name)?.type ?? null;
  }

  // Outputs: the returned values, or for a fragment every value no node reads (tuples expanded).
  const outputs: PlanOutput[] = [];
  const addOut = (name: string, v: Value | undefined) => {
    if (!v) return;
    if (v.t === 'tensor') outputs.push({ name, view: v.view });
    else if (v.t === 'tuple') v.items.forEach((it, i) => it && addOut(`${name}[${i}]`, it));
  };
  if (g.outputs) {
    const walk = (a: Arg) => {
      if (Array.isArray(a)) a.forEach(walk);
      else if (a && typeof a === 'object' && a.kind === 'tuple') a.items.forEach(walk);
      else if (isRef(a)) addOut(a.name, values.get(a.name));
    };
    g.outputs.forEach(walk);
    // A piecewise graph hands its next piece the inputs it wrote in place.
    for (const name of writtenInputs)
      if (!outputs.some((o) => o.name === name)) addOut(name, values.get(name));
  } else {
    const read = new Set<string>();
    for (const n of g.nodes) for (const a of [...n.args, ...Object.values(n.kwargs)]) collectRefs(a, read);
    for (const n of g.nodes) if (!read.has(n.name)) addOut(n.name, values.get(n.name));
  }

  // Buffer lifetimes: a storage is freed after the last step that reads or writes it, unless an output.
  const keep = new Set(outputs.map((o) => o.view.storage));
  const last = new Map<string, number>();
  steps.forEach((s, i) => {
    for (const id of storagesOf(s)) last.set(id, i);
  });
  const freeAfter = new Map<number, string[]>();
  for (const [id, i] of last)
    if (!keep.has(id)) {
      if (!freeAfter.has(i)) freeAfter.set(i, []);
      freeAfter.get(i)!.push(id);
    }

  return {
    graph: g.name,
    preset,
    dtype: opts.dtype,
    ranks,
    tokens,
    storages,
    steps,
    outputs,
    fed,
    freeAfter,
  };
}

function refName(a: Arg): string {
  return isRef(a) ? a.name : String(a);
}

function collectRefs(a: Arg, into: Set<string>): void {
  if (Array.isArray(a)) a.forEach((x) => collectRefs(x, into));
  else if (isRef(a)) into.add(a.name);
  else if (a && typeof a === 'object' && a.kind === 'tuple') a.items.forEach((x) => collectRefs(x, into));
}

export function broadcastShape(a: number[], b: number[]): number[] | null {
  const n = Math.max(a.length, b.length);
  const out: number[] = [];
  for (let i = 0; i < n; i++) {
    const x = a[a.length - n + i] ?? 1;
    const y = b[b.length - n + i] ?? 1;
    if (x !== y && x !== 1 && y !== 1) return null;
    out.push(Math.max(x, y));
  }
  return out;
}

/** Strides that read `v` as if it had shape `shape` (broadcast dims get stride 0). */
export function broadcastStrides(v: View, shape: number[]): number[] {
  const off = shape.length - v.shape.length;
  return shape.map((d, i) => (i < off || v.shape[i - off] === 1 ? 0 : v.strides[i - off]));
}

/** Every storage a step reads or writes. */
export function storagesOf(s: Step): string[] {
  const ids: string[] = [];
  for (const [k, v] of Object.entries(s)) {
    if (v && typeof v === 'object' && 'storage' in v) ids.push((v as View).storage);
    else if ((k === 'out' || k === 'residualOut') && typeof v === 'string') ids.push(v);
  }
  return ids;
}

/** Role hints for graph inputs and fragment names, from how they are used (propagated through views). */
function roleHints(g: Graph): Map<string, Hint> {
  const hints = new Map<string, Hint>();
  const set = (a: Arg | undefined, h: Hint) => {
    if (a && isRef(a) && !hints.has(a.name)) hints.set(a.name, h);
  };
  const routerNodes = new Set<string>();
  const argsOf = (n: Node): { op: string; get: (i: number, name: string) => Arg | undefined } => {
    if (n.op === 'higher_order.auto_functionalized') {
      const t =
        n.args[0] && typeof n.args[0] === 'object' && !Array.isArray(n.args[0]) && n.args[0].kind === 'op'
          ? normalizeTarget(n.args[0].target)
          : '';
      return { op: t, get: (_i, name) => n.kwargs[name] };
    }
    return { op: normalizeTarget(n.op), get: (i, name) => (i < n.args.length ? n.args[i] : n.kwargs[name]) };
  };
  // async-tp splits addmm(bias, all_gather(x), W) into the fused all-gather matmul + add(bias):
  // that add's second operand is still the layer's (per-rank) bias.
  const fusedMm = new Set<string>();
  const byName = new Map(g.nodes.map((n) => [n.name, n]));
  for (const n of g.nodes) {
    const { op, get } = argsOf(n);
    if (op === 'vllm.moe_forward.default') {
      const r = get(1, 'router_logits');
      if (r && isRef(r)) routerNodes.add(r.name);
    }
    const src = n.op === 'getitem' && isRef(n.args[0]) ? byName.get(n.args[0].name) : undefined;
    if (src && (normalizeTarget(src.op) === FUSED_AG_MM_OP || fusedMm.has(src.name))) fusedMm.add(n.name);
  }
  for (let i = g.nodes.length - 1; i >= 0; i--) {
    const n = g.nodes[i];
    const { op, get } = argsOf(n);
    const router = routerNodes.has(n.name);
    switch (op) {
      case 'aten.addmm.default':
        set(get(0, 'self'), { role: router ? 'router-bias' : 'bias' });
        set(get(2, 'mat2'), { role: router ? 'router-weight' : 'weight' });
        break;
      case 'aten.mm.default':
        set(get(1, 'mat2'), { role: 'weight' });
        break;
      case FUSED_MM_RS_OP:
        set(get(1, 'B'), { role: 'weight' });
        break;
      case 'aten.add.Tensor': {
        const a = get(0, 'self');
        if (a && isRef(a) && fusedMm.has(a.name)) set(get(1, 'other'), { role: 'bias' });
        break;
      }
      case FUSED_AG_MM_OP: {
        const bs = get(1, 'Bs');
        if (Array.isArray(bs)) for (const b of bs) set(b, { role: 'weight' });
        break;
      }
      case 'aten.embedding.default':
        set(get(0, 'weight'), { role: 'embedding' });
        set(get(1, 'indices'), { role: 'indices' });
        break;
      case '_C.rms_norm.default':
        set(get(2, 'weight'), { role: 'norm-weight' });
        break;
      case '_C.fused_add_rms_norm.default':
        set(get(2, 'weight'), { role: 'norm-weight' });
        break;
      case 'vllm.flashinfer_trtllm_fused_allreduce_norm.default':
        set(get(5, 'rms_gamma'), { role: 'norm-weight' });
        break;
    }
    // Token ids pass through the vocabulary mask (ids · (ids in range)).
    if (hints.get(n.name)?.role === 'indices' && elementwiseOp(op) && op !== 'aten.add.Tensor')
      for (const a of n.args) if (isRef(a) && !hints.has(a.name)) hints.set(a.name, { role: 'indices' });
    // Views pass the role to the tensor they view (t(W) and Inductor's permute(W, [1, 0]) are still weights).
    const h = hints.get(n.name);
    if (
      h &&
      (op === 'aten.t.default' ||
        op === 'aten.permute.default' ||
        isOneOf(RESHAPE_OPS, op) ||
        op === 'aten.slice.Tensor' ||
        isOneOf(IDENTITY_OPS, op))
    )
      set(get(0, 'self'), h);
  }
  return hints;
}
