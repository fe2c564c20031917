// The one place for run sizes. A graph is written at the model's real sizes (hidden 2880, padded
// 3072, 32 experts…); a preset maps those sizes to the sizes a run uses, binds the symbolic token
// dim, and gives the MoE sizes the graph does not show (top-k, intermediate size).

import { ROPE_CACHE_ROWS } from '../graph/samples/models.ts';

export type PresetName = 'tiny' | 'layer';

export interface Preset {
  name: PresetName;
  /** Real dim → run dim. Dims not listed keep their size. Integer args equal to a key (slice ends, view sizes) map too. */
  dims: ReadonlyMap<number, number>;
  /** Default binding of the symbolic token dim (`s72`). */
  tokens: number;
  /** Experts each token is routed to. */
  topK: number;
  /** Full (unsharded) MoE intermediate size; each rank holds intermediate/tp rows. */
  intermediate: number;
  /** Range of token ids fed to embedding. */
  vocab: number;
  doc: string;
}

/** GPT-OSS sizes as they appear in the graphs. */
export const GPT_OSS = {
  hidden: 2880,
  hiddenPadded: 3072,
  experts20b: 32,
  experts120b: 128,
  intermediate: 2880,
  vocab: 201088,
  topK: 4,
} as const;

/** Positions the tiny preset feeds RoPE: token positions are seeded in [0, rows). */
const ROPE_ROWS_TINY = 32;

export const PRESETS: Record<PresetName, Preset> = {
  // Sizes that are not multiples of any tile or vector width, so every kernel's edge paths run.
  tiny: {
    name: 'tiny',
    dims: new Map([
      // Expert counts keep their size: 32 is also the head count, and sizes map globally.
      [GPT_OSS.hidden, 40],
      [GPT_OSS.hiddenPadded, 48],
      // The vocabulary, whole and as each rank's shard of the vocab-parallel embedding.
      [GPT_OSS.vocab, 97],
      [GPT_OSS.vocab / 2, 97],
      [GPT_OSS.vocab / 4, 97],
      [GPT_OSS.vocab / 8, 97],
      // RoPE's cache needs a row per position fed, not the model's 131072: at full size its
      // seeding and the rotary kernel's reads outweigh the whole rewritten part of a run.
      [ROPE_CACHE_ROWS, ROPE_ROWS_TINY],
    ]),
    tokens: 7,
    topK: 4,
    intermediate: 120,
    vocab: 97,
    doc: `tests: T=7, hidden 40 (padded 48), experts as the model (32 / 128) top-4, intermediate 120 (splits over 1-6 and 8 ranks), RoPE cache ${ROPE_ROWS_TINY} positions`,
  },
  layer: {
    name: 'layer',
    dims: new Map(),
    tokens: 64,
    topK: GPT_OSS.topK,
    intermediate: GPT_OSS.intermediate,
    vocab: GPT_OSS.vocab,
    doc: 'one GPT-OSS-20B layer: hidden 2880 (padded 3072), 32 experts top-4, intermediate 2880, T=64',
  },
};

export function presetDim(p: Preset, d: number): number {
  return p.dims.get(d) ?? d;
}
