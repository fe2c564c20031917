// A one-rank WebGPU device with seeded GPT-OSS-style expert weights, for the tests of the MoE decode
// kernels: run a step on given bf16 activations and router logits with a chosen GEMV layout, and
// read its output words back.

import { nodeGpu } from '../nodeGpu.ts';
import { openRanks, type RankDevice } from './rankDevice.ts';
import { encodeMoeDispatch, seedExpertWeights } from './moeEncoders.ts';
import { bf16Bits } from '../bf16.ts';
import type { MoeGemvConfig } from '../../wgsl/moe.ts';

export interface MoeRigDims {
  hidden: number;
  experts: number;
  topk: number;
  inter: number;
  seed: number;
}

export interface MoeRig {
  dev: RankDevice;
  /**
   * The step's output words (bf16, [T, hidden]) after `times` calls, encoded into one batched
   * submit or not; `passes`: the timestamped passes of the last call (−1 without timestamps).
   */
  run(
    T: number,
    x: number[],
    logits: number[],
    cfg: MoeGemvConfig,
    o?: { times?: number; batch?: boolean },
  ): Promise<{ out: Uint16Array; passes: number }>;
  destroy(): void;
}

export async function openMoeRig(d: MoeRigDims): Promise<MoeRig> {
  const [dev] = await openRanks(await nodeGpu(), 1, { f16: false });
  const weights = seedExpertWeights(dev, 'moe', 'vllm.moe_forward', {
    layer: 'test.moe',
    experts: d.experts,
    hidden: d.hidden,
    interShard: d.inter,
    interFull: d.inter,
    dtype: 'bf16',
    seed: d.seed,
    keep: true,
  });
  await dev.sync();
  const bf16Buffer = (id: string, values: number[]): GPUBuffer => {
    const words = new Uint16Array(values.length + (values.length & 1));
    values.forEach((v, i) => (words[i] = bf16Bits(v)));
    const b = dev.alloc(id, Math.max(16, words.byteLength));
    dev.write(b, 0, new Uint8Array(words.buffer));
    return b;
  };
  return {
    dev,
    async run(T, xValues, logitValues, cfg, o = {}) {
      const H = d.hidden;
      const x = bf16Buffer('x', xValues);
      const logits = bf16Buffer('logits', logitValues);
      const out = dev.alloc('out', T * H * 2);
      dev.clearTimings();
      if (o.batch) dev.beginBatch();
      for (let i = 0; i < (o.times ?? 1); i++)
        encodeMoeDispatch(dev, 'moe', 'vllm.moe_forward', {
          T,
          H,
          E: d.experts,
          K: d.topk,
          Is: d.inter,
          dtype: 'bf16',
          logitsDtype: 'bf16',
          x,
          xOff: 0,
          xRowStride: H,
          logits,
          lOff: 0,
          lRowStride: d.experts,
          out,
          weights,
          decodeKernel: cfg,
        });
      if (o.batch) dev.endBatch();
      await dev.sync();
      const passes = dev.timestamps ? dev.passes.length : -1;
      const bytes = await dev.read(out, 0, T * H * 2);
      for (const id of ['x', 'logits', 'out']) dev.free(id);
      return {
        out: new Uint16Array(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + T * H * 2)),
        passes,
      };
    },
    destroy: () => dev.destroy(),
  };
}
