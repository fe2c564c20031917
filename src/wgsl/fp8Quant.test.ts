// FP8 quantization, bit-exact: the CPU quantizers (src/graph/fp8.ts) and the WGSL kernel (Dawn
// on SwiftShader) against an independent reference that knows nothing of bit tricks — the 254
// finite e4m3fn values decoded from the format's definition, and for each input the nearest one
// by brute force, ties to the even code (mantissa LSB 0). Every bf16 bit pattern is quantized.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { nodeGpu } from '../runtime/nodeGpu.ts';
import { bf16Bits, bf16ToF32 } from '../runtime/bf16.ts';
import {
  f8e4m3fnBits,
  f8e4m3fnValue,
  fusedNormFp8Quant,
  inverseScale,
  quantizeFp8,
  staticScaledFp8Quant,
} from '../graph/fp8.ts';
import {
  FP8_QUANT_PARAMS,
  FP8_QUANT_VALUES_PARAMS,
  RECIP_WGSL,
  fp8QuantDispatch,
  fp8QuantValuesDispatch,
  fp8QuantValuesWgsl,
  fp8QuantWgsl,
} from './fp8Quant.ts';
import type { Fp8NanRule } from '../graph/fp8.ts';

/** e4m3fn from its definition: 1 sign, 4 exponent bits (bias 7, 0 = subnormal), 3 mantissa bits; S.1111.111 is NaN. */
const DEFINED: { code: number; value: number }[] = [];
for (let code = 0; code < 256; code++) {
  const s = code >> 7,
    e = (code >> 3) & 15,
    m = code & 7;
  if (e === 15 && m === 7) continue;
  const mag = e === 0 ? (m / 8) * 2 ** (1 - 7) : (1 + m / 8) * 2 ** (e - 7);
  DEFINED.push({ code, value: s ? -mag : mag });
}

/** Nearest finite e4m3fn code to x (saturating), ties to the even code; sign of zero kept. */
function referenceCode(x: number): number {
  if (Number.isNaN(x)) return 0x7f;
  const neg = x < 0 || Object.is(x, -0);
  let best = -1,
    bestErr = Infinity;
  for (const { code, value } of DEFINED) {
    if (code >> 7 !== (neg ? 1 : 0)) continue;
    const err = Math.abs(value - Math.max(-448, Math.min(448, x)));
    if (err < bestErr || (err === bestErr && (code & 1) === 0)) {
      best = code;
      bestErr = err;
    }
  }
  return best;
}

function referenceQuant(x: number, scale: number, rule: Fp8NanRule): number {
  // f32 multiply by the f32 reciprocal, as the CUDA kernels do.
  const v = Math.fround(x * Math.fround(1 / scale));
  if (Number.isNaN(v)) return rule === 'clamp' ? 0x7e : 0x7f;
  return referenceCode(v);
}

/** Every bf16 bit pattern as a value (NaNs and infinities included). */
const ALL_BF16 = Float64Array.from({ length: 65536 }, (_, b) => bf16ToF32(b));
const SCALES = [1, 0.0173, 3.5, 2 ** -12, 1000];

describe('float8_e4m3fn', () => {
  it('the encoder agrees with the defined table on every exactly representable value and its neighbours', () => {
    for (const { code, value } of DEFINED) {
      expect(f8e4m3fnBits(value)).toBe(code === 0x80 ? 0x80 : code);
      expect(f8e4m3fnValue(code)).toBe(value);
    }
    // Midpoints round to the even code; past 448 saturates; below half the smallest subnormal is zero.
    expect(f8e4m3fnBits(1.0625)).toBe(0x38); // between 1 (0x38) and 1.125 (0x39)
    expect(f8e4m3fnBits(1.1875)).toBe(0x3a); // between 1.125 (0x39) and 1.25 (0x3a)
    expect(f8e4m3fnBits(464)).toBe(0x7e);
    expect(f8e4m3fnBits(-1e30)).toBe(0xfe);
    expect(f8e4m3fnBits(2 ** -10)).toBe(0x00);
    expect(f8e4m3fnBits(-(2 ** -10) * 1.5)).toBe(0x81);
    expect(f8e4m3fnBits(NaN)).toBe(0x7f);
  });

  it('static_scaled_fp8_quant and the fused quant output match the reference on every bf16 value, at several scales', () => {
    for (const scale of SCALES) {
      const got = staticScaledFp8Quant(ALL_BF16, scale);
      const fused = fusedNormFp8Quant(ALL_BF16, scale);
      for (let b = 0; b < 65536; b++) {
        const x = ALL_BF16[b]!;
        if (got[b] !== referenceQuant(x, scale, 'clamp'))
          expect.fail(
            `static, scale ${scale}, bf16 0x${b.toString(16)} (${x}): ${got[b]} vs ${referenceQuant(x, scale, 'clamp')}`,
          );
        if (fused[b] !== referenceQuant(x, scale, 'satfinite'))
          expect.fail(`fused, scale ${scale}, bf16 0x${b.toString(16)} (${x})`);
      }
    }
    // The two differ on NaN only: vLLM's clamp makes it 448, the saturating cast keeps NaN.
    expect([staticScaledFp8Quant([NaN], 1)[0], fusedNormFp8Quant([NaN], 1)[0]]).toEqual([0x7e, 0x7f]);
    expect([staticScaledFp8Quant([1e6], 2)[0], fusedNormFp8Quant([-1e6], 2)[0]]).toEqual([0x7e, 0xfe]);
  });
});

describe('WGSL FP8 quant kernel', { timeout: 120_000 }, () => {
  let device: GPUDevice;
  beforeAll(async () => {
    const adapter = await (await nodeGpu()).requestAdapter();
    device = await adapter!.requestDevice();
  });
  afterAll(() => device?.destroy());

  async function runKernel(
    inputWords: Uint32Array,
    dtype: 'bf16' | 'f32',
    n: number,
    inv: number,
    rule: Fp8NanRule,
  ): Promise<Uint8Array> {
    const buf = (data: ArrayBufferView, usage: number) => {
      const b = device.createBuffer({
        size: Math.max(16, Math.ceil(data.byteLength / 16) * 16),
        usage: usage | GPUBufferUsage.COPY_DST,
      });
      device.queue.writeBuffer(b, 0, data.buffer, data.byteOffset, data.byteLength);
      return b;
    };
    const prm = buf(FP8_QUANT_PARAMS.words({ n, invScale: inv }), GPUBufferUsage.STORAGE);
    const inp = buf(inputWords, GPUBufferUsage.STORAGE);
    const outBytes = Math.ceil(n / 4) * 4;
    const out = device.createBuffer({
      size: Math.max(16, Math.ceil(outBytes / 16) * 16),
      usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC,
    });
    const read = device.createBuffer({
      size: out.size,
      usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST,
    });
    const module = device.createShaderModule({ code: fp8QuantWgsl(dtype, rule) });
    const pipeline = device.createComputePipeline({
      layout: 'auto',
      compute: { module, entryPoint: 'main' },
    });
    const bind = device.createBindGroup({
      layout: pipeline.getBindGroupLayout(0),
      entries: [prm, out, inp].map((b, i) => ({ binding: i, resource: { buffer: b } })),
    });
    const enc = device.createCommandEncoder();
    const pass = enc.beginComputePass();
    pass.setPipeline(pipeline);
    pass.setBindGroup(0, bind);
    pass.dispatchWorkgroups(...fp8QuantDispatch(n));
    pass.end();
    enc.copyBufferToBuffer(out, 0, read, 0, out.size);
    device.queue.submit([enc.finish()]);
    await read.mapAsync(GPUMapMode.READ);
    const bytes = new Uint8Array(read.getMappedRange().slice(0, n));
    read.unmap();
    return bytes;
  }

  it('bf16 input: every bf16 bit pattern, both NaN rules, bit-exact against the reference', async () => {
    const words = new Uint32Array(32768);
    for (let i = 0; i < 32768; i++) words[i] = (2 * i) | ((2 * i + 1) << 16);
    for (const scale of SCALES) {
      const inv = inverseScale(scale);
      for (const rule of ['clamp', 'satfinite'] as const) {
        const got = await runKernel(words, 'bf16', 65536, inv, rule);
        let bad = 0,
          first = '';
        for (let b = 0; b < 65536; b++) {
          const want = referenceQuant(ALL_BF16[b]!, scale, rule);
          if (got[b] !== want) {
            if (!bad) first = `bf16 0x${b.toString(16)} (${ALL_BF16[b]}): got ${got[b]}, want ${want}`;
            bad++;
          }
        }
        expect(bad, `scale ${scale}, ${rule}: ${bad} differ, first ${first}`).toBe(0);
      }
    }
  });

  it('f32 input with a length that is not a multiple of 4 (the last word partly filled)', async () => {
    const n = 1001;
    const xs = new Float32Array(n);
    let s = 12345;
    for (let i = 0; i < n; i++) {
      s = (s * 1103515245 + 12345) >>> 0;
      xs[i] = (s / 2 ** 32 - 0.5) * 2 ** ((i % 40) - 20);
    }
    const got = await runKernel(new Uint32Array(xs.buffer), 'f32', n, inverseScale(0.37), 'clamp');
    expect([...got]).toEqual([...xs].map((x) => referenceQuant(x, 0.37, 'clamp')));
  });

  it('recip_rn: 1 / scale correctly rounded, as the host and CUDA compute it, over the whole normal range', async () => {
    const n = 65536;
    const scales = new Float32Array(n);
    let x = 987654321;
    for (let i = 0; i < n; i++) {
      x ^= x << 13;
      x ^= x >>> 17;
      x ^= x << 5;
      x >>>= 0;
      // Random significands at exponents 1..252; a few exact powers of two and edge significands.
      const e = 1 + (i % 252),
        m = i < 512 ? [0, 1, 0x7fffff, 0x400000][i % 4]! : x & 0x7fffff;
      scales[i] = new Float32Array(new Uint32Array([(e << 23) | m]).buffer)[0]!;
    }
    const code = `${RECIP_WGSL}
@group(0) @binding(0) var<storage, read> inp: array<f32>;
@group(0) @binding(1) var<storage, read_write> out: array<u32>;
@compute @workgroup_size(256) fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  out[gid.x] = bitcast<u32>(recip_rn(inp[gid.x]));
}`;
    const inp = device.createBuffer({ size: n * 4, usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_DST });
    device.queue.writeBuffer(inp, 0, scales);
    const out = device.createBuffer({ size: n * 4, usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC });
    const read = device.createBuffer({
      size: n * 4,
      usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST,
    });
    const pipeline = device.createComputePipeline({
      layout: 'auto',
      compute: { module: device.createShaderModule({ code }), entryPoint: 'main' },
    });
    const enc = device.createCommandEncoder();
    const pass = enc.beginComputePass();
    pass.setPipeline(pipeline);
    pass.setBindGroup(
      0,
      device.createBindGroup({
        layout: pipeline.getBindGroupLayout(0),
        entries: [
          { binding: 0, resource: { buffer: inp } },
          { binding: 1, resource: { buffer: out } },
        ],
      }),
    );
    pass.dispatchWorkgroups(n / 256);
    pass.end();
    enc.copyBufferToBuffer(out, 0, read, 0, n * 4);
    device.queue.submit([enc.finish()]);
    await read.mapAsync(GPUMapMode.READ);
    const got = new Float32Array(read.getMappedRange().slice(0));
    read.unmap();
    let bad = 0,
      first = '';
    for (let i = 0; i < n; i++) {
      const want = inverseScale(scales[i]!);
      if (!Object.is(got[i], want)) {
        if (!bad) first = `1/${scales[i]}: got ${got[i]}, want ${want}`;
        bad++;
      }
    }
    expect(bad, first).toBe(0);
  });

  it('the plan kernel: quantized values in bf16, the bf16 scale read from a buffer, every bf16 input, both rules', async () => {
    const words = new Uint32Array(32768);
    for (let i = 0; i < 32768; i++) words[i] = (2 * i) | ((2 * i + 1) << 16);
    const storage = (data: Uint32Array) => {
      const b = device.createBuffer({
        size: Math.max(16, data.byteLength),
        usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_DST,
      });
      device.queue.writeBuffer(b, 0, data);
      return b;
    };
    const inp = storage(words);
    for (const scale of [0.0173, 3.5]) {
      const scaleBf16 = bf16ToF32(bf16Bits(scale));
      for (const rule of ['clamp', 'satfinite'] as const) {
        const out = device.createBuffer({
          size: 65536 * 2,
          usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC,
        });
        const read = device.createBuffer({
          size: 65536 * 2,
          usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST,
        });
        device.pushErrorScope('validation');
        const pipeline = device.createComputePipeline({
          layout: 'auto',
          compute: {
            module: device.createShaderModule({ code: fp8QuantValuesWgsl('bf16', 'bf16', 'bf16', rule) }),
            entryPoint: 'main',
          },
        });
        expect((await device.popErrorScope())?.message).toBeUndefined();
        const buffers = [
          storage(FP8_QUANT_VALUES_PARAMS.words({ n: 65536 })),
          out,
          inp,
          storage(new Uint32Array([bf16Bits(scale)])),
        ];
        const enc = device.createCommandEncoder();
        const pass = enc.beginComputePass();
        pass.setPipeline(pipeline);
        pass.setBindGroup(
          0,
          device.createBindGroup({
            layout: pipeline.getBindGroupLayout(0),
            entries: buffers.map((b, i) => ({ binding: i, resource: { buffer: b } })),
          }),
        );
        pass.dispatchWorkgroups(...fp8QuantValuesDispatch(65536));
        pass.end();
        enc.copyBufferToBuffer(out, 0, read, 0, 65536 * 2);
        device.queue.submit([enc.finish()]);
        await read.mapAsync(GPUMapMode.READ);
        const got = new Uint16Array(read.getMappedRange().slice(0));
        read.unmap();
        const inv = inverseScale(scaleBf16);
        let bad = 0,
          first = '';
        for (let b = 0; b < 65536; b++) {
          const want = f8e4m3fnValue(quantizeFp8(ALL_BF16[b]!, inv, rule));
          const ok = Number.isNaN(want) ? Number.isNaN(bf16ToF32(got[b]!)) : got[b] === bf16Bits(want);
          if (!ok) {
            if (bad < 4)
              first += ` | bf16 0x${b.toString(16)} (${ALL_BF16[b]}): got 0x${got[b]!.toString(16)}, want ${want}`;
            bad++;
          }
        }
        expect(bad, `scale ${scale} ${rule}: ${first}`).toBe(0);
      }
    }
  });
});
