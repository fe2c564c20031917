// allreduce-rmsnorm, after vLLM's AllReduceFusionPass (FlashInfer's one-kernel all-reduce +
// residual add + RMSNorm, pattern_code 1 = kARResidualRMSNorm). Three patterns, as vLLM's:
//
//   fused_add_rms_norm(all_reduce(x), residual, w, eps)  →  flashinfer(allreduce_in = x, residual, norm_out = None)
//       [1] normed (the fused op writes it over allreduce_in), [2] new residual — the same
//       indices the fused_add_rms_norm results had; also when only [1] is used (the final norm).
//   rms_norm(out, all_reduce(x), w, eps)  →  flashinfer(allreduce_in = x, residual = zeros, norm_out = new buffer)
//       the first layer's norm: [3] normed, [1] the all-reduced x (the kernel writes ar + 0 back),
//       so other readers of the all-reduce (the residual stream) read [1].
//
// Gates (vLLM's): world size 2, 4 or 8; eps 1e-5 or 1e-6; a 2-d [tokens, hidden] input; with
// tokenGate 'compile-range', the token count within max_token_num (see flashinferLimits.ts).

import type { Arg, Node } from '../ir.ts';
import { float, isRef, ref } from '../ir.ts';
import type { Bindings, GraphIndex } from '../match.ts';
import { AUTO_FUNCTIONALIZED, P, indexGraph, usersOfValue } from '../match.ts';
import type { Diagnostic, Pass } from './pipeline.ts';
import type { ResolvedOptions } from './options.ts';
import { diagnostic, resolveOptions } from './options.ts';
import type { Rule } from './rules.ts';
import { runRules } from './rules.ts';
import { explainAllReduce } from './diagnostics.ts';
import { ALL_REDUCE, C10D_ALL_REDUCE, FUSED_ADD_RMS_NORM, FUSED_ALLREDUCE_NORM, PASS, RMS_NORM, fusionGate } from './fusionGate.ts';

function fusedKwargs(x: Arg, residual: Arg, normOut: Arg, w: Arg, eps: Arg, opts: ResolvedOptions, maxTokenNum: number): Record<string, Arg> {
  return {
    allreduce_in: x, residual, norm_out: normOut, quant_out: null, scale_out: null,
    rms_gamma: w, rms_eps: typeof eps === 'number' ? float(eps) : eps, pattern_code: 1,
    world_rank: 0, world_size: opts.worldSize, launch_with_pdl: true, trigger_completion_at_end: true,
    fp32_acc: true, max_token_num: maxTokenNum,
  };
}

const OP_FUSED = { kind: 'op', target: FUSED_ALLREDUCE_NORM } as const;

/** getitem readers of a tuple-valued node, with their index; null if anything else reads it. */
function getitemReaders(ix: GraphIndex, n: Node): { node: Node; index: number }[] | null {
  const out: { node: Node; index: number }[] = [];
  for (const u of usersOfValue(ix, n.name)) {
    const g = ix.byName.get(u);
    if (!g || g.op !== 'getitem' || typeof g.args[1] !== 'number') return null;
    out.push({ node: g, index: g.args[1] });
  }
  return out;
}

const allReduceInput = () => P.node(ALL_REDUCE, { as: 'ar', args: [P.any('x'), P.any('group')] });

const fusedAddRmsNorm: Rule = {
  name: 'all_reduce → fused_add_rms_norm',
  pattern: P.af(FUSED_ADD_RMS_NORM, { input: allReduceInput(), residual: P.any('residual'), weight: P.any('weight'), epsilon: P.any('eps') }, { as: 'norm' }),
  site: (b) => b.nodes['ar']!.name,
  check: (b, { ix, opts }) => structuralRefusal(b, ix) ?? gateRefusal(b, ix, opts),
  rewrite(b, edit, { ix, opts }) {
    const ar = b.nodes['ar']!, norm = b.nodes['norm']!;
    const gate = fusionGate(ar, ix, b.values['eps'], opts) as { maxTokenNum: number };
    const v = b.values;
    const fused = edit.make(edit.fresh('auto_functionalized'), AUTO_FUNCTIONALIZED, [OP_FUSED],
      fusedKwargs(v['x']!, v['residual']!, null, v['weight']!, v['eps']!, opts, gate.maxTokenNum), [ar.name, norm.name], null);
    edit.insertBefore(norm.name, fused);
    edit.remove(ar.name, norm.name);
    // [1] and [2] mean the same in both ops, so the getitems just read the fused node.
    edit.replaceUses(norm.name, ref(fused.name));
    const readers = getitemReaders(ix, norm)!.map((r) => r.node.name);
    return { consumed: [ar.name, norm.name], produced: [fused.name, ...readers] };
  },
};

const rmsNorm: Rule = {
  name: 'all_reduce → rms_norm',
  pattern: P.af(RMS_NORM, { result: P.any('result'), input: allReduceInput(), weight: P.any('weight'), epsilon: P.any('eps') }, { as: 'norm' }),
  site: (b) => b.nodes['ar']!.name,
  check: (b, { ix, opts }) => structuralRefusal(b, ix) ?? gateRefusal(b, ix, opts),
  rewrite(b, edit, { ix, opts }) {
    const ar = b.nodes['ar']!, norm = b.nodes['norm']!;
    const gate = fusionGate(ar, ix, b.values['eps'], opts) as { maxTokenNum: number };
    const v = b.values;
    const from = [ar.name, norm.name];
    const consumed = [ar.name, norm.name];
    const out = resultBuffer(b, ix);
    if (out) consumed.push(out.name);
    const zeros = edit.make(edit.fresh('zeros_like'), 'aten.zeros_like.default', [v['x']!], { pin_memory: false }, from);
    const normOut = edit.make(edit.fresh('empty_like'), 'aten.empty_like.default', [v['x']!], { pin_memory: false }, from);
    const fused = edit.make(edit.fresh('auto_functionalized'), AUTO_FUNCTIONALIZED, [OP_FUSED],
      fusedKwargs(v['x']!, ref(zeros.name), ref(normOut.name), v['weight']!, v['eps']!, opts, gate.maxTokenNum), from, null);
    const made: Node[] = [zeros, normOut, fused];
    // The normed output moves from rms_norm's [1] to the fused op's [3] (norm_out).
    for (const r of getitemReaders(ix, norm)!) {
      consumed.push(r.node.name);
      made.push(edit.make(r.node.name, 'getitem', [ref(fused.name), 3], {}, [r.node.name], r.node.type));
    }
    // Other readers of the all-reduce (the residual stream) read the fused op's [1].
    const others = usersOfValue(ix, ar.name).filter((u) => u !== norm.name && u !== out?.name);
    if (others.length > 0) {
      const reduced = edit.make(edit.fresh('getitem'), 'getitem', [ref(fused.name), 1], {}, [ar.name], ar.type);
      made.push(reduced);
      edit.replaceUses(ar.name, ref(reduced.name));
    }
    edit.insertBefore(norm.name, ...made);
    edit.remove(...consumed);
    return { consumed, produced: made.map((n) => n.name) };
  },
};

/** rms_norm's output buffer when it is `empty_like(all_reduce)` read by the norm alone (dropped with it). */
function resultBuffer(b: Bindings, ix: GraphIndex): Node | undefined {
  const r = b.values['result'];
  if (!r || !isRef(r)) return undefined;
  const n = ix.byName.get(r.name);
  if (!n || usersOfValue(ix, n.name).length !== 1) return undefined;
  return n.op === 'aten.empty_like.default' || n.op === 'aten.empty.memory_format' ? n : undefined;
}

/** Why the matched structure cannot be replaced as a whole (a value it removes is still needed). */
function structuralRefusal(b: Bindings, ix: GraphIndex): Diagnostic | null {
  const ar = b.nodes['ar']!, norm = b.nodes['norm']!;
  const readers = getitemReaders(ix, norm);
  const isRms = norm.kwargs['result'] !== undefined;
  const allowed = isRms ? [1] : [1, 2];
  if (!readers || readers.some((r) => !allowed.includes(r.index))) {
    const bad = usersOfValue(ix, norm.name).find((u) => {
      const g = ix.byName.get(u);
      return !g || g.op !== 'getitem' || !allowed.includes(g.args[1] as number);
    });
    return diagnostic(PASS, ar.name, `${norm.name}'s results are read other than as the normed output${isRms ? '' : ' and residual'} (by ${bad})`, bad);
  }
  const others = usersOfValue(ix, ar.name).filter((u) => u !== norm.name);
  if (isRms) {
    const buf = b.values['result'];
    const bufNode = buf && isRef(buf) ? ix.byName.get(buf.name) : undefined;
    // The output buffer is often empty_like(all_reduce): fine if the norm is its only reader.
    if (bufNode && others.includes(bufNode.name) && usersOfValue(ix, bufNode.name).length !== 1) {
      return diagnostic(PASS, ar.name, `the norm's output buffer ${bufNode.name} is read elsewhere`, bufNode.name);
    }
    return null;
  }
  if (others.length > 0) {
    return diagnostic(PASS, ar.name,
      `${ar.name} has another user, ${others.join(', ')}, that needs the reduced tensor; the fused kernel overwrites it with the normed output`, others[0]);
  }
  return null;
}

function gateRefusal(b: Bindings, ix: GraphIndex, opts: ResolvedOptions): Diagnostic | null {
  const g = fusionGate(b.nodes['ar']!, ix, b.values['eps'], opts);
  return 'blocker' in g ? diagnostic(PASS, b.nodes['ar']!.name, g.reason, g.blocker, g.fix) : null;
}

export const RULES: Rule[] = [fusedAddRmsNorm, rmsNorm];

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
