// allreduce-rmsnorm, after vLLM's AllReduceFusionPass (vllm/compilation/collective_fusion.py at PR
// #28841's merge): FlashInfer's one-kernel all-reduce + residual add + RMSNorm (+ quant). Six
// patterns, registered in vLLM's order for each eps — the quant ones first, and since Inductor's
// matcher walks the graph from the end, a norm followed by a quant fuses with it:
//
//   rms_norm(all_reduce(x)) → static_scaled_fp8_quant      AllReduceFusedRMSNormStaticQuantFP8Pattern (code 2)
//   fused_add_rms_norm(all_reduce(x), r) → fp8 quant       AllReduceFusedAddRMSNormStaticQuantFP8Pattern (code 2)
//   rms_norm / fused_add_rms_norm → scaled_fp4_quant        …StaticQuantNVFP4Pattern (code 3; SM ≥ 100: --gpu blackwell)
//   rms_norm(all_reduce(x))                                AllReduceRMSNormPattern (code 1): residual = zeros,
//       norm_out = a new buffer; [3] normed, [1] the all-reduced x (the kernel writes ar + 0 back)
//   fused_add_rms_norm(all_reduce(x), residual)            AllReduceFusedAddRMSNormPattern (code 1): norm_out = None;
//       [1] normed (written over allreduce_in), [2] new residual; also when only [1] is used
//
// A quant pattern returns only the quant's output (and the all-reduce or the residual), so it
// matches only where the norm's output has no reader but the quant; otherwise the plain pattern
// fuses the norm and the quant stays.
//
// The norm and the quant are found by the matcher layer (passes/matchers), as vLLM writes these
// patterns against MatcherRMSNorm / MatcherFusedAddRMSNorm / MatcherQuantFP8: the custom op
// through auto_functionalized v1 or v2, the vLLM IR op (vllm_ir.rms_norm / fused_add_rms_norm,
// before VllmIRLoweringPass) and the native decomposition (custom ops off, vLLM's default under
// Inductor) fuse alike, into the same fused op.
//
// Gates (vLLM's, fusionGate.ts): the TP group, world size 2/4/8, eps 1e-5/1e-6, a 2-d input; with
// tokenGate 'compile-range', the token count within max_token_num (flashinferLimits.ts).
import type { Arg, Node, Ref, ValueType } from '../ir.ts';
import { float, isRef, ref } from '../ir.ts';
import type { GraphIndex } from '../match.ts';
import { indexGraph, tensorOf, usersOfValue } from '../match.ts';
import { AUTO_FUNCTIONALIZED } from '../call.ts';
import type { Pass } from './pipeline.ts';
import type { ResolvedOptions } from './options.ts';
import { diagnostic, resolveOptions } from './options.ts';
import type { GraphEdit } from './graphEdit.ts';
import type { Claims, Rule } from './rules.ts';
import { runRules } from './rules.ts';
import { explainAllReduce, siteStructureRefusal } from './diagnostics.ts';
import type { GatePass } from './fusionGate.ts';
import { FUSION_PATTERN_CODE, PASS, fusionGate } from './fusionGate.ts';
import type { NormOccurrence, NormOp, QuantOccurrence } from './matchers/index.ts';
import { findNorms, findQuants } from './matchers/index.ts';
import { ALL_REDUCE, C10D_ALL_REDUCE, EMPTY_LIKE, FUSED_ALLREDUCE_NORM } from './patternOps.ts';

/** The quants vLLM fuses into the all-reduce + norm, and the fused op's pattern code for each. */
type QuantKind = Extract<QuantOccurrence['op'], 'fp8_static_tensor' | 'nvfp4'>;
const QUANTS: Record<QuantKind, { code: number; label: string }> = {
  fp8_static_tensor: { code: FUSION_PATTERN_CODE.kARResidualRMSNormFP8Quant, label: 'static FP8' },
  nvfp4: { code: FUSION_PATTERN_CODE.kARResidualRMSNormFP4Quant, label: 'NVFP4' },
};

/** Indices of the fused op's results (auto_functionalized: [1..] its mutated args in schema order). */
const FUSED_RESULT = { allreduceIn: 1, residual: 2, normOut: 3, quantOut: 4, scaleOut: 5 } as const;

const OP_FUSED = { kind: 'op', target: FUSED_ALLREDUCE_NORM } as const;

/** One site: the all-reduce, the norm reading it (any form), and the quant absorbed with it. */
interface Site extends Claims {
  ar: Node;
  norm: NormOccurrence;
  quant?: QuantOccurrence & { op: QuantKind };
}

function fusedKwargs(
  f: {
    x: Arg;
    residual: Arg;
    normOut: Arg;
    quantOut: Arg;
    scaleOut: Arg;
    w: Arg;
    eps: Arg;
    code: number;
    scale?: Arg;
  },
  opts: ResolvedOptions,
  maxTokenNum: number,
): Record<string, Arg> {
  // The order vLLM's replacements pass them in, so a printed graph reads like vLLM's.
  const k: Record<string, Arg> = {
    allreduce_in: f.x,
    residual: f.residual,
    norm_out: f.normOut,
    quant_out: f.quantOut,
    scale_out: f.scaleOut,
    rms_gamma: f.w,
    rms_eps: typeof f.eps === 'number' ? float(f.eps) : f.eps,
    pattern_code: f.code,
  };
  if (f.scale !== undefined) k['scale_factor'] = f.scale;
  return {
    ...k,
    world_rank: 0,
    world_size: opts.worldSize,
    launch_with_pdl: true,
    trigger_completion_at_end: true,
    fp32_acc: true,
    max_token_num: maxTokenNum,
  };
}

function claims(ix: GraphIndex, ...names: string[]): Record<string, Node> {
  const nodes: Record<string, Node> = {};
  for (const n of names) nodes[n] = ix.byName.get(n)!;
  return nodes;
}

/** Each norm occurrence of `op` whose input an all-reduce produces. */
function normSites(ix: GraphIndex, op: NormOp): Site[] {
  const sites: Site[] = [];
  for (const norm of findNorms(ix).occurrences) {
    const ar = norm.op === op && isRef(norm.input) ? ix.byName.get(norm.input.name) : undefined;
    if (ar?.op === ALL_REDUCE) sites.push({ ar, norm, nodes: claims(ix, ar.name, ...norm.nodes) });
  }
  return sites;
}

/**
 * quant(norm(all_reduce(x))): vLLM's quant patterns return the quant's output and the residual
 * only, so the normed output may have no reader but the quant.
 */
function quantSites(ix: GraphIndex, op: NormOp, q: QuantKind): Site[] {
  const byInput = new Map<string, QuantOccurrence & { op: QuantKind }>();
  for (const o of findQuants(ix).occurrences) {
    if (o.op === q && isRef(o.input)) byInput.set(o.input.name, o as QuantOccurrence & { op: QuantKind });
  }
  const sites: Site[] = [];
  for (const s of normSites(ix, op)) {
    const normed = s.norm.outputs.normed;
    const quant = normed === undefined ? undefined : byInput.get(normed);
    if (!quant || !usersOfValue(ix, normed!).every((u) => quant.nodes.includes(u))) continue;
    sites.push({ ...s, quant, nodes: { ...s.nodes, ...claims(ix, ...quant.nodes) } });
  }
  return sites;
}

function gateOf(s: Site, ix: GraphIndex, opts: ResolvedOptions) {
  return fusionGate(s.ar, ix, s.norm.epsilon, opts);
}

function siteRefusal(s: Site, ix: GraphIndex, opts: ResolvedOptions) {
  const structure = siteStructureRefusal(s.ar, s.norm, ix);
  if (structure) return diagnostic(PASS, s.ar.name, structure.reason, structure.blocker);
  const gate = gateOf(s, ix, opts);
  return 'blocker' in gate ? diagnostic(PASS, s.ar.name, gate.reason, gate.blocker, gate.fix) : null;
}

/**
 * The first layer's rms_norm site has no residual: the fused op gets zeros as its residual and a
 * fresh buffer for the normed output (vLLM's AllReduceRMSNormPattern), made here and added to `made`.
 */
function firstLayerBuffers(edit: GraphEdit, x: Arg, from: string[], made: Node[]) {
  const buffer = (op: string, base: string) =>
    edit.make(edit.fresh(base), op, [x], { pin_memory: false }, from);
  const zeros = buffer('aten.zeros_like.default', 'zeros_like');
  const out = buffer(EMPTY_LIKE, 'empty_like');
  made.push(zeros, out);
  return { residual: ref(zeros.name), normOut: ref(out.name) };
}

/** vLLM's FP8 replacement makes its own quant buffer, empty_like(input, dtype = fp8). */
function fp8Buffer(edit: GraphEdit, ix: GraphIndex, x: Arg, from: string[]): Node {
  const xt = tensorOf(ix, x);
  const type: ValueType | null = xt ? { ...xt, dtype: 'f8e4m3fn' } : null;
  return edit.make(
    edit.fresh('empty_like'),
    EMPTY_LIKE,
    [x],
    { dtype: { kind: 'expr', text: 'torch.float8_e4m3fn' }, pin_memory: false },
    from,
    type,
  );
}

/**
 * The rewrite of a site: the all-reduce, the norm and the quant after it become one fused op, and
 * the values their readers read are the fused op's results — the normed output [3] after rms_norm,
 * [1] (written over allreduce_in) after fused_add_rms_norm, the new residual [2], the quant [4] and
 * NVFP4's scales [5]. vLLM's patterns differ only in the pattern code, the first layer's buffers
 * (rms_norm has no residual) and the quant's outputs; the norm's form does not matter.
 */
const fuseSite: Rule<Site>['rewrite'] = (s, edit, { ix, opts }) => {
  const { ar, norm, quant } = s;
  const gate = gateOf(s, ix, opts) as GatePass;
  const first = norm.op === 'rms_norm';
  const from = [ar.name, norm.anchor, ...(quant ? [quant.anchor] : [])];
  const x = ar.args[0]!; // the fused kernel reduces x itself
  const made: Node[] = [];
  const buffers = first ? firstLayerBuffers(edit, x, from, made) : undefined;
  let quantOut: Arg = null,
    scaleOut: Arg = null;
  if (quant?.op === 'fp8_static_tensor') {
    const buf = fp8Buffer(edit, ix, x, from);
    made.push(buf);
    quantOut = ref(buf.name);
  } else if (quant?.op === 'nvfp4') {
    // vLLM's NVFP4 pattern takes the model's quant and scale buffers as inputs: they stay.
    quantOut = quant.buffers.quant ?? null;
    scaleOut = quant.buffers.scale ?? null;
  }
  const kept = new Set([quantOut, scaleOut].filter((a): a is Ref => isRef(a)).map((r) => r.name));
  const fused = edit.make(
    edit.fresh('auto_functionalized'),
    AUTO_FUNCTIONALIZED,
    [OP_FUSED],
    fusedKwargs(
      {
        x,
        residual: buffers?.residual ?? norm.residual ?? null,
        normOut: buffers?.normOut ?? null,
        quantOut,
        scaleOut,
        w: norm.weight,
        eps: norm.epsilon,
        code: quant ? QUANTS[quant.op].code : FUSION_PATTERN_CODE.kARResidualRMSNorm,
        ...(quant ? { scale: quant.scale } : {}),
      },
      opts,
      gate.maxTokenNum,
    ),
    from,
    null,
  );
  made.push(fused);
  // Each value a reader reads becomes the fused op's result under the same name.
  const readAs = (value: string | undefined, index: number) => {
    const n = value === undefined ? undefined : ix.byName.get(value);
    if (n) made.push(edit.make(n.name, 'getitem', [ref(fused.name), index], {}, [n.name], n.type));
  };
  if (!quant) readAs(norm.outputs.normed, first ? FUSED_RESULT.normOut : FUSED_RESULT.allreduceIn);
  readAs(norm.outputs.residual, FUSED_RESULT.residual);
  readAs(quant?.outputs.quant, FUSED_RESULT.quantOut);
  readAs(quant?.outputs.scale, FUSED_RESULT.scaleOut);
  const consumed = Object.keys(s.nodes).filter((n) => !kept.has(n));
  // The first layer's other readers of the all-reduce (the residual stream) read [1]: the kernel
  // writes ar + 0 back into allreduce_in.
  const others = first ? usersOfValue(ix, ar.name).filter((u) => !(u in s.nodes)) : [];
  if (others.length > 0) {
    const reduced = edit.make(
      edit.fresh('getitem'),
      'getitem',
      [ref(fused.name), FUSED_RESULT.allreduceIn],
      {},
      [ar.name],
      ar.type,
    );
    made.push(reduced);
    edit.replaceUses(ar.name, ref(reduced.name));
  }
  edit.insertBefore(quant?.anchor ?? norm.anchor, ...made);
  edit.remove(...consumed);
  const ordered = consumed.sort((a, b) => ix.pos.get(a)! - ix.pos.get(b)!);
  return { consumed: ordered, produced: made.map((n) => n.name), unevaluated: gate.unevaluated };
};

function plainRule(op: NormOp): Rule<Site> {
  return {
    name: `all_reduce → ${op}`,
    pattern: (ix) => normSites(ix, op),
    site: (s) => s.ar.name,
    check: (s, { ix, opts }) => siteRefusal(s, ix, opts),
    rewrite: fuseSite,
  };
}

function quantRule(op: NormOp, q: QuantKind): Rule<Site> {
  return {
    name: `all_reduce → ${op} → ${QUANTS[q].label} quant`,
    pattern: (ix) => quantSites(ix, op, q),
    site: (s) => s.ar.name,
    check: (s, { ix, opts }) => {
      if (q === 'nvfp4' && opts.gpu !== 'blackwell') {
        // vLLM registers the NVFP4 patterns only on SM ≥ 100; the plain pattern then fuses the norm.
        return diagnostic(
          PASS,
          s.ar.name,
          'NVFP4 quant patterns are registered on Blackwell (SM ≥ 100) only',
          'gpu',
          '--gpu blackwell',
        );
      }
      return siteRefusal(s, ix, opts);
    },
    rewrite: fuseSite,
  };
}

export const RULES: Rule<Site>[] = [
  quantRule('rms_norm', 'fp8_static_tensor'),
  quantRule('fused_add_rms_norm', 'fp8_static_tensor'),
  quantRule('rms_norm', 'nvfp4'),
  quantRule('fused_add_rms_norm', 'nvfp4'),
  plainRule('rms_norm'),
  plainRule('fused_add_rms_norm'),
];

export const allReduceRmsNorm: Pass = (g, opts, only) => {
  const resolved = resolveOptions(g, opts);
  return runRules(PASS, RULES, g, resolved, only, (out) => {
    // Every all-reduce left unfused, and why — also those the patterns never reached.
    const left = out.nodes.filter((n) => n.op === ALL_REDUCE || n.op === C10D_ALL_REDUCE);
    if (left.length === 0) return [];
    const ix = indexGraph(out);
    return left.map((ar) => explainAllReduce(ar, ix, resolved));
  });
};
