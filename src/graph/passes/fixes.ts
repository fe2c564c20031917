// The two fixes of the blocker between GPT-OSS's MoE all-reduce and its norm, beside the original:
// vLLM PR #28841 hoists the slice above the all-reduce (reverted: it broke LoRA TP tests), vLLM
// #30647 removes the pad and the slice (the MoE reads and writes the unpadded hidden size). Each
// is a pipeline ending in the all-reduce + RMSNorm fusion, so their fused sites compare directly.

import type { PassName } from './pipeline.ts';

export type FixId = 'original' | 'slice-hoist' | 'moe-unpad';

export interface Fix {
  label: string;
  passes: PassName[];
  doc: string;
}

export const FIXES: Record<FixId, Fix> = {
  original: {
    label: 'original',
    passes: ['noop-elimination', 'allreduce-rmsnorm'],
    doc: 'vLLM before the fix: pad → MoE → all_reduce → slice → norm; the slice keeps the MoE all-reduce from fusing',
  },
  'slice-hoist': {
    label: 'PR #28841 (slice hoist)',
    passes: ['noop-elimination', 'slice-hoist', 'allreduce-rmsnorm'],
    doc: 'the slice moves above the all-reduce: it reduces 2880 of 3072 columns and fuses with the norm',
  },
  'moe-unpad': {
    label: '#30647 (re-land: unpadded MoE)',
    passes: ['noop-elimination', 'moe-unpad', 'allreduce-rmsnorm'],
    doc: 'no pad and no slice: the MoE reads and writes [T, 2880], the all-reduce fuses with the norm',
  },
};

export const FIX_ORDER: FixId[] = ['original', 'slice-hoist', 'moe-unpad'];
