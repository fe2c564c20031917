// The paged KV cache write (vLLM's reshape_and_cache_flash, csrc/cache_kernels.cu, the kernel
// unified_kv_cache_update calls): each token's row of x ([T, H_kv · D]) into the cache
// [num_blocks · block_size, H_kv · D] at row slots[t]; a slot < 0 (PAD_SLOT_ID, a padded token) is
// skipped, as vLLM's kernel returns for it. One thread per output element, written in pairs
// (elementwise.ts pairKernelWgsl): the cache's row s takes the last token whose slot is s, else
// keeps its value. vLLM's slot mappings never repeat a slot; "the last token" only makes a repeat
// defined, the same on every backend.
//
// Bind layout:
//   @binding(0) prm: KvCacheParams  (KV_CACHE_PARAMS below)
//   @binding(1) out                  the cache after the write, contiguous
//   @binding(2) cache                the cache before it, contiguous from cacheOffset
//   @binding(3) x                    the tokens' rows, contiguous from xOffset
//   @binding(4) slots                slot_mapping [T], contiguous from slotsOffset

import type { WgslDType } from './dtype.ts';
import { pairKernelWgsl } from './elementwise.ts';
import { paramStruct } from './params.ts';

export const KV_CACHE_PARAMS = paramStruct('KvCacheParams', {
  n: 'u32',
  width: 'u32',
  tokens: 'u32',
  cacheOffset: 'u32',
  xOffset: 'u32',
  slotsOffset: 'u32',
});

export function kvCacheWgsl(out: WgslDType, cache: WgslDType, x: WgslDType, slots: WgslDType): string {
  return pairKernelWgsl({
    params: KV_CACHE_PARAMS.wgsl,
    out,
    inputs: [
      ['cache', cache],
      ['x', x],
      ['slots', slots],
    ],
    fns: `fn kv_value(i: u32) -> f32 {
  let W = prm.width;
  let row = i32(i / W); let c = i % W;
  var v = ld_cache(prm.cacheOffset + i);
  for (var t = 0u; t < prm.tokens; t++) {
    if (i32(ld_slots(prm.slotsOffset + t)) == row) { v = ld_x(prm.xOffset + t * W + c); }
  }
  return v;
}`,
    value: 'kv_value(i)',
  });
}
