// Generated vLLM-style post-grad graphs (FX text) for the models of the fusion case: GPT-OSS-20B
// and -120B (pad → moe_forward → all_reduce → slice → fused_add_rms_norm), a Llama-style
// dense model, a Qwen3 dense model (per-head q/k RMSNorm) and a Qwen3-MoE-like stack (Qwen3-30B-A3B: moe_forward → all_reduce → norm, no pad),
// for L layers at tensor-parallel degree tp (rank 0's graph; tokens symbolic, s72).

import type { FxWriter } from './fxWriter.ts';
import type { ModelDims } from './models.ts';
import { MODELS } from './models.ts';
import { gptOssGraph } from './gptOss.ts';
import { llamaGraph } from './llama.ts';
import { qwen3Graph } from './qwen3.ts';
import { qwen3MoeGraph } from './qwen3Moe.ts';
import type { SampleQuant } from './vllmBlocks.ts';

export type { SampleQuant } from './vllmBlocks.ts';

export type SampleModel = 'gpt-oss-20b' | 'gpt-oss-120b' | 'llama' | 'qwen3' | 'qwen3-moe';
export const SAMPLE_MODELS: SampleModel[] = ['gpt-oss-20b', 'gpt-oss-120b', 'llama', 'qwen3', 'qwen3-moe'];
const GENERATORS: Record<
  SampleModel,
  (m: ModelDims, layers: number, tp: number, quant: SampleQuant) => FxWriter
> = {
  'gpt-oss-20b': gptOssGraph,
  'gpt-oss-120b': gptOssGraph,
  llama: llamaGraph,
  qwen3: qwen3Graph,
  'qwen3-moe': qwen3MoeGraph,
};

/** The pipeline's default world size, so a sample rewritten with defaults is self-consistent. */
export const DEFAULT_SAMPLE_TP = 4;
/** Bounds a request (a 10,000-layer graph is ~300,000 nodes, past what the importer takes). */
export const MAX_SAMPLE_LAYERS = 4096;

/** GPT-OSS on ROCm: the hidden size padded for AITER's MoE GEMMs, to a multiple of 128 (gfx942) or 256 (gfx950). */
export const ROCM_PAD_MULTIPLES = [128, 256] as const;

/** quant: how the linears quantize (Llama only; the others are bf16). */
export function generateSample(
  model: SampleModel,
  opts: {
    layers?: number;
    tp?: number;
    quant?: SampleQuant;
    rocmPadMultiple?: (typeof ROCM_PAD_MULTIPLES)[number];
  } = {},
): string {
  const base: ModelDims | undefined = MODELS[model];
  if (opts.rocmPadMultiple !== undefined && base?.moePaddedHidden === undefined)
    throw new RangeError(`rocmPadMultiple pads a MoE's hidden size: ${model} has no padded MoE`);
  // vLLM pads to the next multiple (rocm_aiter_fusion.py: pad_size = multiple − hidden % multiple).
  const m =
    base && opts.rocmPadMultiple !== undefined
      ? { ...base, moePaddedHidden: Math.ceil(base.hidden / opts.rocmPadMultiple) * opts.rocmPadMultiple }
      : base;
  if (!m) throw new RangeError(`unknown model '${model}' (choose ${SAMPLE_MODELS.join(', ')})`);
  const layers = opts.layers ?? m.layers;
  const tp = opts.tp ?? DEFAULT_SAMPLE_TP;
  if (!Number.isInteger(layers) || layers < 1 || layers > MAX_SAMPLE_LAYERS) {
    throw new RangeError(`layers must be an integer from 1 to ${MAX_SAMPLE_LAYERS}, got ${layers}`);
  }
  if (
    !Number.isInteger(tp) ||
    tp < 1 ||
    m.heads % tp !== 0 ||
    (m.kvHeads % tp !== 0 && tp % m.kvHeads !== 0)
  ) {
    throw new RangeError(
      `tp ${tp} does not divide ${model}'s ${m.heads} attention heads and ${m.kvHeads} KV heads evenly`,
    );
  }
  if ((model === 'llama' || model === 'qwen3') && m.intermediate % tp !== 0)
    throw new RangeError(`tp ${tp} does not divide the MLP size ${m.intermediate}`);
  const quant = opts.quant ?? 'none';
  if (quant !== 'none' && model !== 'llama')
    throw new RangeError(`only the llama sample is quantized, not ${model}`);
  return GENERATORS[model](m, layers, tp, quant).text();
}
