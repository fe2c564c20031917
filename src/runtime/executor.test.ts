// Running whole graphs: the PR's seed block and a generated GPT-OSS layer on WebGPU ranks (Dawn on
// SwiftShader) against the CPU reference; all-reduce algorithms and rank modes giving the same
// bits; the rewrite compared before and after; faults that must surface as RunErrors.

import { describe, it, expect } from 'vitest';
import { readFileSync } from 'node:fs';
import { parseFx } from '../graph/fx/parse.ts';
import { generateSample } from '../graph/samples/index.ts';
import { compareRewrite, planGraph, runGraph, RunError, type RunProgress } from './index.ts';
import { closeRanks } from './webgpu/rankDevice.ts';
import { closeRankWorkers } from './rankWorkers.ts';
import { bitwiseEqual, toHostTensor } from './hostTensor.ts';
import { diffFromReference } from './referenceCheck.ts';
import { roundBf16 } from './bf16.ts';
import { freshSeed, tinyRuns } from './testRuns.ts';
import { moduleGraph } from './testGraphs.ts';

const SEED_DIR = new URL('../../fixtures/fx/seed', import.meta.url).pathname;
const before = () => parseFx(readFileSync(`${SEED_DIR}/pr28841-before.fragment.txt`, 'utf8')).graph;

const base = tinyRuns();

describe('the PR #28841 block on WebGPU ranks', { timeout: 180_000 }, () => {
  it('matches the CPU reference on every rank (MoE → all_reduce → slice → fused_add_rms_norm)', async () => {
    const seed = freshSeed();
    const g = before();
    const got = await runGraph(g, base({ ranks: 2, seed, tokens: 9 }));
    const want = await runGraph(g, base({ backend: 'cpu', ranks: 2, seed, tokens: 9 }));
    expect([...got.outputs[0].keys()]).toEqual(['auto_functionalized_2[1]', 'auto_functionalized_2[2]']);
    for (let r = 0; r < 2; r++) {
      for (const [name, w] of want.outputs[r]) {
        // The MoE partial sums differ from the reference by its rounding allowance; the all-reduce
        // and the norm add two roundings each.
        const d = diffFromReference(got.outputs[r].get(name)!, w, { terms: 480, scale: 8, ulps: 4 });
        expect(d, `seed ${seed} rank ${r} ${name}`).toBeNull();
      }
    }
    // Every rank ends with the same all-reduced result.
    expect(
      bitwiseEqual(
        got.outputs[0].get('auto_functionalized_2[2]')!,
        got.outputs[1].get('auto_functionalized_2[2]')!,
      ),
    ).toBe(true);
    expect(got.trace.events.some((e) => e.kind === 'transfer' && e.node === 'all_reduce_1')).toBe(true);
    expect(
      got.trace.events.filter(
        (e) => e.kind === 'kernel' && e.node === 'auto_functionalized_1' && e.timing === 'timestamp-query',
      ).length,
    ).toBe(2);
  });

  it('one-shot, two-shot and ring, on one thread and in one worker per rank, give the same bits (3 ranks)', async () => {
    const seed = freshSeed();
    const g = parseFx(readFileSync(`${SEED_DIR}/pr28841-before.fragment.txt`, 'utf8')).graph;
    const ref = await runGraph(g, base({ ranks: 3, seed, allreduce: 'one-shot' }));
    for (const [allreduce, workers] of [
      ['two-shot', false],
      ['ring', false],
      ['ring', true],
    ] as const) {
      const r = await runGraph(g, base({ ranks: 3, seed, allreduce, workers }));
      for (let k = 0; k < 3; k++) {
        for (const [name, t] of ref.outputs[k])
          expect(
            bitwiseEqual(r.outputs[k].get(name)!, t),
            `seed ${seed} ${allreduce} workers=${workers} rank ${k} ${name}`,
          ).toBe(true);
      }
    }
  }, 300_000); // each worker opens its own device and compiles every kernel (slow on SwiftShader)

  it('hoisting the slice is bitwise equal; the fused all-reduce + norm is within 2 bf16 ulps, its residual bitwise', async () => {
    const seed = freshSeed();
    for (const allreduce of ['one-shot', 'two-shot'] as const) {
      const hoist = await compareRewrite(before(), ['slice-hoist'], base({ seed, allreduce }));
      expect(hoist.ok, `seed ${seed}`).toBe(true);
      expect(hoist.outputs.every((o) => o.bitwiseEqual)).toBe(true);
      const fused = await compareRewrite(
        before(),
        ['slice-hoist', 'allreduce-rmsnorm'],
        base({ seed, allreduce }),
      );
      expect(fused.ok, `seed ${seed}: ${JSON.stringify(fused.outputs)}`).toBe(true);
      expect(
        fused.after.events.some((e) => e.op === 'higher_order.auto_functionalized' && e.kind === 'transfer'),
      ).toBe(true);
      for (const o of fused.outputs) {
        expect(o.ulps).toBeLessThanOrEqual(2);
        if (o.name.endsWith('[2]')) expect(o.bitwiseEqual, o.name).toBe(true);
      }
    }
  });
});

describe('progress', { timeout: 300_000 }, () => {
  /** Phases in the order first reported, and whether any phase came back after a later one. */
  const order = (ps: RunProgress[]) =>
    ps.map((p) => p.phase).filter((ph, i, a) => i === 0 || a[i - 1] !== ph);
  const ofPhase = (ps: RunProgress[], phase: RunProgress['phase']) => ps.filter((p) => p.phase === phase);
  const inputs = () =>
    new Map([
      [
        'getitem_18',
        toHostTensor(
          'bf16',
          [7, 40],
          Array.from({ length: 7 * 40 }, () => roundBf16(Math.random() * 2 - 1)),
        ),
      ],
    ]);

  it('plan → compile → upload → run → download; compile counts every pipeline the run creates; a second run compiles none', async () => {
    // Devices that log each pipeline they create, with the phase being reported at that moment.
    let phase = '';
    const created: { device: number; phase: string; how: string; code: string }[] = [];
    let opened = 0;
    const bind = <T extends object>(t: T, wrap: (k: string | symbol, v: unknown) => unknown) =>
      new Proxy(t, {
        get: (o, k) => {
          const v = Reflect.get(o, k, o);
          return wrap(k, typeof v === 'function' ? v.bind(o) : v);
        },
      });
    const counting = {
      requestAdapter: async (o?: GPURequestAdapterOptions) =>
        bind((await base().gpu!.requestAdapter(o))!, (k, v) =>
          k !== 'requestDevice'
            ? v
            : async (d?: GPUDeviceDescriptor) => {
                const device = opened++;
                const codes = new Map<GPUShaderModule, string>();
                return bind(await (v as GPUAdapter['requestDevice'])(d), (k2, v2) => {
                  if (k2 === 'createShaderModule')
                    return (desc: GPUShaderModuleDescriptor) => {
                      const m = (v2 as GPUDevice['createShaderModule'])(desc);
                      codes.set(m, desc.code);
                      return m;
                    };
                  if (k2 !== 'createComputePipeline' && k2 !== 'createComputePipelineAsync') return v2;
                  return (desc: GPUComputePipelineDescriptor) => {
                    created.push({ device, phase, how: k2 as string, code: codes.get(desc.compute.module)! });
                    return (v2 as (d: GPUComputePipelineDescriptor) => unknown)(desc);
                  };
                });
              },
        ),
    } as unknown as GPU;
    const seed = freshSeed();
    const given = inputs();
    // One run on the counting devices, its progress recorded (and the phase the wrappers see kept current).
    const runCounted = async () => {
      const progress: RunProgress[] = [];
      const opts = base({
        gpu: counting,
        seed,
        inputs: given,
        onProgress: (p) => {
          phase = p.phase;
          progress.push(p);
        },
      });
      return { result: await runGraph(before(), opts), progress };
    };
    const { result: a, progress: first } = await runCounted();
    expect(order(first)).toEqual(['plan', 'compile', 'upload', 'run', 'download']);

    // Every pipeline was created up front, asynchronously, once per device and kernel; none while the steps ran.
    const compile = ofPhase(first, 'compile');
    const total = compile[0].total;
    expect(total).toBe(created.length);
    expect(created.every((c) => c.how === 'createComputePipelineAsync' && c.phase === 'compile')).toBe(true);
    for (const dev of [0, 1]) {
      const codes = created.filter((c) => c.device === dev).map((c) => c.code);
      expect(new Set(codes).size, `device ${dev}`).toBe(codes.length);
      // The block's MoE alone dispatches route, scan/scatter or route1, two expert GEMMs, the combine and the weight seeding.
      expect(codes.length).toBeGreaterThan(5);
    }
    expect(compile.map((p) => p.done)).toEqual(Array.from({ length: total + 1 }, (_, i) => i));
    expect(compile.every((p) => p.total === total)).toBe(true);
    // One given input written to each of the two ranks.
    expect(ofPhase(first, 'upload').map((p) => `${p.done}/${p.total}`)).toEqual(['0/2', '1/2', '2/2']);
    const steps = planGraph(before(), base()).steps.length;
    expect(ofPhase(first, 'run').at(-1)).toEqual({ phase: 'run', done: steps, total: steps });
    expect(ofPhase(first, 'download').at(-1)).toEqual({ phase: 'download', done: 2, total: 2 });

    // Same devices: the kept pipelines serve the whole run, and the result is the same.
    const { result: b, progress: second } = await runCounted();
    expect(order(second)).toEqual(['plan', 'compile', 'upload', 'run', 'download']);
    expect(ofPhase(second, 'compile')).toEqual([{ phase: 'compile', done: 0, total: 0 }]);
    expect(created.length).toBe(total);
    for (let r = 0; r < 2; r++)
      for (const [name, t] of a.outputs[r])
        expect(bitwiseEqual(b.outputs[r].get(name)!, t), `seed ${seed} rank ${r} ${name}`).toBe(true);
    closeRanks(counting);
  });

  it("in one worker per rank, the ranks' progress is combined in the same phase order", async () => {
    const g = parseFx(`def forward(self, x: "bf16[s0, 40]"):
    a: "bf16[s0, 40]" = torch.ops.aten.add.Tensor(x, x)
    all_reduce_1: "bf16[s0, 40]" = torch.ops.vllm.all_reduce.default(a, 'tp:0')
    return (all_reduce_1,)
`).graph;
    const given = new Map([
      [
        'x',
        toHostTensor(
          'bf16',
          [7, 40],
          Array.from({ length: 7 * 40 }, () => roundBf16(Math.random() * 2 - 1)),
        ),
      ],
    ]);
    const ps: RunProgress[] = [];
    // Workers kept from an earlier test already hold some of these kernels.
    closeRankWorkers();
    const got = await runGraph(
      g,
      base({ workers: true, allreduce: 'two-shot', inputs: given, onProgress: (p) => ps.push(p) }),
    );
    expect(order(ps)).toEqual(['plan', 'compile', 'upload', 'run', 'download']);
    // Each worker compiles its own add and all-reduce kernels (x is given, so no seed kernel); each writes x once.
    expect(ofPhase(ps, 'compile').at(-1)).toEqual({ phase: 'compile', done: 4, total: 4 });
    expect(ofPhase(ps, 'upload').at(-1)).toEqual({ phase: 'upload', done: 2, total: 2 });
    expect(ofPhase(ps, 'run').at(-1)).toEqual({ phase: 'run', done: 6, total: 6 });
    expect(ofPhase(ps, 'download').at(-1)).toEqual({ phase: 'download', done: 2, total: 2 });
    const thread = await runGraph(g, base({ allreduce: 'two-shot', inputs: given }));
    for (let r = 0; r < 2; r++)
      expect(bitwiseEqual(got.outputs[r].get('all_reduce_1')!, thread.outputs[r].get('all_reduce_1')!)).toBe(
        true,
      );

    // The workers and their devices are kept: a second run compiles nothing and gives the same bits.
    const again: RunProgress[] = [];
    const second = await runGraph(
      g,
      base({ workers: true, allreduce: 'two-shot', inputs: given, onProgress: (p) => again.push(p) }),
    );
    expect(ofPhase(again, 'compile')).toEqual([{ phase: 'compile', done: 0, total: 0 }]);
    for (let r = 0; r < 2; r++)
      expect(bitwiseEqual(second.outputs[r].get('all_reduce_1')!, got.outputs[r].get('all_reduce_1')!)).toBe(
        true,
      );
    closeRankWorkers();
  });
});

describe('a generated GPT-OSS-20B layer', { timeout: 180_000 }, () => {
  it('runs end to end at TP 2: rotary and attention computed (nothing fed), hoist bitwise and proven, same on CPU', async () => {
    const g = parseFx(generateSample('gpt-oss-20b', { layers: 1, tp: 2 })).graph;
    const layerOps = g.nodes
      .filter(
        (n) =>
          n.op === 'higher_order.auto_functionalized' &&
          /rotary_embedding|unified_attention/.test(JSON.stringify(n.args[0])),
      )
      .map((n) => n.name);
    expect(layerOps.length).toBe(2);
    const plan = planGraph(g, base());
    expect(plan.fed).toEqual([]);
    expect(plan.steps.filter((s) => layerOps.includes(s.node)).map((s) => s.kernel)).toEqual([
      'rotary',
      'rotary',
      'attention',
    ]);
    const seed = freshSeed();
    const rep = await compareRewrite(
      g,
      ['noop-elimination', 'slice-hoist'],
      base({ seed, allreduce: 'ring' }),
    );
    expect(rep.ok, `seed ${seed}`).toBe(true);
    expect(rep.before.fed).toEqual([]);
    expect(rep.verdict).toBe('proven');
    const cpu = await runGraph(g, base({ backend: 'cpu', seed }));
    const gpuRun = await runGraph(g, base({ seed }));
    const d = diffFromReference(gpuRun.outputs[1].get('getitem_10')!, cpu.outputs[1].get('getitem_10')!, {
      terms: 480,
      scale: 8,
      ulps: 6,
    });
    expect(d, `seed ${seed}`).toBeNull();
  });
});

describe('submits', { timeout: 180_000 }, () => {
  it("a run's steps go to the queue in one submit, each step its own command buffer; the outputs are unchanged", async () => {
    // A native RMSNorm (several elementwise and reduction steps, no collective) on one rank.
    const g = moduleGraph('arg0_1: "Sym(s77)", arg1_1: "bf16[s77, 64]", arg2_1: "bf16[64]"', [
      'convert_element_type: "f32[s77, 64]" = torch.ops.prims.convert_element_type.default(arg1_1, torch.float32);  arg1_1 = None',
      'pow_1: "f32[s77, 64]" = torch.ops.aten.pow.Tensor_Scalar(convert_element_type, 2)',
      'mean: "f32[s77, 1]" = torch.ops.aten.mean.dim(pow_1, [-1], True);  pow_1 = None',
      'add_9: "f32[s77, 1]" = torch.ops.aten.add.Tensor(mean, 1e-06);  mean = None',
      'rsqrt: "f32[s77, 1]" = torch.ops.aten.rsqrt.default(add_9);  add_9 = None',
      'mul_7: "f32[s77, 64]" = torch.ops.aten.mul.Tensor(convert_element_type, rsqrt);  convert_element_type = rsqrt = None',
      'convert_element_type_1: "bf16[s77, 64]" = torch.ops.prims.convert_element_type.default(mul_7, torch.bfloat16);  mul_7 = None',
      'mul_12: "bf16[s77, 64]" = torch.ops.aten.mul.Tensor(convert_element_type_1, arg2_1);  convert_element_type_1 = arg2_1 = None',
      'return (mul_12,)',
    ]);
    let phase = '';
    const submitted: { phase: string; buffers: string[] }[] = [];
    const bind = <T extends object>(t: T, wrap: (k: string | symbol, v: unknown) => unknown) =>
      new Proxy(t, {
        get: (o, k) => {
          const v = Reflect.get(o, k, o);
          return wrap(k, typeof v === 'function' ? v.bind(o) : v);
        },
      });
    // Devices whose queue logs each submit: the phase then and its command buffers' labels.
    const logging = {
      requestAdapter: async (o?: GPURequestAdapterOptions) =>
        bind((await base().gpu!.requestAdapter(o))!, (k, v) =>
          k !== 'requestDevice'
            ? v
            : async (d?: GPUDeviceDescriptor) =>
                bind(await (v as GPUAdapter['requestDevice'])(d), (k2, v2) =>
                  k2 !== 'queue'
                    ? v2
                    : bind(v2 as GPUQueue, (k3, v3) =>
                        k3 !== 'submit'
                          ? v3
                          : (cmds: GPUCommandBuffer[]) => {
                              submitted.push({ phase, buffers: cmds.map((c) => c.label) });
                              (v3 as GPUQueue['submit'])(cmds);
                            },
                      ),
                ),
        ),
    } as unknown as GPU;
    const seed = freshSeed();
    closeRanks();
    const got = await runGraph(
      g,
      base({ ranks: 1, seed, gpu: logging, onProgress: (p) => void (phase = p.phase) }),
    );
    closeRanks();
    const plan = planGraph(g, base({ ranks: 1 }));
    const steps = submitted.filter((s) => s.phase === 'run');
    expect(steps).toHaveLength(1);
    expect(steps[0].buffers).toEqual(plan.steps.map((s) => s.node));
    const want = await runGraph(g, base({ ranks: 1, seed }));
    expect(bitwiseEqual(got.outputs[0].get('mul_12')!, want.outputs[0].get('mul_12')!), `seed ${seed}`).toBe(
      true,
    );
  });
});

describe('faults surface as RunErrors', { timeout: 180_000 }, () => {
  const noGpu = {
    requestAdapter: () => {
      throw new Error('no GPU work may start');
    },
  } as unknown as GPU;

  it('lists every op with no kernel and no type, before any GPU work', async () => {
    const g = parseFx(`def forward(self, x: "bf16[s0, 8]"):
    a = torch.ops.mystery.first.default(x)
    b: "bf16[s0, 8]" = torch.ops.aten.add.Tensor(x, x)
    c = torch.ops.mystery.second.default(b)
    return (a, c)
`).graph;
    const err = await runGraph(g, base({ gpu: noGpu })).catch((e) => e);
    expect(err).toBeInstanceOf(RunError);
    expect(err.kind).toBe('unsupported-ops');
    expect(err.message).toContain('a (mystery.first.default)');
    expect(err.message).toContain('c (mystery.second.default)');
  });

  it('a preset past the adapter limits names the buffer, the limit and what would fit', async () => {
    const err = await runGraph(before(), base({ preset: 'layer', ranks: 1, tokens: 1 })).catch((e) => e);
    expect(err).toBeInstanceOf(RunError);
    expect(err.kind).toBe('limits');
    expect(err.message).toMatch(
      /model\.layers\.0\.mlp\.experts\.w13 .* needs 1132462080 bytes but the adapter's maxStorageBufferBindingSize is \d+ .*use --ranks 2/,
    );
  });

  it('f16 without shader-f16 says so', async () => {
    const err = await runGraph(before(), base({ dtype: 'f16' })).catch((e) => e);
    expect(err).toBeInstanceOf(RunError);
    expect(err.message).toMatch(/shader-f16/);
  });

  it('a device lost mid-run names the node; the next run opens new devices and works', async () => {
    const devices: GPUDevice[] = [];
    // A GPU whose devices the test can reach, to lose one while the plan runs.
    const watched = {
      requestAdapter: async (o?: GPURequestAdapterOptions) => {
        const a = (await base().gpu!.requestAdapter(o))!;
        return new Proxy(a, {
          get: (t, k) =>
            k === 'requestDevice'
              ? async (d?: GPUDeviceDescriptor) => {
                  const dev = await t.requestDevice(d);
                  devices.push(dev);
                  return dev;
                }
              : (Reflect.get(t, k, t) as unknown),
        });
      },
    } as unknown as GPU;
    const seed = freshSeed();
    let lostAt = -1;
    const err = await runGraph(
      before(),
      base({
        gpu: watched,
        seed,
        onProgress: (p) => {
          if (p.phase === 'run' && p.done === 3 && lostAt < 0) {
            lostAt = p.done;
            devices[1].destroy();
          }
        },
      }),
    ).catch((e) => e);
    expect(err).toBeInstanceOf(RunError);
    expect(err.kind).toBe('device-lost');
    expect(err.node).toBeTruthy();
    expect(err.message).toContain(`while running node ${err.node}`);
    const again = await runGraph(before(), base({ gpu: watched, seed }));
    const ref = await runGraph(before(), base({ seed }));
    for (const [name, t] of ref.outputs[1]) expect(bitwiseEqual(again.outputs[1].get(name)!, t)).toBe(true);
    expect(devices.length).toBe(4);
  });

  it('a GPU validation error names the node whose work failed', async () => {
    const buffers = new Map<string, GPUBuffer>();
    const bind = <T extends object>(t: T, wrap: (k: string | symbol, v: unknown) => unknown) =>
      new Proxy(t, {
        get: (o, k) => {
          const v = Reflect.get(o, k, o);
          return wrap(k, typeof v === 'function' ? v.bind(o) : v);
        },
      });
    // Devices whose buffers the test can reach by label (each storage's buffer is labelled with its id).
    const watched = {
      requestAdapter: async (o?: GPURequestAdapterOptions) =>
        bind((await base().gpu!.requestAdapter(o))!, (k, v) =>
          k !== 'requestDevice'
            ? v
            : async (d?: GPUDeviceDescriptor) =>
                bind(await (v as GPUAdapter['requestDevice'])(d), (k2, v2) =>
                  k2 !== 'createBuffer'
                    ? v2
                    : (desc: GPUBufferDescriptor) => {
                        const b = (v2 as GPUDevice['createBuffer'])(desc);
                        if (desc.label) buffers.set(desc.label, b);
                        return b;
                      },
                ),
        ),
    } as unknown as GPU;
    const g = before();
    const plan = planGraph(g, base());
    const norm = plan.steps.findIndex((s) => s.kernel === 'fused_add_rms_norm');
    // Destroy the norm's weight just before the norm runs: its submission is invalid.
    const err = await runGraph(
      g,
      base({
        gpu: watched,
        onProgress: (p) => {
          if (p.phase === 'run' && p.done === norm) buffers.get('arg8_1')?.destroy();
        },
      }),
    ).catch((e) => e);
    expect(err).toBeInstanceOf(RunError);
    expect(err.kind).toBe('validation');
    expect(err.node).toBe('auto_functionalized_2');
    expect(err.message).toMatch(
      /^node auto_functionalized_2 \(higher_order\.auto_functionalized\) on rank \d: /,
    );
  });

  it('given inputs replace seeded ones; a wrong shape names the input', async () => {
    const seed = freshSeed();
    const vals = Array.from({ length: 7 * 40 }, () => roundBf16(Math.random() * 2 - 1));
    const residual = toHostTensor('bf16', [7, 40], vals);
    const inputs = new Map([['getitem_18', residual]]);
    const cpu = await runGraph(before(), base({ backend: 'cpu', seed, inputs }));
    const got = await runGraph(before(), base({ seed, inputs }));
    const seeded = await runGraph(before(), base({ seed }));
    expect(
      bitwiseEqual(
        got.outputs[0].get('auto_functionalized_2[2]')!,
        seeded.outputs[0].get('auto_functionalized_2[2]')!,
      ),
    ).toBe(false);
    expect(
      diffFromReference(
        got.outputs[0].get('auto_functionalized_2[2]')!,
        cpu.outputs[0].get('auto_functionalized_2[2]')!,
        { terms: 480, scale: 8, ulps: 4 },
      ),
      `seed ${seed}`,
    ).toBeNull();
    const err = await runGraph(
      before(),
      base({ inputs: new Map([['getitem_18', toHostTensor('bf16', [7, 41], new Array(287).fill(0))]]) }),
    ).catch((e) => e);
    expect(err).toBeInstanceOf(RunError);
    expect(err.message).toBe("input 'getitem_18': shape [7,41] but the run needs [7,40] (preset tiny, T=7)");
  });
});
