// norm-quant, after vLLM's RMSNormQuantFusionPass (vllm/compilation/passes/fusion/rms_quant_fusion.py,
// vLLM main of spring 2026): an RMSNorm whose normed output only an FP8 quant reads becomes one
// fused op. The patterns, registered for eps 1e-5 and 1e-6 (RMSNormQuantFusionPass.__init__), each
// for rms_norm and fused_add_rms_norm (FUSED_OPS there):
//
//   static per-tensor   _C.rms_norm_static_fp8_quant(result, input, weight, scale, epsilon)            [1]
//                       _C.fused_add_rms_norm_static_fp8_quant(result, input, residual, weight, scale,
//                       epsilon)                                                         [1] result, [2] residual
//   dynamic per-token   _C.rms_norm_dynamic_per_token_quant(result, input, weight, scale, epsilon,
//                       scale_ub = None, residual = None | r)               [1] result, [2] scale, [3] residual
//   per-token group     _C.rms_norm_per_block_quant(…, residual, group_size = 128 | 64, is_scale_transposed)
//   (128 and 64)        after _C.per_token_group_fp8_quant                  [1] result, [2] scale, [3] residual
//
// The norm and the quant are found through the matcher layer (matchers/), in every spelling vLLM's
// MatcherRMSNorm / MatcherQuantFP8 produce (custom op, vLLM IR op, torch-native decomposition); the
// per-group quant is written as the custom op in vLLM's pattern, so only that spelling matches.
// A pattern returns only the quant's outputs (and the new residual), so Inductor refuses it where
// anything else reads the normed output; the extra check refuses an input and a weight of different
// dtypes (_rms_input_weight_dtype_match). vLLM has no fused norm + dynamic per-tensor or NVFP4 op
// here (on TP > 1 the all-reduce fusion absorbs an NVFP4 quant instead).
//
// In vLLM's pass order (pass_manager.py) the all-reduce + RMSNorm fusion runs first: a norm it
// took (with its quant) is gone before this pass looks.

import type { Arg, Node, TensorType, ValueType } from '../ir.ts';
import { TORCH_DTYPE_NAMES, float, isRef, numberOf, ref } from '../ir.ts';
import type { GraphIndex } from '../match.ts';
import { indexGraph, tensorOf, usersOfValue } from '../match.ts';
import { AUTO_FUNCTIONALIZED, functionalizedArg, mutatedResultIndex } from '../call.ts';
import type { Diagnostic, Match, Pass, PassResult } from './pipeline.ts';
import { diagnostic } from './options.ts';
import { GraphEdit } from './graphEdit.ts';
import type { NormOccurrence, Occurrence, QuantOccurrence, QuantOutput } from './matchers/index.ts';
import { findActivations, findNorms, findQuants } from './matchers/index.ts';
import { functionalizedCall, inGraphOrder, recognizer } from './matchers/occurrence.ts';
import type { MatchRefusal, Recognized } from './matchers/occurrence.ts';
import {
  EMPTY_LIKE,
  FUSED_ADD_RMS_NORM_STATIC_FP8_QUANT,
  PER_TOKEN_GROUP_QUANT_FP8,
  RMS_NORM_DYNAMIC_PER_TOKEN_QUANT,
  RMS_NORM_PER_BLOCK_QUANT,
  RMS_NORM_STATIC_FP8_QUANT,
} from './patternOps.ts';

export const PASS = 'norm-quant';

/** The epsilons vLLM registers its norm + quant patterns for (RMSNormQuantFusionPass.__init__). */
export const NORM_QUANT_EPSILONS = [1e-5, 1e-6];
/** The group sizes of the per-group patterns (GroupShape(1, 128), GroupShape(1, 64)). */
export const NORM_QUANT_GROUP_SIZES = [128, 64];

// --- the per-token-group quant, as vLLM's group patterns spell it --------------------------------

/**
 * `auto_functionalized(_C.per_token_group_fp8_quant, input, output_q, output_s, group_size, eps,
 * fp8_min, fp8_max, scale_ue8m0, dummy_is_scale_transposed, dummy_is_tma_aligned)`: [1] the quant,
 * [2] the scales (rms_quant_fusion.py RMSNormGroupQuantPattern.pattern).
 */
export interface GroupQuantOccurrence extends Occurrence<'fp8_group', QuantOutput> {
  readonly input: Arg;
  readonly groupSize: Arg;
  readonly transposed: boolean;
  /** output_s as passed: the replacement writes the scales into it (the pattern's `scale` input). */
  readonly scaleBuffer: Arg;
}

function groupQuant(ix: GraphIndex, n: Node): GroupQuantOccurrence | MatchRefusal | undefined {
  const input = functionalizedArg(n, 'input');
  if (input === undefined) return undefined;
  // output_s is an input of vLLM's pattern (the replacement writes it), so only output_q's scratch buffer is the quant's.
  const call = functionalizedCall<'fp8_group', QuantOutput>(
    ix,
    n,
    'fp8_group',
    [
      ['quant', 'output_q'],
      ['scale', 'output_s'],
    ],
    ['output_q'],
  );
  if ('reason' in call) return call;
  return {
    ...call.occurrence,
    input,
    groupSize: functionalizedArg(n, 'group_size') ?? null,
    transposed: functionalizedArg(n, 'dummy_is_scale_transposed') === true,
    scaleBuffer: functionalizedArg(n, 'output_s') ?? null,
  };
}

export const findGroupQuants: (ix: GraphIndex) => Recognized<GroupQuantOccurrence> = recognizer((ix) =>
  (ix.byKey.get(`${AUTO_FUNCTIONALIZED}:${PER_TOKEN_GROUP_QUANT_FP8}`) ?? []).map((n) => groupQuant(ix, n)),
);

// --- what the norm + quant and activation + quant passes share ----------------------------------

export type AnyQuant = QuantOccurrence | GroupQuantOccurrence;

/** Every quant of the graph (the matcher layer's and the per-group ones), by the value it quantizes. */
export function quantsByInput(ix: GraphIndex): { byInput: Map<string, AnyQuant[]>; all: AnyQuant[] } {
  const all: AnyQuant[] = [...findQuants(ix).occurrences, ...findGroupQuants(ix).occurrences];
  const byInput = new Map<string, AnyQuant[]>();
  for (const q of all) {
    if (!isRef(q.input)) continue;
    const l = byInput.get(q.input.name) ?? [];
    l.push(q);
    byInput.set(q.input.name, l);
  }
  return { byInput, all };
}

export const QUANT_LABEL: Record<AnyQuant['op'], string> = {
  fp8_static_tensor: 'static per-tensor FP8 quant',
  fp8_dynamic_tensor: 'dynamic per-tensor FP8 quant',
  fp8_dynamic_token: 'dynamic per-token FP8 quant',
  nvfp4: 'NVFP4 quant',
  fp8_group: 'per-token-group FP8 quant',
};

/** The first reader of `value` outside `inside` (`output`: the graph's return). */
export function otherReader(ix: GraphIndex, value: string, inside: readonly string[]): string | undefined {
  return usersOfValue(ix, value).find((u) => !inside.includes(u));
}

export const readerName = (r: string) => (r === 'output' ? "the graph's return" : r);

/** A fused site's rewrite: the one call that replaces it, and what it keeps. */
export interface FusedSite {
  pass: string;
  /** The match's site (the norm's or the activation's anchor) and every node the site consists of. */
  site: string;
  nodes: readonly string[];
  /** The nodes the new ones stand in for (provenance), the one whose source line they keep last. */
  from: string[];
  /** Nodes already made for the call (its output buffers), placed before it. */
  made: Node[];
  /** The model's buffers the fused op writes instead: they stay. */
  keep: readonly string[];
  target: string;
  kwargs: Record<string, Arg>;
  /** Each value the site produced that readers read, and the fused op's mutated argument holding it. */
  results: readonly { value: string | undefined; arg: string }[];
}

/**
 * `auto_functionalized(target, **kwargs)` where the site was (before its first node), readers of each
 * of its values reading the fused op's result instead (`[i]` of the argument, from the schema), and the
 * site's nodes removed.
 */
export function replaceSite(edit: GraphEdit, ix: GraphIndex, s: FusedSite): Match {
  const from = s.from;
  const made = [...s.made];
  const fused = edit.make(
    edit.fresh('auto_functionalized'),
    AUTO_FUNCTIONALIZED,
    [{ kind: 'op', target: s.target }],
    s.kwargs,
    from,
    null,
  );
  made.push(fused);
  for (const { value, arg } of s.results) {
    if (value === undefined) continue;
    made.push(edit.takeResult(fused.name, mutatedResultIndex(fused, arg)!, value, from));
  }
  const consumed = inGraphOrder(ix, s.nodes).filter((n) => !s.keep.includes(n));
  edit.insertBefore(inGraphOrder(ix, s.nodes)[0]!, ...made);
  edit.remove(...consumed);
  return { pass: s.pass, site: s.site, consumed, produced: made.map((n) => n.name) };
}

/** `empty_like(x, dtype = torch.float8_e4m3fn)`: the buffer vLLM's replacements quantize into. */
export function fp8Buffer(edit: GraphEdit, like: Arg, shape: ValueType | null, from: string[]): Node {
  return edit.make(
    edit.fresh('empty_like'),
    EMPTY_LIKE,
    [like],
    { dtype: { kind: 'expr', text: TORCH_DTYPE_NAMES.f8e4m3fn }, pin_memory: false },
    from,
    shape && shape.kind === 'tensor' ? { ...shape, dtype: 'f8e4m3fn' } : null,
  );
}

// --- the pass ----------------------------------------------------------------------------------

/** Why a norm followed by `q` cannot fuse, or null: vLLM's registered patterns and extra check. */
function normQuantRefusal(ix: GraphIndex, norm: NormOccurrence, q: AnyQuant): string | null {
  const normed = norm.outputs.normed!;
  const reader = otherReader(ix, normed, q.nodes);
  if (reader !== undefined)
    return `${normed}, the normed output of the ${norm.op} at ${norm.anchor}, is also read by ${readerName(reader)}: vLLM's pattern returns only the quant's output, so Inductor's matcher refuses it and the norm stays`;
  if (q.op === 'fp8_dynamic_tensor')
    return `the ${QUANT_LABEL[q.op]} at ${q.anchor} computes its scale over the whole tensor: vLLM fuses a norm with a static per-tensor, a dynamic per-token or a per-group (128, 64) scale only (FUSED_OPS, rms_quant_fusion.py)`;
  if (q.op === 'nvfp4')
    return `RMSNormQuantFusionPass has no NVFP4 pattern (FUSED_OPS, rms_quant_fusion.py, holds FP8 only); the ${QUANT_LABEL[q.op]} at ${q.anchor} stays`;
  if (q.op === 'fp8_group') {
    const size = numberOf(q.groupSize);
    if (size === undefined || !NORM_QUANT_GROUP_SIZES.includes(size))
      return `group size ${String(size ?? 'unknown')} of ${q.anchor}: vLLM registers the per-group patterns for groups of 128 and 64 only`;
  }
  if (q.op === 'fp8_dynamic_token' && !tensorOf(ix, norm.input) && q.buffers.scale === undefined)
    return `${normed} has no annotated shape: the per-token scale buffer vLLM's replacement makes is sized from it`;
  const eps = numberOf(norm.epsilon);
  if (eps === undefined || !NORM_QUANT_EPSILONS.includes(eps))
    return `eps ${String(eps ?? 'unknown')} of the ${norm.op} at ${norm.anchor}: vLLM registers its norm + quant patterns for eps 1e-5 and 1e-6 only`;
  if (norm.weight === null)
    return `the ${norm.op} at ${norm.anchor} has no weight: vLLM's fused norm + quant ops take one`;
  const x = tensorOf(ix, norm.input)?.dtype,
    w = tensorOf(ix, norm.weight)?.dtype;
  if (x !== undefined && w !== undefined && x !== w)
    return `the ${norm.op} at ${norm.anchor} reads a ${x} input and a ${w} weight: vLLM's fused kernels take one dtype for both (_rms_input_weight_dtype_match)`;
  return null;
}

/** The fused op's keyword arguments in the order vLLM's replacement passes them. */
function fusedCall(
  norm: NormOccurrence,
  q: QuantOccurrence | GroupQuantOccurrence,
  result: Node,
  scale: Arg,
): { target: string; kwargs: Record<string, Arg> } {
  const eps = float(numberOf(norm.epsilon)!);
  const residual = norm.op === 'fused_add_rms_norm' ? (norm.residual ?? null) : null;
  const head = { result: ref(result.name), input: norm.input };
  if (q.op === 'fp8_static_tensor')
    return norm.op === 'rms_norm'
      ? {
          target: RMS_NORM_STATIC_FP8_QUANT,
          kwargs: { ...head, weight: norm.weight, scale: q.scale, epsilon: eps },
        }
      : {
          target: FUSED_ADD_RMS_NORM_STATIC_FP8_QUANT,
          kwargs: { ...head, residual, weight: norm.weight, scale: q.scale, epsilon: eps },
        };
  const dynamic = { ...head, weight: norm.weight, scale, epsilon: eps, scale_ub: null, residual };
  if (q.op === 'fp8_group')
    return {
      target: RMS_NORM_PER_BLOCK_QUANT,
      kwargs: { ...dynamic, group_size: q.groupSize, is_scale_transposed: q.transposed },
    };
  return { target: RMS_NORM_DYNAMIC_PER_TOKEN_QUANT, kwargs: dynamic };
}

/**
 * `torch.empty(shape, dtype)` as a replacement traces it: `aten.empty.memory_format` over the
 * dims of `type`, a symbolic dim read from the graph input that carries it (`arg0_1: "Sym(s77)"`).
 */
export function emptyBuffer(edit: GraphEdit, ix: GraphIndex, type: TensorType, from: string[]): Node {
  const symInput = (d: string) =>
    ix.graph.inputs.find((i) => i.type?.kind === 'sym' && i.type.expr === d)?.name;
  const size: Arg[] = type.shape.map((d) => {
    if (typeof d === 'number') return d;
    const input = symInput(d);
    return input ? ref(input) : { kind: 'expr', text: d };
  });
  return edit.make(
    edit.fresh('empty'),
    'aten.empty.memory_format',
    [size],
    { dtype: { kind: 'expr', text: TORCH_DTYPE_NAMES[type.dtype] }, pin_memory: false },
    from,
    type,
  );
}

/**
 * The dynamic per-token scale buffer vLLM's replacement makes (MatcherQuantFP8.make_scale):
 * `empty([tokens, 1], dtype = torch.float32)`.
 */
function perTokenScale(edit: GraphEdit, x: TensorType, ix: GraphIndex, from: string[]): Node {
  return emptyBuffer(edit, ix, { kind: 'tensor', dtype: 'f32', shape: [...x.shape.slice(0, -1), 1] }, from);
}

function fuse(edit: GraphEdit, ix: GraphIndex, norm: NormOccurrence, q: AnyQuant): Match {
  const from = [norm.anchor, q.anchor];
  const made: Node[] = [];
  // RMSNormStaticQuantPattern's replacement makes torch.empty(input.shape, dtype = fp8); the others
  // torch.empty_like(input, dtype = fp8).
  const x = tensorOf(ix, norm.input);
  const result =
    x && q.op === 'fp8_static_tensor' && norm.op === 'rms_norm'
      ? emptyBuffer(edit, ix, { ...x, dtype: 'f8e4m3fn' }, from)
      : fp8Buffer(edit, norm.input, x ?? null, from);
  made.push(result);
  let scale: Arg = null;
  // Buffers of the model's that the fused op writes instead: they stay.
  const keep: string[] = [];
  if (q.op === 'fp8_dynamic_token') {
    const s = x ? perTokenScale(edit, x, ix, from) : undefined;
    if (s) made.push(s);
    // A shapeless graph (str(graph)): the quant's own scale buffer has the shape make_scale gives.
    scale = s ? ref(s.name) : q.buffers.scale!;
    if (!s && isRef(scale)) keep.push(scale.name);
  } else if (q.op === 'fp8_group') {
    // The group pattern's scale buffer is one of its inputs: the fused op writes it.
    scale = q.scaleBuffer;
    if (isRef(scale)) keep.push(scale.name);
  }
  const call = fusedCall(norm, q, result, scale);
  return replaceSite(edit, ix, {
    pass: PASS,
    site: norm.anchor,
    from,
    nodes: [...norm.nodes, ...q.nodes],
    made,
    keep,
    target: call.target,
    kwargs: call.kwargs,
    results: [
      { value: q.outputs.quant, arg: 'result' },
      { value: q.outputs.scale, arg: 'scale' },
      { value: norm.outputs.residual, arg: 'residual' },
    ],
  });
}

/**
 * Quants no norm feeds: what produces each one's input, so "why didn't it fire" covers them too.
 * Quants of a silu_and_mul are act-quant's to explain.
 */
export function unfedQuantDiagnostics(
  pass: string,
  ix: GraphIndex,
  quants: readonly AnyQuant[],
  fedBy: ReadonlySet<string>,
  what: string,
): Diagnostic[] {
  return quants
    .filter((q) => !fedBy.has(q.anchor))
    .map((q) => {
      const p = isRef(q.input) ? ix.byName.get(q.input.name) : undefined;
      const from = p
        ? `${p.name} (${p.op})`
        : isRef(q.input)
          ? `the graph input ${q.input.name}`
          : 'a literal';
      return diagnostic(
        pass,
        q.anchor,
        `the ${QUANT_LABEL[q.op]} at ${q.anchor} quantizes ${from}, not ${what}`,
        p?.name,
      );
    });
}

export const normQuant: Pass = (g): PassResult => {
  const ix = indexGraph(g);
  const edit = new GraphEdit(ix, PASS);
  const norms = findNorms(ix);
  const { byInput, all } = quantsByInput(ix);
  const matches: Match[] = [];
  const diagnostics: Diagnostic[] = [];
  const fedBy = new Set<string>();
  for (const norm of norms.occurrences) {
    const normed = norm.outputs.normed;
    const readers = normed ? (byInput.get(normed) ?? []) : [];
    for (const q of readers) fedBy.add(q.anchor);
    if (readers.length === 0) continue;
    // Two quants of one normed output: each is the other's second reader.
    const q = readers[0]!;
    const why = normQuantRefusal(ix, norm, q);
    if (why) {
      const blocker = otherReader(ix, normed!, q.nodes) ?? q.anchor;
      diagnostics.push(diagnostic(PASS, norm.anchor, why, blocker));
      continue;
    }
    if (!edit.claim(...norm.nodes, ...q.nodes)) continue;
    matches.push(fuse(edit, ix, norm, q));
  }
  // A would-be norm the matcher refused (an interior value read from outside) feeding a quant.
  for (const r of norms.refusals) {
    const q = all.find((x) => isRef(x.input) && r.nodes.includes(x.input.name));
    if (!q) continue;
    fedBy.add(q.anchor);
    diagnostics.push(diagnostic(PASS, r.anchor, r.reason, r.reader));
  }
  const activations = findActivations(ix).occurrences.flatMap((a) => (a.outputs.out ? [a.outputs.out] : []));
  const toExplain = all.filter((q) => !(isRef(q.input) && activations.includes(q.input.name)));
  diagnostics.push(...unfedQuantDiagnostics(PASS, ix, toExplain, fedBy, 'the normed output of an RMSNorm'));
  const at = (d: { node: string }) => ix.pos.get(d.node) ?? -1;
  diagnostics.sort((a, b) => at(a) - at(b));
  return { graph: edit.commit(), matches, diagnostics };
};
