// Every map function of the op table (MAP_FNS, src/graph/opTable.ts): its WGSL body on Dawn
// (SwiftShader) against its CPU body, over its operands' declared domains (every special point,
// every pair of them for two operands, and seeded draws), within its declared rounding, in bf16
// and f32. The test walks the table, so a new entry is checked with no edit here; the WGSL body
// runs in a shader of this file's own, the map kernel's f32 arithmetic without its indexing.

import { afterAll, describe, expect, it } from 'vitest';
import { nodeGpu } from '../runtime/nodeGpu.ts';
import { toHostTensor } from '../runtime/hostTensor.ts';
import { roundTo } from '../runtime/weights.ts';
import { compareMapOutput } from '../runtime/differential.ts';
import { prng } from '../graph/seededRandom.ts';
import {
  MAP_FNS,
  OPERAND_DOMAINS,
  mapFnUlps,
  mapHelpersWgsl,
  type MapFn,
  type MapFnDef,
  type OperandDomain,
} from '../graph/opTable.ts';

/** Python numbers an op passes as `s`: zero, signs, a fraction f32 cannot hold, large, tiny. */
const SCALARS = [0, 1, -1, 0.5, -2.5, 0.1, 3, 1000, -(2 ** -20)];
const DRAWS = 2048;

/** One element per case: a, b (0 for a one-operand function, as the kernels pass) and s. */
interface Operands {
  a: number[];
  b: number[];
  s: number[];
}

/** Every special point (every pair, for two operands) with the scalars in turn, then seeded draws. */
function operands(def: MapFnDef, seed: number): Operands {
  const u = prng(seed);
  const [da, db] = def.domain as readonly OperandDomain[];
  const o: Operands = { a: [], b: [], s: [] };
  const scalars = def.scalar ? SCALARS.filter(OPERAND_DOMAINS[def.scalar].holds) : SCALARS;
  const push = (a: number, b: number, s: number) => (o.a.push(a), o.b.push(b), o.s.push(s));
  for (const a of OPERAND_DOMAINS[da].special)
    if (db) OPERAND_DOMAINS[db].special.forEach((b, k) => push(a, b, scalars[k % scalars.length]));
    else for (const s of scalars) push(a, 0, s);
  for (let i = 0; i < DRAWS; i++) {
    const s = scalars[Math.floor(u() * scalars.length)];
    push(OPERAND_DOMAINS[da].draw(u), db ? OPERAND_DOMAINS[db].draw(u) : 0, s);
  }
  return o;
}

/** One Dawn device for the file, made on first use. */
let deviceOnce: Promise<GPUDevice> | undefined;
const gpuDevice = () =>
  (deviceOnce ??= nodeGpu().then(async (gpu) => (await gpu.requestAdapter())!.requestDevice()));

describe('WGSL map functions against the CPU reference', { timeout: 120_000 }, () => {
  afterAll(async () => (await deviceOnce)?.destroy());

  /** `body` (WGSL over a, b, s) at every element, in f32, as the map kernel computes before it rounds. */
  async function runBody(
    body: string,
    helpers: string,
    x: { a: Float32Array; b: Float32Array; s: Float32Array },
  ) {
    const device = await gpuDevice();
    const n = x.a.length;
    const code = /* wgsl */ `
@group(0) @binding(0) var<storage, read> A: array<f32>;
@group(0) @binding(1) var<storage, read> B: array<f32>;
@group(0) @binding(2) var<storage, read> S: array<f32>;
@group(0) @binding(3) var<storage, read_write> O: array<f32>;
${helpers}
fn map_value(a: f32, b: f32, s: f32) -> f32 { return ${body}; }
@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  let i = gid.x;
  if (i < arrayLength(&O)) { O[i] = map_value(A[i], B[i], S[i]); }
}`;
    const input = (data: Float32Array) => {
      const buf = device.createBuffer({
        size: data.byteLength,
        usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_DST,
      });
      device.queue.writeBuffer(buf, 0, data);
      return buf;
    };
    const out = device.createBuffer({ size: 4 * n, usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC });
    const read = device.createBuffer({
      size: 4 * n,
      usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST,
    });
    const pipeline = device.createComputePipeline({
      layout: 'auto',
      compute: { module: device.createShaderModule({ code }), entryPoint: 'main' },
    });
    const bind = device.createBindGroup({
      layout: pipeline.getBindGroupLayout(0),
      entries: [input(x.a), input(x.b), input(x.s), out].map((buffer, binding) => ({
        binding,
        resource: { buffer },
      })),
    });
    const enc = device.createCommandEncoder();
    const pass = enc.beginComputePass();
    pass.setPipeline(pipeline);
    pass.setBindGroup(0, bind);
    pass.dispatchWorkgroups(Math.ceil(n / 64));
    pass.end();
    enc.copyBufferToBuffer(out, 0, read, 0, 4 * n);
    device.queue.submit([enc.finish()]);
    await read.mapAsync(GPUMapMode.READ);
    const got = new Float32Array(read.getMappedRange().slice(0));
    read.unmap();
    return got;
  }

  /**
   * One entry's WGSL body against its CPU body in `dtype`: operands rounded to the dtype, results
   * rounded to it (as the map kernel stores them), compared under the entry's declared rounding.
   * Takes the entry, so a planted one is checked exactly as the table's are.
   */
  async function checkMapFn(name: string, def: MapFnDef, dtype: 'bf16' | 'f32') {
    const o = operands(def, 0x5eed);
    // A float operand is stored in the run's dtype; masks and ids in i32, exact in f32.
    const stored = (d: OperandDomain | undefined, xs: number[]) =>
      Float32Array.from(xs, (v) => (d && OPERAND_DOMAINS[d].dtype !== 'float' ? v : roundTo(dtype, v)));
    const x = { a: stored(def.domain[0], o.a), b: stored(def.domain[1], o.b), s: Float32Array.from(o.s) };
    const gpu = Array.from(await runBody(def.wgsl, mapHelpersWgsl(def), x), (v) => roundTo(dtype, v));
    const cpu = Array.from(x.a, (a, i) => roundTo(dtype, def.cpu(a, x.b[i], o.s[i])));
    const tensor = (v: number[]) => toHostTensor(dtype, [v.length], v);
    const c = compareMapOutput(name, tensor(cpu), tensor(gpu), mapFnUlps(def.rounding, dtype), 'declared');
    // The element furthest off relative to the reference (a flushed subnormal aside), to name.
    let at = 0,
      far = -1;
    cpu.forEach((w, i) => {
      const d =
        gpu[i] === 0 && Math.abs(w) < 2 ** -126 ? 0 : Math.abs(w - gpu[i]) / Math.max(Math.abs(w), 2 ** -126);
      if (!(d <= far)) [far, at] = [d, i];
    });
    return {
      c,
      worst: `furthest at a=${x.a[at]} b=${x.b[at]} s=${o.s[at]}: cpu ${cpu[at]}, wgsl ${gpu[at]}`,
    };
  }

  for (const fn of Object.keys(MAP_FNS) as MapFn[])
    for (const dtype of ['bf16', 'f32'] as const)
      it(`${fn} (${dtype}): within ${mapFnUlps(MAP_FNS[fn].rounding, dtype)} ulps over its domains (${MAP_FNS[fn].domain.join(', ')})`, async () => {
        const { c, worst } = await checkMapFn(fn, MAP_FNS[fn], dtype);
        expect(c.pass, `${fn} ${dtype}: ${c.ulps} ulps; ${worst}`).toBe(true);
      });

  // σ's plausible but wrong body: the line through σ(0) = 0.5 and σ(1) ≈ 0.731, clamped to [0, 1].
  // It passes tsc and lint, and in bf16 equals σ at 0 and 1, all a one-operand function was fed
  // before domains were declared.
  const wrongSigmoid: MapFnDef = { ...MAP_FNS.sigmoid, wgsl: 'clamp(0.5 + 0.231 * a, 0.0, 1.0)' };

  it('a planted wrong σ body fails over the real domain, in bf16 and f32; the right body passes', async () => {
    for (const dtype of ['bf16', 'f32'] as const) {
      expect((await checkMapFn('sigmoid', MAP_FNS.sigmoid, dtype)).c.pass, dtype).toBe(true);
      const wrong = await checkMapFn('planted sigmoid', wrongSigmoid, dtype);
      expect(wrong.c.pass, dtype).toBe(false);
      expect(wrong.c.ulps, dtype).toBeGreaterThan(1000);
    }
  });

  it('the same wrong body fed only 0 and 1 (a mask) passes in bf16: the domain is what catches it', async () => {
    const onlyZeroOne: MapFnDef = { ...wrongSigmoid, tensorB: false, domain: ['bool'] };
    expect((await checkMapFn('planted sigmoid', onlyZeroOne, 'bf16')).c.pass).toBe(true);
  });
});
