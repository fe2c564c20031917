// The plan under construction: storages, steps, the value of every node lowered so far, and the
// named moves every lowering makes with them (a new storage, a step, an argument resolved to a
// view, a contiguous copy, a write into a view, a node fed from seeded inputs).

import type { Arg, Graph, Input, Node, TensorType, ValueType } from '../../graph/ir.ts';
import { isFloatDType, isRef, numberOf } from '../../graph/ir.ts';
import type { Kernel, StorageDType, View } from '../../graph/opTable.ts';
import { dimValue, SizeExprError } from '../../graph/sizeExpr.ts';
import { RunError } from '../runError.ts';
import { PRESETS, presetDim, type Preset } from '../presets.ts';
import type { FloatDType, PlanOptions, Step, Storage, UnknownGroup } from '../plan.ts';
import { rankMesh, type RankMesh } from '../rankMesh.ts';
import { asRows, contiguousStrides, isContiguous, numelOf } from './layout.ts';
import { NONE, type ArgRole, type Hint, type Value } from './lowering.ts';

// f8e4m3fn values are held in the run dtype (each is exact in bf16).
/** Roles whose seeded values differ per rank (each rank holds its shard). */
const PER_RANK_ROLES: readonly string[] = ['weight', 'bias', 'embedding', 'fed', 'fp4-weight'];

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

export class PlanBuilder {
  readonly preset: Preset;
  readonly tokens: number;
  /** The TP group's size (the run's `ranks`): what an MoE's rows split over. */
  readonly ranks: number;
  /** The simulated ranks and their process groups (rankMesh.ts). */
  readonly mesh: RankMesh;
  /** Collectives whose group the run cannot resolve to ranks: they run over the world. */
  readonly unknownGroups: UnknownGroup[] = [];
  readonly dtype: FloatDType;
  readonly storages = new Map<string, Storage>();
  readonly steps: Step[] = [];
  readonly values = new Map<string, Value>();
  /** Nodes whose values come from seeded inputs because no kernel computes them. */
  readonly fed: string[] = [];
  /** Nodes whose value is one known number everywhere (aten.full): `where` reads them as its scalar word. */
  readonly constants = new Map<string, number>();
  /** Graph inputs a node wrote in place (copy_ at the end of a piecewise graph): outputs too. */
  readonly writtenInputs: string[] = [];
  /** Nodes with neither a kernel nor a type to feed from, `name (op)`: reported together at the end. */
  readonly unsupported: string[] = [];
  /** Nodes left without a value by an unsupported op: the unsupported nodes, and the nodes that failed reading them. */
  readonly lost = new Set<string>();
  readonly inputs: Map<string, Input>;
  readonly nodesByName: Map<string, Node>;

  constructor(
    readonly graph: Graph,
    opts: PlanOptions,
    /** Roles of graph inputs and free names, from how the whole graph uses them (roles.ts). */
    private readonly hints: ReadonlyMap<string, ArgRole>,
  ) {
    this.preset = PRESETS[opts.preset];
    this.tokens = opts.tokens ?? this.preset.tokens;
    this.ranks = opts.ranks;
    this.dtype = opts.dtype;
    if (!Number.isInteger(this.ranks) || this.ranks < 1)
      throw new RunError('input', `ranks must be a positive integer, got ${this.ranks}`);
    this.mesh = rankMesh(this.ranks, opts.dp);
    this.inputs = new Map(graph.inputs.map((i) => [i.name, i]));
    this.nodesByName = new Map(graph.nodes.map((n) => [n.name, n]));
  }

  // --- sizes and types ------------------------------------------------------------------------

  mapDim(d: number | string, where: string): number {
    return typeof d === 'number' ? presetDim(this.preset, d) : evalDim(d, this.tokens, where);
  }
  storageDtype(dt: string): StorageDType {
    return isFloatDType(dt) ? this.dtype : 'i32';
  }
  /** An annotated tensor type at the run's sizes and storage dtype. */
  mapType(t: TensorType, where: string): { dtype: StorageDType; shape: number[] } {
    return { dtype: this.storageDtype(t.dtype), shape: t.shape.map((d) => this.mapDim(d, where)) };
  }
  /** The node's annotated type at the run's sizes, when it is a tensor. */
  annotated(n: Node): { dtype: StorageDType; shape: number[] } | null {
    return n.type?.kind === 'tensor' ? this.mapType(n.type, n.name) : null;
  }

  /**
   * The storage dtype of a value computed with dtype `dt` (undefined: unannotated): the run's, except
   * that f32 stays f32 in a graph whose activations are narrower (bf16, f16) — the f32 between the
   * bf16 ends of RMSNorm's and QuantFP8's native forms, and vLLM's f32 scales — and an unannotated
   * value computed from an f32 storage is f32 too. Graph inputs keep the run's dtype (seeded values).
   */
  computedDtype(
    dt: string | undefined,
    operands: readonly (View | null)[],
    fallback: StorageDType,
  ): StorageDType {
    if (dt === 'f32' && this.narrowActivations) return 'f32';
    if (dt === undefined && operands.some((v) => v?.dtype === 'f32')) return 'f32';
    return dt ? this.storageDtype(dt) : fallback;
  }
  /** computedDtype for a node's annotated result. */
  resultDtype(n: Node, operands: readonly (View | null)[], fallback: StorageDType): StorageDType {
    return this.computedDtype(n.type?.kind === 'tensor' ? n.type.dtype : undefined, operands, fallback);
  }
  private get narrowActivations(): boolean {
    this.narrow ??= [...this.graph.inputs.map((i) => i.type), ...this.graph.nodes.map((n) => n.type)].some(
      (t) => t?.kind === 'tensor' && (t.dtype === 'bf16' || t.dtype === 'f16'),
    );
    return this.narrow;
  }
  private narrow: boolean | undefined;

  /** A size: a number mapped through the preset, a SymInt, a size expression; else `fallback`, or an error without one. */
  symInt(n: Node, a: Arg, fallback?: number): number {
    const x = numberOf(a);
    if (x !== undefined) return presetDim(this.preset, x);
    if (isRef(a)) {
      const v = this.resolve(a, n);
      if (v?.t === 'sym') return v.value;
    }
    if (typeof a === 'string') return evalDim(a, this.tokens, n.name);
    return fallback ?? this.fail(n, `cannot read the size ${JSON.stringify(a)}`);
  }

  /** A Python number, a SymInt or a size string: the map kernel's scalar word, not a tensor. */
  isScalarArg(a: Arg | undefined): boolean {
    if (a === undefined || a === null) return false;
    if (numberOf(a) !== undefined || typeof a === 'string') return true;
    if (!isRef(a)) return false;
    return this.values.get(a.name)?.t === 'sym' || this.inputs.get(a.name)?.type?.kind === 'sym';
  }

  // --- storages and steps ---------------------------------------------------------------------

  newStorage(id: string, dtype: StorageDType, shape: number[]): View {
    let sid = id;
    for (let k = 2; this.storages.has(sid); k++) sid = `${id}#${k}`;
    this.storages.set(sid, { id: sid, dtype, shape, numel: numelOf(shape) });
    return { storage: sid, dtype, offset: 0, shape, strides: contiguousStrides(shape) };
  }

  push(node: Node, k: Kernel): void {
    this.steps.push({ ...k, node: node.name, op: node.op } as Step);
  }

  /** A new storage filled with seeded values of `hint.role` (a graph input, a fed node, zeros). */
  seed(name: string, dtype: StorageDType, shape: number[], hint: Hint, node: Node | null): View {
    const v = this.newStorage(name, dtype, shape);
    this.steps.push({
      kernel: 'seed',
      name,
      role: hint.role,
      perRank: PER_RANK_ROLES.includes(hint.role),
      range: hint.range,
      out: v.storage,
      node: node?.name ?? name,
      op: node?.op ?? 'input',
    });
    return v;
  }

  // --- arguments ------------------------------------------------------------------------------

  /** Resolve an argument to a value; graph inputs materialize on first use (typed, or typed by `hint`). */
  resolve(a: Arg, where: Node, hint?: Hint): Value | null {
    if (a === null) return NONE;
    if (!isRef(a)) return null;
    const have = this.values.get(a.name);
    if (have) return have;
    const val = this.materialize(a.name, where, hint);
    this.values.set(a.name, val);
    return val;
  }

  private materialize(name: string, where: Node, hint: Hint | undefined): Value {
    const inp = this.inputs.get(name);
    // The role seen from the whole graph wins (a router's weight stays replicated); shape and range come from this use.
    const graphRole = this.hints.get(name);
    const h: Hint = {
      role: (graphRole === 'router-logits' ? undefined : graphRole) ?? hint?.role ?? 'activation',
      range: hint?.range,
      shape: hint?.shape,
      dtype: hint?.dtype,
    };
    if (h.role === 'indices' && h.range === undefined) h.range = this.preset.vocab;
    // Packed NVFP4 weights: any byte, i.e. any pair of e2m1 codes.
    if (h.role === 'fp4-weight') h.range = 256;
    if (inp && inp.type?.kind === 'sym')
      return { t: 'sym', value: evalDim(inp.type.expr, this.tokens, inp.name) };
    if (inp && inp.type?.kind === 'tensor') {
      const mt = this.mapType(inp.type, inp.name);
      return { t: 'tensor', view: this.seed(name, mt.dtype, mt.shape, h, null) };
    }
    // A fragment's free name: typed by how it is used.
    if (!this.nodesByName.has(name) && h.shape)
      return { t: 'tensor', view: this.seed(name, h.dtype ?? this.dtype, h.shape, h, null) };
    throw new RunError(
      'input',
      `node ${where.name} (${where.op}) reads '${name}', which has no type: give the input an annotation ("bf16[s72, 2880]")`,
      { node: where.name, op: where.op },
    );
  }

  tensor(a: Arg, where: Node, what: string, hint?: Hint): View {
    const v = this.resolve(a, where, hint);
    if (!v || v.t !== 'tensor')
      throw new RunError('input', `node ${where.name} (${where.op}): ${what} must be a tensor`, {
        node: where.name,
        op: where.op,
      });
    return v.view;
  }

  fail(n: Node, msg: string): never {
    throw new RunError('validation', `node ${n.name} (${n.op}): ${msg}`, { node: n.name, op: n.op });
  }

  // --- layouts and writes ---------------------------------------------------------------------

  contiguous(v: View, n: Node): View {
    if (isContiguous(v)) return v;
    const out = this.newStorage(`${n.name}.contiguous`, v.dtype, v.shape);
    this.push(n, { kernel: 'copy', x: v, out: out.storage });
    return out;
  }
  rowsOrCopy(v: View, n: Node): View {
    return asRows(v) ? v : this.contiguous(v, n);
  }

  /**
   * `src` written into `dst` in place (copy_, an in-place op called directly, v2's write-back): a
   * copy when dst is its whole storage, else a scatter of src through dst's window into a copy of
   * the storage, copied back over it.
   */
  writeInto(n: Node, dst: View, src: View): void {
    if (dst.shape.join() !== src.shape.join())
      this.fail(n, `writes [${src.shape}] into a view of [${dst.shape}]`);
    const st = this.storages.get(dst.storage)!;
    if (this.inputs.has(dst.storage) && !this.writtenInputs.includes(dst.storage))
      this.writtenInputs.push(dst.storage);
    const whole = { shape: st.shape, strides: contiguousStrides(st.shape) };
    if (dst.offset === 0 && numelOf(dst.shape) === st.numel && isContiguous(dst)) {
      // The whole storage, perhaps under another shape ([T, H, D] over [T, H·D]): a flat copy.
      this.push(n, { kernel: 'copy', x: { ...this.contiguous(src, n), ...whole }, out: dst.storage });
      return;
    }
    const base: View = { storage: st.id, dtype: st.dtype, offset: 0, ...whole };
    const tmp = this.newStorage(`${n.name}.${dst.storage}`, st.dtype, st.shape);
    this.scatterThrough(n, base, src, dst.offset, dst.strides, tmp.storage);
    this.push(n, { kernel: 'copy', x: tmp, out: dst.storage });
  }

  /** A scatter step writing src through the window (at, strides) of a contiguous out; refused where the window overlaps itself. */
  scatterThrough(n: Node, base: View, src: View, at: number, strides: number[], out: string): void {
    const order = src.shape
      .map((_, d) => d)
      .filter((d) => src.shape[d] > 1)
      .sort((a, b) => strides[b] - strides[a]);
    let inner = 1;
    for (let k = order.length - 1; k >= 0; k--) {
      const d = order[k];
      if (strides[d] < inner)
        this.fail(n, `writes through a window whose strides [${strides}] overlap (sizes [${src.shape}])`);
      inner = strides[d] * (src.shape[d] - 1) + 1;
    }
    this.push(n, { kernel: 'scatter', base, src, at, strides, out });
  }

  // --- nodes without a kernel -----------------------------------------------------------------

  /** A node with no kernel: fed from a seeded input when its result types are known. */
  feed(n: Node, types: (ValueType | null)[] | null): Value | null {
    if (!types || types.length === 0) return null;
    const items: (Value | null)[] = [];
    for (let i = 0; i < types.length; i++) {
      const t = types[i];
      if (t === null) {
        items.push(NONE);
        continue;
      }
      if (t.kind !== 'tensor') return null;
      const mt = this.mapType(t, n.name);
      const name = types.length === 1 && n.type ? n.name : `${n.name}[${i}]`;
      items.push({ t: 'tensor', view: this.seed(name, mt.dtype, mt.shape, { role: 'fed' }, n) });
    }
    this.fed.push(n.name);
    return types.length === 1 && n.type ? items[0] : { t: 'tuple', items };
  }

  /** The types of a node's results as the getitem nodes that read them annotate them. */
  itemTypes(name: string): (ValueType | null)[] | undefined {
    if (!this.itemTypesByNode) {
      this.itemTypesByNode = new Map();
      for (const n of this.graph.nodes) {
        if (n.op !== 'getitem' || !isRef(n.args[0]) || !n.type) continue;
        const i = numberOf(n.args[1]);
        if (i === undefined) continue;
        const l = this.itemTypesByNode.get(n.args[0].name) ?? [];
        while (l.length <= i) l.push(null);
        l[i] = n.type;
        this.itemTypesByNode.set(n.args[0].name, l);
      }
    }
    return this.itemTypesByNode.get(name);
  }
  private itemTypesByNode: Map<string, (ValueType | null)[]> | undefined;

  /** The type of a value lowered so far, else its annotation. */
  typeOf(name: string): ValueType | null {
    const v = this.values.get(name);
    if (v?.t === 'tensor')
      return { kind: 'tensor', dtype: v.view.dtype === 'i32' ? 'i32' : 'bf16', shape: v.view.shape };
    const inp = this.inputs.get(name);
    if (inp?.type) return inp.type;
    return this.nodesByName.get(name)?.type ?? null;
  }
}
