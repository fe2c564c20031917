// Model dimensions for the generated graphs: one table, from each model's Hugging Face config.json
// (openai/gpt-oss-20b, openai/gpt-oss-120b, meta-llama/Llama-3.1-8B, Qwen/Qwen3-8B, Qwen/Qwen3-30B-A3B).

export interface ModelDims {
  layers: number;
  hidden: number;
  heads: number;
  kvHeads: number;
  headDim: number;
  vocab: number;
  eps: number;
  /** Dense MLP intermediate size (Llama); per-expert intermediate size (GPT-OSS, Qwen3-MoE). */
  intermediate: number;
  /** MoE only: experts, and the hidden size the MoE kernel pads to (2880 → 3072 for MXFP4 tiles). */
  experts?: number;
  moePaddedHidden?: number;
  /** MoE only: experts each token is routed to. */
  topK?: number;
}

/**
 * Rows of RoPE's cos/sin cache: one per position up to max_position_embeddings (131072 in
 * gpt-oss-20b's and Llama-3.1's config.json). A run preset maps it down to the positions it feeds.
 */
export const ROPE_CACHE_ROWS = 131072;

const GPT_OSS_20B: ModelDims = {
  layers: 24,
  hidden: 2880,
  heads: 64,
  kvHeads: 8,
  headDim: 64,
  vocab: 201088,
  eps: 1e-5,
  intermediate: 2880,
  experts: 32,
  moePaddedHidden: 3072,
  topK: 4,
};

export const MODELS = {
  'gpt-oss-20b': GPT_OSS_20B,
  // gpt-oss-120b: gpt-oss-20b's layer with more layers and experts.
  'gpt-oss-120b': { ...GPT_OSS_20B, layers: 36, experts: 128 },
  // Qwen3-30B-A3B: head_dim 128 (not hidden / heads), moe_intermediate_size 768, no pad (2048 is
  // already a multiple of the MoE kernel's tile), q/k RMSNorm per head.
  'qwen3-moe': {
    layers: 48,
    hidden: 2048,
    heads: 32,
    kvHeads: 4,
    headDim: 128,
    vocab: 151936,
    eps: 1e-6,
    intermediate: 768,
    experts: 128,
    topK: 8,
  },
  // Qwen3-8B: Llama's shape with q/k RMSNorm per head, head_dim 128, eps 1e-6.
  qwen3: {
    layers: 36,
    hidden: 4096,
    heads: 32,
    kvHeads: 8,
    headDim: 128,
    vocab: 151936,
    eps: 1e-6,
    intermediate: 12288,
  },
  llama: {
    layers: 32,
    hidden: 4096,
    heads: 32,
    kvHeads: 8,
    headDim: 128,
    vocab: 128256,
    eps: 1e-5,
    intermediate: 14336,
  },
} satisfies Record<string, ModelDims>;

/** Where vLLM's linear layers shard under tensor parallelism of degree tp (rank 0's share). */
export function shardedDims(m: ModelDims, tp: number) {
  const q = m.heads / tp;
  // vLLM replicates KV heads when there are fewer than ranks.
  const kv = Math.max(1, m.kvHeads / tp);
  return {
    qHeads: q,
    kvHeads: kv,
    qSize: q * m.headDim,
    kvSize: kv * m.headDim,
    vocab: Math.ceil(m.vocab / tp),
    intermediate: m.intermediate / tp,
  };
}
