// qk-norm-rope, after vLLM's QKNormRoPEFusionPass (vllm/compilation/passes/fusion/qk_norm_rope_fusion.py,
// vLLM main of spring 2026; enable_qk_norm_rope_fusion). QkNormRopePattern, registered for eps 1e-5
// and 1e-6 and neox or not:
//
//   q, k, v = split_with_sizes(qkv, [Hq·D, Hk·D, Hk·D], -1)
//   qn = rms_norm(reshape(q, [T, Hq, D]), q_weight, eps)      kn = … k_weight …
//   q', k' = rotary_embedding(positions, reshape(qn, [T, Hq·D]), reshape(kn, [T, Hk·D]), D, cache, is_neox)
//   →
//   r = auto_functionalized(_C.fused_qk_norm_rope, qkv, num_heads_q = Hq, num_heads_k = Hk,
//       num_heads_v = Hk, head_dim = D, eps, q_weight, k_weight, cos_sin_cache, is_neox,
//       position_ids = positions)
//   q', k', v = split_with_sizes(r[1], [Hq·D, Hk·D, Hk·D], -1)
//
// The norms are found by the matcher layer in any form (the test runs '+rms_norm' and '-rms_norm');
// the rotary must be the custom op: the flag appends '+rotary_embedding' to custom_ops
// (vllm/config/compilation.py, issue #28042: the native rope is not matched), so the native form
// is recognized and refused with that reason. Gates: the model dtype bf16 / f16 and head_dim in
// (64, 128, 256) (QKNormRoPEFusionPass.__init__: SUPPORTED_FUSED_QK_NORM_ROPE_HEAD_DIMS, the head
// sizes csrc/fused_qknorm_rope_kernel.cu dispatches); the pass is imported on CUDA-alike platforms
// only (pass_manager.py: is_cuda_alike), which every platform fusionlab models is (sm80+ and ROCm:
// the kernel's bf16 path needs sm80). Inductor's matcher refuses a site whose interior value (a
// normed head, the q / k split) is read outside it. vLLM's SplitCoalescingPass first merges
// duplicate splits of one qkv; fusionlab reads the split the norms share.

import type { Arg, Node } from '../ir.ts';
import { float, isRef, numberOf, ref } from '../ir.ts';
import type { GraphIndex } from '../match.ts';
import { argOf, indexGraph, tensorOf, usersOfValue } from '../match.ts';
import { AUTO_FUNCTIONALIZED } from '../call.ts';
import type { Diagnostic, Match, Pass, PassResult } from './pipeline.ts';
import { diagnostic } from './options.ts';
import { GraphEdit } from './graphEdit.ts';
import type { NormOccurrence, RotaryOccurrence } from './matchers/index.ts';
import { findNorms, findRotaries } from './matchers/index.ts';
import { escapingRead, producer } from './matchers/occurrence.ts';
import { FUSED_QK_NORM_ROPE, RESHAPE, SPLIT_WITH_SIZES, VIEW } from './patternOps.ts';

export const PASS = 'qk-norm-rope';

/** The epsilons QKNormRoPEFusionPass registers its patterns for. */
export const QK_NORM_ROPE_EPSILONS = [1e-5, 1e-6];
/** SUPPORTED_FUSED_QK_NORM_ROPE_HEAD_DIMS: the head sizes the fused kernel is built for. */
export const QK_NORM_ROPE_HEAD_DIMS = [64, 128, 256];
const MODEL_DTYPES = ['bf16', 'f16'];
const epsText = (e: number | undefined) => (e === undefined ? 'unknown' : e.toExponential());

const isReshape = (n: Node | undefined): n is Node => !!n && (n.op === RESHAPE || n.op === VIEW);

/** One side (q or k) of a site: split getitem → reshape to heads → norm → reshape back. */
interface HeadNorm {
  norm: NormOccurrence;
  /** reshape(split[i], [T, H, D]) and reshape(normed, [T, H·D]) (none where the rotary reads the heads). */
  byHead: Node;
  flat?: Node;
  split: Node;
  getitem: Node;
  index: number;
  heads: number;
  headDim: number;
}

type NormsByOutput = ReadonlyMap<string, NormOccurrence>;

/** The norm whose output `a` is, reshaped back to [T, H·D] (`flat`) or as it is (Inductor folded the reshapes). */
function feedingNorm(ix: GraphIndex, byOutput: NormsByOutput, a: Arg) {
  const direct = isRef(a) ? byOutput.get(a.name) : undefined;
  if (direct) return { norm: direct };
  const flat = producer(ix, a);
  const src = isReshape(flat) ? flat.args[0] : undefined;
  const norm = src && isRef(src) ? byOutput.get(src.name) : undefined;
  return norm ? { norm, flat: flat! } : undefined;
}

/** The per-head norm whose output the rotary rotates as `what`, or why there is none. */
function headNorm(ix: GraphIndex, byOutput: NormsByOutput, a: Arg, what: string): HeadNorm | string {
  const fed = feedingNorm(ix, byOutput, a);
  if (!fed) {
    const p = producer(ix, a);
    return `the ${what} ${isRef(a) ? a.name : String(a)} is ${p ? `${p.op}, ` : ''}not a per-head RMSNorm's output`;
  }
  const { norm, flat } = fed;
  if (norm.op !== 'rms_norm')
    return `the ${what}'s norm at ${norm.anchor} is ${norm.op}: QkNormRopePattern matches rms_norm`;
  const byHead = producer(ix, norm.input);
  const shape = byHead && isReshape(byHead) ? tensorOf(ix, ref(byHead.name))?.shape : undefined;
  const getitem = isReshape(byHead) ? producer(ix, byHead.args[0]) : undefined;
  const split = getitem?.op === 'getitem' ? producer(ix, getitem.args[0]) : undefined;
  if (!byHead || !shape || shape.length !== 3 || !getitem || !split || split.op !== SPLIT_WITH_SIZES)
    return `the ${what}'s norm at ${norm.anchor} does not normalize a split of qkv reshaped to [T, heads, head_dim]`;
  const [, heads, headDim] = shape;
  if (typeof heads !== 'number' || typeof headDim !== 'number')
    return `the ${what}'s heads [${shape}] at ${byHead.name} are not a known size`;
  return {
    norm,
    byHead,
    ...(flat ? { flat } : {}),
    split,
    getitem,
    index: numberOf(getitem.args[1]) ?? -1,
    heads,
    headDim,
  };
}

interface Site {
  rotary: RotaryOccurrence;
  q: HeadNorm;
  k: HeadNorm;
  /** split[2], where something reads v. */
  v?: Node;
  eps: number;
  nodes: string[];
}

/** The site at a rotary whose query and key come from per-head norms, or why it does not fuse. */
function siteAt(
  ix: GraphIndex,
  rotary: RotaryOccurrence,
  normsByOutput: NormsByOutput,
): { site: Site } | { why: string; blocker: string } {
  const at = `the rotary at ${rotary.anchor}`;
  const q = headNorm(ix, normsByOutput, rotary.query, 'query');
  const k = rotary.key === null ? `${at} rotates no key` : headNorm(ix, normsByOutput, rotary.key, 'key');
  if (typeof q === 'string') return { why: `${q}: ${at} does not fuse`, blocker: rotary.anchor };
  if (typeof k === 'string') return { why: `${k}: ${at} does not fuse`, blocker: rotary.anchor };
  if (rotary.form !== 'custom')
    return {
      why: `${at} is the native rotary: with enable_qk_norm_rope_fusion vLLM appends '+rotary_embedding' to custom_ops (vllm/config/compilation.py, issue #28042), so QkNormRopePattern matches the custom rotary_embedding only`,
      blocker: rotary.anchor,
    };
  if (!q.flat || !k.flat)
    return {
      why: `${at} reads the per-head norms' outputs without the reshape back to [T, heads · head_dim] that vLLM's pattern traces`,
      blocker: rotary.anchor,
    };
  if (q.split !== k.split || q.index !== 0 || k.index !== 1)
    return {
      why: `the query and key norms of ${at} read ${q.getitem.name} and ${k.getitem.name}, not [0] and [1] of one split of qkv`,
      blocker: k.getitem.name,
    };
  const d = q.headDim;
  const sizes = argOf(q.split, 1, 'split_sizes');
  const dim = numberOf(argOf(q.split, 2, 'dim'));
  const qkv = tensorOf(ix, q.split.args[0]);
  const want = [q.heads * d, k.heads * d, k.heads * d];
  if (
    !Array.isArray(sizes) ||
    sizes.map((s) => numberOf(s)).join() !== want.join() ||
    (dim !== -1 && dim !== 1)
  )
    return {
      why: `${q.split.name} splits qkv into [${Array.isArray(sizes) ? sizes.map(String).join(', ') : '?'}], not [${want.join(', ')}] (q, k and v of ${q.heads} and ${k.heads} heads of ${d}) along the last dim`,
      blocker: q.split.name,
    };
  if (k.headDim !== d || numberOf(rotary.headSize) !== d)
    return {
      why: `${at} rotates heads of ${String(numberOf(rotary.headSize))}, the norms normalize ${d} and ${k.headDim}`,
      blocker: rotary.anchor,
    };
  const eps = numberOf(q.norm.epsilon);
  if (eps === undefined || eps !== numberOf(k.norm.epsilon) || !QK_NORM_ROPE_EPSILONS.includes(eps))
    return {
      why: `eps ${epsText(eps)} / ${epsText(numberOf(k.norm.epsilon))} of the norms at ${q.norm.anchor} and ${k.norm.anchor}: vLLM registers QkNormRopePattern for one eps, 1e-5 or 1e-6`,
      blocker: q.norm.anchor,
    };
  if (q.norm.weight === null || k.norm.weight === null)
    return {
      why: `a norm of ${at} has no weight: the fused op takes q_weight and k_weight`,
      blocker: q.norm.anchor,
    };
  if (!QK_NORM_ROPE_HEAD_DIMS.includes(d))
    return {
      why: `head_dim ${d}: the fused_qk_norm_rope kernel is built for head sizes 64, 128 and 256 (SUPPORTED_FUSED_QK_NORM_ROPE_HEAD_DIMS), so QKNormRoPEFusionPass registers no pattern`,
      blocker: rotary.anchor,
    };
  if (qkv && !MODEL_DTYPES.includes(qkv.dtype))
    return {
      why: `the model dtype is ${qkv.dtype}: QKNormRoPEFusionPass registers its patterns for bf16 and f16 only`,
      blocker: q.split.name,
    };
  const readers = usersOfValue(ix, q.split.name).map((u) => ix.byName.get(u));
  const v = readers.find((r) => r?.op === 'getitem' && numberOf(r.args[1]) === 2);
  const nodes = [
    q.split.name,
    ...(v ? [v.name] : []),
    ...[q, k].flatMap((h) => [
      h.getitem.name,
      h.byHead.name,
      ...h.norm.nodes,
      ...(h.flat ? [h.flat.name] : []),
    ]),
    ...rotary.nodes,
  ];
  const outputs = [rotary.outputs.query, rotary.outputs.key, v?.name].filter((o): o is string => !!o);
  const escape = escapingRead(ix, nodes, outputs);
  if (escape) {
    const by = escape.reader === 'output' ? "the graph's return" : escape.reader;
    return {
      why: `${escape.value}, inside the QK-norm + RoPE site at ${rotary.anchor}, is also read by ${by}: vLLM's pattern returns only q, k and v after the rotary, so Inductor's matcher refuses it`,
      blocker: escape.reader,
    };
  }
  return { site: { rotary, q, k, ...(v ? { v } : {}), eps, nodes } };
}

function fuse(edit: GraphEdit, ix: GraphIndex, s: Site): Match {
  const { rotary, q, k } = s;
  const from = [q.norm.anchor, k.norm.anchor, rotary.anchor];
  const qkv = q.split.args[0]!;
  const d = q.headDim;
  const sizes = [q.heads * d, k.heads * d, k.heads * d];
  // positions.view(-1) in vLLM's replacement: positions are 1-d already, so it is positions itself.
  const fused = edit.make(
    edit.fresh('auto_functionalized'),
    AUTO_FUNCTIONALIZED,
    [{ kind: 'op', target: FUSED_QK_NORM_ROPE }],
    {
      qkv,
      num_heads_q: q.heads,
      num_heads_k: k.heads,
      num_heads_v: k.heads,
      head_dim: d,
      eps: float(s.eps),
      q_weight: q.norm.weight,
      k_weight: k.norm.weight,
      cos_sin_cache: rotary.cosSinCache,
      is_neox: rotary.isNeox,
      position_ids: rotary.positions,
    },
    from,
    null,
  );
  const result = edit.make(
    edit.fresh('getitem'),
    'getitem',
    [ref(fused.name), 1],
    {},
    from,
    edit.typeOf(qkv),
  );
  const split = edit.make(
    edit.fresh('split_with_sizes'),
    SPLIT_WITH_SIZES,
    [ref(result.name), sizes, -1],
    {},
    from,
    null,
  );
  const made = [fused, result, split];
  const values = [rotary.outputs.query, rotary.outputs.key, s.v?.name];
  values.forEach((value, i) => {
    if (value !== undefined) made.push(edit.takeResult(split.name, i, value, from));
  });
  edit.insertBefore(q.split.name, ...made);
  edit.remove(...s.nodes);
  return { pass: PASS, site: rotary.anchor, consumed: [...s.nodes], produced: made.map((n) => n.name) };
}

/** A per-head norm: one whose input is reshaped to [T, heads, head_dim]. */
function isPerHead(ix: GraphIndex, n: NormOccurrence): boolean {
  const p = producer(ix, n.input);
  return isReshape(p) && tensorOf(ix, n.input)?.shape.length === 3;
}

export const qkNormRope: Pass = (g): PassResult => {
  const ix = indexGraph(g);
  const edit = new GraphEdit(ix, PASS);
  const norms = findNorms(ix).occurrences;
  const normsByOutput = new Map(
    norms.flatMap((n) => (n.outputs.normed ? [[n.outputs.normed, n] as const] : [])),
  );
  const matches: Match[] = [];
  const diagnostics: Diagnostic[] = [];
  const explained = new Set<string>();
  for (const rotary of findRotaries(ix).occurrences) {
    const r = siteAt(ix, rotary, normsByOutput);
    if ('why' in r) {
      // A candidate is a rotary whose query or key a norm feeds.
      const fed = [rotary.query, rotary.key].flatMap((a) => feedingNorm(ix, normsByOutput, a)?.norm ?? []);
      if (fed.length === 0) continue;
      diagnostics.push(diagnostic(PASS, rotary.anchor, r.why, r.blocker));
      for (const n of fed) explained.add(n.anchor);
      continue;
    }
    const { site } = r;
    explained.add(site.q.norm.anchor).add(site.k.norm.anchor);
    if (!edit.claim(...site.nodes)) continue;
    matches.push(fuse(edit, ix, site));
  }
  // Per-head norms no rotary reads: what reads them instead.
  for (const n of norms) {
    if (explained.has(n.anchor) || !isPerHead(ix, n)) continue;
    const out = n.outputs.normed;
    const reader = out ? (usersOfValue(ix, out)[0] ?? 'output') : n.anchor;
    diagnostics.push(
      diagnostic(
        PASS,
        n.anchor,
        `the per-head ${n.op} at ${n.anchor} is read by ${reader === 'output' ? "the graph's return" : reader}, not by a rotary embedding through a reshape to [T, heads · head_dim]`,
        reader,
      ),
    );
  }
  // Would-be per-head norms the matcher refused (an interior value read outside): its reason.
  const perHeadValue = (x: string) => {
    const t = ix.types.get(x);
    return t?.kind === 'tensor' && t.shape.length === 3;
  };
  for (const r of findNorms(ix).refusals)
    if (r.nodes.some(perHeadValue)) diagnostics.push(diagnostic(PASS, r.anchor, r.reason, r.reader));
  const at = (d: { node: string }) => ix.pos.get(d.node) ?? -1;
  diagnostics.sort((a, b) => at(a) - at(b));
  return { graph: edit.commit(), matches, diagnostics };
};
