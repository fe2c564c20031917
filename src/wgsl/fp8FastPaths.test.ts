// The FP8 quant's fast forms, bitwise against the forms they replace, on Dawn: `q4` (the static
// norm quant's four-wide e4m3 value, normQuant.ts) against f8e4m3fn_value(quant(v · inv)) on every
// bf16 value at several scales and on f32 draws; `quant4` (fp8QuantRows.ts rowQuantWgsl: v · (1/s)
// rounded to 3 mantissa bits away from e4m3 midpoints) against `quant` (the correctly rounded
// division, the unfused steps' value) where it matters most — quotients at and beside every e4m3
// midpoint and value, at scales over the range, bf16 and f32 inputs — and on random draws.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { nodeGpu } from '../runtime/nodeGpu.ts';
import { bf16ToF32 } from '../runtime/bf16.ts';
import { roundTo } from '../runtime/weights.ts';
import { inverseScale } from '../graph/fp8.ts';
import { normQuantWgsl } from './normQuant.ts';
import { f32Bits, rowQuantWgsl } from './fp8QuantRows.ts';

/** Runs `fn pair(a: f32, b: f32) -> vec2<u32>` over (a, b) pairs; the two words of each. */
async function runPairs(device: GPUDevice, prelude: string, pairs: Float32Array): Promise<Uint32Array> {
  const n = pairs.length / 2;
  const code = `${prelude}
@group(0) @binding(7) var<storage, read> inp: array<vec2<f32>>;
@group(0) @binding(8) var<storage, read_write> res: array<vec2<u32>>;
@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  let i = gid.x + gid.y * 65535u * 64u;
  if (i >= ${n}u) { return; }
  res[i] = pair(inp[i].x, inp[i].y);
}`;
  const input = device.createBuffer({
    size: pairs.byteLength,
    usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_DST,
  });
  device.queue.writeBuffer(input, 0, pairs);
  const out = device.createBuffer({ size: n * 8, usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC });
  const read = device.createBuffer({ size: n * 8, usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST });
  const pipeline = device.createComputePipeline({
    layout: 'auto',
    compute: { module: device.createShaderModule({ code }), entryPoint: 'main' },
  });
  const layout = pipeline.getBindGroupLayout(0);
  const entries = [
    { binding: 7, resource: { buffer: input } },
    { binding: 8, resource: { buffer: out } },
  ];
  const bind = device.createBindGroup({ layout, entries });
  const enc = device.createCommandEncoder();
  const pass = enc.beginComputePass();
  pass.setPipeline(pipeline);
  pass.setBindGroup(0, bind);
  const groups = Math.ceil(n / 64);
  pass.dispatchWorkgroups(Math.min(groups, 65535), Math.ceil(groups / 65535));
  pass.end();
  enc.copyBufferToBuffer(out, 0, read, 0, n * 8);
  device.queue.submit([enc.finish()]);
  await read.mapAsync(GPUMapMode.READ);
  const words = new Uint32Array(read.getMappedRange().slice(0));
  read.unmap();
  return words;
}

/** Pairs whose two words differ, described. */
function mismatches(words: Uint32Array, pairs: Float32Array): string[] {
  const bad: string[] = [];
  for (let i = 0; i < words.length / 2; i++)
    if (words[2 * i] !== words[2 * i + 1])
      bad.push(
        `(${pairs[2 * i]}, ${pairs[2 * i + 1]}): 0x${words[2 * i]!.toString(16)} vs 0x${words[2 * i + 1]!.toString(16)}`,
      );
  return bad;
}

/** xorshift draws in [0, 1). */
function draws(seed: number) {
  let x = seed >>> 0 || 1;
  return () => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    return (x >>> 0) / 2 ** 32;
  };
}

/** The 127 positive finite e4m3fn values and the midpoints between neighbours. */
const E4M3: number[] = [];
for (let e = 0; e < 16; e++)
  for (let m = 0; m < 8; m++)
    if (!(e === 15 && m === 7)) E4M3.push(e === 0 ? (m / 8) * 2 ** -6 : (1 + m / 8) * 2 ** (e - 7));
const MIDPOINTS = E4M3.slice(1).map((v, i) => (v + E4M3[i]!) / 2);

describe('FP8 fast paths', { timeout: 300_000 }, () => {
  let device: GPUDevice;
  beforeAll(async () => {
    device = (await (await (await nodeGpu()).requestAdapter())!.requestDevice())!;
  });
  afterAll(() => device?.destroy());

  it('q4 is f8e4m3fn_value(quant(v · inv)) on every bf16 value at several scales, and on f32 draws', async () => {
    const prelude = `${normQuantWgsl('f32')}
fn pair(v: f32, inv: f32) -> vec2<u32> {
  return vec2<u32>(bitcast<u32>(q4(vec4<f32>(v), inv).y), bitcast<u32>(f8e4m3fn_value(quant(v * inv))));
}`;
    const xs: number[] = [];
    for (const scale of [1, 0.0173, 3.5, 2 ** -12, 1000, 1 / 448]) {
      const inv = inverseScale(scale);
      for (let b = 0; b < 65536; b++) xs.push(bf16ToF32(b), inv);
    }
    const r = draws(7);
    for (let i = 0; i < 100_000; i++) xs.push((r() - 0.5) * 2 ** (40 * r() - 20), r() * 2 ** (20 * r() - 10));
    const pairs = Float32Array.from(xs);
    const bad = mismatches(await runPairs(device, prelude, pairs), pairs);
    expect(bad.slice(0, 5), `${bad.length} differ`).toEqual([]);
  });

  it('quant4 is quant at and beside every e4m3 midpoint and value, over scales, and on draws', async () => {
    const r = draws(11);
    const xs: number[] = [];
    const f32 = new Float32Array(1),
      u32 = new Uint32Array(f32.buffer);
    const near = (x: number, k: number) => {
      f32[0] = x;
      u32[0] = u32[0]! + k;
      return f32[0];
    };
    for (let t = 0; t < 40; t++) {
      // Scales over the range, a few ordinary ones among them.
      const s = Math.fround(
        t < 8 ? [1, 0.5, 3, 1 / 448, 0.0173, 2.75, 7 / 448, 0.1][t]! : 2 ** (30 * r() - 20) * (1 + r()),
      );
      for (const q of [...MIDPOINTS, ...E4M3, 464, 480, 500])
        for (const sign of [1, -1]) {
          const v = Math.fround(sign * q * s);
          for (const k of [-3, -2, -1, 0, 1, 2, 3]) {
            xs.push(near(v, k), s);
            xs.push(roundTo('bf16', near(v, k)), s);
          }
        }
      // ±0: its own value where the scale has a reciprocal, the division's where it has none.
      xs.push(0, s, -0, s);
    }
    xs.push(0, NaN, -0, NaN, 0, Infinity, 1, NaN, NaN, 1, -Infinity, 1);
    for (let i = 0; i < 200_000; i++)
      xs.push((r() - 0.5) * 2 ** (30 * r() - 15), Math.fround(2 ** (20 * r() - 12)));
    const pairs = Float32Array.from(xs);
    // The FP8 range 448 (quotients past it clamp to 448 on the fast path) and a wider one (they
    // take the division: 464 and up are NaN in e4m3fn).
    for (const max of [448, 480]) {
      const prelude = `${rowQuantWgsl({ eps: '0.0', max: f32Bits(max), minScale: f32Bits(1 / (448 * 512)) })}
// v in lane z among others (one that takes the division, -v), so a lane's value cannot stray.
fn pair(v: f32, s: f32) -> vec2<u32> {
  let q = quant4(vec4<f32>(1e-30, 0.0, v, -v), s, row_recip(s));
  return vec2<u32>(bitcast<u32>(q.z), bitcast<u32>(quant(v, s)));
}`;
      const bad = mismatches(await runPairs(device, prelude, pairs), pairs);
      expect(bad.slice(0, 5), `max ${max}: ${bad.length} differ`).toEqual([]);
    }
  });
});
