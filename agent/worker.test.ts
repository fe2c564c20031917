// The native worker (CPU build) behind its process boundary, and the plan checks in front of it.

import { spawn } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildWorker } from './build.mjs';
import { FrameReader, WorkerProcess } from './workerProcess.ts';
import { planFromWire } from './planWire.ts';
import { lowerPlan } from './program.ts';
import { roundTo, seededArray, seedRule, seedStream } from '../src/runtime/weights.ts';
import { cpuResidualNorm, cpuRmsNorm } from '../src/runtime/cpuKernels.ts';
import { bf16Bits } from '../src/runtime/bf16.ts';
import { ProtocolError } from '../src/runtime/agentProtocol.ts';
import { MAP_FN_CODES, MAP_FNS } from '../src/graph/opTable.ts';
import { RunError } from '../src/runtime/runError.ts';

let worker: WorkerProcess;
const path = buildWorker({ forceCpu: true, log: () => {} }).path;

beforeAll(async () => {
  worker = new WorkerProcess({ path });
  await worker.start();
});
afterAll(async () => worker.stop());

const run = (program: object, payload: Buffer[] = []) =>
  worker.request(
    { type: 'run', id: 't', world: 2, dtype: 'bf16', inputs: [], intSlots: [], outputs: [], ...program },
    payload,
  );
const bf16Out = (buf: Buffer, off: number, n: number) =>
  Array.from(new Uint16Array(buf.buffer.slice(buf.byteOffset + off, buf.byteOffset + off + 2 * n)));

describe('reading reply frames', () => {
  /** One frame as the worker writes it: u32 header length, u64 payload length, header, payload. */
  const frame = (header: object, payload: Buffer) => {
    const json = Buffer.from(JSON.stringify(header));
    const head = Buffer.alloc(12);
    head.writeUInt32LE(json.length, 0);
    head.writeBigUInt64LE(BigInt(payload.length), 4);
    return Buffer.concat([head, json, payload]);
  };

  it('a 64 MiB reply in 64 KiB pipe chunks, then a step frame split across chunks, arrive whole and in order', () => {
    const payload = Buffer.alloc(64 * 2 ** 20);
    for (let i = 0; i < payload.length; i += 4093) payload[i] = i % 251;
    const bytes = Buffer.concat([
      frame({ type: 'step', i: 3 }, Buffer.alloc(0)),
      frame({ type: 'result' }, payload),
      frame({ type: 'step', i: 4 }, Buffer.alloc(0)),
    ]);
    const got: [string, Buffer][] = [];
    const reader = new FrameReader(2 ** 30);
    // Odd chunk sizes, so frame heads and header/payload boundaries fall inside chunks.
    for (let at = 0, k = 0; at < bytes.length; k++) {
      const n = k % 3 === 0 ? 5 : 65_536;
      reader.push(bytes.subarray(at, at + n), (h, p) => got.push([h.toString(), p]));
      at += n;
    }
    expect(got.map(([h]) => h)).toEqual([
      '{"type":"step","i":3}',
      '{"type":"result"}',
      '{"type":"step","i":4}',
    ]);
    expect(got[1][1].equals(payload)).toBe(true);
  });

  it('refuses a frame that announces more than the limit', () => {
    const reader = new FrameReader(1024);
    expect(() => reader.push(frame({ type: 'result' }, Buffer.alloc(2048)), () => {})).toThrow(
      'a reply of 2048 bytes, over the limit of 1024',
    );
  });
});

describe('the worker process', () => {
  it('says hello with its mode and protocol', () => {
    expect(worker.hello).toMatchObject({
      type: 'hello',
      protocol: 1,
      mode: 'cpu',
      gpus: [],
      cuda: null,
      nccl: null,
    });
  });

  it('generates seeded tensors bit for bit as the runtime does, per rank', async () => {
    const n = 1000;
    const rule = seedRule('weight', [25, 40]);
    const streams = [seedStream('w', true, 0), seedStream('w', true, 1)];
    const r = await run({
      slots: [n, n],
      intSlots: [1],
      steps: [
        {
          node: 'w',
          op: 'seed',
          in: [],
          out: [0],
          i: [0x5eed, -1, ...streams],
          f: [rule.scale, rule.offset],
        },
        { node: 'ids', op: 'seed', in: [], out: [1], i: [7, 97, 11, 12], f: [1, 0] },
      ],
      outputs: [0, 1],
    });
    expect(r.header.type).toBe('result');
    const outs = r.header.outputs as { slot: number; rank: number; offset: number }[];
    for (const o of outs.filter((x) => x.slot === 0)) {
      const want = Array.from(seededArray(0x5eed, streams[o.rank], n, rule, 'bf16'), (v) => bf16Bits(v));
      expect(bf16Out(r.payload, o.offset, n)).toEqual(want);
    }
    const ids = outs.find((x) => x.slot === 1 && x.rank === 1)!;
    const got = Array.from(
      new Int32Array(
        r.payload.buffer.slice(r.payload.byteOffset + ids.offset, r.payload.byteOffset + ids.offset + 4 * n),
      ),
    );
    expect(got).toEqual(Array.from(seededArray(7, 12, n, seedRule('indices', [n]), 'i32', 97)));
  });

  it('pads and slices through one strided gather', async () => {
    // [2, 3] → pad one column on the left with 9, then take column 1 of a [2, 4] view: the input's column 0.
    const x = Buffer.from(new Uint16Array([1, 2, 3, 4, 5, 6].map((v) => bf16Bits(v))).buffer);
    const r = await run(
      {
        slots: [6, 8, 2],
        inputs: [{ slot: 0, rank: -1, offset: 0 }],
        steps: [
          { node: 'pad', op: 'gather', in: [0], out: [1], i: [0, 2, 2, 4, 2, 3, 3, 1, 0, 1], f: [9] },
          { node: 'col', op: 'gather', in: [1], out: [2], i: [1, 1, 2, 2, 4, 0], f: [0] },
        ],
        outputs: [1, 2],
      },
      [x],
    );
    const outs = r.header.outputs as { slot: number; rank: number; offset: number }[];
    expect(bf16Out(r.payload, outs[0].offset, 8)).toEqual([9, 1, 2, 3, 9, 4, 5, 6].map((v) => bf16Bits(v)));
    expect(bf16Out(r.payload, outs.find((o) => o.slot === 2)!.offset, 2)).toEqual(
      [1, 4].map((v) => bf16Bits(v)),
    );
  });

  it('answers malformed programs with an error and keeps serving', async () => {
    expect(
      (await run({ slots: [4], steps: [{ node: 'n', op: 'teleport', in: [], out: [0] }] })).header,
    ).toMatchObject({ type: 'error', message: "unknown step op 'teleport'" });
    expect(
      (await run({ slots: [4], steps: [{ node: 'n', op: 'fill', in: [], out: [7], f: [0] }] })).header,
    ).toMatchObject({ type: 'error', message: 'slot 7 out of range' });
    expect(
      (await run({ slots: [4], inputs: [{ slot: 0, rank: -1, offset: 0 }], steps: [] }, [Buffer.alloc(4)]))
        .header,
    ).toMatchObject({ type: 'error', message: 'input outside the payload' });
    expect(
      (await run({ slots: [4, 4], steps: [{ node: 'mask', op: 'map', in: [0], out: [1], i: [-1], f: [0] }] }))
        .header,
    ).toMatchObject({
      type: 'error',
      message: `step 'mask': map function code -1 is outside 0..${MAP_FN_CODES.length - 1}`,
    });
    expect((await worker.request({ type: 'run', id: 'x' })).header).toMatchObject({
      type: 'error',
      message: "missing field 'world'",
    });
    expect((await worker.request({ type: 'hello' })).header.type).toBe('hello');
  });

  it("runs every map function of the op table with the CPU reference's values", async () => {
    // x = [-1.5, 0, 2, 3] (bf16), m = [1, 0, 0, 1]; s = 2.5 for the scalar forms.
    const xs = [-1.5, 0, 2, 3],
      ms = [1, 0, 0, 1];
    const payload = Buffer.from(new Uint16Array([...xs, ...ms].map((v) => bf16Bits(v))).buffer);
    for (const [code, fn] of MAP_FN_CODES.entries()) {
      const def = MAP_FNS[fn];
      const r = await run(
        {
          world: 1,
          slots: [4, 4, 4],
          inputs: [
            { slot: 0, rank: -1, offset: 0 },
            { slot: 1, rank: -1, offset: 8 },
          ],
          steps: [{ node: fn, op: 'map', in: def.tensorB ? [0, 1] : [0], out: [2], i: [code], f: [2.5] }],
          outputs: [2],
        },
        [payload],
      );
      const want = xs.map((a, i) => bf16Bits(def.cpu(a, def.tensorB ? ms[i] : 0, 2.5)));
      expect(bf16Out(r.payload, (r.header.outputs as { offset: number }[])[0].offset, 4), fn).toEqual(want);
    }
  });

  it('runs the norms bit for bit as the CPU reference at 1,031 rows of GPT-OSS hidden 2880, 2 ranks', async () => {
    // Past 1,024 tokens: f32 sums of squares put ~1 output in 2,000 a bf16 ulp off the reference
    // there, which the differential's tiny sizes and 2-ulp contract never showed.
    const rows = 1031,
      cols = 2880,
      n = rows * cols,
      eps = 1e-6;
    const act = seedRule('activation', [rows, cols]),
      gamma = seedRule('norm-weight', [cols]);
    const stream = (name: string) => [seedStream(name, true, 0), seedStream(name, true, 1)];
    const seed = (node: string, out: number, rule: typeof act) => ({
      node,
      op: 'seed',
      in: [],
      out: [out],
      i: [0x5eed, -1, ...stream(node)],
      f: [rule.scale, rule.offset],
    });
    const r = await run({
      slots: [n, n, cols, n, n, n, n, n],
      steps: [
        seed('x', 0, act),
        seed('residual', 1, act),
        seed('w', 2, gamma),
        { node: 'ar_norm', op: 'allreduce_norm', in: [0, 1, 2], out: [3, 4], i: [rows, cols], f: [eps] },
        { node: 'rms', op: 'rms_norm', in: [0, 2], out: [5], i: [rows, cols, 0, cols], f: [eps] },
        {
          node: 'add_rms',
          op: 'fused_add_rms_norm',
          in: [0, 1, 2],
          out: [6, 7],
          i: [rows, cols, 0, cols],
          f: [eps],
        },
      ],
      outputs: [3, 4, 5, 6, 7],
    });
    expect(r.header.type).toBe('result');
    const outs = r.header.outputs as { slot: number; rank: number; offset: number }[];
    const gen = (node: string, rank: number, numel: number, rule: typeof act) =>
      Float64Array.from(seededArray(0x5eed, stream(node)[rank], numel, rule, 'bf16'));
    const xs = [0, 1].map((rank) => gen('x', rank, n, act));
    const sum = xs[0].map((v, i) => roundTo('bf16', v + xs[1][i]));
    for (const rank of [0, 1]) {
      const res = gen('residual', rank, n, act),
        w = gen('w', rank, cols, gamma);
      const fused = cpuResidualNorm(sum, res, w, rows, cols, eps, 'bf16', true);
      const unfused = cpuResidualNorm(xs[rank], res, w, rows, cols, eps, 'bf16', false);
      const want = new Map([
        [3, fused.out],
        [4, fused.res],
        [5, cpuRmsNorm(xs[rank], w, rows, cols, eps, 'bf16')],
        [6, unfused.out],
        [7, unfused.res],
      ]);
      for (const [slot, values] of want) {
        const got = bf16Out(r.payload, outs.find((o) => o.slot === slot && o.rank === rank)!.offset, n);
        const bits = Array.from(values, (v) => bf16Bits(v));
        const first = got.findIndex((b, i) => b !== bits[i]);
        expect(
          first,
          `slot ${slot}, rank ${rank}: first differing element (row ${Math.floor(first / cols)})`,
        ).toBe(-1);
      }
    }
  });

  it('names the node whose token id leaves the vocabulary', async () => {
    const ids = Buffer.from(new Int32Array([0, 5, 2]).buffer);
    const r = await run(
      {
        world: 1,
        slots: [5 * 2, 3, 6],
        intSlots: [1],
        inputs: [{ slot: 1, rank: -1, offset: 0 }],
        steps: [
          { node: 'table', op: 'fill', in: [], out: [0], f: [1] },
          { node: 'embed', op: 'embedding', in: [0, 1], out: [2], i: [3, 5, 2] },
        ],
        outputs: [2],
      },
      [ids],
    );
    expect(r.header).toMatchObject({
      type: 'error',
      node: 'embed',
      message: 'token id 5 at position 1 is outside the vocabulary [0, 5)',
    });
  });
});

describe('plans from the wire', () => {
  const base = { preset: 'tiny', dtype: 'bf16', ranks: 2, tokens: 7, fed: [] };
  const lim = { maxSteps: 100, maxStorages: 100, maxRanks: 8, maxElements: 2 ** 30 };
  const view = (
    storage: string,
    shape: number[],
    strides = [shape[1] ?? 1, 1].slice(2 - shape.length),
    offset = 0,
  ) => ({ storage, offset, shape, strides });

  it('refuse unknown kernels and storages, naming where', () => {
    expect(() =>
      planFromWire(
        { ...base, storages: [], steps: [{ kernel: 'exec', node: 'n', op: 'x' }], outputs: [] },
        lim,
      ),
    ).toThrow("plan.steps[0].kernel: unknown kernel 'exec'");
    expect(() =>
      planFromWire(
        {
          ...base,
          storages: [],
          steps: [{ kernel: 'copy', node: 'n', op: 'x', x: view('a', [2]), out: 'b' }],
          outputs: [],
        },
        lim,
      ),
    ).toThrow("plan.steps[0].x.storage: unknown storage 'a'");
    expect(() =>
      planFromWire(
        {
          ...base,
          storages: [{ id: 's', dtype: 'bf16', shape: [2 ** 20, 2 ** 20] }],
          steps: [],
          outputs: [],
        },
        lim,
      ),
    ).toThrow(ProtocolError);
  });

  it('a GEMM writing more than its output storage holds is refused before the worker sees it', () => {
    const plan = planFromWire(
      {
        ...base,
        storages: [
          { id: 'a', dtype: 'bf16', shape: [4, 8] },
          { id: 'b', dtype: 'bf16', shape: [8, 16] },
          { id: 'o', dtype: 'bf16', shape: [4, 4] },
        ],
        steps: [
          {
            kernel: 'gemm',
            node: 'mm',
            op: 'aten.mm.default',
            a: view('a', [4, 8]),
            b: view('b', [8, 16]),
            bias: null,
            alpha: 1,
            beta: 0,
            out: 'o',
          },
        ],
        outputs: [{ name: 'mm', view: view('o', [4, 4]) }],
      },
      lim,
    );
    expect(() => lowerPlan(plan, { id: 'x', seed: 1, maxDeviceBytes: 2 ** 30 })).toThrow(RunError);
    expect(() => lowerPlan(plan, { id: 'x', seed: 1, maxDeviceBytes: 2 ** 30 })).toThrow(
      "node mm (aten.mm.default): writes 64 elements into storage 'o' of 16",
    );
  });

  it('an FP8 quant step arrives through the wire and lowers to the worker op, its NaN rule as an argument', () => {
    const plan = planFromWire(
      {
        ...base,
        storages: [
          { id: 'x', dtype: 'bf16', shape: [4, 8] },
          { id: 's', dtype: 'bf16', shape: [1] },
          { id: 'q', dtype: 'bf16', shape: [4, 8] },
        ],
        steps: [
          {
            kernel: 'fp8_quant',
            node: 'auto_functionalized_1',
            op: '_C.static_scaled_fp8_quant.default',
            x: view('x', [4, 8]),
            scale: view('s', [1]),
            satfinite: false,
            out: 'q',
          },
        ],
        outputs: [{ name: 'getitem_2', view: view('q', [4, 8]) }],
      },
      lim,
    );
    const steps = lowerPlan(plan, { id: 'x', seed: 1, maxDeviceBytes: 2 ** 30 }).program.steps;
    expect(steps.map((st) => [st.node, st.op, st.i])).toEqual([['auto_functionalized_1', 'fp8_quant', [0]]]);
  });

  it('a bf16 plan that keeps f32 values (a native RMSNorm) is refused by the node that writes them', () => {
    const plan = planFromWire(
      {
        ...base,
        storages: [
          { id: 'x', dtype: 'bf16', shape: [4, 8] },
          { id: 'w', dtype: 'f32', shape: [4, 8] },
        ],
        steps: [
          {
            kernel: 'map',
            node: 'convert_element_type',
            op: 'prims.convert_element_type.default',
            fn: 'cast',
            a: view('x', [4, 8]),
            b: null,
            scalar: 0,
            out: 'w',
          },
        ],
        outputs: [{ name: 'convert_element_type', view: { ...view('w', [4, 8]), dtype: 'f32' } }],
      },
      lim,
    );
    expect(() => lowerPlan(plan, { id: 'x', seed: 1, maxDeviceBytes: 2 ** 30 })).toThrow(
      'node convert_element_type (prims.convert_element_type.default): keeps f32 values in a bf16 run',
    );
  });

  it('a run larger than the device allowance is refused with the figures', () => {
    const plan = planFromWire(
      {
        ...base,
        storages: [{ id: 's', dtype: 'bf16', shape: [1024, 1024] }],
        steps: [],
        outputs: [{ name: 's', view: view('s', [1024, 1024]) }],
      },
      lim,
    );
    expect(() => lowerPlan(plan, { id: 'x', seed: 1, maxDeviceBytes: 2 ** 20 })).toThrow(
      'the run needs 4.0 MiB over 2 ranks; the agent allows 1 MiB',
    );
  });
});

describe('npm run agent', () => {
  it('builds, starts on 127.0.0.1 and prints the app URL with a token', async () => {
    const child = spawn(process.execPath, ['agent/start.mjs', '--cpu'], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    child.stdout.on('data', (d) => {
      out += d;
    });
    try {
      await expect
        .poll(() => out, { timeout: 30_000 })
        .toMatch(/\?agent=ws:\/\/127\.0\.0\.1:\d+#token=[0-9a-f]{64}/);
      expect(out).toMatch(/^fusionlab agent on 127\.0\.0\.1:\d+ — CPU only/);
    } finally {
      child.kill('SIGTERM');
      await new Promise((r) => child.on('exit', r));
    }
  });
});
