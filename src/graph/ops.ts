// The op registry: one entry per op the tool understands. Schemas, shape rules, which args an
// op mutates or aliases, and the semantic facts rewrites rely on live here and nowhere else.
// Ops not listed import as opaque nodes (their annotated types are kept) with a warning.

import type { Arg, Graph, Node, TensorType, ValueType } from './ir.ts';
import { torchDtype } from './ir.ts';
export { torchDtype };
import { sliceLength } from './sliceShape.ts';
import { ELEMENTWISE_OPS, type ElementwiseOp, type ElementwiseOpDef } from './opTable.ts';

export type OpKind = 'compute' | 'collective' | 'view' | 'norm' | 'fused' | 'memory' | 'meta' | 'opaque';

export interface ArgSpec {
  name: string;
  /** Schema type as PyTorch writes it: `Tensor`, `Tensor(a!)`, `int`, `float`, `str`, `int[]`, `SymInt`… */
  type: string;
  /** Present when the argument has a default (and may be omitted). */
  default?: Arg;
  /** The op writes into this argument (`Tensor(a!)`): auto_functionalized returns it. */
  mutates?: boolean;
}

export interface OpFacts {
  /** The op's result is an elementwise sum of its input over ranks (all_reduce). */
  elementwiseSumOverRanks?: boolean;
  /** The result is a view of the first argument (slice, view, t, getitem of split). */
  view?: boolean;
  /** A collective along a tensor dim (gather/scatter): does not commute with slicing that dim. */
  collectiveDimArg?: number;
  /** Async collective whose result must pass through `_c10d_functional.wait_tensor`. */
  needsWait?: boolean;
}

export interface OpDef {
  /** Fully qualified: `aten.slice.Tensor`. */
  name: string;
  kind: OpKind;
  args: ArgSpec[];
  /** Number of returned tensors (0 for ops that only mutate). */
  returns: number;
  facts?: OpFacts;
  /** Result type(s) from the types of the inputs; undefined where unknown. */
  infer?: (n: Node, typeOf: (a: Arg) => ValueType | null | undefined) => ValueType | null | undefined;
  /** One line on what it computes, shown in the inspector. */
  doc: string;
}

const T = (name: string, extra: Partial<ArgSpec> = {}): ArgSpec => ({ name, type: 'Tensor', ...extra });
const M = (name: string): ArgSpec => ({ name, type: 'Tensor(a!)', mutates: true });
const P = (name: string, type: string, def?: Arg): ArgSpec =>
  def === undefined ? { name, type } : { name, type, default: def };

const sameAsFirst: OpDef['infer'] = (n, typeOf) => typeOf(n.args[0] ?? null);

/** NumPy broadcasting of symbolic shapes; null where two dims neither match nor are 1. */
function broadcastDims(shapes: (number | string)[][]): (number | string)[] | null {
  const rank = Math.max(...shapes.map((s) => s.length));
  const out: (number | string)[] = [];
  for (let i = 0; i < rank; i++) {
    let d: number | string = 1;
    for (const s of shapes) {
      const x = s[s.length - rank + i] ?? 1;
      if (x === 1 || x === d) continue;
      if (d !== 1) return null;
      d = x;
    }
    out.push(d);
  }
  return out;
}

/** self's type with another dtype (a cast); undefined where self is not a typed tensor or dtype unknown. */
const castTo =
  (dtypeAt: (n: Node) => Arg | undefined): OpDef['infer'] =>
  (n, typeOf) => {
    const t = typeOf(n.args[0] ?? null),
      dtype = torchDtype(dtypeAt(n));
    return t && t.kind === 'tensor' ? { ...t, dtype: dtype ?? t.dtype } : undefined;
  };

/** A reduction over `dims` (all when empty or absent) of self, keeping them as 1s when keepdim. */
function reducedType(
  t: ValueType | null | undefined,
  dims: Arg | undefined,
  keepdim: Arg | undefined,
): ValueType | undefined {
  if (!t || t.kind !== 'tensor') return undefined;
  const rank = t.shape.length;
  const list = dims === undefined || dims === null ? [] : Array.isArray(dims) ? dims : [dims];
  if (list.some((d) => typeof d !== 'number')) return undefined;
  const all = list.length === 0;
  const set = new Set((list as number[]).map((d) => (d < 0 ? d + rank : d)));
  const shape: (number | string)[] = [];
  t.shape.forEach((d, i) => {
    if (all || set.has(i)) {
      if (keepdim === true) shape.push(1);
    } else shape.push(d);
  });
  return { kind: 'tensor', dtype: t.dtype, shape };
}
const argOr = (n: Node, i: number, name: string): Arg | undefined =>
  i < n.args.length ? n.args[i] : n.kwargs[name];

const REGISTRY = new Map<string, OpDef>();
/** Registers an op, keeping its name's literal type so `FxOp` lists it (registered only in `FX_OPS` below). */
function defineOp<N extends string>(def: OpDef & { name: N }): OpDef & { name: N } {
  if (REGISTRY.has(def.name)) throw new Error(`op ${def.name} is registered twice`);
  REGISTRY.set(def.name, def);
  return def;
}

export function lookupOp(name: string): OpDef | undefined {
  return REGISTRY.get(name);
}

export function allOps(): OpDef[] {
  return [...REGISTRY.values()];
}

/** Kind used for colouring and the cost model; opaque for unknown ops. */
export function opKind(op: string): OpKind {
  return REGISTRY.get(op)?.kind ?? 'opaque';
}

/** The result of splitting (÷) or gathering (×) dim `dim` of `t` over `n` ranks; undefined where unknown. */
function splitDim(
  t: ValueType | null | undefined,
  dim: Arg | undefined,
  n: Arg | undefined,
  gather: boolean,
): ValueType | undefined {
  if (!t || t.kind !== 'tensor' || typeof dim !== 'number' || typeof n !== 'number' || n < 1)
    return undefined;
  const d = t.shape[dim];
  if (d === undefined) return undefined;
  const shape = t.shape.slice();
  if (typeof d === 'number') shape[dim] = gather ? d * n : d / n;
  else if (gather)
    shape[dim] = d.endsWith(`//${n}`)
      ? d.slice(0, -`//${n}`.length).replace(/^\((.*)\)$/, '$1')
      : `${n}*${d}`;
  else shape[dim] = /^[A-Za-z_]\w*$/.test(d) ? `${d}//${n}` : `(${d})//${n}`;
  return { kind: 'tensor', dtype: t.dtype, shape };
}

/** The fused norm + dynamic quants' leading arguments (csrc/torch_bindings.cpp): per token, and per group after them. */
const NORM_DYNAMIC_QUANT_ARGS: ArgSpec[] = [
  M('result'),
  T('input'),
  T('weight'),
  M('scale'),
  P('epsilon', 'float'),
  { name: 'scale_ub', type: 'Tensor?', default: null },
  { name: 'residual', type: 'Tensor(a!)?', default: null, mutates: true },
];

/** Every registered op outside the elementwise table, each name a literal type: see `FxOp`. */
export const FX_OPS = [
  // --- collectives -------------------------------------------------------------------------
  defineOp({
    name: 'vllm.all_reduce.default',
    kind: 'collective',
    returns: 1,
    args: [T('tensor'), P('group_name', 'str')],
    facts: { elementwiseSumOverRanks: true },
    infer: sameAsFirst,
    doc: 'Elementwise sum of the tensor over the ranks of the group, in rank order.',
  }),
  defineOp({
    name: '_c10d_functional.all_reduce.default',
    kind: 'collective',
    returns: 1,
    args: [T('input'), P('reduce_op', 'str'), P('group_name', 'str')],
    facts: { elementwiseSumOverRanks: true, needsWait: true },
    infer: sameAsFirst,
    doc: 'Async all-reduce (sum when reduce_op is "sum"); the value is ready after wait_tensor.',
  }),
  defineOp({
    name: '_c10d_functional.wait_tensor.default',
    kind: 'collective',
    returns: 1,
    args: [T('tensor')],
    infer: sameAsFirst,
    facts: { view: true },
    doc: 'Waits for an async collective; returns its result.',
  }),
  defineOp({
    name: '_c10d_functional.all_gather_into_tensor.default',
    kind: 'collective',
    returns: 1,
    args: [T('input'), P('group_size', 'int'), P('group_name', 'str')],
    facts: { collectiveDimArg: 0, needsWait: true },
    doc: "Concatenates every rank's tensor along dim 0.",
  }),
  defineOp({
    name: '_c10d_functional.reduce_scatter_tensor.default',
    kind: 'collective',
    returns: 1,
    args: [T('input'), P('reduce_op', 'str'), P('group_size', 'int'), P('group_name', 'str')],
    facts: { collectiveDimArg: 0, needsWait: true },
    doc: 'Sums over ranks, then each rank keeps its chunk of dim 0.',
  }),
  // Sequence parallelism (vLLM SequenceParallelismPass) and async TP (AsyncTPPass).
  defineOp({
    name: 'vllm.reduce_scatter.default',
    kind: 'collective',
    returns: 1,
    args: [T('tensor'), P('dim', 'int'), P('world_size', 'int'), P('group_name', 'str')],
    facts: { collectiveDimArg: 0 },
    infer: (n, typeOf) =>
      splitDim(
        typeOf(n.args[0] ?? null),
        n.kwargs['dim'] ?? n.args[1],
        n.kwargs['world_size'] ?? n.args[2],
        false,
      ),
    doc: 'Sums over the ranks in rank order; rank r keeps the r-th of world_size blocks along dim (the token rows).',
  }),
  defineOp({
    name: 'vllm.all_gather.default',
    kind: 'collective',
    returns: 1,
    args: [T('tensor'), P('dim', 'int'), P('world_size', 'int'), P('group_name', 'str')],
    facts: { collectiveDimArg: 0 },
    infer: (n, typeOf) =>
      splitDim(
        typeOf(n.args[0] ?? null),
        n.kwargs['dim'] ?? n.args[1],
        n.kwargs['world_size'] ?? n.args[2],
        true,
      ),
    doc: "Concatenates every rank's tensor along dim, in rank order.",
  }),
  defineOp({
    name: 'symm_mem.fused_matmul_reduce_scatter.default',
    kind: 'fused',
    returns: 1,
    args: [T('A'), T('B'), P('reduce_op', 'str'), P('scatter_dim', 'int'), P('group_name', 'str')],
    doc: "A @ B reduce-scattered along scatter_dim, in chunks whose transfer overlaps the next chunk's matmul (symmetric memory).",
  }),
  defineOp({
    name: 'symm_mem.fused_all_gather_matmul.default',
    kind: 'fused',
    returns: -1,
    args: [T('A_shard'), P('Bs', 'Tensor[]'), P('gather_dim', 'int'), P('group_name', 'str')],
    doc: "(all_gather(A_shard), [A @ B for B in Bs]): each gathered chunk's matmul overlaps the next chunk's transfer.",
  }),

  // torch/distributed/_symmetric_memory/__init__.py: what vLLM's AsyncTPPass makes of FP8 GEMMs
  // (collective_fusion.py's scaled-mm patterns).
  defineOp({
    name: 'symm_mem.fused_scaled_matmul_reduce_scatter.default',
    kind: 'fused',
    returns: 1,
    args: [
      T('A'),
      T('B'),
      T('A_scale'),
      T('B_scale'),
      P('reduce_op', 'str'),
      P('orig_scatter_dim', 'int'),
      P('scatter_dim_after_maybe_reshape', 'int'),
      P('group_name', 'str'),
      P('output_shape', 'SymInt[]?'),
      P('bias', 'Tensor?', null),
      P('result_scale', 'Tensor?', null),
      P('out_dtype', 'ScalarType?', null),
      P('use_fast_accum', 'bool', false),
    ],
    doc: "_scaled_mm(A, B, A_scale, B_scale) reduce-scattered along the scatter dim, in chunks whose transfer overlaps the next chunk's matmul.",
  }),
  defineOp({
    name: 'symm_mem.fused_all_gather_scaled_matmul.default',
    kind: 'fused',
    returns: -1,
    args: [
      T('A'),
      P('Bs', 'Tensor[]'),
      T('A_scale'),
      P('B_scales', 'Tensor[]'),
      P('gather_dim', 'int'),
      P('group_name', 'str'),
      P('biases', 'Tensor?[]'),
      P('result_scales', 'Tensor?[]'),
      P('out_dtypes', 'ScalarType?[]'),
      P('use_fast_accum', 'bool[]'),
    ],
    doc: '(all_gather(A), [_scaled_mm(all_gather(A), B, A_scale, B_scale) for B in Bs]); a per-row A_scale is gathered with A.',
  }),

  // --- views and memory ----------------------------------------------------------------------
  defineOp({
    name: 'aten.slice.Tensor',
    kind: 'view',
    returns: 1,
    args: [
      T('self'),
      P('dim', 'int', 0),
      P('start', 'SymInt?', null),
      P('end', 'SymInt?', null),
      P('step', 'SymInt', 1),
    ],
    facts: { view: true },
    infer: (n, typeOf) => {
      const t = typeOf(n.args[0] ?? null);
      if (!t || t.kind !== 'tensor' || t.shape.length === 0) return undefined;
      const arg = (i: number, name: string, def: Arg) =>
        i < n.args.length ? n.args[i] : name in n.kwargs ? n.kwargs[name] : def;
      const dimArg = arg(1, 'dim', 0);
      if (typeof dimArg !== 'number') return undefined;
      const dim = dimArg < 0 ? dimArg + t.shape.length : dimArg;
      const size = t.shape[dim];
      if (size === undefined) return undefined;
      const len = sliceLength(size, arg(2, 'start', null), arg(3, 'end', null), arg(4, 'step', 1), typeOf);
      if (len === undefined) return undefined;
      const shape = t.shape.slice();
      shape[dim] = len;
      return { kind: 'tensor', dtype: t.dtype, shape };
    },
    doc: 'A strided view of self[start:end:step] along dim.',
  }),
  defineOp({
    name: 'aten.clone.default',
    kind: 'memory',
    returns: 1,
    args: [T('self'), P('memory_format', 'MemoryFormat?', null)],
    infer: sameAsFirst,
    doc: 'Copies into a new (contiguous) tensor.',
  }),
  defineOp({
    name: 'aten.view.default',
    kind: 'view',
    returns: 1,
    args: [T('self'), P('size', 'SymInt[]')],
    facts: { view: true },
    doc: 'Reinterprets a contiguous tensor with a new shape.',
  }),
  defineOp({
    name: 'aten.reshape.default',
    kind: 'view',
    returns: 1,
    args: [T('self'), P('shape', 'SymInt[]')],
    facts: { view: true },
    doc: 'A view with a new shape (a copy when strides forbid a view).',
  }),
  defineOp({
    name: 'aten.t.default',
    kind: 'view',
    returns: 1,
    args: [T('self')],
    facts: { view: true },
    doc: 'Transposes a 2-D tensor (a view).',
  }),
  defineOp({
    name: 'aten.detach.default',
    kind: 'view',
    returns: 1,
    args: [T('self')],
    facts: { view: true },
    infer: sameAsFirst,
    doc: 'The same tensor, cut from autograd.',
  }),
  defineOp({
    name: 'aten.slice_scatter.default',
    kind: 'memory',
    returns: 1,
    args: [
      T('self'),
      T('src'),
      P('dim', 'int', 0),
      P('start', 'SymInt?', null),
      P('end', 'SymInt?', null),
      P('step', 'SymInt', 1),
    ],
    infer: sameAsFirst,
    doc: "A copy of self with self[start:end:step] along dim replaced by src (functionalization's write-back of a mutated view).",
  }),
  defineOp({
    name: 'aten.permute.default',
    kind: 'view',
    returns: 1,
    args: [T('self'), P('dims', 'int[]')],
    facts: { view: true },
    infer: (n, typeOf) => {
      const t = typeOf(n.args[0] ?? null);
      const dims = n.args[1] ?? n.kwargs['dims'];
      if (!t || t.kind !== 'tensor' || !Array.isArray(dims) || dims.length !== t.shape.length)
        return undefined;
      const shape: (number | string)[] = [];
      for (const d of dims) {
        if (typeof d !== 'number') return undefined;
        const dim = t.shape[d < 0 ? d + t.shape.length : d];
        if (dim === undefined) return undefined;
        shape.push(dim);
      }
      return { kind: 'tensor', dtype: t.dtype, shape };
    },
    doc: "The dims of self reordered (a view; Inductor writes a weight's transpose as permute(w, [1, 0])).",
  }),
  defineOp({
    name: 'aten.where.self',
    kind: 'compute',
    returns: 1,
    args: [T('condition'), T('self'), T('other')],
    infer: (n, typeOf) => {
      const ts = [0, 1, 2].map((i) => typeOf(n.args[i] ?? null));
      const value = ts[1]?.kind === 'tensor' ? ts[1] : ts[2];
      if (!value || value.kind !== 'tensor' || ts.some((t) => !t || t.kind !== 'tensor')) return undefined;
      const shape = broadcastDims(ts.map((t) => (t as TensorType).shape));
      return shape ? { kind: 'tensor', dtype: value.dtype, shape } : undefined;
    },
    doc: 'self where condition, else other, elementwise (broadcast).',
  }),
  defineOp({
    name: 'aten.as_strided.default',
    kind: 'view',
    returns: 1,
    args: [T('self'), P('size', 'SymInt[]'), P('stride', 'SymInt[]'), P('storage_offset', 'SymInt?', null)],
    facts: { view: true },
    doc: "A view of self's storage with the given sizes, strides and offset (Inductor's decomposed in-place calls use it).",
  }),
  defineOp({
    name: 'aten.sym_size.int',
    kind: 'meta',
    returns: 1,
    args: [T('self'), P('dim', 'int')],
    doc: 'The size of self along dim (a SymInt).',
  }),
  defineOp({
    name: 'aten.full.default',
    kind: 'memory',
    returns: 1,
    args: [P('size', 'SymInt[]'), P('fill_value', 'Scalar')],
    doc: "A tensor of size filled with fill_value (Inductor writes masked_fill's value as full([], v)).",
  }),
  defineOp({
    name: 'aten.copy_.default',
    kind: 'memory',
    returns: 1,
    args: [M('self'), T('src'), P('non_blocking', 'bool', false)],
    infer: sameAsFirst,
    doc: 'Copies src into self in place (a piecewise graph writes a mutated input back this way).',
  }),
  defineOp({
    name: 'aten.constant_pad_nd.default',
    kind: 'memory',
    returns: 1,
    args: [T('self'), P('pad', 'SymInt[]'), P('value', 'Scalar', 0)],
    infer: (n, typeOf) => {
      const t = typeOf(n.args[0] ?? null);
      const pad = n.args[1] ?? n.kwargs['pad'];
      if (
        !t ||
        t.kind !== 'tensor' ||
        !Array.isArray(pad) ||
        pad.length % 2 !== 0 ||
        pad.length / 2 > t.shape.length
      )
        return undefined;
      const shape = t.shape.slice();
      for (let i = 0; i < pad.length / 2; i++) {
        const d = shape.length - 1 - i,
          lo = pad[2 * i],
          hi = pad[2 * i + 1],
          size = shape[d];
        if (typeof lo !== 'number' || typeof hi !== 'number' || typeof size !== 'number') return undefined;
        shape[d] = size + lo + hi;
      }
      return { kind: 'tensor', dtype: t.dtype, shape };
    },
    doc: 'Pads with a constant; pad pairs start from the last dim ([0, 192]: 2880 → 3072 columns).',
  }),
  defineOp({
    name: 'aten.empty_like.default',
    kind: 'memory',
    returns: 1,
    args: [T('self')],
    infer: sameAsFirst,
    doc: 'An uninitialised tensor like self.',
  }),
  defineOp({
    name: 'aten.zeros_like.default',
    kind: 'memory',
    returns: 1,
    args: [T('self')],
    infer: sameAsFirst,
    doc: 'A tensor of zeros like self.',
  }),
  defineOp({
    name: 'aten.empty.memory_format',
    kind: 'memory',
    returns: 1,
    args: [P('size', 'SymInt[]')],
    doc: 'An uninitialised tensor.',
  }),
  defineOp({
    name: 'aten.split_with_sizes.default',
    kind: 'view',
    returns: -1,
    args: [T('self'), P('split_sizes', 'SymInt[]'), P('dim', 'int', 0)],
    facts: { view: true },
    doc: 'Views of consecutive chunks along dim (a tuple; take items with getitem).',
  }),
  defineOp({
    name: 'getitem',
    kind: 'meta',
    returns: 1,
    args: [P('value', 'Any'), P('index', 'int')],
    doc: "Item of a tuple-valued node (auto_functionalized: [0] the op's return, [1..] mutated args).",
  }),
  defineOp({
    name: 'higher_order.auto_functionalized_v2',
    kind: 'meta',
    returns: -1,
    args: [P('op', 'OpOverload')],
    doc: "auto_functionalized with bases: a mutated arg is `_{name}_base_index` into `_all_bases`; result [0] is the op's return, [1..] the new bases.",
  }),
  defineOp({
    name: 'higher_order.auto_functionalized',
    kind: 'meta',
    returns: -1,
    args: [P('op', 'OpOverload')],
    doc: 'Runs a mutating op functionally: result [0] is its return, [1..] the new values of its mutated args.',
  }),

  // --- compute -------------------------------------------------------------------------------
  defineOp({
    name: 'aten.mm.default',
    kind: 'compute',
    returns: 1,
    args: [T('self'), T('mat2')],
    doc: 'Matrix product self @ mat2.',
  }),
  defineOp({
    name: 'aten.addmm.default',
    kind: 'compute',
    returns: 1,
    args: [T('self'), T('mat1'), T('mat2'), P('beta', 'Scalar', 1), P('alpha', 'Scalar', 1)],
    doc: 'bias + mat1 @ mat2 (a Linear layer with bias, mat2 = Wᵀ).',
  }),
  defineOp({
    name: 'aten.embedding.default',
    kind: 'compute',
    returns: 1,
    args: [T('weight'), T('indices')],
    doc: 'Rows of weight selected by indices.',
  }),
  defineOp({
    name: 'vllm.moe_forward.default',
    kind: 'compute',
    returns: 1,
    // vLLM registers it with mutates_args=["hidden_states"]: it reaches the graph through auto_functionalized.
    args: [M('hidden_states'), T('router_logits'), P('layer_name', 'str')],
    doc: 'Mixture of experts: top-k routing, per-expert SwiGLU MLP, weighted combine (a partial sum under TP).',
  }),
  defineOp({
    name: 'vllm.unified_attention_with_output.default',
    kind: 'compute',
    returns: 0,
    args: [
      T('query'),
      T('key'),
      T('value'),
      M('output'),
      P('layer_name', 'str'),
      { name: 'output_scale', type: 'Tensor?', default: null },
      { name: 'output_block_scale', type: 'Tensor(a!)?', default: null, mutates: true },
    ],
    doc: 'Paged attention over the KV cache, written into output.',
  }),

  defineOp({
    name: '_C.rotary_embedding.default',
    kind: 'compute',
    returns: 0,
    args: [
      T('positions'),
      M('query'),
      M('key'),
      P('head_size', 'int'),
      T('cos_sin_cache'),
      P('is_neox', 'bool'),
    ],
    doc: "Rotates query and key in place by the position's angle (RoPE; neox: halves, else interleaved pairs).",
  }),
  // model_executor/layers/attention/attention.py (direct_register_custom_op, mutates_args=[]).
  defineOp({
    name: 'vllm.unified_kv_cache_update.default',
    kind: 'compute',
    returns: 1,
    args: [T('key'), T('value'), P('layer_name', 'str')],
    doc: "Writes key and value into the layer's paged KV cache at the batch's slots; returns an empty tensor that orders the attention after it.",
  }),
  // rope_kvcache_fusion.py (direct_register_custom_op, mutates_args=["query", "key"]): RopeKVCacheFusionPass emits it.
  defineOp({
    name: 'vllm.fused_rope_and_unified_kv_cache_update.default',
    kind: 'fused',
    returns: 1,
    args: [
      M('query'),
      M('key'),
      T('value'),
      T('positions'),
      T('cos_sin_cache'),
      P('is_neox', 'bool'),
      P('layer_name', 'str', ''),
    ],
    doc: 'Rotates query and key in place (RoPE) and writes key and value into the paged KV cache (ROCm); returns the empty ordering tensor.',
  }),
  // csrc/torch_bindings.cpp (vLLM main, spring 2026); QKNormRoPEFusionPass emits it.
  defineOp({
    name: '_C.fused_qk_norm_rope.default',
    kind: 'fused',
    returns: 0,
    args: [
      M('qkv'),
      P('num_heads_q', 'int'),
      P('num_heads_k', 'int'),
      P('num_heads_v', 'int'),
      P('head_dim', 'int'),
      P('eps', 'float'),
      T('q_weight'),
      T('k_weight'),
      T('cos_sin_cache'),
      P('is_neox', 'bool'),
      T('position_ids'),
      P('forced_token_heads_per_warp', 'int', -1),
    ],
    doc: "In place on qkv [T, (Hq + Hk + Hv)·head_dim]: each q and k head RMSNormed with q_weight / k_weight, then rotated by the position's angle (RoPE); v untouched.",
  }),
  defineOp({
    name: '_C.silu_and_mul.default',
    kind: 'compute',
    returns: 0,
    args: [M('result'), T('input')],
    doc: 'result = silu(input[:, :d]) · input[:, d:] with d = half the last dim (SwiGLU).',
  }),
  defineOp({
    name: 'aten.sub.Tensor',
    kind: 'compute',
    returns: 1,
    args: [T('self'), P('other', 'Scalar')],
    infer: sameAsFirst,
    doc: 'self − other, elementwise (broadcast).',
  }),
  defineOp({
    name: 'aten.unsqueeze.default',
    kind: 'view',
    returns: 1,
    args: [T('self'), P('dim', 'int')],
    facts: { view: true },
    doc: 'A view with a size-1 dim inserted at dim.',
  }),

  // --- Inductor's decompositions (vLLM's native forms, torch 2.13's post-grad spellings) ------
  defineOp({
    name: 'prims.convert_element_type.default',
    kind: 'compute',
    returns: 1,
    args: [T('a'), P('dtype', 'ScalarType')],
    infer: castTo((n) => argOr(n, 1, 'dtype')),
    doc: 'a cast to dtype: nearest even between floats; to float8_e4m3fn with NaN past 464 (no saturation).',
  }),
  defineOp({
    name: 'aten._to_copy.default',
    kind: 'compute',
    returns: 1,
    args: [
      T('self'),
      P('dtype', 'ScalarType?', null),
      P('layout', 'Layout?', null),
      P('device', 'Device?', null),
      P('pin_memory', 'bool?', null),
      P('non_blocking', 'bool', false),
      P('memory_format', 'MemoryFormat?', null),
    ],
    infer: castTo((n) => n.kwargs['dtype'] ?? n.args[1]),
    doc: 'A copy of self, cast to dtype when given (Tensor.to before decomposition).',
  }),
  defineOp({
    name: 'aten.mean.dim',
    kind: 'compute',
    returns: 1,
    args: [T('self'), P('dim', 'int[1]?'), P('keepdim', 'bool', false), P('dtype', 'ScalarType?', null)],
    infer: (n, typeOf) =>
      reducedType(typeOf(n.args[0] ?? null), argOr(n, 1, 'dim'), argOr(n, 2, 'keepdim') ?? false),
    doc: 'The mean over dim (the last: f32 sum in index order, then one division).',
  }),
  defineOp({
    name: 'aten.max.default',
    kind: 'compute',
    returns: 1,
    args: [T('self')],
    infer: (n, typeOf) => reducedType(typeOf(n.args[0] ?? null), [], false),
    doc: 'The largest element of self (a 0-d tensor; NaN if any is NaN).',
  }),
  defineOp({
    name: 'aten.max.dim',
    kind: 'compute',
    returns: 2,
    args: [T('self'), P('dim', 'int'), P('keepdim', 'bool', false)],
    doc: '(values, indices): the largest element along dim and where it is.',
  }),
  defineOp({
    name: 'aten.amax.default',
    kind: 'compute',
    returns: 1,
    args: [T('self'), P('dim', 'int[1]', []), P('keepdim', 'bool', false)],
    infer: (n, typeOf) =>
      reducedType(typeOf(n.args[0] ?? null), argOr(n, 1, 'dim') ?? [], argOr(n, 2, 'keepdim') ?? false),
    doc: 'The largest element over dim (all dims when empty).',
  }),
  defineOp({
    name: 'aten.clamp.default',
    kind: 'compute',
    returns: 1,
    args: [T('self'), P('min', 'Scalar?', null), P('max', 'Scalar?', null)],
    infer: sameAsFirst,
    doc: 'min(max(self, min), max), elementwise (either bound may be None).',
  }),

  // --- norms and fused ops -----------------------------------------------------------------
  defineOp({
    name: '_C.rms_norm.default',
    kind: 'norm',
    returns: 0,
    args: [M('result'), T('input'), T('weight'), P('epsilon', 'float')],
    doc: 'result = bf16(x · rsqrt(mean(x²) + eps)) · w.',
  }),
  defineOp({
    name: '_C.fused_add_rms_norm.default',
    kind: 'norm',
    returns: 0,
    args: [M('input'), M('residual'), T('weight'), P('epsilon', 'float')],
    doc: 'z = input + residual → residual; input ← RMSNorm(z) · w.',
  }),
  // vLLM IR (vllm/ir/ops/layernorm.py): functional; they compute what _C.rms_norm and
  // _C.fused_add_rms_norm compute, until VllmIRLoweringPass swaps in an implementation.
  defineOp({
    name: 'vllm_ir.rms_norm.default',
    kind: 'norm',
    returns: 1,
    args: [
      T('x'),
      { name: 'weight', type: 'Tensor?' },
      P('epsilon', 'float'),
      P('variance_size', 'int?', null),
    ],
    infer: sameAsFirst,
    doc: 'RMSNorm(x) · weight, functional (vLLM IR): bf16(x · rsqrt(mean(x²) + eps)) · w.',
  }),
  defineOp({
    name: 'vllm_ir.fused_add_rms_norm.default',
    kind: 'norm',
    returns: 2,
    args: [
      T('x'),
      T('x_residual'),
      { name: 'weight', type: 'Tensor?' },
      P('epsilon', 'float'),
      P('variance_size', 'int?', null),
    ],
    doc: '(RMSNorm(x + x_residual) · weight, x + x_residual), functional (vLLM IR).',
  }),
  defineOp({
    name: 'vllm.flashinfer_trtllm_fused_allreduce_norm.default',
    kind: 'fused',
    returns: 0,
    args: [
      M('allreduce_in'),
      M('residual'),
      { name: 'norm_out', type: 'Tensor(a!)?', mutates: true },
      { name: 'quant_out', type: 'Tensor(a!)?', mutates: true },
      { name: 'scale_out', type: 'Tensor(a!)?', mutates: true },
      T('rms_gamma'),
      P('rms_eps', 'float'),
      P('pattern_code', 'int'),
      P('world_rank', 'int'),
      P('world_size', 'int'),
      P('launch_with_pdl', 'bool'),
      P('trigger_completion_at_end', 'bool'),
      P('fp32_acc', 'bool'),
      P('max_token_num', 'int'),
      { name: 'scale_factor', type: 'Tensor?', default: null },
    ],
    doc: 'One kernel: all-reduce, + residual, RMSNorm (pattern 1: [1] normed output when norm_out is None, [2] new residual; 2: + FP8 quant into quant_out [4] with scale_factor; 3: + NVFP4 into quant_out [4], scale_out [5]).',
  }),

  // --- quantization (vLLM csrc/quantization) -------------------------------------------------
  defineOp({
    name: '_C.static_scaled_fp8_quant.default',
    kind: 'compute',
    returns: 0,
    args: [M('result'), T('input'), T('scale')],
    doc: 'result = f8e4m3fn(clamp(input · (1 / scale), ±448)), rounded to nearest even; one f32 scale per tensor.',
  }),
  // vLLM csrc/torch_bindings.cpp: dynamic_scaled_fp8_quant(Tensor! result, Tensor input, Tensor! scale),
  // dynamic_per_token_scaled_fp8_quant(Tensor! result, Tensor input, Tensor! scale, Tensor? scale_ub).
  defineOp({
    name: '_C.dynamic_scaled_fp8_quant.default',
    kind: 'compute',
    returns: 0,
    args: [M('result'), T('input'), M('scale')],
    doc: 'scale = max|input| / 448 (one f32); result = f8e4m3fn(clamp(input · (1 / scale), ±448)).',
  }),
  defineOp({
    name: '_C.dynamic_per_token_scaled_fp8_quant.default',
    kind: 'compute',
    returns: 0,
    args: [M('result'), T('input'), M('scale'), { name: 'scale_ub', type: 'Tensor?' }],
    doc: 'Per row: scale = max(min(max|row|, scale_ub) / 448, 1/(448·512)); result = f8e4m3fn(clamp(row / scale, ±448)).',
  }),
  // per_token_group_fp8_quant(Tensor input, Tensor! output_q, Tensor! output_s, int group_size, float eps,
  // float fp8_min, float fp8_max, bool scale_ue8m0, bool dummy_is_scale_transposed, bool dummy_is_tma_aligned)
  // (csrc/torch_bindings.cpp; the dummies let RMSNormGroupQuantPattern match it, rms_quant_fusion.py).
  defineOp({
    name: '_C.per_token_group_fp8_quant.default',
    kind: 'compute',
    returns: 0,
    args: [
      T('input'),
      M('output_q'),
      M('output_s'),
      P('group_size', 'int'),
      P('eps', 'float'),
      P('fp8_min', 'float'),
      P('fp8_max', 'float'),
      P('scale_ue8m0', 'bool'),
      P('dummy_is_scale_transposed', 'bool'),
      P('dummy_is_tma_aligned', 'bool'),
    ],
    doc: 'Per group_size columns of a token: scale = max(eps, max|x|) / fp8_max (output_s [2]); output_q [1] = f8e4m3fn(clamp(x / scale, fp8_min, fp8_max)).',
  }),
  // cutlass_scaled_mm(Tensor! out, Tensor a, Tensor b, Tensor a_scales, Tensor b_scales, Tensor? bias).
  defineOp({
    name: '_C.cutlass_scaled_mm.default',
    kind: 'compute',
    returns: 0,
    args: [M('out'), T('a'), T('b'), T('a_scales'), T('b_scales'), { name: 'bias', type: 'Tensor?' }],
    doc: 'out = (a @ b) · a_scales · b_scales (+ bias), FP8 operands, f32 accumulation, per-tensor or per-row / per-column scales.',
  }),
  // torch: _scaled_mm(Tensor self, Tensor mat2, Tensor scale_a, Tensor scale_b, Tensor? bias=None,
  // Tensor? scale_result=None, ScalarType? out_dtype=None, bool use_fast_accum=False) -> Tensor.
  defineOp({
    name: 'aten._scaled_mm.default',
    kind: 'compute',
    returns: 1,
    args: [
      T('self'),
      T('mat2'),
      T('scale_a'),
      T('scale_b'),
      P('bias', 'Tensor?', null),
      P('scale_result', 'Tensor?', null),
      P('out_dtype', 'ScalarType?', null),
      P('use_fast_accum', 'bool', false),
    ],
    infer: (n, typeOf) => {
      const a = typeOf(n.args[0] ?? null),
        b = typeOf(n.args[1] ?? null);
      if (
        !a ||
        a.kind !== 'tensor' ||
        !b ||
        b.kind !== 'tensor' ||
        a.shape.length !== 2 ||
        b.shape.length !== 2
      )
        return undefined;
      const dtype = torchDtype(argOr(n, 6, 'out_dtype')) ?? a.dtype;
      return { kind: 'tensor', dtype, shape: [a.shape[0]!, b.shape[1]!] };
    },
    doc: '(self @ mat2) · scale_a · scale_b (+ bias), cast to out_dtype: FP8 operands, f32 accumulation.',
  }),
  defineOp({
    name: '_C.scaled_fp4_quant.default',
    kind: 'compute',
    returns: 0,
    args: [M('output'), T('input'), M('output_scale'), T('input_scale')],
    doc: 'NVFP4: two e2m1 values per byte into output, one fp8 scale per 16 values (swizzled) into output_scale.',
  }),
  // vLLM csrc/torch_bindings.cpp: cutlass_scaled_fp4_mm(Tensor! out, Tensor a, Tensor b, Tensor
  // block_scale_a, Tensor block_scale_b, Tensor alpha) -> (); a [M, K/2] and b [N, K/2] packed e2m1
  // pairs, their e4m3 block scales [M, K/16] and [N, K/16], out [M, N] (lowering checks the shapes).
  defineOp({
    name: '_C.cutlass_scaled_fp4_mm.default',
    kind: 'compute',
    returns: 0,
    args: [M('out'), T('a'), T('b'), T('block_scale_a'), T('block_scale_b'), T('alpha')],
    doc: 'NVFP4 GEMM: out = alpha · (a @ bᵀ), a and b e2m1 pairs (two a byte) times their e4m3 scale per 16 values, f32 accumulation, cast to out.',
  }),

  // --- fused norm / activation + quant (vLLM's RMSNormQuantFusionPass, ActivationQuantFusionPass) --
  // Schemas as csrc/torch_bindings.cpp defines them; the passes emit them with vLLM's keyword order.
  defineOp({
    name: '_C.rms_norm_static_fp8_quant.default',
    kind: 'fused',
    returns: 0,
    args: [M('result'), T('input'), T('weight'), T('scale'), P('epsilon', 'float')],
    doc: 'result = f8e4m3fn(clamp(rms_norm(input, weight) · (1 / scale), ±448)): the norm rounded to the model dtype, then quantized, as the pair.',
  }),
  defineOp({
    name: '_C.fused_add_rms_norm_static_fp8_quant.default',
    kind: 'fused',
    returns: 0,
    args: [M('result'), T('input'), M('residual'), T('weight'), T('scale'), P('epsilon', 'float')],
    doc: 'z = input + residual → residual ([2]); result ([1]) = static FP8 quant of RMSNorm(z) · w, as fused_add_rms_norm then static_scaled_fp8_quant.',
  }),
  defineOp({
    name: '_C.rms_norm_dynamic_per_token_quant.default',
    kind: 'fused',
    returns: 0,
    args: NORM_DYNAMIC_QUANT_ARGS,
    doc: 'RMSNorm (with residual: after z = input + residual → residual [3]), then FP8 quant with one scale per token (max |x| / 448 into scale [2]); result [1].',
  }),
  defineOp({
    name: '_C.rms_norm_per_block_quant.default',
    kind: 'fused',
    returns: 0,
    args: [...NORM_DYNAMIC_QUANT_ARGS, P('group_size', 'int'), P('is_scale_transposed', 'bool')],
    doc: 'RMSNorm (with residual: new residual [3]), then FP8 quant with one scale per group_size columns of a token (scale [2]); result [1].',
  }),
  // csrc/torch_bindings.cpp: silu_and_mul_per_block_quant(Tensor! out, Tensor input, Tensor! scales,
  // int group_size, Tensor? scale_ub=None, bool is_scale_transposed=False) -> ().
  defineOp({
    name: '_C.silu_and_mul_per_block_quant.default',
    kind: 'fused',
    returns: 0,
    args: [
      M('out'),
      T('input'),
      M('scales'),
      P('group_size', 'int'),
      P('scale_ub', 'Tensor?', null),
      P('is_scale_transposed', 'bool', false),
    ],
    doc: 'out ([1]) = FP8 quant of silu(input[:, :d]) · input[:, d:] with one scale per group_size columns of a token (scales [2]).',
  }),
  defineOp({
    name: '_C.silu_and_mul_quant.default',
    kind: 'fused',
    returns: 0,
    args: [M('result'), T('input'), T('scale')],
    doc: 'result = static FP8 quant of silu(input[:, :d]) · input[:, d:], the product rounded to the model dtype first, as the pair.',
  }),
  defineOp({
    name: '_C.silu_and_mul_nvfp4_quant.default',
    kind: 'fused',
    returns: 0,
    args: [M('result'), M('result_block_scale'), T('input'), T('input_global_scale')],
    doc: 'NVFP4 quant of silu(input[:, :d]) · input[:, d:]: e2m1 pairs into result [1], swizzled block scales into result_block_scale [2] (Blackwell).',
  }),
  // ROCm's add + RMSNorm + pad (act-padding, vLLM's RocmAiterTritonAddRMSNormPadFusionPass): the op
  // vllm/_aiter_ops.py registers (direct_register_custom_op, functional) over AITER's Triton kernel.
  defineOp({
    name: 'vllm.rocm_aiter_triton_add_rmsnorm_pad.default',
    kind: 'fused',
    returns: 2,
    args: [T('x'), T('weight'), P('variance_epsilon', 'float'), T('residual'), P('x_pad_to_multiple', 'int')],
    doc: '(RMSNorm(x + residual) · weight zero-padded on the last dim to a multiple of x_pad_to_multiple, x + residual) (AITER, ROCm).',
  }),
  // What vLLM calls on ROCm with AITER on (vllm/_aiter_ops.py, direct_register_custom_op, functional):
  // RMSNorm's fused add under '+rms_norm', and an unquantized linear (layers/utils.py).
  defineOp({
    name: 'vllm.rocm_aiter_rmsnorm2d_fwd_with_add.default',
    kind: 'compute',
    returns: 2,
    args: [T('x'), T('residual'), T('weight'), P('variance_epsilon', 'float')],
    doc: "(RMSNorm(x + residual) · weight, x + residual): AITER's fused add + RMSNorm (ROCm).",
  }),
  defineOp({
    name: 'vllm.rocm_unquantized_gemm.default',
    kind: 'compute',
    returns: 1,
    args: [T('x'), T('weight'), { name: 'bias', type: 'Tensor?', default: null }],
    doc: 'x · weightᵀ + bias, an unquantized linear (ROCm).',
  }),
] as const;

/**
 * A registered op other than the elementwise ones: each backend's lowering of FX ops is a switch
 * over this union ending in assertNever, so registering an op without saying how it lowers is a type error.
 */
export type FxOp = (typeof FX_OPS)[number]['name'];
const FX_OP_NAMES: ReadonlySet<string> = new Set(FX_OPS.map((d) => d.name));
export function isFxOp(op: string): op is FxOp {
  return FX_OP_NAMES.has(op);
}

// Elementwise ops with a kernel: schema and doc from the op table (src/graph/opTable.ts).
for (const [name, def] of Object.entries(ELEMENTWISE_OPS) as [ElementwiseOp, ElementwiseOpDef][]) {
  defineOp({
    name,
    kind: 'compute',
    returns: 1,
    args: [T('self'), ...def.args.map(([n, type, d]) => (type === 'Tensor' ? T(n) : P(n, type, d)))],
    infer: (n, typeOf) => {
      const t = typeOf(n.args[0] ?? null);
      return t && t.kind === 'tensor' ? { ...t, dtype: def.resultDtype ?? t.dtype } : undefined;
    },
    doc: def.doc,
  });
}

/** The types an op's results have, for multi-result nodes; undefined where not derivable. */
export type ResultTypes = (ValueType | null)[];

/** Look up a value's annotated type: a graph input's or a node's. */
export function typeIndex(g: Graph): Map<string, ValueType | null> {
  const m = new Map<string, ValueType | null>();
  for (const i of g.inputs) m.set(i.name, i.type);
  for (const n of g.nodes) m.set(n.name, n.type);
  return m;
}

export function isTensorType(t: ValueType | null | undefined): t is TensorType {
  return !!t && t.kind === 'tensor';
}
