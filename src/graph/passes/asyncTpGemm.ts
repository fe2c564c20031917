// The GEMMs vLLM's AsyncTPPass fuses with the reduce_scatter after them or the all_gather before
// them (vllm/compilation/passes/fusion/collective_fusion.py), as they read in a post-grad graph:
//
//   mm                 aten.mm.default(a, b)                          GEMMReduceScatterPattern, AllGatherGEMMPattern
//   scaled_mm          aten._scaled_mm.default(a, b, scale_a, scale_b, None, None, torch.bfloat16)
//                                                                     ScaledMMReduceScatterPattern, AllGatherScaledMMPattern
//   cutlass_scaled_mm  auto_functionalized(_C.cutlass_scaled_mm.default, out = buf, a, b, a_scales, b_scales, bias = None)[1]
//                                                                     CutlassScaledMMReduceScatterPattern, AllGatherCutlassScaledMMPattern
//
// The FP8 patterns are registered for bf16 models only ("scaled_mm or cutlass_scaled_mm with
// per-token (row-wise) scaling only supports bfloat16 as the output dtype") and are written with
// bias = None and scale_result = None. `aten.addmm` (a linear with a bias: torch 2.13's post-grad
// graph keeps F.linear(x, W, b) as addmm(b, x, Wᵀ)) is in none of them.

import type { Arg, Node } from '../ir.ts';
import { isRef, ref } from '../ir.ts';
import type { GraphIndex } from '../match.ts';
import { tensorOf } from '../match.ts';
import { AUTO_FUNCTIONALIZED, callArg, calledOp, functionalizedArg, mutatedResultIndex } from '../call.ts';
import type { GraphEdit } from './graphEdit.ts';
import { TORCH_DTYPE_NAMES } from '../ir.ts';
import { TOKEN_DIM } from './sequenceParallelGate.ts';
import {
  ADDMM,
  CUTLASS_SCALED_MM,
  FUSED_ALL_GATHER_MATMUL,
  FUSED_ALL_GATHER_SCALED_MATMUL,
  FUSED_MATMUL_REDUCE_SCATTER,
  FUSED_SCALED_MATMUL_REDUCE_SCATTER,
  MM,
  SCALED_MM,
} from './patternOps.ts';

export type GemmKind = 'mm' | 'scaled_mm' | 'cutlass_scaled_mm';

/** A GEMM as the async-TP patterns read it: its operands and the node whose value is the product. */
export interface Gemm {
  kind: GemmKind;
  /** The value the pattern hands on: the mm, the _scaled_mm, or getitem [1] of the cutlass call. */
  product: Node;
  /** The call itself (the auto_functionalized node for cutlass_scaled_mm). */
  call: Node;
  a: Arg | undefined;
  b: Arg | undefined;
  scaleA?: Arg | undefined;
  scaleB?: Arg | undefined;
  /** cutlass_scaled_mm's output buffer, dropped with the call when nothing else reads it. */
  buffer?: string;
  /** Why vLLM's pattern for this GEMM does not apply (a bias, an output dtype other than bf16), or null. */
  refusal: string | null;
}

const BF16 = TORCH_DTYPE_NAMES.bf16;
const exprText = (a: Arg | undefined) =>
  a && typeof a === 'object' && !Array.isArray(a) && a.kind === 'expr' ? a.text : undefined;
const shown = (a: Arg | undefined) => exprText(a) ?? JSON.stringify(a ?? null);
const isNone = (a: Arg | undefined) => a === undefined || a === null;

function fp8Refusal(
  n: Node,
  bias: Arg | undefined,
  outDtype: string | undefined,
  extra?: string,
): string | null {
  const what = `${n.name} (${calledOp(n)})`;
  if (!isNone(bias)) return `${what} has a bias: vLLM's FP8 async-TP patterns are written with bias = None`;
  if (extra) return `${what} ${extra}`;
  if (outDtype !== BF16)
    return `${what} writes ${outDtype ?? 'an unknown dtype'}: vLLM registers its FP8 async-TP patterns for bf16 models only (row-wise scaled matmuls return bf16 only)`;
  return null;
}

/** The GEMM whose product is `n`, in one of the forms vLLM's async-TP patterns match; null otherwise. */
export function gemmAt(ix: GraphIndex, n: Node): Gemm | null {
  if (n.op === MM) return { kind: 'mm', product: n, call: n, a: n.args[0], b: n.args[1], refusal: null };
  if (n.op === SCALED_MM) {
    const arg = (i: number, name: string) => callArg(n, i, name);
    const scaleResult = arg(5, 'scale_result');
    return {
      kind: 'scaled_mm',
      product: n,
      call: n,
      a: arg(0, 'self'),
      b: arg(1, 'mat2'),
      scaleA: arg(2, 'scale_a'),
      scaleB: arg(3, 'scale_b'),
      refusal: fp8Refusal(
        n,
        arg(4, 'bias'),
        exprText(arg(6, 'out_dtype')),
        isNone(scaleResult)
          ? undefined
          : `has scale_result ${shown(scaleResult)}: the pattern is written with None`,
      ),
    };
  }
  // cutlass_scaled_mm writes into `out`; the pattern reads the functionalized result [1].
  if (n.op !== 'getitem' || !isRef(n.args[0]!)) return null;
  const call = ix.byName.get(n.args[0].name);
  if (!call || calledOp(call) !== CUTLASS_SCALED_MM) return null;
  // One mutated argument (`Tensor! out`): v1 returns it at [1] whether or not the op is registered.
  const outIndex = mutatedResultIndex(call, 'out') ?? (call.op === AUTO_FUNCTIONALIZED ? 1 : undefined);
  if (n.args[1] !== outIndex) return null;
  const out = functionalizedArg(call, 'out');
  const buffer = out && isRef(out) ? out.name : undefined;
  return {
    kind: 'cutlass_scaled_mm',
    product: n,
    call,
    a: functionalizedArg(call, 'a'),
    b: functionalizedArg(call, 'b'),
    scaleA: functionalizedArg(call, 'a_scales'),
    scaleB: functionalizedArg(call, 'b_scales'),
    ...(buffer ? { buffer } : {}),
    refusal: fp8Refusal(call, functionalizedArg(call, 'bias'), tensorDtype(ix, out)),
  };
}

function tensorDtype(ix: GraphIndex, a: Arg | undefined): string | undefined {
  const t = tensorOf(ix, a);
  return t ? TORCH_DTYPE_NAMES[t.dtype] : undefined;
}

/** The nodes the rewrite replaces: the product, its call, and cutlass's output buffer. */
export function gemmNodes(g: Gemm): string[] {
  const names = g.call === g.product ? [g.product.name] : [g.buffer, g.call.name, g.product.name];
  return names.filter((n): n is string => n !== undefined);
}

/** Why a node that reads as a GEMM is not one vLLM's patterns match (addmm), or null. */
export function unmatchedGemm(n: Node): string | null {
  if (n.op !== ADDMM) return null;
  return `${n.name} (${n.op}) is a matmul with a bias: vLLM's async-TP patterns match aten.mm, _scaled_mm and cutlass_scaled_mm without bias, and torch's post-grad graph keeps a biased linear as addmm`;
}

/** `reduce_scatter(gemm)` as vLLM's replacement writes it. */
export function fusedGemmReduceScatter(
  edit: GemmEdit,
  g: Gemm,
  group: Arg,
  from: string[],
  outType: Node['type'],
): Node {
  if (g.kind === 'mm') {
    return edit.make(
      edit.fresh('fused_matmul_reduce_scatter'),
      FUSED_MATMUL_REDUCE_SCATTER,
      [g.a!, g.b!, 'sum'],
      { scatter_dim: TOKEN_DIM, group_name: group },
      from,
      outType,
    );
  }
  // patched_fused_scaled_matmul_reduce_scatter in later vLLM: the same arguments.
  // (A, B, A_scale, B_scale, reduce_op, orig_scatter_dim, scatter_dim_after_maybe_reshape,
  //  group_name, output_shape, bias, result_scale, out_dtype, use_fast_accum)
  const full = g.product.type && g.product.type.kind === 'tensor' ? g.product.type.shape : undefined;
  const outputShape: Arg = full
    ? full.map((d) => (typeof d === 'number' ? d : { kind: 'expr', text: d }))
    : null;
  return edit.make(
    edit.fresh('fused_scaled_matmul_reduce_scatter'),
    FUSED_SCALED_MATMUL_REDUCE_SCATTER,
    [
      g.a!,
      g.b!,
      g.scaleA ?? null,
      g.scaleB ?? null,
      'sum',
      TOKEN_DIM,
      TOKEN_DIM,
      group,
      outputShape,
      null,
      null,
      { kind: 'expr', text: BF16 },
      false,
    ],
    {},
    from,
    outType,
  );
}

/** `gemm(all_gather(x))` as vLLM's replacement writes it: the fused call and its matmul output [1][0]. */
export function fusedAllGatherGemm(edit: GemmEdit, g: Gemm, x: Arg, group: Arg, from: string[]): Node[] {
  const fused =
    g.kind === 'mm'
      ? edit.make(
          edit.fresh('fused_all_gather_matmul'),
          FUSED_ALL_GATHER_MATMUL,
          [x, [g.b!]],
          { gather_dim: TOKEN_DIM, group_name: group },
          from,
          null,
        )
      : edit.make(
          edit.fresh('fused_all_gather_scaled_matmul'),
          FUSED_ALL_GATHER_SCALED_MATMUL,
          [x, [g.b!], g.scaleA ?? null, [g.scaleB ?? null]],
          {
            gather_dim: TOKEN_DIM,
            biases: [null],
            result_scales: [null],
            out_dtypes: [{ kind: 'expr', text: BF16 }],
            use_fast_accum: [false],
            group_name: group,
          },
          from,
          null,
        );
  const outs = edit.make(edit.fresh('getitem'), 'getitem', [ref(fused.name), 1], {}, from, null);
  const out = edit.make(edit.fresh('getitem'), 'getitem', [ref(outs.name), 0], {}, from, g.product.type);
  return [fused, outs, out];
}

type GemmEdit = Pick<GraphEdit, 'make' | 'fresh'>;

/** The operand a GEMM's all-gather pattern gathers (its first), if it is a node. */
export function gatheredOperand(ix: GraphIndex, g: Gemm): Node | undefined {
  return g.a && isRef(g.a) ? ix.byName.get(g.a.name) : undefined;
}
