// The built-in graphs, ready on first load. Texts are bundled verbatim (`?raw`); generated graphs
// come from the sample generator (as FX text) so their size and TP degree are parameters, not files.

import { generateSample, type SampleQuant } from '../graph/samples/index.ts';
import prBefore from '../../fixtures/fx/seed/pr28841-before.fragment.txt?raw';
import prAfter from '../../fixtures/fx/seed/pr28841-after.fragment.txt?raw';
import qwenTp1 from '../../fixtures/fx/real/qwen2-paral1_layer1-r0.py?raw';
import qwenTp2 from '../../fixtures/fx/real/qwen2-paral2_layer1-r0.py?raw';
import qwenTp4 from '../../fixtures/fx/real/qwen2-paral4_layer1-r0.py?raw';

export interface Sample {
  id: string;
  label: string;
  group: string;
  /** Tensor-parallel degree the graph was captured or generated at: the default world-size gate. */
  tp: number;
  /** The sample's FX text. */
  load(): string;
  /** Made by the sample generator when chosen (seconds at hundreds of layers), not bundled text. */
  generated: boolean;
}

const text = (t: string) => ({ load: () => t, generated: false });

function gptOss(layers: number, tp: number, note = ''): Sample {
  return {
    id: `gpt-oss-20b-l${layers}-tp${tp}`,
    label: `GPT-OSS-20B · ${layers} layer${layers > 1 ? 's' : ''} · TP${tp}${note}`,
    group: 'Generated',
    tp,
    load: () => generateSample('gpt-oss-20b', { layers, tp }),
    generated: true,
  };
}

/** Llama-3.1-8B with quantized linears, 32 layers: vLLM's norm + quant and SiLU-mul + quant sites. */
function llamaQuant(quant: SampleQuant, tp: number, scheme: string): Sample {
  return {
    id: `llama-3.1-8b-${quant}-l32-tp${tp}`,
    label: `Llama-3.1-8B-style · ${scheme} · 32 layers · TP${tp}`,
    group: 'Generated',
    tp,
    load: () => generateSample('llama', { layers: 32, tp, quant }),
    generated: true,
  };
}

export const SAMPLES: Sample[] = [
  {
    id: 'pr-before',
    label: 'PR #28841 · before (fragment)',
    group: 'vLLM PR #28841',
    tp: 4,
    ...text(prBefore),
  },
  { id: 'pr-after', label: 'PR #28841 · after (fragment)', group: 'vLLM PR #28841', tp: 4, ...text(prAfter) },
  gptOss(1, 2),
  gptOss(1, 4),
  gptOss(1, 8),
  gptOss(24, 2),
  gptOss(24, 4),
  gptOss(24, 8),
  // Not a real model depth: a graph the size of the largest dumps, to feel the views at scale. The
  // count is the views' own (inputs drawn as boxes included); samples.test.ts checks it.
  gptOss(300, 4, ' (12,315 nodes)'),
  // GPT-OSS as ROCm on gfx942 serves it: the hidden padded 2880 → 2944 (a multiple of 128), the
  // padding act-padding fuses into AITER's add + RMSNorm + pad (one site per layer).
  {
    id: 'gpt-oss-20b-rocm-gfx942-l2-tp1',
    label: 'GPT-OSS-20B · ROCm gfx942 (hidden padded to 2944) · 2 layers · TP1',
    group: 'Generated',
    tp: 1,
    load: () => generateSample('gpt-oss-20b', { layers: 2, tp: 1, rocmPadMultiple: 128 }),
    generated: true,
  },
  {
    id: 'llama-3.1-8b-l32-tp4',
    label: 'Llama-3.1-8B-style · 32 layers · TP4',
    group: 'Generated',
    tp: 4,
    load: () => generateSample('llama', { layers: 32, tp: 4 }),
    generated: true,
  },
  llamaQuant('fp8-static', 1, 'FP8 static'),
  llamaQuant('fp8-static', 2, 'FP8 static'),
  llamaQuant('fp8-dynamic', 1, 'FP8 dynamic per-token'),
  llamaQuant('nvfp4', 1, 'NVFP4 (Blackwell, sm100)'),
  {
    id: 'qwen3-8b-l36-tp1',
    label: 'Qwen3-8B-style (QK-norm) · 36 layers · TP1',
    group: 'Generated',
    tp: 1,
    load: () => generateSample('qwen3', { layers: 36, tp: 1 }),
    generated: true,
  },
  {
    id: 'qwen3-moe-l48-tp4',
    label: 'Qwen3-30B-A3B-style MoE · 48 layers · TP4',
    group: 'Generated',
    tp: 4,
    load: () => generateSample('qwen3-moe', { layers: 48, tp: 4 }),
    generated: true,
  },
  {
    id: 'qwen2-tp1',
    label: 'Qwen2-1.5B · 1 layer · TP1 (real dump)',
    group: 'Real dumps',
    tp: 1,
    ...text(qwenTp1),
  },
  {
    id: 'qwen2-tp2',
    label: 'Qwen2-1.5B · 1 layer · TP2 (real dump)',
    group: 'Real dumps',
    tp: 2,
    ...text(qwenTp2),
  },
  {
    id: 'qwen2-tp4',
    label: 'Qwen2-1.5B · 1 layer · TP4 (real dump)',
    group: 'Real dumps',
    tp: 4,
    ...text(qwenTp4),
  },
];

export const DEFAULT_SAMPLE_ID = 'gpt-oss-20b-l1-tp4';

export function findSample(id: string): Sample | undefined {
  return SAMPLES.find((s) => s.id === id);
}
