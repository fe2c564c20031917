// Attention and rotary embedding: vLLM's rotary_embedding (query and key rotated in place by the
// position's row of cos_sin_cache) and the reference attention of one prefill sequence.

import type { Arg } from '../../graph/ir.ts';
import { noKernel, tensorValue as T, type LoweredOp, type Lowering, type Value } from './lowering.ts';

/**
 * attn-quant's NVFP4 output (output_block_scale set, AttnNvfp4QuantPattern): the e2m1 packing and
 * swizzled e4m3 block scales have no emulated kernel yet; the node is fed from its annotated types.
 */
const NVFP4_OUTPUT = noKernel(
  'no kernel: NVFP4 output (two e2m1 values a byte with swizzled e4m3 block scales) has no emulated kernel yet',
);

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
      if (c.arg(6) !== null) return NVFP4_OUTPUT.lower(b, c);
      // output_scale (attn-quant's FP8 pattern): the kernel quantizes what it would have stored.
      const scale =
        c.arg(5) === null ? null : c.tensor(5, 'output_scale', { role: 'norm-weight', shape: [1] });
      const out = b.newStorage(`${c.node.name}.output`, q.dtype, q.shape);
      b.push(c.node, { kernel: 'attention', q, k, v, ...(scale ? { scale } : {}), out: out.storage });
      return { t: 'tuple', items: [{ t: 'none' }, T(out), { t: 'none' }] };
    },
  },
} satisfies Partial<Record<LoweredOp, Lowering>>;
