// The fused QK-norm + RoPE as one dispatch (KERNELS.qk_norm_rope, src/wgsl/qkNormRope.ts): on the
// CPU reference and WebGPU, bitwise the copy → rms_norm → rotary → scatter steps it decomposes into
// (KERNEL_DECOMPOSITIONS, what the op lowered to before) on the same backend, and within the
// norm's rounding of the CPU reference on WebGPU — neox and GPT-J, head_dim 64, 128 and 256, a
// partial rotary dim (vLLM's kernel takes rotary_dim = cos_sin_cache.size(1) < head_dim), T = 1 and
// T not a multiple of anything, bf16 (the word kernel's order), f32 (the per-row kernel's) and f16
// (on the CPU reference only: SwiftShader has no shader-f16).

import { describe, expect, it } from 'vitest';
import { parseFx } from '../graph/fx/parse.ts';
import { planGraph, type RunOptions } from '../runtime/index.ts';
import { cpuBackend } from '../runtime/cpuBackend.ts';
import { webgpuBackend } from '../runtime/webgpuBackend.ts';
import { decomposed } from '../runtime/plan.ts';
import { hostValues } from '../runtime/hostTensor.ts';
import { KERNELS } from '../graph/opTable.ts';
import { freshSeed, tinyRuns } from '../runtime/testRuns.ts';
import type { Backend } from '../runtime/backend.ts';
import { nodeGpu } from '../runtime/nodeGpu.ts';
import { openRanks } from '../runtime/webgpu/rankDevice.ts';
import { qkNormRopeWgsl, type QkNormMirror, type QkNormRopeShape } from './qkNormRope.ts';

const run = tinyRuns({ ranks: 1, preset: 'layer' });
const [HQ, HK] = [4, 2];

interface Case {
  dt: 'bf16' | 'f16' | 'f32';
  d: number;
  rot: number;
  neox: boolean;
  tokens: number;
}

/**
 * auto_functionalized(_C.fused_qk_norm_rope) on qkv [T, (4 + 2 + 2) · d], its [1] returned, and qkv
 * too (then the op writes a new qkv; else it writes over qkv in place).
 */
function qkNormRopeGraph({ dt, d, rot, neox }: Case, returnQkv: boolean) {
  const W = (HQ + 2 * HK) * d;
  return parseFx(
    [
      'class GraphModule(torch.nn.Module):',
      `    def forward(self, arg0_1: "Sym(s72)", qkv: "${dt}[s72, ${W}]", q_weight: "${dt}[${d}]", k_weight: "${dt}[${d}]", cos_sin_cache: "${dt}[32, ${rot}]", positions: "i64[s72]"):`,
      `        auto_functionalized = torch.ops.higher_order.auto_functionalized(torch.ops._C.fused_qk_norm_rope.default, qkv = qkv, num_heads_q = ${HQ}, num_heads_k = ${HK}, num_heads_v = ${HK}, head_dim = ${d}, eps = 1e-06, q_weight = q_weight, k_weight = k_weight, cos_sin_cache = cos_sin_cache, is_neox = ${neox ? 'True' : 'False'}, position_ids = positions);  qkv = None`,
      `        getitem: "${dt}[s72, ${W}]" = auto_functionalized[1]`,
      returnQkv ? '        return (qkv, getitem)' : '        return (getitem,)',
    ].join('\n'),
  ).graph;
}

const values = async (b: Backend, plan: ReturnType<typeof planGraph>, o: RunOptions) =>
  [...(await b.run(plan, o)).outputs[0]!.values()].map((v) => [...hostValues(v)]);

/** One ulp of the dtype at |x| (bf16 8 significant bits, f16 11, f32 24). */
const ulpAt = (dt: Case['dt'], x: number) =>
  2 ** (Math.floor(Math.log2(Math.max(Math.abs(x), 2 ** -14))) - { bf16: 7, f16: 10, f32: 23 }[dt]);

const CASES: Case[] = [
  { dt: 'bf16', d: 64, rot: 64, neox: true, tokens: 7 },
  { dt: 'bf16', d: 64, rot: 32, neox: false, tokens: 1 },
  { dt: 'bf16', d: 128, rot: 128, neox: false, tokens: 13 },
  { dt: 'bf16', d: 128, rot: 64, neox: true, tokens: 1 },
  { dt: 'bf16', d: 256, rot: 256, neox: true, tokens: 3 },
  { dt: 'f16', d: 128, rot: 128, neox: true, tokens: 5 },
  { dt: 'f16', d: 64, rot: 32, neox: false, tokens: 1 },
  { dt: 'f32', d: 64, rot: 64, neox: false, tokens: 7 },
  { dt: 'f32', d: 128, rot: 96, neox: true, tokens: 3 },
];

describe('fused QK-norm + RoPE in one dispatch', { timeout: 600_000 }, () => {
  it.each(CASES)(
    '$dt d $d rot $rot neox $neox T $tokens: bitwise its pair on the CPU reference and WebGPU',
    async (c) => {
      const seed = freshSeed();
      const opts: RunOptions = run({ dtype: c.dt, tokens: c.tokens, seed });
      const plan = planGraph(qkNormRopeGraph(c, true), opts);
      const inPlace = planGraph(qkNormRopeGraph(c, false), opts);
      const fusedStep = (p: typeof plan) => {
        const steps = p.steps.filter((s) => s.kernel !== 'seed');
        expect(steps.map((s) => s.kernel)).toEqual(['qk_norm_rope']);
        return steps[0] as Extract<(typeof steps)[number], { kernel: 'qk_norm_rope' }>;
      };
      expect(fusedStep(plan).out).not.toBe(fusedStep(plan).qkv.storage);
      expect(fusedStep(inPlace).out).toBe(fusedStep(inPlace).qkv.storage);
      const half = ['copy', 'rms_norm', 'rotary', 'scatter'];
      for (const p of [plan, inPlace])
        expect(
          decomposed(p)
            .steps.filter((s) => s.kernel !== 'seed')
            .map((s) => s.kernel),
        ).toEqual([...half, ...half]);
      const got = new Map<string, number[][]>();
      // f16 runs need shader-f16, which SwiftShader lacks: the CPU reference alone.
      for (const backend of c.dt === 'f16' ? [cpuBackend] : [cpuBackend, webgpuBackend]) {
        const what = `${backend.name} seed ${seed}`;
        const fused = await values(backend, plan, opts);
        expect(fused, what).toEqual(await values(backend, decomposed(plan), opts));
        // In place: the same values, v left where it was.
        expect(await values(backend, inPlace, opts), what).toEqual([fused[1]]);
        expect(await values(backend, decomposed(inPlace), opts), what).toEqual([fused[1]]);
        got.set(backend.name, fused);
      }
      const [qkv, cpu] = got.get('cpu')! as [number[], number[]];
      const W = (HQ + 2 * HK) * c.d;
      // Not vacuous: q and k changed, v kept.
      const qk = (i: number) => i % W < (HQ + HK) * c.d;
      expect(cpu.filter((v, i) => qk(i) && v !== qkv[i]).length).toBeGreaterThan(cpu.length / 2);
      expect(cpu.filter((v, i) => !qk(i) && v !== qkv[i])).toEqual([]);
      // WebGPU against the CPU reference: the declared ulps at the output's largest magnitude.
      if (!got.has('webgpu')) return;
      const web = got.get('webgpu')![1]!;
      const { ulps } = KERNELS.qk_norm_rope.rounding;
      const tol = (c.dt === 'f32' ? ulps.f32 : ulps.bf16) * ulpAt(c.dt, Math.max(...cpu.map(Math.abs)));
      const far = cpu.flatMap((v, i) => (Math.abs(v - web[i]!) > tol ? [i] : []));
      expect(far, `seed ${seed}`).toEqual([]);
    },
  );
});

describe('the qk_norm_rope WGSL', { timeout: 300_000 }, () => {
  // The H100's layout (subgroups of 32, whole words, in place) and every other mirror and access,
  // compiled and made a pipeline on Dawn, its parameters read by name.
  it('every variant compiles into a pipeline and reads its parameters by name', async () => {
    const [dev] = await openRanks(await nodeGpu(), 1, { f16: false });
    const mirrors: [QkNormRopeShape['d'], QkNormMirror][] = [
      ['bf16', { kind: 'rows', sg: 32 }],
      ['bf16', { kind: 'rows', sg: 0 }],
      ['bf16', { kind: 'per-row', vec: 1 }],
      ['f16', { kind: 'per-row', vec: 8 }],
      ['f32', { kind: 'per-row', vec: 4 }],
    ];
    const variants = mirrors.flatMap(([d, mirror]) =>
      [64, 128, 256].flatMap((headSize) =>
        [false, true].flatMap((inPlace) =>
          (d === 'bf16' && mirror.kind === 'rows' ? [false, true] : [false]).map(
            (words): QkNormRopeShape => ({
              d,
              weight: d,
              positions: 'i32',
              cache: d,
              headSize,
              mirror,
              words,
              inPlace,
            }),
          ),
        ),
      ),
    );
    const device = dev!.device;
    for (const v of variants) {
      const code = qkNormRopeWgsl(v);
      expect(code).toMatch(/@group\(0\) @binding\(0\) var<storage, read> prm: QkNormRopeParams;/);
      expect(code).not.toMatch(/prm\[/);
      if (v.mirror.kind === 'rows' && v.mirror.sg > 0 && !device.features.has('subgroups')) continue;
      device.pushErrorScope('validation');
      const module = device.createShaderModule({ code });
      device.createComputePipeline({ layout: 'auto', compute: { module, entryPoint: 'main' } });
      const error = await device.popErrorScope();
      expect(error?.message, JSON.stringify(v)).toBeUndefined();
    }
    dev!.destroy();
  });
});
