// rope-kvcache, after vLLM's RopeKVCacheFusionPass (vllm/compilation/passes/fusion/rope_kvcache_fusion.py,
// vLLM main of spring 2026; fuse_rope_kvcache, ROCm). RopeReshapeKVCachePattern, registered for
// neox and not per attention layer whose backend says fused_rope_kvcache_supported():
//
//   q, k, v = split_with_sizes(qkv, [Hq·D, Hk·D, Hk·Dv], -1)
//   q', k' = rotary_embedding(positions, q, k, D, cache, is_neox)
//   dummy = unified_kv_cache_update(reshape(k', [-1, Hk, D]), reshape(v, [-1, Hk, Dv]), layer_name)
//   →
//   r = auto_functionalized(vllm.fused_rope_and_unified_kv_cache_update, query = reshape(q, …),
//       key = reshape(k, …), value = reshape(v, …), positions, cos_sin_cache, is_neox, layer_name)
//   dummy, q', k' = r[0], r[1], r[2]
//
// Functionalization writes the rotated q and k back into qkv (slice_scatter) and the heads views
// read splits of that; vLLM's ScatterSplitReplacementPass and SplitCoalescingPass, which run just
// before, turn those reads back into the rotary's outputs, and so does this pass. Gates: only ROCm's
// attention backends implement fused_rope_kvcache_supported(), so elsewhere the pass registers no
// pattern (the platform comes from the options, as vllmConfig.ts's --platform); the rotary is the
// custom op (the flag appends '+rotary_embedding', vllm/config/compilation.py); the pass runs only
// for compile ranges ending at or below rope_kvcache_fusion_max_token_num = 256
// (is_applicable_for_range: decode-size batches), which 'compile-range' evaluates and
// 'runtime-fallback' lists as unevaluated. A candidate is a rotary in a graph with a cache update; a
// graph whose attention writes the cache itself (no unified_kv_cache_update) has none to explain.

import type { Arg, Node } from '../ir.ts';
import { isRef, numberOf, ref } from '../ir.ts';
import type { GraphIndex } from '../match.ts';
import { indexGraph, tensorOf } from '../match.ts';
import { AUTO_FUNCTIONALIZED } from '../call.ts';
import type { Diagnostic, Match, Pass, PassOptions, PassResult } from './pipeline.ts';
import { diagnostic, DEFAULT_MAX_TOKENS } from './options.ts';
import { GraphEdit } from './graphEdit.ts';
import type { RotaryOccurrence } from './matchers/index.ts';
import { findRotaries } from './matchers/index.ts';
import { escapingRead, producer, readerNodes } from './matchers/occurrence.ts';
import {
  FUSED_ROPE_KV_CACHE_UPDATE,
  RESHAPE,
  SLICE_SCATTER,
  SPLIT_WITH_SIZES,
  UNIFIED_KV_CACHE_UPDATE,
  VIEW,
} from './patternOps.ts';

export const PASS = 'rope-kvcache';

/** PassConfig.rope_kvcache_fusion_max_token_num's default. */
export const ROPE_KVCACHE_MAX_TOKENS = 256;

const isReshape = (n: Node | undefined): n is Node => !!n && (n.op === RESHAPE || n.op === VIEW);
const nameOf = (a: Arg | undefined) => (a !== undefined && isRef(a) ? a.name : undefined);

/** What a getitem of a split of qkv (or of qkv with the rotated q and k scattered back) reads. */
type Part = { rotated: 'query' | 'key' } | { v: true };

/**
 * The part of qkv `a` is: split(qkv)[2] is v; split(slice_scatter(slice_scatter(qkv, q', …), k', …))[i]
 * is q', k' or v — as ScatterSplitReplacementPass reads it. `through` collects the nodes passed.
 */
function partOf(
  ix: GraphIndex,
  a: Arg,
  r: RotaryOccurrence,
  qkv: string,
  through: Set<string>,
): Part | undefined {
  if (nameOf(a) === r.outputs.query) return { rotated: 'query' };
  if (nameOf(a) === r.outputs.key) return { rotated: 'key' };
  const g = producer(ix, a);
  const split = g?.op === 'getitem' ? producer(ix, g.args[0]) : undefined;
  if (!g || !split || split.op !== SPLIT_WITH_SIZES) return undefined;
  const i = numberOf(g.args[1]);
  let base = split.args[0];
  const chain: Node[] = [];
  for (let s = producer(ix, base); s && s.op === SLICE_SCATTER; s = producer(ix, base)) {
    chain.push(s);
    base = s.args[0];
  }
  if (nameOf(base) !== qkv) return undefined;
  // Each scatter writes one rotated output back over its columns: q' at [0, Hq·D), k' after it.
  const written = new Set(chain.map((s) => nameOf(s.args[1])));
  const part: Part | undefined =
    i === 2
      ? { v: true }
      : i === 0 && written.has(r.outputs.query)
        ? { rotated: 'query' }
        : i === 1 && written.has(r.outputs.key)
          ? { rotated: 'key' }
          : undefined;
  if (part) for (const n of [g, split, ...chain]) through.add(n.name);
  return part;
}

interface Site {
  rotary: RotaryOccurrence;
  update: Node;
  qkvSplit: Node;
  /** The heads views the pattern returns: q (if read), k, v. */
  views: { query?: Node; key: Node; value: Node };
  nodes: string[];
}

/** The qkv split whose [0] and [1] the rotary rotates. */
function qkvSplitOf(ix: GraphIndex, r: RotaryOccurrence): Node | undefined {
  const q = producer(ix, r.query),
    k = producer(ix, r.key);
  const s = q?.op === 'getitem' ? producer(ix, q.args[0]) : undefined;
  if (!s || s.op !== SPLIT_WITH_SIZES || k?.op !== 'getitem' || producer(ix, k.args[0]) !== s)
    return undefined;
  return numberOf(q!.args[1]) === 0 && numberOf(k.args[1]) === 1 ? s : undefined;
}

/** The rotary's site with the cache update of its key, or why there is none. */
function siteAt(ix: GraphIndex, r: RotaryOccurrence): { site: Site } | { why: string; blocker: string } {
  const at = `the rotary at ${r.anchor}`;
  const updates = ix.byKey.get(UNIFIED_KV_CACHE_UPDATE) ?? [];
  if (r.form !== 'custom')
    return {
      why: `${at} is the native rotary: with fuse_rope_kvcache vLLM appends '+rotary_embedding' to custom_ops (vllm/config/compilation.py, issue #28042), so RopeReshapeKVCachePattern matches the custom rotary_embedding only`,
      blocker: r.anchor,
    };
  const split = qkvSplitOf(ix, r);
  const qkv = split && nameOf(split.args[0]);
  if (!split || !qkv)
    return { why: `${at} does not rotate [0] and [1] of one split of qkv`, blocker: r.anchor };
  for (const update of updates) {
    const through = new Set<string>();
    const kView = producer(ix, update.args[0]);
    const vView = producer(ix, update.args[1]);
    if (!isReshape(kView) || !isReshape(vView)) continue;
    const k = partOf(ix, kView.args[0]!, r, qkv, through);
    const v = partOf(ix, vView.args[0]!, r, qkv, through);
    if (!k || !('rotated' in k) || k.rotated !== 'key' || !v || !('v' in v)) continue;
    // The q heads view: a reshape of q' (or of the split of the scattered qkv that is q').
    const qThrough = new Set<string>();
    const qView = [...(ix.byKey.get(RESHAPE) ?? []), ...(ix.byKey.get(VIEW) ?? [])].find((n) => {
      const passed = new Set<string>();
      const p = partOf(ix, n.args[0]!, r, qkv, passed);
      if (!p || !('rotated' in p) || p.rotated !== 'query') return false;
      for (const x of passed) qThrough.add(x);
      return true;
    });
    const splitItems = readerNodes(ix, split.name);
    const nodes = [
      split.name,
      ...splitItems.map((n) => n.name),
      ...r.nodes,
      ...through,
      ...qThrough,
      kView.name,
      vView.name,
      ...(qView ? [qView.name] : []),
      update.name,
    ];
    const outputs = [update.name, kView.name, vView.name, ...(qView ? [qView.name] : [])];
    const escape = escapingRead(ix, [...new Set(nodes)], outputs);
    if (escape) {
      const by = escape.reader === 'output' ? "the graph's return" : escape.reader;
      return {
        why: `${escape.value}, inside the RoPE + KV-cache site at ${r.anchor}, is also read by ${by}: vLLM's pattern returns only the cache update and the q, k, v heads views, so Inductor's matcher refuses it`,
        blocker: escape.reader,
      };
    }
    return {
      site: {
        rotary: r,
        update,
        qkvSplit: split,
        views: { ...(qView ? { query: qView } : {}), key: kView, value: vView },
        nodes: [...new Set(nodes)],
      },
    };
  }
  return {
    why: `no unified_kv_cache_update reads ${at}'s rotated key (through a reshape to [T, kv heads, head_dim]) with v of the same qkv`,
    blocker: r.anchor,
  };
}

/** Why the site does not fuse on this platform or compile range, or null. */
function gateRefusal(
  ix: GraphIndex,
  s: Site,
  opts: PassOptions,
): { why: string; blocker: string } | { unevaluated?: string } {
  const platform = opts.platform ?? 'sm90';
  if (platform !== 'rocm')
    return {
      why: `platform ${platform}: only ROCm's attention backends implement fused_rope_kvcache_supported(), so RopeKVCacheFusionPass registers no pattern here (fuse_rope_kvcache is a ROCm fusion)`,
      blocker: 'platform',
    };
  const t = tensorOf(ix, s.qkvSplit.args[0])?.shape[0];
  const tokens = typeof t === 'number' ? t : (opts.maxTokens ?? DEFAULT_MAX_TOKENS);
  if ((opts.tokenGate ?? 'runtime-fallback') === 'runtime-fallback')
    return {
      unevaluated: `compile range: RopeKVCacheFusionPass runs only for ranges ending at ≤ ${ROPE_KVCACHE_MAX_TOKENS} tokens (rope_kvcache_fusion_max_token_num)`,
    };
  if (tokens > ROPE_KVCACHE_MAX_TOKENS)
    return {
      why: `the compile range ends at ${tokens} tokens > rope_kvcache_fusion_max_token_num ${ROPE_KVCACHE_MAX_TOKENS}: is_applicable_for_range keeps the fusion to decode-size batches`,
      blocker: 'compile-range',
    };
  return {};
}

function fuse(edit: GraphEdit, ix: GraphIndex, s: Site, unevaluated: string | undefined): Match {
  const { rotary: r, update, qkvSplit, views } = s;
  const from = [r.anchor, update.name];
  const sizes = qkvSplit.args[1]!;
  const split = edit.make(
    edit.fresh('split_with_sizes'),
    SPLIT_WITH_SIZES,
    [qkvSplit.args[0]!, sizes, -1],
    {},
    from,
    null,
  );
  const made: Node[] = [split];
  const heads = (i: number, like: Node | undefined, value: Node) => {
    const g = edit.make(edit.fresh('getitem'), 'getitem', [ref(split.name), i], {}, from, null);
    const shape = (like ?? value).args[1]!;
    const v = edit.make(
      edit.fresh('view'),
      RESHAPE,
      [ref(g.name), shape],
      {},
      from,
      edit.typeOf(ref((like ?? value).name)),
    );
    made.push(g, v);
    return v;
  };
  // Without a q heads view in the graph, q is viewed as rows of heads of the rotary's head size.
  const d = numberOf(r.headSize) ?? -1;
  const q = heads(0, views.query, views.key);
  if (!views.query) q.args[1] = [-1, (Number(tensorOf(ix, r.query)?.shape[1]) || d) / d, d];
  const k = heads(1, undefined, views.key);
  const v = heads(2, undefined, views.value);
  const fused = edit.make(
    edit.fresh('auto_functionalized'),
    AUTO_FUNCTIONALIZED,
    [{ kind: 'op', target: FUSED_ROPE_KV_CACHE_UPDATE }],
    {
      query: ref(q.name),
      key: ref(k.name),
      value: ref(v.name),
      positions: r.positions,
      cos_sin_cache: r.cosSinCache,
      is_neox: r.isNeox,
      layer_name: update.args[2] ?? '',
    },
    from,
    null,
  );
  made.push(fused);
  const result = (i: number, value: Node | undefined) => {
    if (value) made.push(edit.takeResult(fused.name, i, value.name, from));
  };
  result(0, update);
  result(1, views.query);
  result(2, views.key);
  edit.replaceUses(views.value.name, ref(v.name));
  edit.insertBefore(qkvSplit.name, ...made);
  edit.remove(...s.nodes);
  return {
    pass: PASS,
    site: r.anchor,
    consumed: [...s.nodes],
    produced: made.map((n) => n.name),
    ...(unevaluated ? { unevaluated: [unevaluated] } : {}),
  };
}

export const ropeKvCache: Pass = (g, opts): PassResult => {
  const ix = indexGraph(g);
  const edit = new GraphEdit(ix, PASS);
  const matches: Match[] = [];
  const diagnostics: Diagnostic[] = [];
  const rotaries = findRotaries(ix).occurrences;
  // A graph whose attention writes the cache itself (no unified_kv_cache_update) has no candidate.
  if (!ix.byKey.has(UNIFIED_KV_CACHE_UPDATE)) return { graph: edit.commit(), matches, diagnostics };
  for (const r of rotaries) {
    const found = siteAt(ix, r);
    const gate = 'site' in found ? gateRefusal(ix, found.site, opts) : found;
    if ('why' in gate) {
      diagnostics.push(diagnostic(PASS, r.anchor, gate.why, gate.blocker));
      continue;
    }
    if (!('site' in found) || !edit.claim(...found.site.nodes)) continue;
    matches.push(fuse(edit, ix, found.site, gate.unevaluated));
  }
  return { graph: edit.commit(), matches, diagnostics };
};
