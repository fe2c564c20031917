// The bf16 word-row norm kernels in every layout the benchmark compares, and the norm + MoE decode
// kernels on a device whose subgroup reductions are turned off (the workgroup-memory path), each
// against a host reference. SwiftShader's subgroups have 4 lanes: the subgroup path runs with
// one partial per subgroup there; the one-subgroup-per-row butterfly needs ≥ 32 lanes (NVIDIA).

import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { parseFx } from '../graph/fx/parse.ts';
import { runGraph, planGraph, type RunOptions } from '../runtime/index.ts';
import { nodeGpu } from '../runtime/nodeGpu.ts';
import { executePlan } from '../runtime/webgpuBackend.ts';
import { openRanks, type RankDevice } from '../runtime/webgpu/rankDevice.ts';
import { encodeNorm } from '../runtime/webgpu/encoders.ts';
import { runCollective } from '../runtime/collectives.ts';
import { diffFromReference } from '../runtime/referenceCheck.ts';
import { toHostTensor, type HostTensor } from '../runtime/hostTensor.ts';
import { bf16Bits, bf16ToF32, roundBf16 } from '../runtime/bf16.ts';
import type { NormMode } from './rmsNorm.ts';
import type { NormRowsConfig } from './rmsNormRows.ts';

let gpu: GPU;
let dev: RankDevice;
beforeAll(async () => {
  gpu = await nodeGpu();
  [dev] = await openRanks(gpu, 1, { f16: false });
});
afterAll(() => dev?.destroy());

const freshSeed = () => (Math.random() * 2 ** 32) >>> 0;

/** Deterministic bf16 values in [-2, 2) from a seed (xorshift). */
function randomBf16(n: number, seed: number): Float64Array {
  let s = seed || 1;
  const out = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    s ^= s << 13;
    s ^= s >>> 17;
    s ^= s << 5;
    s >>>= 0;
    out[i] = roundBf16((s / 2 ** 32) * 4 - 2);
  }
  return out;
}

function upload(values: Float64Array, id: string): GPUBuffer {
  const words = new Uint16Array(values.length + (values.length & 1));
  for (let i = 0; i < values.length; i++) words[i] = bf16Bits(values[i]);
  const b = dev.alloc(id, Math.max(16, Math.ceil(words.byteLength / 16) * 16));
  dev.write(b, 0, new Uint8Array(words.buffer));
  return b;
}

async function download(b: GPUBuffer, n: number): Promise<Float64Array> {
  const bytes = await dev.read(b, 0, Math.ceil(n / 2) * 4);
  const h = new Uint16Array(bytes.buffer, bytes.byteOffset, n);
  return Float64Array.from(h, (x) => bf16ToF32(x));
}

/**
 * One norm launch: `rows` rows starting at row `rowStart` of [rowStart + rows + 1, cols] tensors;
 * x rows at xOff with stride xStride (allreduce: `ranks` copies, slotStride apart), the residual
 * at resOff with stride resStride. Returns got and the f64 reference for out and resOut.
 */
async function normCase(mode: NormMode, cols: number, rows: number, layout: NormRowsConfig, seed: number) {
  const ranks = mode === 'allreduce' ? 3 : 1;
  const rowStart = mode === 'allreduce' ? 2 : 0;
  const xOff = 16,
    xStride = cols + 8,
    resOff = 8,
    resStride = cols + 16;
  const total = rowStart + rows + 1;
  const slot = xOff + rows * xStride + 8;
  const x = randomBf16(ranks * slot, seed),
    res = randomBf16(resOff + total * resStride, seed ^ 0x9e3779b9);
  const w = randomBf16(cols, seed ^ 0x85ebca6b).map((v) => roundBf16(1 + v / 8));
  const bx = upload(x, 'x'),
    bres = upload(res, 'res'),
    bw = upload(w, 'w');
  const out = dev.alloc('out', Math.ceil((total * cols * 2) / 16) * 16),
    resOut = dev.alloc('resOut', Math.ceil((total * cols * 2) / 16) * 16);
  encodeNorm(
    dev,
    'norm',
    mode,
    mode,
    'bf16',
    {
      rows,
      cols,
      xOffset: xOff,
      xRowStride: xStride,
      resOffset: resOff,
      resRowStride: resStride,
      wOffset: 0,
      eps: 1e-5,
      ranks,
      rowStart,
      rankSlotStride: slot,
    },
    [out, mode === 'rms' ? null : resOut, bx, mode === 'rms' ? null : bres, bw],
    layout,
  );
  await dev.sync();
  const gotY = await download(out, total * cols),
    gotZ = await download(resOut, total * cols);
  dev.endRun();
  const wantY = new Float64Array(rows * cols),
    wantZ = new Float64Array(rows * cols);
  const y = gotY.slice(rowStart * cols, (rowStart + rows) * cols),
    z = gotZ.slice(rowStart * cols, (rowStart + rows) * cols);
  for (let r = 0; r < rows; r++) {
    const zr = new Float64Array(cols);
    for (let c = 0; c < cols; c++) {
      let v = 0;
      for (let q = 0; q < ranks; q++) v += x[q * slot + xOff + r * xStride + c];
      if (mode === 'allreduce') v = roundBf16(v);
      if (mode !== 'rms') v = roundBf16(v + res[resOff + (rowStart + r) * resStride + c]);
      zr[c] = v;
    }
    const inv = 1 / Math.sqrt(zr.reduce((a, v) => a + v * v, 0) / cols + 1e-5);
    for (let c = 0; c < cols; c++) {
      wantZ[r * cols + c] = zr[c];
      wantY[r * cols + c] =
        mode === 'allreduce' ? roundBf16(zr[c] * inv * w[c]) : roundBf16(roundBf16(zr[c] * inv) * w[c]);
    }
  }
  const t = (v: Float64Array) => toHostTensor('bf16', [rows, cols], v) as HostTensor;
  return {
    y: diffFromReference(t(y), t(wantY), { ulps: 2, terms: cols, scale: 4 }),
    z: mode === 'rms' ? null : diffFromReference(t(z), t(wantZ), { ulps: 1, terms: 0, scale: 0 }),
  };
}

describe('bf16 word-row RMSNorm kernels in every benchmarked layout', { timeout: 180_000 }, () => {
  // Small caps make every workgroup walk several rows, so the prefetch of the next row is exercised.
  const layouts: NormRowsConfig[] = [
    { tpr: 192, rpw: 1, cap: 0, pipeline: false },
    { tpr: 192, rpw: 1, cap: 3, pipeline: true },
    { tpr: 64, rpw: 4, cap: 2, pipeline: true },
    { tpr: 32, rpw: 8, cap: 0, pipeline: false },
    { tpr: 32, rpw: 4, cap: 3, pipeline: true },
    // A row's threads not a whole number of subgroups: the last subgroup is partly filled.
    { tpr: 90, rpw: 1, cap: 0, pipeline: false },
    { tpr: 90, rpw: 1, cap: 4, pipeline: true },
  ];
  for (const subgroups of [true, false]) {
    it(`rms, add and the 3-rank all-reduce form, 2880 and 24 columns, ${subgroups ? 'subgroup' : 'workgroup-memory'} reductions`, async () => {
      const sg = dev.subgroupSize;
      if (!subgroups) dev.subgroupSize = 0;
      try {
        for (const layout of layouts) {
          for (const mode of ['rms', 'add', 'allreduce'] as NormMode[]) {
            for (const [cols, rows] of [
              [2880, 13],
              [24, 9],
            ]) {
              const seed = freshSeed();
              const d = await normCase(mode, cols, rows, layout, seed);
              expect(d, `seed ${seed}, ${JSON.stringify(layout)}, ${mode}, ${cols} columns`).toEqual({
                y: null,
                z: null,
              });
            }
          }
        }
      } finally {
        dev.subgroupSize = sg;
      }
    });
  }
});

describe('norm and MoE decode kernels with workgroup-memory reductions only', { timeout: 180_000 }, () => {
  async function againstReferenceWithoutSubgroups(
    fx: string,
    o: Partial<RunOptions> & { ulps: number; terms: number; scale: number },
  ) {
    const seed = freshSeed();
    const g = parseFx(fx).graph;
    const opts: RunOptions = {
      backend: 'cpu',
      ranks: 1,
      preset: 'tiny',
      dtype: 'bf16',
      allreduce: 'one-shot',
      workers: false,
      seed,
      ...o,
    };
    const want = await runGraph(g, opts);
    const ranks = await openRanks(gpu, opts.ranks, { f16: false });
    for (const r of ranks) r.subgroupSize = 0;
    try {
      const plan = planGraph(g, opts);
      const got = await executePlan(plan, { ...opts, backend: 'webgpu' }, ranks, async (s) =>
        runCollective(s, ranks, opts.allreduce, plan),
      );
      for (let r = 0; r < want.outputs.length; r++) {
        for (const [name, w] of want.outputs[r]) {
          const d = diffFromReference(got.outputs[r].get(name) as HostTensor, w, o);
          expect(d, `seed ${seed}, rank ${r}, output ${name}: ${JSON.stringify(d)}`).toBeNull();
        }
      }
    } finally {
      for (const r of ranks) r.destroy();
    }
  }

  it('fused all-reduce + RMSNorm over 3 ranks (two-shot chunks) and rms_norm at width 2880', async () => {
    await againstReferenceWithoutSubgroups(
      `def forward(self, x: "bf16[s0, 2880]", res: "bf16[s0, 2880]", w: "bf16[2880]", out: "bf16[s0, 2880]"):
    auto_functionalized = torch.ops.higher_order.auto_functionalized(torch.ops.vllm.flashinfer_trtllm_fused_allreduce_norm.default, allreduce_in = x, residual = res, norm_out = None, quant_out = None, scale_out = None, rms_gamma = w, rms_eps = 1e-05, pattern_code = 1, world_rank = 0, world_size = 3, launch_with_pdl = True, trigger_completion_at_end = True, fp32_acc = True, max_token_num = 2048)
    getitem: "bf16[s0, 2880]" = auto_functionalized[1]
    getitem_1: "bf16[s0, 2880]" = auto_functionalized[2]
    auto_functionalized_1 = torch.ops.higher_order.auto_functionalized(torch.ops._C.rms_norm.default, result = out, input = getitem_1, weight = w, epsilon = 1e-05)
    getitem_2: "bf16[s0, 2880]" = auto_functionalized_1[1]
    return (getitem, getitem_1, getitem_2)
`,
      { preset: 'layer', tokens: 6, ranks: 3, allreduce: 'two-shot', ulps: 2, terms: 2880, scale: 4 },
    );
  });

  for (const tokens of [1, 5]) {
    it(`GPT-OSS moe_forward on the decode GEMV, T=${tokens}`, async () => {
      await againstReferenceWithoutSubgroups(
        `def forward(self, x: "bf16[s0, 3072]", logits: "bf16[s0, 32]"):
    auto_functionalized = torch.ops.higher_order.auto_functionalized(torch.ops.vllm.moe_forward.default, hidden_states = x, router_logits = logits, layer_name = 'model.layers.3.mlp.experts')
    getitem: "bf16[s0, 3072]" = auto_functionalized[0]
    return (getitem,)
`,
        { tokens, ulps: 2, terms: 120 * 4, scale: 8 },
      );
    });
  }
});
