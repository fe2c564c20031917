// sequence-parallelism, after vLLM's SequenceParallelismPass (sequence_parallelism.py):
//
//   rms_norm(all_reduce(x))                       → all_gather(rms_norm(reduce_scatter(x)))
//       the first layer's norm; readers of the all-reduce (the residual stream) read the
//       reduce-scattered shard instead (vLLM's FirstAllReduceRMSNormPattern returns it).
//   fused_add_rms_norm(all_reduce(x), residual)   → all_gather(fused_add_rms_norm(reduce_scatter(x), residual)[1]),
//       [2] the new residual, now a [T/N, H] shard (MiddleAllReduceRMSNormPattern, and its
//       first-output-only form for the final norm).
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
import { isRef, numberOf, ref } from '../ir.ts';
import type { Bindings, GraphIndex, NodePat } from '../match.ts';
import { P, findAll, getitemReaders, indexGraph, usersOfValue, tensorOf } from '../match.ts';
import { AUTO_FUNCTIONALIZED } from '../call.ts';
import { GraphEdit } from './graphEdit.ts';
import type { ResolvedOptions } from './options.ts';
import { diagnostic, resolveOptions } from './options.ts';
import type { Diagnostic, Match, Pass } from './pipeline.ts';
import { explainAllReduce } from './diagnostics.ts';
import { reduceGroup, tpGroupGate } from './fusionGate.ts';
import { elementSize } from './flashinferLimits.ts';
import {
  SP_EPSILONS,
  TOKEN_DIM,
  shardDim,
  shardedType,
  splitRefusal,
  spThreshold,
} from './sequenceParallelGate.ts';
import {
  ALL_GATHER,
  ALL_REDUCE,
  FUSED_ADD_RMS_NORM,
  REDUCE_SCATTER,
  RMS_NORM,
  SEQUENCE_PARALLEL_CHUNK,
} from './patternOps.ts';

const COPY_ = 'aten.copy_.default';

export const PASS = 'sequence-parallelism';

interface SpSite {
  kind: 'first' | 'middle';
  ar: Node;
  norm: Node;
  /** getitem readers of the norm by index. */
  readers: { node: Node; index: number }[];
  /** The norm's residual input (middle), a value name. */
  residualIn?: string;
  /** Values carrying this site's residual out: the all-reduce itself (first), getitem [2] (middle). */
  residualOut: string[];
  /** The first norm's output buffer (empty_like of the all-reduce), dropped with it. */
  buffer?: string;
  /** A residual that is a graph input: the whole [T, H] tensor (each rank takes its chunk) or a shard already. */
  inputResidual?: 'whole' | 'shard';
}

const SP_GROUP_WHY =
  "vLLM's sequence-parallelism patterns match tensor_model_parallel_all_reduce only, and split the residual stream over the TP ranks";

const arInput = () => P.node(ALL_REDUCE, { as: 'ar', args: [P.any('x'), P.any('group')] });
const PATTERNS: { kind: SpSite['kind']; pattern: NodePat }[] = [
  {
    kind: 'first',
    pattern: P.af(
      RMS_NORM,
      { result: P.any('result'), input: arInput(), weight: P.any('weight'), epsilon: P.any('eps') },
      { as: 'norm' },
    ),
  },
  {
    kind: 'middle',
    pattern: P.af(
      FUSED_ADD_RMS_NORM,
      { input: arInput(), residual: P.any('residual'), weight: P.any('weight'), epsilon: P.any('eps') },
      { as: 'norm' },
    ),
  },
];

/** Why this matched site may not be split (gates and structure), or null. */
function siteRefusal(
  kind: SpSite['kind'],
  b: Bindings,
  ix: GraphIndex,
  opts: ResolvedOptions,
): Diagnostic | null {
  const ar = b.nodes['ar']!,
    norm = b.nodes['norm']!;
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
  const eps = numberOf(b.values['eps']);
  if (eps === undefined || !(SP_EPSILONS as readonly number[]).includes(eps)) {
    return d(
      `eps ${eps ?? JSON.stringify(b.values['eps'])}: vLLM registers the sequence-parallelism patterns for eps 1e-05 and 1e-06 only`,
      'eps',
    );
  }
  const x = tensorOf(ix, b.values['x']);
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
  const readers = getitemReaders(ix, norm);
  const allowed = kind === 'first' ? [1] : [1, 2];
  if (!readers || readers.some((r) => !allowed.includes(r.index))) {
    return d(
      `${norm.name}'s results are read other than as the normed output${kind === 'first' ? '' : ' and residual'}`,
      norm.name,
    );
  }
  const input = kind === 'middle' ? inputResidual(ix, b.values['residual'], x, opts.worldSize) : undefined;
  if (input && 'refusal' in input) return d(input.refusal, residualName(b.values['residual']));
  const others = usersOfValue(ix, ar.name).filter((u) => u !== norm.name);
  if (kind === 'middle' && others.length > 0) {
    return d(
      `${ar.name} has another user, ${others.join(', ')}, that needs the whole reduced tensor; after the split each rank holds 1/${opts.worldSize} of it`,
      others[0],
    );
  }
  return null;
}

const residualName = (a: Arg | undefined) => (a && isRef(a) ? a.name : undefined);

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

function describeSite(s: SpSite) {
  return `${s.ar.name} → ${s.norm.name}`;
}

export const sequenceParallelism: Pass = (g, options, only) => {
  const opts = resolveOptions(g, options);
  const ix = indexGraph(g);
  const diagnostics: Diagnostic[] = [];
  const sites: SpSite[] = [];
  const refusedAt = new Map<string, string>();
  for (const { kind, pattern } of PATTERNS) {
    for (const { bindings: b } of findAll(pattern, ix)) {
      const refusal = siteRefusal(kind, b, ix, opts);
      if (refusal) {
        diagnostics.push(refusal);
        refusedAt.set(b.nodes['norm']!.name, refusal.reason);
        continue;
      }
      const norm = b.nodes['norm']!,
        ar = b.nodes['ar']!;
      const readers = getitemReaders(ix, norm)!;
      const residual = b.values['residual'];
      const buf = resultBuffer(ix, norm);
      const input =
        kind === 'middle'
          ? inputResidual(ix, residual, tensorOf(ix, b.values['x'])!, opts.worldSize)
          : undefined;
      sites.push({
        ...(buf ? { buffer: buf.name } : {}),
        ...(input && 'split' in input ? { inputResidual: input.split } : {}),
        kind,
        ar,
        norm,
        readers,
        ...(kind === 'middle' && residual && isRef(residual) ? { residualIn: residual.name } : {}),
        residualOut:
          kind === 'first' ? [ar.name] : readers.filter((r) => r.index === 2).map((r) => r.node.name),
      });
    }
  }
  // The residual stream must be split end to end: drop sites whose residual comes from, or
  // flows to, anything but another split site, until nothing changes.
  const live = new Set(sites);
  const why = new Map<SpSite, Diagnostic>();
  for (let changed = true; changed;) {
    changed = false;
    const outOf = new Map<string, SpSite>();
    const inOf = new Map<string, SpSite>();
    for (const s of live) {
      for (const r of s.residualOut) outOf.set(r, s);
      if (s.residualIn) inOf.set(s.residualIn, s);
    }
    for (const s of [...live]) {
      let reason: Diagnostic | undefined;
      if (s.residualIn !== undefined && !s.inputResidual && !outOf.has(s.residualIn)) {
        const from = ix.byName.get(s.residualIn);
        reason = diagnostic(
          PASS,
          s.ar.name,
          `${s.norm.name}'s residual ${s.residualIn} does not come from a norm the pass splits${from ? ` (${blockerOf(ix, from, refusedAt)})` : ''}; SP splits the whole residual stream or none of it`,
          s.residualIn,
        );
      }
      if (!reason) {
        for (const r of s.residualOut) {
          const bad = usersOfValue(ix, r).filter((u) => {
            if (u === s.norm.name || u === s.buffer) return false;
            const reader = [...live].find((o) => o.norm.name === u && o.residualIn === r);
            return !reader;
          });
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
      }
      if (reason) {
        live.delete(s);
        why.set(s, reason);
        changed = true;
      }
    }
  }
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
  const left = graph.nodes.filter((n) => n.op === ALL_REDUCE);
  const explained = new Set(diagnostics.map((d) => d.node));
  const out = indexGraph(graph);
  for (const ar of left) {
    if (!explained.has(ar.name)) {
      const e = explainAllReduce(ar, out, opts);
      diagnostics.push({ ...e, pass: PASS });
    }
  }
  return { graph, matches, diagnostics };
};

/** rms_norm's output buffer when it is a fresh empty tensor read by the norm alone. */
function resultBuffer(ix: GraphIndex, norm: Node): Node | undefined {
  const buf = norm.kwargs['result'];
  const n = buf && isRef(buf) ? ix.byName.get(buf.name) : undefined;
  if (!n || usersOfValue(ix, n.name).length !== 1) return undefined;
  return n.op === 'aten.empty_like.default' || n.op === 'aten.empty.memory_format' ? n : undefined;
}

/** What stopped a norm from being split, for the message of a site that depends on it. */
function blockerOf(ix: GraphIndex, from: Node, refusedAt: Map<string, string>): string {
  let n: Node = from;
  // getitem [2] of a norm: name the norm.
  if (n.op === 'getitem' && isRef(n.args[0]!)) n = ix.byName.get(n.args[0].name) ?? n;
  const r = refusedAt.get(n.name);
  if (r) return `${n.name} is not split: ${r}`;
  // A norm whose input reaches it through a slice of the all-reduce (GPT-OSS before the fix).
  const input = n.kwargs['input'];
  const src = input && isRef(input) ? ix.byName.get(input.name) : undefined;
  if (
    src?.op === 'aten.slice.Tensor' &&
    isRef(src.args[0]!) &&
    ix.byName.get(src.args[0].name)?.op === ALL_REDUCE
  ) {
    return `the norm ${n.name} is not split: ${src.name} (aten.slice.Tensor) sits between ${src.args[0].name} and it; run slice-hoist or moe-unpad`;
  }
  if (n.op === AUTO_FUNCTIONALIZED) return `${n.name} is a norm the pass does not split`;
  const target = n.args[0];
  if (n.op === COPY_ && target && isRef(target) && ix.graph.inputs.some((i) => i.name === target.name)) {
    // Functionalization's write-back of a norm that mutates the residual input in place.
    return `${n.name} writes it back into the graph input ${target.name}, which the norm mutated in place: a [T/N, H] shard cannot be written into the whole input (vLLM's functional norms, vLLM IR #36823, leave no write-back)`;
  }
  return `${n.name} (${n.op}) needs the whole tensor`;
}

function rewriteSite(s: SpSite, edit: GraphEdit, ix: GraphIndex, opts: ResolvedOptions): Match {
  const { ar, norm } = s;
  const x = ar.args[0] as Arg,
    group = (ar.args[1] ?? ar.kwargs['group_name'] ?? 'tp:0') as Arg;
  const full = tensorOf(ix, ref(ar.name))!;
  const shard = shardedType(full, opts.worldSize);
  const from = [ar.name, norm.name];
  const collKw = { dim: TOKEN_DIM, world_size: opts.worldSize, group_name: group };
  const rs = edit.make(edit.fresh('reduce_scatter'), REDUCE_SCATTER, [x], collKw, [ar.name], shard);
  const made: Node[] = [rs];
  const consumed = [ar.name, norm.name];
  const kw: Record<string, Arg> = { ...norm.kwargs, input: ref(rs.name) };
  if (s.kind === 'first') {
    if (s.buffer) consumed.push(s.buffer);
    const out = edit.make(
      edit.fresh('empty_like'),
      'aten.empty_like.default',
      [ref(rs.name)],
      { pin_memory: false },
      // It stands for the norm's old output buffer (the diff pairs them by this provenance).
      s.buffer ? [...from, s.buffer] : from,
      shard,
    );
    made.push(out);
    kw['result'] = ref(out.name);
  }
  if (s.inputResidual === 'whole') {
    // This rank's rows of the whole input: vLLM's prefix slice would give every rank rank 0's.
    const chunk = edit.make(
      edit.fresh('sequence_parallel_chunk_impl'),
      SEQUENCE_PARALLEL_CHUNK,
      [ref(s.residualIn!)],
      {},
      from,
      shardedType(tensorOf(ix, ref(s.residualIn!))!, opts.worldSize),
    );
    made.push(chunk);
    kw['residual'] = ref(chunk.name);
  }
  const newNorm = edit.make(norm.name, AUTO_FUNCTIONALIZED, norm.args, kw, from, null);
  made.push(newNorm);
  for (const r of s.readers) {
    consumed.push(r.node.name);
    if (r.index === 2) {
      // The new residual keeps its name: the next norm reads it as before, now a shard.
      made.push(edit.make(r.node.name, 'getitem', [ref(newNorm.name), 2], {}, [r.node.name], shard));
    } else {
      const normed = edit.make(
        edit.fresh('getitem'),
        'getitem',
        [ref(newNorm.name), r.index],
        {},
        [r.node.name],
        shard,
      );
      const ag = edit.make(
        edit.fresh('all_gather'),
        ALL_GATHER,
        [ref(normed.name)],
        collKw,
        [r.node.name],
        r.node.type,
      );
      made.push(normed, ag);
      edit.replaceUses(r.node.name, ref(ag.name));
    }
  }
  // First layer: the residual stream read the all-reduce; it reads the shard now.
  if (s.kind === 'first') edit.replaceUses(ar.name, ref(rs.name));
  edit.insertBefore(norm.name, ...made);
  edit.remove(...consumed);
  return { pass: PASS, site: ar.name, consumed, produced: made.map((n) => n.name) };
}
