// sequence-parallelism, after vLLM's SequenceParallelismPass (sequence_parallelism.py):
//
//   rms_norm(all_reduce(x))                       → all_gather(rms_norm(reduce_scatter(x)))
//       the first layer's norm; readers of the all-reduce (the residual stream) read the
//       reduce-scattered shard instead (vLLM's FirstAllReduceRMSNormPattern returns it).
//   fused_add_rms_norm(all_reduce(x), residual)   → all_gather(fused_add_rms_norm(reduce_scatter(x), residual)[1]),
//       [2] the new residual, now a [T/N, H] shard (MiddleAllReduceRMSNormPattern, and its
//       first-output-only form for the final norm).
//
// Norms are found by the matcher layer (matchers/norm.ts) in every spelling vLLM's matchers accept
// — the custom op, the vLLM IR op and the native decomposition — and the split rewrites whichever
// it is: the occurrence's nodes read the reduce-scattered shard and take its [T/N, H] type.
//
// The norm then does 1/N of the work, and the reduce_scatter / all_gather pair moves what the
// all-reduce moved; async-tp can then fuse them with the matmuls on either side.
//
// A residual that enters as a graph input (Llama-4's first layer, whose embeddings are computed
// outside the graph; a pipeline stage's intermediate residual) starts the stream. vLLM's
// MiddleAllReduceRMSNormPattern reads it as `residual[0 : reduce_scatter.size(0)]`, a prefix that is
// this rank's shard only where the caller hands the residual in already scattered (pipeline
// parallelism: is_residual_scattered_for_sp). A whole input takes this rank's rows instead, through
// vLLM's own `sequence_parallel_chunk_impl` (vllm/model_executor/models/utils.py); an input
// annotated as a shard is used as it is. vLLM's e2e table counts these sites (Llama-4: 2L SP).
//
// All or nothing, as vLLM's own pass assumes ("correctness is only maintained if all rms_norm
// operations are split across ranks"): once one norm's residual is a shard, every norm along
// the residual stream must take a shard. A site whose residual comes from, or goes to, a norm
// the pass cannot split (GPT-OSS's MoE norm while the slice sits between its all-reduce and the
// norm) is refused, and the refusal spreads along the stream: such a graph is left unchanged.

import type { Arg, Node, TensorType } from '../ir.ts';
import { isRef, mapArg, numberOf, ref } from '../ir.ts';
import type { GraphIndex } from '../match.ts';
import { indexGraph, usersOfValue, tensorOf } from '../match.ts';
import { GraphEdit } from './graphEdit.ts';
import type { ResolvedOptions } from './options.ts';
import { diagnostic, resolveOptions } from './options.ts';
import type { Diagnostic, Match, Pass } from './pipeline.ts';
import { explainAllReduce } from './diagnostics.ts';
import { elementSize } from './flashinferLimits.ts';
import { reduceGroup, tpGroupGate } from './fusionGate.ts';
import type { NormOccurrence, QuantOccurrence } from './matchers/index.ts';
import { findNorms, findQuants } from './matchers/index.ts';
import {
  SP_EPSILONS,
  TOKEN_DIM,
  shardDim,
  shardedType,
  splitRefusal,
  spThreshold,
} from './sequenceParallelGate.ts';
import { ALL_GATHER, ALL_REDUCE, REDUCE_SCATTER, SEQUENCE_PARALLEL_CHUNK, SLICE } from './patternOps.ts';

export const PASS = 'sequence-parallelism';

const COPY_ = 'aten.copy_.default';

interface SpSite {
  /** First: rms_norm of the all-reduce (vLLM's FirstAllReduceRMSNormPattern); middle: fused_add_rms_norm. */
  kind: 'first' | 'middle';
  ar: Node;
  norm: NormOccurrence;
  /**
   * A static FP8 quant that alone reads the normed output: split with the norm, its output gathered
   * (vLLM's First/MiddleAllReduceRMSNormStaticFP8Pattern), so the GEMM after it reads the all_gather.
   */
  quant?: QuantOccurrence;
  /** The norm's residual input (middle), a value name. */
  residualIn?: string;
  /** Values carrying this site's residual out: the all-reduce itself (first), the new residual (middle). */
  residualOut: string[];
  /** A residual that is a graph input: the whole [T, H] tensor (each rank takes its chunk) or a shard already. */
  inputResidual?: 'whole' | 'shard';
}

const SP_GROUP_WHY =
  "vLLM's sequence-parallelism patterns match tensor_model_parallel_all_reduce only, and split the residual stream over the TP ranks";

const residualName = (a: Arg | undefined) => (a && isRef(a) ? a.name : undefined);

/** Why this site may not be split (gates and structure), or null. */
function siteRefusal(site: SpSite, ix: GraphIndex, opts: ResolvedOptions): Diagnostic | null {
  const { ar, norm, kind } = site;
  const d = (reason: string, blocker?: string, fix?: string) =>
    diagnostic(PASS, ar.name, reason, blocker, fix);
  // sequence_parallelism.py: the patterns trace tensor_model_parallel_all_reduce and emit
  // reduce_scatter / all_gather with group_name = tp.unique_name.
  const notTp = tpGroupGate(ar, reduceGroup(ar), opts, SP_GROUP_WHY);
  if (notTp) return d(notTp.reason, notTp.blocker, notTp.fix);
  if (opts.worldSize < 2)
    return d(
      `world size ${opts.worldSize} (${opts.worldSizeFrom}): nothing to split`,
      'world size',
      'world size 2 or more',
    );
  const eps = numberOf(norm.epsilon);
  if (eps === undefined || !(SP_EPSILONS as readonly number[]).includes(eps)) {
    return d(
      `eps ${eps ?? JSON.stringify(norm.epsilon)}: vLLM registers the sequence-parallelism patterns for eps 1e-05 and 1e-06 only`,
      'eps',
    );
  }
  const x = tensorOf(ix, ar.args[0]);
  if (!x || x.shape.length !== 2 || typeof x.shape[1] !== 'number') {
    return d(
      `the all-reduce input is ${x ? `[${x.shape.join(', ')}]` : 'of unknown shape'}: the patterns split a 2-d [tokens, hidden] activation along dim ${TOKEN_DIM}`,
      'shape',
    );
  }
  const split = splitRefusal(x, opts.worldSize, ar.name);
  if (split) return d(split, 'token count', `a token count divisible by ${opts.worldSize}`);
  if (opts.tokenGate === 'compile-range') {
    const th = spThreshold(opts, x.shape[1] as number, elementSize(x));
    if ('off' in th) return d(th.off, 'model size');
    const tokens = typeof x.shape[0] === 'number' ? x.shape[0] : undefined;
    if (tokens !== undefined && tokens < th.minTokens) {
      return d(
        `${tokens} tokens < vLLM's sequence-parallelism threshold of ${th.minTokens} at world size ${opts.worldSize} on ${opts.gpu}: splitting costs more than it saves`,
        'too few tokens',
      );
    }
  }
  const buffer = residualName(norm.buffer);
  if (buffer !== undefined) {
    return d(
      `${norm.anchor}'s output buffer ${buffer} is read elsewhere: the split norm writes a 1/${opts.worldSize} shard`,
      buffer,
    );
  }
  if (kind === 'middle') {
    const input = inputResidual(ix, norm.residual, x, opts.worldSize);
    if (input && 'refusal' in input) return d(input.refusal, residualName(norm.residual));
    const others = usersOfValue(ix, ar.name).filter((u) => !norm.nodes.includes(u));
    if (others.length > 0) {
      return d(
        `${ar.name} has another user, ${others.join(', ')}, that needs the whole reduced tensor; after the split each rank holds 1/${opts.worldSize} of it`,
        others[0],
      );
    }
  }
  return null;
}

/**
 * How a residual that is a graph input splits: 'whole' when it has the site's token count (each
 * rank takes its chunk), 'shard' when it has 1/N of it already (a pipeline stage's scattered
 * residual), a refusal when neither; undefined when the residual is not a graph input.
 */
function inputResidual(
  ix: GraphIndex,
  residual: Arg | undefined,
  x: TensorType,
  n: number,
): { split: 'whole' | 'shard' } | { refusal: string } | undefined {
  const name = residualName(residual);
  if (name === undefined || !ix.graph.inputs.some((i) => i.name === name)) return undefined;
  const t = tensorOf(ix, residual);
  const tokens = t?.shape[TOKEN_DIM];
  if (tokens === x.shape[TOKEN_DIM]) return { split: 'whole' };
  if (tokens !== undefined && tokens === shardDim(x.shape[TOKEN_DIM]!, n)) return { split: 'shard' };
  return {
    refusal: `the residual ${name} is a graph input of ${t ? `[${t.shape.join(', ')}]` : 'unknown shape'}: neither the whole [${x.shape.join(', ')}] activation nor its 1/${n} shard, so which rows are this rank's is unknown`,
  };
}

/** Every norm of the graph (any form) whose input an all-reduce produces, as a candidate site. */
function candidateSites(ix: GraphIndex, opts: ResolvedOptions): SpSite[] {
  const sites: SpSite[] = [];
  const quants = findQuants(ix).occurrences.filter((q) => q.op === 'fp8_static_tensor');
  for (const norm of findNorms(ix).occurrences) {
    const ar = isRef(norm.input) ? ix.byName.get(norm.input.name) : undefined;
    if (ar?.op !== ALL_REDUCE) continue;
    const first = norm.op === 'rms_norm';
    const residualIn = residualName(norm.residual);
    const x = tensorOf(ix, ar.args[0]);
    const input = !first && x ? inputResidual(ix, norm.residual, x, opts.worldSize) : undefined;
    const out = norm.outputs.residual;
    const normed = norm.outputs.normed;
    const quant = quants.find(
      (q) =>
        isRef(q.input) &&
        q.input.name === normed &&
        usersOfValue(ix, normed).every((u) => q.nodes.includes(u)),
    );
    sites.push({
      kind: first ? 'first' : 'middle',
      ar,
      norm,
      ...(quant ? { quant } : {}),
      ...(residualIn !== undefined ? { residualIn } : {}),
      residualOut: first ? [ar.name] : out ? [out] : [],
      ...(input && 'split' in input ? { inputResidual: input.split } : {}),
    });
  }
  return sites;
}

function describeSite(s: SpSite) {
  return `${s.ar.name} → ${s.norm.anchor}`;
}

/**
 * The residual stream must be split end to end: drops sites whose residual comes from, or flows
 * to, anything but another split site (or a graph input that starts it), until nothing changes;
 * returns why each dropped site was dropped.
 */
function unsplitStream(
  live: Set<SpSite>,
  ix: GraphIndex,
  refusedAt: Map<string, string>,
): Map<SpSite, Diagnostic> {
  const why = new Map<SpSite, Diagnostic>();
  for (let changed = true; changed;) {
    changed = false;
    const outOf = new Set<string>();
    for (const s of live) for (const r of s.residualOut) outOf.add(r);
    for (const s of [...live]) {
      let reason: Diagnostic | undefined;
      if (s.residualIn !== undefined && !s.inputResidual && !outOf.has(s.residualIn)) {
        const from = ix.byName.get(s.residualIn);
        reason = diagnostic(
          PASS,
          s.ar.name,
          `${s.norm.anchor}'s residual ${s.residualIn} does not come from a norm the pass splits${from ? ` (${blockerOf(ix, from, refusedAt)})` : ''}; SP splits the whole residual stream or none of it`,
          s.residualIn,
        );
      }
      for (const r of reason ? [] : s.residualOut) {
        const bad = usersOfValue(ix, r).filter(
          (u) =>
            !s.norm.nodes.includes(u) &&
            ![...live].some((o) => o.residualIn === r && o.norm.nodes.includes(u)),
        );
        if (bad.length > 0) {
          const u = ix.byName.get(bad[0]!);
          reason = diagnostic(
            PASS,
            s.ar.name,
            `the residual ${r} after ${describeSite(s)} also feeds ${bad[0]}${u ? ` (${blockerOf(ix, u, refusedAt)})` : ''}; SP splits the whole residual stream or none of it`,
            bad[0],
          );
          break;
        }
      }
      if (reason) {
        live.delete(s);
        why.set(s, reason);
        changed = true;
      }
    }
  }
  return why;
}

export const sequenceParallelism: Pass = (g, options, only) => {
  const opts = resolveOptions(g, options);
  const ix = indexGraph(g);
  const diagnostics: Diagnostic[] = [];
  const live = new Set<SpSite>();
  // Every node of a refused norm → why, for the message of a site that depends on it.
  const refusedAt = new Map<string, string>();
  for (const site of candidateSites(ix, opts)) {
    const refusal = siteRefusal(site, ix, opts);
    if (!refusal) {
      live.add(site);
      continue;
    }
    diagnostics.push(refusal);
    for (const n of site.norm.nodes) refusedAt.set(n, refusal.reason);
  }
  const why = unsplitStream(live, ix, refusedAt);
  if (only && [...live].some((s) => !only(s.ar.name))) {
    // One site alone would leave its neighbours reading a shard; the UI's per-site apply gets why.
    const d = diagnostic(
      PASS,
      [...live][0]?.ar.name ?? '',
      'sequence parallelism splits the whole residual stream: apply it to every site at once',
      undefined,
      `apply ${PASS}`,
    );
    return { graph: { ...g }, matches: [], diagnostics: [d] };
  }
  for (const [, d] of why) diagnostics.push(d);
  const edit = new GraphEdit(ix, PASS);
  const matches: Match[] = [];
  for (const s of live) matches.push(rewriteSite(s, edit, ix, opts));
  matches.sort((a, b) => ix.pos.get(a.site)! - ix.pos.get(b.site)!);
  const graph = edit.commit();
  // Every all-reduce left: why it was not split.
  const explained = new Set(diagnostics.map((d) => d.node));
  const out = indexGraph(graph);
  for (const ar of graph.nodes) {
    if (ar.op === ALL_REDUCE && !explained.has(ar.name))
      diagnostics.push({ ...explainAllReduce(ar, out, opts), pass: PASS });
  }
  return { graph, matches, diagnostics };
};

/** What stopped a norm from being split, for the message of a site that depends on it. */
function blockerOf(ix: GraphIndex, from: Node, refusedAt: Map<string, string>): string {
  const r = refusedAt.get(from.name);
  const norm = findNorms(ix).occurrences.find((o) => o.nodes.includes(from.name));
  const named = norm?.anchor ?? from.name;
  if (r) return `${named} is not split: ${r}`;
  // A norm whose input reaches it through a slice of the all-reduce (GPT-OSS before the fix).
  const src = norm && isRef(norm.input) ? ix.byName.get(norm.input.name) : undefined;
  if (src?.op === SLICE && isRef(src.args[0]!) && ix.byName.get(src.args[0].name)?.op === ALL_REDUCE) {
    return `the norm ${named} is not split: ${src.name} (aten.slice.Tensor) sits between ${src.args[0].name} and it; run slice-hoist or moe-unpad`;
  }
  if (norm) return `${named} is a norm the pass does not split`;
  const target = from.args[0];
  if (from.op === COPY_ && target && isRef(target) && ix.graph.inputs.some((i) => i.name === target.name)) {
    // Functionalization's write-back of a norm that mutates the residual input in place.
    return `${from.name} writes it back into the graph input ${target.name}, which the norm mutated in place: a [T/N, H] shard cannot be written into the whole input (vLLM's functional norms, vLLM IR #36823, leave no write-back)`;
  }
  return `${from.name} (${from.op}) needs the whole tensor`;
}

/**
 * all_reduce → norm becomes reduce_scatter → the same norm occurrence on the shard → all_gather of
 * its normed output. Whatever the norm's form, its nodes are made again under their own names,
 * reading the shard (and this rank's rows of a whole input residual), their [T, H] types now
 * [T/N, H]; the new residual keeps its name, so the next norm reads it as before, now a shard.
 */
function rewriteSite(s: SpSite, edit: GraphEdit, ix: GraphIndex, opts: ResolvedOptions): Match {
  const { ar, norm } = s;
  const full = tensorOf(ix, ref(ar.name))!;
  const shardOf = (n: Node) =>
    n.type?.kind === 'tensor' && n.type.shape[TOKEN_DIM] === full.shape[TOKEN_DIM]
      ? shardedType(n.type, opts.worldSize)
      : n.type;
  const collKw = { dim: TOKEN_DIM, world_size: opts.worldSize, group_name: reduceGroup(ar) ?? opts.tpGroup };
  const rs = edit.make(
    edit.fresh('reduce_scatter'),
    REDUCE_SCATTER,
    [ar.args[0]!],
    collKw,
    [ar.name],
    shardedType(full, opts.worldSize),
  );
  const made: Node[] = [rs];
  const swaps = new Map<string, Arg>([[ar.name, ref(rs.name)]]);
  if (s.inputResidual === 'whole') {
    // This rank's rows of the whole input: vLLM's prefix slice would give every rank rank 0's.
    const chunk = edit.make(
      edit.fresh('sequence_parallel_chunk_impl'),
      SEQUENCE_PARALLEL_CHUNK,
      [ref(s.residualIn!)],
      {},
      [ar.name, norm.anchor],
      shardedType(tensorOf(ix, ref(s.residualIn!))!, opts.worldSize),
    );
    made.push(chunk);
    swaps.set(s.residualIn!, ref(chunk.name));
  }
  const swap = (a: Arg) => mapArg(a, (leaf) => (isRef(leaf) ? (swaps.get(leaf.name) ?? leaf) : leaf));
  const nodes = [...norm.nodes, ...(s.quant?.nodes ?? [])];
  for (const name of nodes) {
    const n = ix.byName.get(name)!;
    const kwargs = Object.fromEntries(Object.entries(n.kwargs).map(([k, v]) => [k, swap(v)]));
    made.push(edit.make(n.name, n.op, n.args.map(swap), kwargs, [ar.name, n.name], shardOf(n)));
  }
  const gathered = s.quant ? s.quant.outputs.quant : norm.outputs.normed;
  if (gathered !== undefined) {
    const t = ix.types.get(gathered);
    const ag = edit.make(edit.fresh('all_gather'), ALL_GATHER, [ref(gathered)], collKw, [gathered], t);
    made.push(ag);
    edit.replaceUses(gathered, ref(ag.name));
  }
  // First layer: the residual stream read the all-reduce; it reads the shard now.
  if (s.kind === 'first') edit.replaceUses(ar.name, ref(rs.name));
  edit.insertBefore(norm.nodes[0]!, ...made);
  const consumed = [ar.name, ...nodes];
  edit.remove(...consumed);
  return { pass: PASS, site: ar.name, consumed, produced: made.map((n) => n.name) };
}
