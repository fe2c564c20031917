// Seeded inputs and weights. Every value is uniform(seed, stream, i) scaled per role, computed in
// f32 exactly as the WGSL seeding kernel does (one f32 multiply, one f32 add), then rounded to the
// storage dtype. Streams: fnv1a32(name) for replicated tensors, fnv1a32(`${name}#r${rank}`) for
// per-rank shards (linear weights and biases, embedding, fed activations, expert weights).
//
// Scales: activations and fed values 1; norm weights 1 + 0.25·u; linear weights and expert
// weights 1/√fan-in (fan-in = last dim; for W2 the full intermediate size, so partial sums over
// ranks add up to a unit-scale output); biases 0.1; token ids uniform integers in [0, range).

import { replicatedStream, shardStream, uniform } from './random.ts';
import type { InputRole, StorageDType } from './plan.ts';
import { roundBf16, roundF16 } from './bf16.ts';

export interface SeedRule {
  scale: number;
  offset: number;
}

export function seedRule(role: InputRole, shape: number[], fanIn?: number): SeedRule {
  switch (role) {
    case 'norm-weight':
      return { scale: 0.25, offset: 1 };
    case 'weight':
    case 'router-weight':
      return { scale: Math.fround(1 / Math.sqrt(fanIn ?? shape[shape.length - 1] ?? 1)), offset: 0 };
    case 'bias':
    case 'router-bias':
      return { scale: 0.1, offset: 0 };
    case 'zeros':
      return { scale: 0, offset: 0 };
    default:
      return { scale: 1, offset: 0 };
  }
}

export function seedStream(name: string, perRank: boolean, rank: number): number {
  return perRank ? shardStream(name, rank) : replicatedStream(name);
}

export function roundTo(dtype: StorageDType, x: number): number {
  switch (dtype) {
    case 'bf16':
      return roundBf16(x);
    case 'f16':
      return roundF16(x);
    case 'f32':
      return Math.fround(x);
    case 'i32':
      return Math.trunc(x);
  }
}

/** One seeded value, rounded to `dtype`; token ids when `range` is given. */
export function seededValue(
  seed: number,
  stream: number,
  i: number,
  rule: SeedRule,
  dtype: StorageDType,
  range?: number,
): number {
  const u = uniform(seed, stream, i);
  if (range !== undefined) return Math.min(range - 1, Math.floor((u + 1) * 0.5 * range));
  return roundTo(dtype, Math.fround(Math.fround(u * Math.fround(rule.scale)) + rule.offset));
}

export function seededArray(
  seed: number,
  stream: number,
  numel: number,
  rule: SeedRule,
  dtype: StorageDType,
  range?: number,
): Float32Array | Int32Array {
  const out = dtype === 'i32' ? new Int32Array(numel) : new Float32Array(numel);
  if (rule.scale === 0 && rule.offset === 0 && range === undefined) return out;
  for (let i = 0; i < numel; i++) out[i] = seededValue(seed, stream, i, rule, dtype, range);
  return out;
}

/** The expert weights of one MoE layer on one rank: I/tp intermediate rows each. */
export interface ExpertShapes {
  experts: number;
  hidden: number;
  interShard: number;
  interFull: number;
}

export function expertTensors(layer: string, rank: number, s: ExpertShapes) {
  return {
    w13: {
      name: `${layer}.w13`,
      shape: [s.experts, 2 * s.interShard, s.hidden],
      stream: shardStream(`${layer}.w13`, rank),
      rule: seedRule('weight', [], s.hidden),
    },
    b13: {
      name: `${layer}.b13`,
      shape: [s.experts, 2 * s.interShard],
      stream: shardStream(`${layer}.b13`, rank),
      rule: seedRule('bias', []),
    },
    w2: {
      name: `${layer}.w2`,
      shape: [s.experts, s.hidden, s.interShard],
      stream: shardStream(`${layer}.w2`, rank),
      rule: seedRule('weight', [], s.interFull),
    },
    // b2 is added once, on rank 0, so it is one replicated tensor.
    b2: {
      name: `${layer}.b2`,
      shape: [s.experts, s.hidden],
      stream: replicatedStream(`${layer}.b2`),
      rule: seedRule('bias', []),
    },
  };
}
