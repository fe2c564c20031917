// act-padding, after vLLM's RocmAiterTritonAddRMSNormPadFusionPass (vllm/compilation/passes/fusion/
// rocm_aiter_fusion.py, vLLM main of spring 2026; the flag is PassConfig.fuse_act_padding in
// vllm/config/compilation.py): GPT-OSS pads its hidden size 2880 for the MoE GEMMs (the padding of
// vLLM PR #28841, fused another way). AddAiterRMSNormPadPattern:
//
//   result_rms, residual_out = fused_add_rms_norm(input, residual, weight, eps)
//   router_logits = rocm_unquantized_gemm(result_rms, router_weight, router_bias)
//   result = pad(result_rms, (0, pad_size), value = 0.0)
// → result_padded, residual_out = rocm_aiter_triton_add_rmsnorm_pad(input, weight, eps, residual,
//   x_pad_to_multiple); router_logits = gemm(result_padded[:, :hidden_size], …)
//
// registered for hidden_size 2880 only, eps 1e-5 and 1e-6, x_pad_to_multiple 128 (gfx942: 2880 →
// 2944) and 256 (gfx950: → 3072), with bf16 inputs (get_inputs). The norm is found through the
// matcher layer (custom, vLLM IR and native forms); the router GEMM is the graph's linear (mm /
// addmm of the transposed weight) or ROCm's rocm_unquantized_gemm. pass_manager.py adds the pass
// only where fuse_act_padding is set and rocm_aiter_ops.is_enabled() (ROCm with AITER): on any
// other platform every candidate site — a fused add + RMSNorm whose output is padded — is listed
// with that gate as its reason. In vLLM's order the all-reduce + RMSNorm fusion runs first (at
// TP > 1 it takes the norm after o_proj's all-reduce, and this pass finds none there).

import type { Arg, Node } from '../ir.ts';
import { float, isRef, numberOf, ref } from '../ir.ts';
import type { GraphIndex } from '../match.ts';
import { indexGraph, tensorOf, usersOfValue } from '../match.ts';
import type { Diagnostic, Match, Pass, PassOptions, PassResult } from './pipeline.ts';
import { diagnostic } from './options.ts';
import { GraphEdit } from './graphEdit.ts';
import type { NormOccurrence } from './matchers/index.ts';
import { findNorms } from './matchers/index.ts';
import { inGraphOrder } from './matchers/occurrence.ts';
import { readerName } from './normQuant.ts';
import { CONSTANT_PAD, SLICE } from './patternOps.ts';

export const PASS = 'act-padding';

export const ADD_RMSNORM_PAD = 'vllm.rocm_aiter_triton_add_rmsnorm_pad.default';
/** GPT-OSS's hidden size: the one size the pass registers its patterns for. */
export const ACT_PADDING_HIDDEN = 2880;
export const ACT_PADDING_EPSILONS = [1e-5, 1e-6];
/** x_pad_to_multiple: 128 on gfx942, 256 on gfx950. */
export const ACT_PADDING_MULTIPLES = [128, 256];
/** The router GEMM's spellings: the graph's linear, or ROCm's unquantized GEMM op. */
const ROUTER_GEMMS = ['aten.mm.default', 'aten.addmm.default', 'vllm.rocm_unquantized_gemm.default'];

/** The pattern's pad_size for each multiple: multiple − hidden % multiple. */
export const padSize = (hidden: number, multiple: number) => multiple - (hidden % multiple);

interface PadSite {
  norm: NormOccurrence;
  normed: string;
  pad: Node;
}

/** The platform gate: pass_manager.py adds the pass only with fuse_act_padding on ROCm with AITER. */
function platformGate(opts: PassOptions): { blocker: string; why: string } | null {
  const platform = opts.platform ?? 'sm90';
  if (platform !== 'rocm')
    return {
      blocker: 'platform',
      why: `${platform}: RocmAiterTritonAddRMSNormPadFusionPass is ROCm-only (pass_manager.py adds it only with fuse_act_padding and rocm_aiter_ops.is_enabled())`,
    };
  if (opts.aiter !== true)
    return {
      blocker: 'aiter',
      why: 'ROCm without AITER: pass_manager.py adds the pass only when rocm_aiter_ops.is_enabled() (VLLM_ROCM_USE_AITER=1)',
    };
  return null;
}

/** The multiple a pad of `pad` node pads `hidden` to, or why it is not one of the pattern's pads. */
function padMultiple(pad: Node, hidden: number): number | string {
  const spec = pad.args[1];
  const value = numberOf(pad.args[2] ?? 0) ?? 0;
  if (!Array.isArray(spec) || spec.length !== 2 || numberOf(spec[0]) !== 0 || value !== 0)
    return `${pad.name} is not F.pad(x, (0, n), value = 0.0) on the last dim, the pattern's pad`;
  const hi = numberOf(spec[1]);
  const m = ACT_PADDING_MULTIPLES.find((k) => padSize(hidden, k) === hi);
  return (
    m ??
    `${pad.name} pads ${hidden} by ${String(hi)}: the pattern pads to a multiple of ${ACT_PADDING_MULTIPLES.join(' or ')} (by ${ACT_PADDING_MULTIPLES.map((k) => padSize(hidden, k)).join(' or ')})`
  );
}

/** Why `s` cannot fuse (and the node or gate that stops it), or the pad multiple it fuses with. */
function actPaddingVerdict(
  ix: GraphIndex,
  s: PadSite,
  opts: PassOptions,
): { blocker: string; why: string } | { multiple: number; router: Node } {
  const gate = platformGate(opts);
  if (gate) return gate;
  const { norm, normed, pad } = s;
  if (norm.op !== 'fused_add_rms_norm')
    return {
      blocker: norm.anchor,
      why: `the rms_norm at ${norm.anchor} adds no residual: vLLM's pattern is written for fused_add_rms_norm`,
    };
  const x = tensorOf(ix, norm.input);
  const hidden = x?.shape[x.shape.length - 1];
  if (hidden !== ACT_PADDING_HIDDEN)
    return {
      blocker: norm.anchor,
      why: `hidden size ${String(hidden ?? 'unknown')} at ${norm.anchor}: vLLM registers the pattern for GPT-OSS's ${ACT_PADDING_HIDDEN} only`,
    };
  const eps = numberOf(norm.epsilon);
  if (eps === undefined || !ACT_PADDING_EPSILONS.includes(eps))
    return {
      blocker: norm.anchor,
      why: `eps ${String(eps ?? 'unknown')} of ${norm.anchor}: vLLM registers the pattern for eps 1e-5 and 1e-6 only`,
    };
  const multiple = padMultiple(pad, hidden);
  if (typeof multiple === 'string') return { blocker: pad.name, why: multiple };
  const others = usersOfValue(ix, normed).filter((u) => u !== pad.name);
  const router = others.length === 1 ? ix.byName.get(others[0]!) : undefined;
  const gemm = router && ROUTER_GEMMS.includes(router.op) ? router : undefined;
  if (!gemm) {
    const reader = others.find((u) => !ROUTER_GEMMS.includes(ix.byName.get(u)?.op ?? '')) ?? others[1];
    return reader === undefined
      ? {
          blocker: pad.name,
          why: `only ${pad.name} reads ${normed}: vLLM's pattern also holds the router GEMM that reads the unpadded norm (rocm_unquantized_gemm(result_rms, …))`,
        }
      : {
          blocker: reader,
          why: `${normed}, the normed output of ${norm.anchor}, is also read by ${readerName(reader)}: vLLM's pattern returns only the pad, the residual and the router logits`,
        };
  }
  const dtype = x?.dtype;
  if (dtype !== 'bf16')
    return {
      blocker: norm.anchor,
      why: `the norm at ${norm.anchor} is ${String(dtype)}: the pattern is traced with bf16 inputs (get_inputs)`,
    };
  return { multiple, router: gemm };
}

function fuse(edit: GraphEdit, ix: GraphIndex, s: PadSite, multiple: number): Match {
  const { norm, normed, pad } = s;
  const from = [norm.anchor, pad.name];
  const fused = edit.make(
    edit.fresh('rocm_aiter_triton_add_rmsnorm_pad'),
    ADD_RMSNORM_PAD,
    [norm.input, norm.weight, float(numberOf(norm.epsilon)!), norm.residual ?? null, multiple],
    {},
    from,
    null,
  );
  const padded = edit.make(edit.fresh('getitem'), 'getitem', [ref(fused.name), 0], {}, from, pad.type);
  const made = [fused, padded];
  edit.replaceUses(pad.name, ref(padded.name));
  if (norm.outputs.residual) made.push(edit.takeResult(fused.name, 1, norm.outputs.residual, from));
  // The router reads result_padded[:, :hidden_size].
  const unpadded = edit.make(
    edit.fresh('slice'),
    SLICE,
    [ref(padded.name), 1, 0, ACT_PADDING_HIDDEN],
    {},
    from,
    edit.typeOf(ref(normed)),
  );
  made.push(unpadded);
  edit.replaceUses(normed, ref(unpadded.name));
  const nodes = [...norm.nodes, pad.name];
  const consumed = inGraphOrder(ix, nodes);
  edit.insertBefore(consumed[0]!, ...made);
  edit.remove(...consumed);
  return { pass: PASS, site: norm.anchor, consumed, produced: made.map((n) => n.name) };
}

/** Every norm whose normed output a constant_pad_nd reads: the pass's candidate sites. */
function padSites(ix: GraphIndex): PadSite[] {
  const sites: PadSite[] = [];
  for (const norm of findNorms(ix).occurrences) {
    const normed = norm.outputs.normed;
    if (normed === undefined) continue;
    const pad = usersOfValue(ix, normed)
      .map((u) => ix.byName.get(u))
      .find((u): u is Node => u?.op === CONSTANT_PAD && isRef(u.args[0] as Arg) && u.args[0] !== undefined);
    if (pad) sites.push({ norm, normed, pad });
  }
  return sites;
}

export const actPadding: Pass = (g, opts): PassResult => {
  const ix = indexGraph(g);
  const edit = new GraphEdit(ix, PASS);
  const matches: Match[] = [];
  const diagnostics: Diagnostic[] = [];
  for (const s of padSites(ix)) {
    const v = actPaddingVerdict(ix, s, opts);
    if ('why' in v) {
      diagnostics.push(diagnostic(PASS, s.norm.anchor, v.why, v.blocker));
      continue;
    }
    if (!edit.claim(...s.norm.nodes, s.pad.name)) continue;
    matches.push(fuse(edit, ix, s, v.multiple));
  }
  return { graph: edit.commit(), matches, diagnostics };
};
