// The paged KV cache: vLLM's unified_kv_cache_update (vllm/model_executor/layers/attention/
// attention.py: the layer's kv_cache and the batch's slot_mapping come from the forward context,
// then reshape_and_cache_flash, csrc/cache_kernels.cu) and ROCm's fused rotary + cache write
// (fused_rope_and_unified_kv_cache_update, vllm/compilation/passes/fusion/rope_kvcache_fusion.py),
// which RopeKVCacheFusionPass puts in place of the pair.
//
// The cache and the slot mapping are the layer's state in vLLM, not graph inputs, so the run seeds
// them per layer name on first use: key and value caches [num_blocks, block_size, H_kv, D] of
// seeded values (so a slot the batch does not write is checked to keep its value) and a slot
// mapping [T] of seeded slot ids ('indices' over every slot; a run given an input of that name,
// `slot_mapping(<layer>)`, uses it instead: a permutation of free slots with −1 for padded tokens,
// as vLLM's are). The caches after the run are outputs of the graph (named `kv_cache(<layer>).key`
// and `.value`), compared as any other: a graph before and after rope-kvcache seeds them alike.

import type { Node } from '../../graph/ir.ts';
import type { StorageDType, View } from '../../graph/opTable.ts';
import type { PlanBuilder } from './builder.ts';
import { rotaryTables } from './attention.ts';
import { contiguousStrides } from './layout.ts';
import { tensorValue as T, type LoweredOp, type Lowering, type OpCall, type Value } from './lowering.ts';

/** vLLM's default block size for CUDA / ROCm attention backends (vllm/config/cache.py). */
export const KV_BLOCK_SIZE = 16;

/** The slots the run's cache has: four per token, in whole blocks, so seeded slot ids rarely repeat. */
export const kvCacheBlocks = (tokens: number): number => Math.max(1, Math.ceil((4 * tokens) / KV_BLOCK_SIZE));

interface LayerCache {
  slots: View;
  key: View;
  value: View;
}

/** Each plan's layer caches, by layer name (the builder is the plan under construction). */
const CACHES = new WeakMap<PlanBuilder, Map<string, LayerCache>>();

export const kvCacheName = (layer: string, part: 'key' | 'value'): string => `kv_cache(${layer}).${part}`;
export const slotMappingName = (layer: string): string => `slot_mapping(${layer})`;

/** [T, H, D] as a contiguous view (a copy when it is not one). */
function tokenRows(b: PlanBuilder, c: OpCall, i: number, what: string, tokens?: number): View {
  const x = b.contiguous(c.tensor(i, what), c.node);
  if (x.shape.length !== 3 || (tokens !== undefined && x.shape[0] !== tokens))
    c.fail(
      `${what} [${x.shape}] must be [tokens${tokens === undefined ? '' : ` = ${tokens}`}, heads, head size]`,
    );
  return x;
}

/** The layer's cache, seeded on its first write. */
function layerCache(b: PlanBuilder, n: Node, layer: string, key: View, value: View): LayerCache {
  let byLayer = CACHES.get(b);
  if (!byLayer) CACHES.set(b, (byLayer = new Map()));
  const have = byLayer.get(layer);
  if (have) return have;
  const tokens = key.shape[0]!;
  const blocks = kvCacheBlocks(tokens);
  const slots = blocks * KV_BLOCK_SIZE;
  const cacheOf = (part: 'key' | 'value', x: View) =>
    b.seed(
      kvCacheName(layer, part),
      x.dtype,
      [blocks, KV_BLOCK_SIZE, x.shape[1]!, x.shape[2]!],
      { role: 'activation' },
      n,
    );
  const made: LayerCache = {
    slots: b.seed(slotMappingName(layer), 'i32', [tokens], { role: 'indices', range: slots }, n),
    key: cacheOf('key', key),
    value: cacheOf('value', value),
  };
  byLayer.set(layer, made);
  return made;
}

/** key and value written into the layer's cache; the caches after it become the graph's outputs. */
function writeCache(b: PlanBuilder, c: OpCall, layer: string, key: View, value: View): void {
  if (value.shape[0] !== key.shape[0] || value.shape[1] !== key.shape[1])
    c.fail(`key [${key.shape}] and value [${value.shape}] must have the same tokens and kv heads`);
  const cache = layerCache(b, c.node, layer, key, value);
  const write = (part: 'key' | 'value', x: View) => {
    const before = cache[part];
    if (before.shape[2] !== x.shape[1] || before.shape[3] !== x.shape[2] || before.dtype !== x.dtype)
      c.fail(
        `${part} [${x.shape}] does not fit the layer's ${part} cache [${before.shape}] (${before.dtype})`,
      );
    const out = b.newStorage(`${c.node.name}.${kvCacheName(layer, part)}`, before.dtype, before.shape);
    b.push(c.node, { kernel: 'kv_cache_write', cache: before, x, slots: cache.slots, out: out.storage });
    cache[part] = out;
    // The state after the last write is an output, as a piecewise graph's inputs written in place are.
    const name = kvCacheName(layer, part);
    b.values.set(name, T(out));
    if (!b.writtenInputs.includes(name)) b.writtenInputs.push(name);
  };
  write('key', key);
  write('value', value);
}

/** The empty tensor both ops return to order the attention after the write. */
const orderingTensor = (b: PlanBuilder, n: Node, dtype: StorageDType): Value =>
  T(b.seed(n.name, dtype, [0], { role: 'zeros' }, n));

const layerName = (c: OpCall, i: number): string => {
  const a = c.arg(i);
  return typeof a === 'string' ? a : c.fail(`layer_name ${JSON.stringify(a)} must be a string`);
};

/** [T, H, D] contiguous as the rotary kernel's rows [T, H · D]. */
const asRows = (x: View): View => {
  const shape = [x.shape[0]!, x.shape[1]! * x.shape[2]!];
  return { ...x, shape, strides: contiguousStrides(shape) };
};
const asHeads = (x: View, like: View): View => ({
  ...x,
  shape: like.shape,
  strides: contiguousStrides(like.shape),
});

export const KV_CACHE_LOWERINGS = {
  'vllm.unified_kv_cache_update.default': {
    lower: (b, c) => {
      const key = tokenRows(b, c, 0, 'key');
      const value = tokenRows(b, c, 1, 'value', key.shape[0]);
      writeCache(b, c, layerName(c, 2), key, value);
      return orderingTensor(b, c.node, key.dtype);
    },
  },
  // The fused op as the kernels of the pair it replaces: the rotary on query and key (the kernel
  // _C.rotary_embedding lowers to), then the cache write of the rotated key and the value; so the
  // fused graph is bitwise the pair's. Returns (the ordering tensor, query', key'), as
  // auto_functionalized of an op mutating query and key does.
  'vllm.fused_rope_and_unified_kv_cache_update.default': {
    lower: (b, c) => {
      const n = c.node;
      const query = tokenRows(b, c, 0, 'query');
      const tokens = query.shape[0]!;
      const key = tokenRows(b, c, 1, 'key', tokens);
      const value = tokenRows(b, c, 2, 'value', tokens);
      const headSize = query.shape[2]!;
      if (key.shape[2] !== headSize)
        c.fail(`query [${query.shape}] and key [${key.shape}] differ in head size`);
      const { cache, positions } = rotaryTables(
        b,
        c,
        { cache: 4, positions: 3, name: 'positions' },
        headSize,
      );
      const neox = c.arg(5) !== false;
      const rotate = (x: View, what: 'query' | 'key'): View => {
        const rows = asRows(x);
        const out = b.newStorage(`${n.name}.${what}`, x.dtype, rows.shape);
        b.push(n, { kernel: 'rotary', x: rows, positions, cache, headSize, neox, out: out.storage });
        return asHeads(out, x);
      };
      const q = rotate(query, 'query');
      const k = rotate(key, 'key');
      writeCache(b, c, layerName(c, 6), k, value);
      return { t: 'tuple', items: [orderingTensor(b, n, query.dtype), T(q), T(k)] };
    },
  },
} satisfies Partial<Record<LoweredOp, Lowering>>;
