// act-quant, after vLLM's ActivationQuantFusionPass (vllm/compilation/passes/fusion/act_quant_fusion.py,
// vLLM main of spring 2026): SwiGLU's silu_and_mul whose output only a quant reads becomes one op.
//
//   static FP8   SiluMulFp8StaticQuantPattern → _C.silu_and_mul_quant(result, input, scale)     [1] result
//                (result = empty(input.shape[:-1] + (d,), dtype = fp8), made by the replacement)
//   NVFP4        SiluMulNvfp4QuantPattern → _C.silu_and_mul_nvfp4_quant(result, result_block_scale,
//                input, input_global_scale)                                     [1] result, [2] block scales
//                (registered only where the op exists: CUDA builds for Blackwell, SM ≥ 100)
//   per-group    SiluMulBlockQuantPattern (silu_and_mul → per_token_group_fp8_quant, groups of 128 /
//   FP8          64, scales transposed or not) → _C.silu_and_mul_per_block_quant(out, input, scales,
//                group_size, scale_ub = None, is_scale_transposed)                [1] out, [2] scales
//                (out = empty(input.shape[:-1] + (d,), dtype = fp8), made by the replacement)
//
// silu_and_mul and the quant are found through the matcher layer in every form (custom op, torch
// native); the NVFP4 quant is written as the custom op in vLLM's pattern, so only that spelling
// matches, and its output buffers are the pattern's inputs, kept; so is the per-group quant's scale
// buffer, which the fused op writes.

import type { Arg, Node } from '../ir.ts';
import { isRef, ref } from '../ir.ts';
import type { GraphIndex } from '../match.ts';
import { indexGraph, tensorOf } from '../match.ts';
import type { Diagnostic, Match, Pass, PassResult } from './pipeline.ts';
import { diagnostic, resolveOptions } from './options.ts';
import type { ResolvedOptions } from './options.ts';
import { GraphEdit } from './graphEdit.ts';
import type { ActivationOccurrence } from './matchers/index.ts';
import { findActivations } from './matchers/index.ts';
import type { AnyQuant } from './normQuant.ts';
import {
  QUANT_LABEL,
  emptyBuffer,
  otherReader,
  quantsByInput,
  readerName,
  replaceSite,
} from './normQuant.ts';
import { numberOf } from '../ir.ts';
import { NORM_QUANT_GROUP_SIZES } from './normQuant.ts';
import { SILU_AND_MUL_NVFP4_QUANT, SILU_AND_MUL_PER_BLOCK_QUANT, SILU_AND_MUL_QUANT } from './patternOps.ts';

export const PASS = 'act-quant';

/** silu_and_mul_quant's TORCH_CHECK: a half or bfloat16 input (csrc/quantization/activation_kernels.cu). */
const ACT_QUANT_DTYPES = ['bf16', 'f16'];

function actQuantRefusal(
  ix: GraphIndex,
  act: ActivationOccurrence,
  q: AnyQuant,
  opts: ResolvedOptions,
): { why: string; blocker: string; fix?: string } | null {
  const out = act.outputs.out!;
  const reader = otherReader(ix, out, q.nodes);
  if (reader !== undefined)
    return {
      why: `${out}, the output of the silu_and_mul at ${act.anchor}, is also read by ${readerName(reader)}: vLLM's pattern returns only the quant's output, so Inductor's matcher refuses it`,
      blocker: reader,
    };
  if (q.op === 'nvfp4') {
    if (q.form !== 'custom')
      return {
        why: `vLLM's NVFP4 pattern is written against the custom scaled_fp4_quant`,
        blocker: q.anchor,
      };
    if (opts.gpu !== 'blackwell')
      return {
        why: 'silu_and_mul_nvfp4_quant exists only in CUDA builds for Blackwell (SM ≥ 100): vLLM registers SiluMulNvfp4QuantPattern only where it does',
        blocker: 'gpu',
        fix: '--gpu blackwell',
      };
  } else if (q.op === 'fp8_group') {
    const size = numberOf(q.groupSize);
    if (size === undefined || !NORM_QUANT_GROUP_SIZES.includes(size))
      return {
        why: `group size ${String(size ?? 'unknown')} of ${q.anchor}: vLLM registers SiluMulBlockQuantPattern for groups of 128 and 64 only (kFp8Dynamic128Sym, kFp8Dynamic64Sym)`,
        blocker: q.anchor,
      };
  } else if (q.op !== 'fp8_static_tensor')
    return {
      why: `the ${QUANT_LABEL[q.op]} at ${q.anchor}: vLLM fuses silu_and_mul with a static FP8, a per-group FP8 (128, 64) or an NVFP4 quant (act_quant_fusion.py)`,
      blocker: q.anchor,
    };
  if (
    !tensorOf(ix, q.input) &&
    (q.op === 'fp8_group' || (q.op === 'fp8_static_tensor' && q.buffers.quant === undefined))
  )
    return {
      why: `${out} has no annotated shape: the fused op's output buffer is sized from it`,
      blocker: out,
    };
  const dtype = tensorOf(ix, act.input)?.dtype;
  if (dtype !== undefined && !ACT_QUANT_DTYPES.includes(dtype))
    return {
      why: `the silu_and_mul at ${act.anchor} reads ${dtype}: vLLM's fused kernel takes bf16 or f16 only`,
      blocker: act.anchor,
    };
  return null;
}

function fuse(edit: GraphEdit, ix: GraphIndex, act: ActivationOccurrence, q: AnyQuant): Match {
  const from = [act.anchor, q.anchor];
  const made: Node[] = [];
  let target: string, kwargs: Record<string, Arg>;
  let keep: string[] = [];
  if (q.op === 'nvfp4') {
    // The pattern's result and output_scale are its inputs: the fused op writes the same buffers.
    const result = q.buffers.quant ?? null,
      blockScale = q.buffers.scale ?? null;
    keep = [result, blockScale].flatMap((b) => (b && isRef(b) ? [b.name] : []));
    target = SILU_AND_MUL_NVFP4_QUANT;
    kwargs = { result, result_block_scale: blockScale, input: act.input, input_global_scale: q.scale };
  } else {
    // vLLM's replacement makes torch.empty(input.shape[:-1] + (d,), dtype = fp8): the shape of the
    // silu_and_mul output the fused op replaces.
    const out = tensorOf(ix, q.input);
    const made0 = out ? emptyBuffer(edit, ix, { ...out, dtype: 'f8e4m3fn' }, from) : undefined;
    if (made0) made.push(made0);
    // A shapeless graph (str(graph)): the static quant's own result buffer has that shape; it stays
    // (a per-group site without a shape is refused).
    const result = made0 ? ref(made0.name) : q.op === 'fp8_group' ? null : q.buffers.quant!;
    if (!made0 && isRef(result)) keep = [result.name];
    if (q.op === 'fp8_group') {
      // The pattern's scale buffer is one of its inputs: the fused op writes it.
      if (isRef(q.scaleBuffer)) keep.push(q.scaleBuffer.name);
      target = SILU_AND_MUL_PER_BLOCK_QUANT;
      kwargs = {
        out: result,
        input: act.input,
        scales: q.scaleBuffer,
        group_size: q.groupSize,
        scale_ub: null,
        is_scale_transposed: q.transposed,
      };
    } else {
      target = SILU_AND_MUL_QUANT;
      kwargs = { result, input: act.input, scale: q.scale };
    }
  }
  return replaceSite(edit, ix, {
    pass: PASS,
    site: act.anchor,
    from,
    nodes: [...act.nodes, ...q.nodes],
    made,
    keep,
    target,
    kwargs,
    results:
      q.op === 'fp8_group'
        ? [
            { value: q.outputs.quant, arg: 'out' },
            { value: q.outputs.scale, arg: 'scales' },
          ]
        : [
            { value: q.outputs.quant, arg: 'result' },
            ...(q.op === 'nvfp4' ? [{ value: q.outputs.scale, arg: 'result_block_scale' }] : []),
          ],
  });
}

export const actQuant: Pass = (g, opts): PassResult => {
  const resolved = resolveOptions(g, opts);
  const ix = indexGraph(g);
  const edit = new GraphEdit(ix, PASS);
  const { byInput } = quantsByInput(ix);
  const matches: Match[] = [];
  const diagnostics: Diagnostic[] = [];
  const activations = findActivations(ix);
  for (const act of activations.occurrences) {
    const out = act.outputs.out;
    const q = out ? byInput.get(out)?.[0] : undefined;
    if (!q) continue;
    const refused = actQuantRefusal(ix, act, q, resolved);
    if (refused) {
      diagnostics.push(diagnostic(PASS, act.anchor, refused.why, refused.blocker, refused.fix));
      continue;
    }
    if (!edit.claim(...act.nodes, ...q.nodes)) continue;
    matches.push(fuse(edit, ix, act, q));
  }
  // A would-be silu_and_mul the matcher refused (an interior value read from outside) feeding a quant.
  for (const r of activations.refusals) {
    const read = r.nodes.find((n) => byInput.has(n));
    if (read !== undefined) diagnostics.push(diagnostic(PASS, r.anchor, r.reason, r.reader));
  }
  const at = (d: { node: string }) => ix.pos.get(d.node) ?? -1;
  diagnostics.sort((a, b) => at(a) - at(b));
  return { graph: edit.commit(), matches, diagnostics };
};
