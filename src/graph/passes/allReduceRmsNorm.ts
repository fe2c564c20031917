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
// fuses the norm and the quant stays. Results are read through `mutatedResultIndex`, so the
// patterns match through auto_functionalized_v2 as through v1.
//
// Gates (vLLM's, fusionGate.ts): the TP group, world size 2/4/8, eps 1e-5/1e-6, a 2-d input; with
// tokenGate 'compile-range', the token count within max_token_num (flashinferLimits.ts).
import type { Arg, Node, ValueType } from '../ir.ts';
import { float, isRef, ref } from '../ir.ts';
import type { ArgPat, Bindings, GraphIndex, NodePat } from '../match.ts';
import { P, getitemReaders, indexGraph, tensorOf, usersOfValue } from '../match.ts';
import { AUTO_FUNCTIONALIZED, mutatedResultIndex } from '../call.ts';
import type { Diagnostic, Pass } from './pipeline.ts';
import type { ResolvedOptions } from './options.ts';
import { diagnostic, resolveOptions } from './options.ts';
import type { GraphEdit } from './graphEdit.ts';
import type { Rule } from './rules.ts';
import { runRules } from './rules.ts';
import { explainAllReduce } from './diagnostics.ts';
import type { GatePass } from './fusionGate.ts';
import { FUSION_PATTERN_CODE, PASS, fusionGate } from './fusionGate.ts';
import {
  ALL_REDUCE,
  C10D_ALL_REDUCE,
  FUSED_ADD_RMS_NORM,
  FUSED_ALLREDUCE_NORM,
  QUANT_FP4,
  QUANT_FP8,
  RMS_NORM,
} from './patternOps.ts';

type NormKind = 'rms' | 'add';
type QuantKind = 'fp8' | 'fp4';

/** Per norm: its op and the mutated argument that carries the normed output. */
const NORMS: Record<NormKind, { op: string; out: string }> = {
  rms: { op: RMS_NORM, out: 'result' },
  add: { op: FUSED_ADD_RMS_NORM, out: 'input' },
};

/** Per quant: its op, output and scale arguments, and the fused op's pattern code. */
const QUANTS: Record<
  QuantKind,
  { op: string; out: string; scale: string; scaleOut?: string; code: number; label: string }
> = {
  fp8: {
    op: QUANT_FP8,
    out: 'result',
    scale: 'scale',
    code: FUSION_PATTERN_CODE.kARResidualRMSNormFP8Quant,
    label: 'static FP8',
  },
  fp4: {
    op: QUANT_FP4,
    out: 'output',
    scale: 'input_scale',
    scaleOut: 'output_scale',
    code: FUSION_PATTERN_CODE.kARResidualRMSNormFP4Quant,
    label: 'NVFP4',
  },
};

/** Indices of the fused op's results (auto_functionalized: [1..] its mutated args in schema order). */
const FUSED_RESULT = { allreduceIn: 1, residual: 2, normOut: 3, quantOut: 4, scaleOut: 5 } as const;

const OP_FUSED = { kind: 'op', target: FUSED_ALLREDUCE_NORM } as const;

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

const allReduceInput = () => P.node(ALL_REDUCE, { as: 'ar', args: [P.any('x'), P.any('group')] });

function normPattern(kind: NormKind, as = 'norm'): NodePat {
  return kind === 'rms'
    ? P.af(
        RMS_NORM,
        { result: P.any('result'), input: allReduceInput(), weight: P.any('weight'), epsilon: P.any('eps') },
        { as },
      )
    : P.af(
        FUSED_ADD_RMS_NORM,
        {
          input: allReduceInput(),
          residual: P.any('residual'),
          weight: P.any('weight'),
          epsilon: P.any('eps'),
        },
        { as },
      );
}

/** The norm's result indices the replacement can stand in for: normed output, and for fused_add the residual. */
function normRoles(norm: Node, kind: NormKind): { normed?: number; residual?: number } {
  return {
    normed: mutatedResultIndex(norm, NORMS[kind].out),
    residual: kind === 'add' ? mutatedResultIndex(norm, 'residual') : undefined,
  };
}

function gateOf(b: Bindings, ix: GraphIndex, opts: ResolvedOptions): GatePass {
  return fusionGate(b.nodes['ar']!, ix, b.values['eps'], opts) as GatePass;
}

function gateRefusal(b: Bindings, ix: GraphIndex, opts: ResolvedOptions): Diagnostic | null {
  const g = fusionGate(b.nodes['ar']!, ix, b.values['eps'], opts);
  return 'blocker' in g ? diagnostic(PASS, b.nodes['ar']!.name, g.reason, g.blocker, g.fix) : null;
}

/** A scratch buffer (`empty_like` / `empty`) read by `reader` alone: dropped with it. */
/**
 * The first layer's rms_norm site has no residual: the fused op gets zeros as its residual and a
 * fresh buffer for the normed output (vLLM's AllReduceRMSNormPattern), made here and added to `made`.
 */
function firstLayerBuffers(
  edit: GraphEdit,
  x: Arg,
  from: string[],
  made: Node[],
  oldBuffer: string | undefined,
): { residual: ReturnType<typeof ref>; normOut: ReturnType<typeof ref> } {
  const zeros = edit.make(
    edit.fresh('zeros_like'),
    'aten.zeros_like.default',
    [x],
    { pin_memory: false },
    from,
  );
  // The new output buffer stands for the norm's old one (the diff pairs them by this provenance).
  const out = edit.make(
    edit.fresh('empty_like'),
    'aten.empty_like.default',
    [x],
    { pin_memory: false },
    oldBuffer ? [...from, oldBuffer] : from,
  );
  made.push(zeros, out);
  return { residual: ref(zeros.name), normOut: ref(out.name) };
}

function deadBuffer(ix: GraphIndex, value: Arg | undefined): Node | undefined {
  if (!value || !isRef(value)) return undefined;
  const n = ix.byName.get(value.name);
  if (!n || usersOfValue(ix, n.name).length !== 1) return undefined;
  return n.op === 'aten.empty_like.default' || n.op === 'aten.empty.memory_format' ? n : undefined;
}

/** Why the matched structure cannot be replaced as a whole (a value it removes is still needed). */
function structuralRefusal(b: Bindings, ix: GraphIndex, kind: NormKind): Diagnostic | null {
  const ar = b.nodes['ar']!,
    norm = b.nodes['norm']!;
  const roles = normRoles(norm, kind);
  const allowed = [roles.normed, roles.residual].filter((i): i is number => i !== undefined);
  const readers = getitemReaders(ix, norm);
  if (!readers || readers.some((r) => !allowed.includes(r.index))) {
    const bad = usersOfValue(ix, norm.name).find((u) => {
      const g = ix.byName.get(u);
      return !g || g.op !== 'getitem' || !allowed.includes(g.args[1] as number);
    });
    return diagnostic(
      PASS,
      ar.name,
      `${norm.name}'s results are read other than as the normed output${kind === 'rms' ? '' : ' and residual'} (by ${bad})`,
      bad,
    );
  }
  const others = usersOfValue(ix, ar.name).filter((u) => u !== norm.name);
  if (kind === 'rms') {
    const buf = b.values['result'];
    const bufNode = buf && isRef(buf) ? ix.byName.get(buf.name) : undefined;
    // The output buffer is often empty_like(all_reduce): fine if the norm is its only reader.
    if (bufNode && others.includes(bufNode.name) && usersOfValue(ix, bufNode.name).length !== 1) {
      return diagnostic(
        PASS,
        ar.name,
        `the norm's output buffer ${bufNode.name} is read elsewhere`,
        bufNode.name,
      );
    }
    return null;
  }
  if (others.length > 0) {
    return diagnostic(
      PASS,
      ar.name,
      `${ar.name} has another user, ${others.join(', ')}, that needs the reduced tensor; the fused kernel overwrites it with the normed output`,
      others[0],
    );
  }
  return null;
}

/** Readers of the all-reduce other than the norm (and its dead output buffer) read the fused op's [1]. */
function rerouteAllReduce(
  b: Bindings,
  ix: GraphIndex,
  edit: GraphEdit,
  fused: Node,
  made: Node[],
  skip: (string | undefined)[],
) {
  const ar = b.nodes['ar']!,
    norm = b.nodes['norm']!;
  const others = usersOfValue(ix, ar.name).filter((u) => u !== norm.name && !skip.includes(u));
  if (others.length === 0) return;
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

/**
 * The rewrite of a matched site: the all-reduce, the norm and, with `q`, the quant after it become
 * one fused op, and their results' readers read its results. vLLM's patterns differ only in the
 * pattern code, the first layer's buffers (rms_norm has no residual) and the quant's outputs.
 */
function fuseSite(kind: NormKind, q?: QuantKind): Rule['rewrite'] {
  const spec = q === undefined ? undefined : QUANTS[q];
  return (b, edit, { ix, opts }) => {
    const ar = b.nodes['ar']!,
      norm = b.nodes['norm']!,
      quant = b.nodes['quant'];
    const gate = gateOf(b, ix, opts);
    const v = b.values;
    const from = quant ? [ar.name, norm.name, quant.name] : [ar.name, norm.name];
    const consumed = quant ? [ar.name, norm.name, b.nodes['normed']!.name, quant.name] : [ar.name, norm.name];
    const made: Node[] = [];
    let residual = v['residual']!,
      normOut: Arg = null;
    const buffer = kind === 'rms' ? deadBuffer(ix, v['result']) : undefined;
    if (buffer) consumed.push(buffer.name);
    if (kind === 'rms') ({ residual, normOut } = firstLayerBuffers(edit, v['x']!, from, made, buffer?.name));
    let quantOut: Arg = spec ? v['qbuf']! : null;
    if (q === 'fp8') {
      // vLLM's FP8 replacement makes its own quant buffer, empty_like(input, dtype = fp8); the
      // model's buffer is then dead.
      const qbuf = deadBuffer(ix, v['qbuf']);
      if (qbuf) consumed.push(qbuf.name);
      const xt = tensorOf(ix, v['x']);
      const type: ValueType | null = xt ? { ...xt, dtype: 'f8e4m3fn' } : null;
      const buf = edit.make(
        edit.fresh('empty_like'),
        'aten.empty_like.default',
        [v['x']!],
        { dtype: { kind: 'expr', text: 'torch.float8_e4m3fn' }, pin_memory: false },
        from,
        type,
      );
      made.push(buf);
      quantOut = ref(buf.name);
    }
    const fused = edit.make(
      edit.fresh('auto_functionalized'),
      AUTO_FUNCTIONALIZED,
      [OP_FUSED],
      fusedKwargs(
        {
          x: v['x']!,
          residual,
          normOut,
          quantOut,
          scaleOut: spec?.scaleOut ? v['sbuf']! : null,
          w: v['weight']!,
          eps: v['eps']!,
          code: spec?.code ?? FUSION_PATTERN_CODE.kARResidualRMSNorm,
          ...(spec ? { scale: v['scale']! } : {}),
        },
        opts,
        gate.maxTokenNum,
      ),
      from,
      null,
    );
    made.push(fused);
    const readAs = (r: { node: Node }, index: number) => {
      consumed.push(r.node.name);
      made.push(edit.make(r.node.name, 'getitem', [ref(fused.name), index], {}, [r.node.name], r.node.type));
    };
    // The normed output is the fused op's [3] (norm_out) after rms_norm, [1] (written over
    // allreduce_in) after fused_add_rms_norm; the new residual is [2]. Under a quant the normed
    // output's one reader is the quant, which the fused op replaces.
    const roles = normRoles(norm, kind);
    for (const r of getitemReaders(ix, norm)!) {
      if (r.index === roles.normed) {
        if (!quant) readAs(r, kind === 'rms' ? FUSED_RESULT.normOut : FUSED_RESULT.allreduceIn);
      } else if (!quant || r.index === roles.residual) readAs(r, FUSED_RESULT.residual);
    }
    if (quant && spec) {
      const quantOutIndex = mutatedResultIndex(quant, spec.out);
      const scaleOutIndex = spec.scaleOut ? mutatedResultIndex(quant, spec.scaleOut) : undefined;
      for (const r of getitemReaders(ix, quant) ?? []) {
        if (r.index === quantOutIndex) readAs(r, FUSED_RESULT.quantOut);
        else if (r.index === scaleOutIndex) readAs(r, FUSED_RESULT.scaleOut);
      }
    }
    if (kind === 'rms') rerouteAllReduce(b, ix, edit, fused, made, [buffer?.name]);
    edit.insertBefore((quant ?? norm).name, ...made);
    edit.remove(...consumed);
    return { consumed, produced: made.map((n) => n.name), unevaluated: gate.unevaluated };
  };
}

function plainRule(kind: NormKind): Rule {
  return {
    name: kind === 'rms' ? 'all_reduce → rms_norm' : 'all_reduce → fused_add_rms_norm',
    pattern: normPattern(kind),
    site: (b) => b.nodes['ar']!.name,
    check: (b, { ix, opts }) => structuralRefusal(b, ix, kind) ?? gateRefusal(b, ix, opts),
    rewrite: fuseSite(kind),
  };
}

function quantRule(kind: NormKind, q: QuantKind): Rule {
  const spec = QUANTS[q];
  // quant(getitem(norm, normed)): the normed output read by the quant alone, and the norm's other
  // results only as the residual — vLLM's quant patterns do not return the unquantized output.
  const normed = P.node('getitem', {
    as: 'normed',
    args: [normPattern(kind)],
    users: 1,
    where: (n, b) => n.args[1] === normRoles(b.nodes['norm']!, kind).normed,
  });
  const kwargs: Record<string, ArgPat> = {
    [spec.out]: P.any('qbuf'),
    input: normed,
    [spec.scale]: P.any('scale'),
  };
  if (spec.scaleOut) kwargs[spec.scaleOut] = P.any('sbuf');
  return {
    name: `all_reduce → ${kind === 'rms' ? 'rms_norm' : 'fused_add_rms_norm'} → ${spec.label} quant`,
    pattern: P.af(spec.op, kwargs, {
      as: 'quant',
      where: (_n, b, ix) => {
        const norm = b.nodes['norm']!;
        const roles = normRoles(norm, kind);
        const readers = getitemReaders(ix, norm);
        return (
          !!readers &&
          readers.every(
            (r) => (r.index === roles.normed && r.node === b.nodes['normed']) || r.index === roles.residual,
          )
        );
      },
    }),
    site: (b) => b.nodes['ar']!.name,
    check: (b, { ix, opts }) => {
      if (q === 'fp4' && opts.gpu !== 'blackwell') {
        // vLLM registers the NVFP4 patterns only on SM ≥ 100; the plain pattern then fuses the norm.
        return diagnostic(
          PASS,
          b.nodes['ar']!.name,
          'NVFP4 quant patterns are registered on Blackwell (SM ≥ 100) only',
          'gpu',
          '--gpu blackwell',
        );
      }
      return structuralRefusal(b, ix, kind) ?? gateRefusal(b, ix, opts);
    },
    rewrite: fuseSite(kind, q),
  };
}

export const RULES: Rule[] = [
  quantRule('rms', 'fp8'),
  quantRule('add', 'fp8'),
  quantRule('rms', 'fp4'),
  quantRule('add', 'fp4'),
  plainRule('rms'),
  plainRule('add'),
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
