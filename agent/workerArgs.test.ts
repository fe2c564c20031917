// A worker step's arguments are written by name in the layout WORKER_OPS declares, the generated
// C++ reads them in that same order, and the worker refuses a step that does not fit its layout.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildWorker } from './build.mjs';
import { WorkerProcess } from './workerProcess.ts';
import { renderOpTableHeader } from './opTableCpp.ts';
import { argFields, workerArgs } from './workerArgs.ts';
import { WORKER_OP_CODES, WORKER_OPS } from '../src/graph/opTable.ts';

describe('workerArgs', () => {
  it('writes the arguments in the declared order, lists inline', () => {
    // [2, 3] padded by one column on the left into [2, 4]: the gather the worker test writes by hand.
    expect(
      workerArgs(
        'gather',
        { offset: 0, nd: 2, outShape: [2, 4], inShape: [2, 3], stride: [3, 1], lo: [0, 1], value: 9 },
        2,
      ),
    ).toEqual({ i: [0, 2, 2, 4, 2, 3, 3, 1, 0, 1], f: [9] });
    expect(workerArgs('moe', { K: 4, I: 40, E: 32, H: 48, T: 7 }, 1)).toEqual({
      i: [7, 48, 32, 40, 4],
      f: [],
    });
  });

  it('checks each list against its declared length (an earlier argument, or one per rank)', () => {
    expect(() =>
      workerArgs(
        'gather',
        { offset: 0, nd: 2, outShape: [2, 4], inShape: [2, 3], stride: [3], lo: [0, 1], value: 0 },
        1,
      ),
    ).toThrow("worker op gather: 'stride' needs 2 values (nd)");
    const seed = { seed: 1, range: -1, stream: [11, 12], scale: 1, offset: 0 };
    expect(workerArgs('seed', seed, 2)).toEqual({ i: [1, -1, 11, 12], f: [1, 0] });
    expect(() => workerArgs('seed', seed, 4)).toThrow("worker op seed: 'stream' needs 4 values (world)");
  });

  it('reads a layout as names and list lengths, and refuses anything else', () => {
    expect(argFields(WORKER_OPS.seed.i)).toEqual([
      { name: 'seed' },
      { name: 'range' },
      { name: 'stream', count: 'world' },
    ]);
    expect(() => argFields(['rows', 'cols[]'])).toThrow("worker argument 'cols[]'");
  });

  it("the generated C++ reads every op's arguments in the declared order, into fields of their names", () => {
    const header = renderOpTableHeader();
    const readOf = (struct: string): string[] => {
      const alias = new RegExp(`using ${struct} = (\\w+);`).exec(header);
      if (alias) return readOf(alias[1]);
      const body = new RegExp(
        `struct ${struct} \\{[^]*?\\n  void read\\(ArgReader&( r)?\\) \\{(.*)\\}\\n\\};`,
      ).exec(header);
      expect(body, struct).not.toBeNull();
      return [...body![2].matchAll(/(\w+) = r\.(?:integer|list|perRank|real)\("(\w+)"/g)].map((m) => {
        expect(m[1]).toBe(m[2]);
        return m[2];
      });
    };
    for (const op of WORKER_OP_CODES) {
      const def = WORKER_OPS[op];
      expect(readOf(`${def.cpp}Args`), op).toEqual(
        [...argFields(def.i), ...argFields(def.f)].map((a) => a.name),
      );
    }
  });
});

describe('the worker checks each step against its layout', () => {
  let worker: WorkerProcess;
  beforeAll(async () => {
    worker = new WorkerProcess({ path: buildWorker({ forceCpu: true, log: () => {} }).path });
    await worker.start();
  }, 120_000);
  afterAll(async () => worker?.stop());

  const run = (step: object) =>
    worker.request({
      type: 'run',
      id: 't',
      world: 2,
      dtype: 'bf16',
      slots: [6, 8],
      inputs: [],
      intSlots: [],
      outputs: [],
      steps: [{ node: 'n', in: [0], out: [1], ...step }],
    });

  it('refuses a missing argument, a short list and a left-over value, naming the step', async () => {
    expect((await run({ op: 'add', in: [0, 0], f: [] })).header).toMatchObject({
      type: 'error',
      message: "step 'n': step op 'add' is missing its argument 'alpha'",
    });
    expect((await run({ op: 'gather', i: [0, 2, 2, 4, 2, 3, 3, 1, 0], f: [9] })).header).toMatchObject({
      type: 'error',
      message: "step 'n': step op 'gather' needs 2 values of 'lo', has 1 left",
    });
    expect((await run({ op: 'rms_norm', in: [0, 0], i: [1, 6, 0, 6, 0], f: [1e-6] })).header).toMatchObject({
      type: 'error',
      message: "step 'n': step op 'rms_norm' takes 4 integer and 1 float arguments, not 5 and 1",
    });
    expect((await run({ op: 'seed', in: [], i: [1, -1, 11], f: [1, 0] })).header).toMatchObject({
      type: 'error',
      message: "step 'n': step op 'seed' needs 2 values of 'stream', has 1 left",
    });
  });
});
