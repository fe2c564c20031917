// Attention and rotary embedding: vLLM's rotary_embedding (query and key rotated in place by the
// position's row of cos_sin_cache), the fused QK-norm + RoPE, and the reference attention of one
// prefill sequence.

import type { Arg, Node } from '../../graph/ir.ts';
import { ref } from '../../graph/ir.ts';
import { forEachInput, forEachRef } from '../../graph/call.ts';
import type { View } from '../../graph/opTable.ts';
import type { PlanBuilder } from './builder.ts';
import { contiguousStrides, isContiguous, numelOf } from './layout.ts';
import {
  OpCall,
  tensorValue as T,
  type Lowered,
  type LoweredOp,
  type Lowering,
  type Value,
} from './lowering.ts';
import { QUANT_LOWERINGS } from './quant.ts';

const SCALED_FP4_QUANT = '_C.scaled_fp4_quant.default';

/**
 * attn-quant's NVFP4 output (output_block_scale set, AttnNvfp4QuantPattern): the attention output as
 * the unfused attention stores it (`out`, [T, H, D] in the model dtype), quantized by the very
 * lowering of the `_C.scaled_fp4_quant` it replaces — read as (output, input = out flattened to
 * [T, H · D], output_scale = the block-scale buffer, input_scale = the global scale) — so it takes
 * whatever block-scale layout that lowering runs, and is fed where that one is. Returns
 * (None, the packed e2m1 pairs as [T, H, D / 2], the block scales), the attention's mutated outputs.
 */
function nvfp4Output(b: PlanBuilder, c: OpCall, out: View): Lowered {
  const [T0, H, D] = out.shape as [number, number, number];
  const flat: View = { ...out, shape: [T0, H * D], strides: contiguousStrides([T0, H * D]) };
  // The flattened output as a value the quant's call reads by name (no FX name holds a dot).
  const input = `${c.node.name}.output`;
  b.values.set(input, T(flat));
  const args: Arg[] = [null, ref(input), c.arg(6), c.arg(5)];
  const quant = new OpCall(b, c.node, SCALED_FP4_QUANT, (i) => args[i]);
  const q = QUANT_LOWERINGS[SCALED_FP4_QUANT].lower(b, quant);
  if (q === 'unsupported' || q.t !== 'tuple') return 'unsupported';
  const [, packed, scale] = q.items as [Value, Value, Value];
  if (packed.t !== 'tensor') return 'unsupported';
  const heads = [T0, H, D / 2];
  return {
    t: 'tuple',
    items: [{ t: 'none' }, T({ ...packed.view, shape: heads, strides: contiguousStrides(heads) }), scale],
  };
}

/**
 * A fused rotary's cos_sin_cache (argument `at.cache`, [positions, rotary dims ≤ headSize], even) and
 * its positions (argument `at.positions`, ids into the cache's rows).
 */
export function rotaryTables(
  b: PlanBuilder,
  c: OpCall,
  at: { cache: number; positions: number; name: string },
  headSize: number,
): { cache: View; positions: View } {
  const cache = b.contiguous(c.tensor(at.cache, 'cos_sin_cache'), c.node);
  if (cache.shape.length !== 2 || cache.shape[1]! % 2 || cache.shape[1]! > headSize)
    c.fail(
      `cos_sin_cache [${cache.shape}] must be [positions, rotary dims ≤ ${headSize}] with an even rotary size`,
    );
  const positions = c.tensor(at.positions, at.name, { role: 'indices', range: cache.shape[0] });
  return { cache, positions };
}

/**
 * Whether `n` may write over `v`'s storage (Inductor's reinplacing of an auto_functionalized op):
 * v is the whole storage, and no value on it — the name `n` reads, an earlier view of it — is read
 * by a later node or returned. A fragment (no output list) returns what no node reads: never.
 */
function storageDeadAfter(b: PlanBuilder, n: Node, v: View): boolean {
  const st = b.storages.get(v.storage);
  if (!st || v.offset !== 0 || numelOf(v.shape) !== st.numel || !isContiguous(v)) return false;
  if (!b.graph.outputs || b.writtenInputs.includes(v.storage)) return false;
  const on = (x: Value | null | undefined): boolean =>
    !!x && ((x.t === 'tensor' && x.view.storage === v.storage) || (x.t === 'tuple' && x.items.some(on)));
  const names = new Set([...b.values].filter(([, x]) => on(x)).map(([name]) => name));
  let read = false;
  for (const m of b.graph.nodes.slice(b.graph.nodes.indexOf(n) + 1))
    forEachInput(m, (name) => (read ||= names.has(name)));
  for (const o of b.graph.outputs) forEachRef(o, (name) => (read ||= names.has(name)));
  return !read;
}

export const ATTENTION_LOWERINGS = {
  '_C.rotary_embedding.default': {
    lower: (b, c) => {
      const n = c.node;
      const cache = b.contiguous(c.tensor(4, 'cos_sin_cache'), n);
      if (cache.shape.length !== 2 || cache.shape[1] % 2)
        c.fail(`cos_sin_cache [${cache.shape}] must be [positions, rotary dims] with an even rotary size`);
      const positions = c.tensor(0, 'positions', { role: 'indices', range: cache.shape[0] });
      const headSize = c.symInt(c.arg(3), 0);
      const neox = c.arg(5) !== false;
      const rotate = (a: Arg, what: string): Value => {
        if (a === null) return { t: 'none' };
        const x = b.tensor(a, n, what);
        if (
          x.shape.length !== 2 ||
          x.shape[0] !== positions.shape[0] ||
          x.shape[1] % headSize ||
          cache.shape[1] > headSize
        )
          c.fail(
            `${what} [${x.shape}] must be [tokens = ${positions.shape[0]}, heads · ${headSize}] with at most ${headSize} rotary dims (cache [${cache.shape}])`,
          );
        const out = b.newStorage(`${n.name}.${what}`, x.dtype, x.shape);
        b.push(n, { kernel: 'rotary', x, positions, cache, headSize, neox, out: out.storage });
        return T(out);
      };
      return { t: 'tuple', items: [{ t: 'none' }, rotate(c.arg(1), 'query'), rotate(c.arg(2), 'key')] };
    },
  },
  // _C.fused_qk_norm_rope (QKNormRoPEFusionPass's replacement) as one qk_norm_rope step: qkv's q
  // and k heads normed and rotated, v copied, rounded where the pair it replaces rounds (its rms_norm
  // and rotary steps, KERNELS.qk_norm_rope), so the fused graph is bitwise the unfused one with the
  // custom rms_norm (within the native norm's 1 ulp of it otherwise). vLLM's CUDA kernel
  // (csrc/fused_qknorm_rope_kernel.cu) keeps the normed value in f32 and rounds once after the
  // rotation, where the pair rounds the norm, each product and the sum: on a GPU the two differ by
  // a few ulps (vLLM's own test holds them to atol = rtol = 1e-2 in bf16, 2e-3 in f16).
  '_C.fused_qk_norm_rope.default': {
    roles: { q_weight: 'norm-weight', k_weight: 'norm-weight' },
    lower: (b, c) => {
      const n = c.node;
      const qkv = b.contiguous(c.tensor(0, 'qkv'), n);
      const [hq, hk, hv, d] = [1, 2, 3, 4].map((i) => c.symInt(c.arg(i), 0)) as [
        number,
        number,
        number,
        number,
      ];
      const width = (hq + hk + hv) * d;
      if (qkv.shape.length !== 2 || qkv.shape[1] !== width)
        c.fail(`qkv [${qkv.shape}] must be [tokens, (${hq} + ${hk} + ${hv}) · ${d}]`);
      const { cache, positions } = rotaryTables(b, c, { cache: 8, positions: 10, name: 'position_ids' }, d);
      const weight = (i: number, what: string) => c.tensor(i, what, { role: 'norm-weight', shape: [d] });
      // In place where nothing after reads qkv (v then stays as it is), else into a new qkv.
      const out = storageDeadAfter(b, n, qkv) ? qkv : b.newStorage(`${n.name}.qkv`, qkv.dtype, qkv.shape);
      b.push(n, {
        kernel: 'qk_norm_rope',
        qkv,
        qWeight: weight(6, 'q_weight'),
        kWeight: weight(7, 'k_weight'),
        positions,
        cache,
        qHeads: hq,
        kHeads: hk,
        headSize: d,
        eps: c.num(5, 1e-6),
        neox: c.arg(9) !== false,
        out: out.storage,
      });
      return { t: 'tuple', items: [{ t: 'none' }, T(out)] };
    },
  },
  'vllm.unified_attention_with_output.default': {
    lower: (b, c) => {
      const q = c.tensor(0, 'query'),
        k = c.tensor(1, 'key'),
        v = c.tensor(2, 'value');
      const [Tq, H, D] = q.shape;
      const ok =
        q.shape.length === 3 &&
        k.shape.length === 3 &&
        k.shape.join() === v.shape.join() &&
        k.shape[0] === Tq &&
        k.shape[2] === D &&
        H % k.shape[1] === 0;
      if (!ok)
        c.fail(
          `query [${q.shape}], key [${k.shape}], value [${v.shape}] must be [tokens, heads, head size] with the query heads a multiple of the kv heads`,
        );
      const nvfp4 = c.arg(6) !== null;
      // output_scale (attn-quant's FP8 pattern): the kernel quantizes what it would have stored.
      const scale =
        nvfp4 || c.arg(5) === null ? null : c.tensor(5, 'output_scale', { role: 'norm-weight', shape: [1] });
      const out = b.newStorage(`${c.node.name}.output`, q.dtype, q.shape);
      b.push(c.node, { kernel: 'attention', q, k, v, ...(scale ? { scale } : {}), out: out.storage });
      if (nvfp4) return nvfp4Output(b, c, out);
      return { t: 'tuple', items: [{ t: 'none' }, T(out), { t: 'none' }] };
    },
  },
} satisfies Partial<Record<LoweredOp, Lowering>>;
