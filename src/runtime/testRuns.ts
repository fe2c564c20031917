// Run options for the runtime's tests: the tiny preset on 2 ranks, bf16, one-shot all-reduce, one
// thread; on the CPU reference, or on Dawn's GPU for WebGPU runs (opened once per test file,
// before its tests). And the check every rewrite's run test makes: before ≡ after on each backend.

import { beforeAll, expect } from 'vitest';
import { nodeGpu } from './nodeGpu.ts';
import { compareGraphs, runGraph, type CompareReport, type RunOptions } from './index.ts';
import { TINY_RUN, type BackendName } from './backend.ts';
import { hostValues, type HostTensor } from './hostTensor.ts';
import { f8e4m3fnBits, f8e4m3fnValue } from '../graph/fp8.ts';
import type { Graph } from '../graph/ir.ts';

/** The tiny run on the CPU reference, with the test's own options: no device to open. */
export const tinyCpuRun = (o: Partial<RunOptions> = {}): RunOptions => ({
  ...TINY_RUN,
  backend: 'cpu',
  ...o,
});

/** A builder of run options over these defaults and the file's own; call it inside tests. */
export function tinyRuns(defaults: Partial<RunOptions> = {}): (o?: Partial<RunOptions>) => RunOptions {
  let gpu: GPU | undefined;
  beforeAll(async () => {
    gpu = await nodeGpu();
  });
  return (o = {}) => ({ backend: 'webgpu', ...TINY_RUN, gpu, ...defaults, ...o });
}

/** A seed for a run whose inputs should differ from run to run (the test prints it on failure). */
export const freshSeed = (): number => (Math.random() * 2 ** 32) >>> 0;

/**
 * What a rewrite promises of each output. 'bitwise': the same bits (and its gate passed);
 * 'stated': within the tolerance the comparison states for it (compareOutputs.ts).
 */
export type BeforeAfterContract = 'bitwise' | 'stated';

export interface BeforeAfterOptions {
  /** The backends to run on, in order; both by default. */
  backends?: readonly ('cpu' | 'webgpu')[];
  contract?: BeforeAfterContract;
  /**
   * Whether an output may depend on a node no kernel computed (fed with seeded values): only
   * where the graph holds an op without a kernel, which the test then names. Not by default.
   */
  fedAllowed?: boolean;
  /** Run options over the file's `tinyRuns` builder for every backend (ranks, presets). */
  options?: Partial<RunOptions>;
  seed?: number;
}

/** One backend's run of a before ≡ after check, for the checks a test adds of its own. */
export interface BeforeAfterRun {
  backend: BackendName;
  seed: number;
  /** The run options both graphs ran with: run `after` again with them to read its outputs. */
  options: RunOptions;
  report: CompareReport;
}

/**
 * Runs `before` and `after` on the same seeded inputs on each backend and asserts every output
 * keeps the contract, computed on every path unless `fedAllowed`, and the report ok. A failure
 * names the seed, the backend, the output, its first differing element and both values there.
 */
export async function expectBeforeAfter(
  before: Graph,
  after: Graph,
  passes: string[],
  runs: (o?: Partial<RunOptions>) => RunOptions,
  {
    backends = ['cpu', 'webgpu'],
    contract = 'bitwise',
    fedAllowed = false,
    options,
    seed,
  }: BeforeAfterOptions = {},
): Promise<BeforeAfterRun[]> {
  const s = seed ?? freshSeed();
  const done: BeforeAfterRun[] = [];
  for (const backend of backends) {
    const opts = runs({ ...options, backend, seed: s });
    const report = await compareGraphs(before, after, passes, opts);
    const broken = brokenOutputs(report, contract, fedAllowed);
    expect(
      broken,
      `seed ${s} ${backend}: outputs that break the ${contract} contract:\n${broken.join('\n')}`,
    ).toEqual([]);
    expect(report.ok, `seed ${s} ${backend}: ${JSON.stringify(report.outputs)}`).toBe(true);
    done.push({ backend, seed: s, options: opts, report });
  }
  return done;
}

/** Each output that breaks the contract, as a line naming it and where it first differs. */
function brokenOutputs(report: CompareReport, contract: BeforeAfterContract, fedAllowed: boolean): string[] {
  const tensors = comparedTensors(report);
  return report.outputs.flatMap((o, i) => {
    const why: string[] = [];
    if (!o.pass || (contract === 'bitwise' && !o.bitwiseEqual)) {
      const pair = tensors[i];
      why.push(
        `${contract === 'bitwise' ? 'not bitwise' : `outside ${o.tolerance}`}` +
          (pair ? `: ${firstDifference(pair[0], pair[1])}` : ''),
      );
    }
    if (!fedAllowed && o.fedFrom.length > 0) why.push(`depends on fed ${o.fedFrom.join(', ')}`);
    return why.length > 0 ? [`${o.name}: ${why.join('; ')}`] : [];
  });
}

/** The before and after tensor of each entry of `report.outputs`, in its order (comparePositions). */
function comparedTensors(report: CompareReport): ([HostTensor, HostTensor] | undefined)[] {
  return report.beforeOutputs.flatMap((rank, r) => {
    const a = [...rank.values()];
    const b = [...(report.afterOutputs[r]?.values() ?? [])];
    // A rank whose output counts differ is one entry, with no pair of tensors.
    return a.length === b.length ? a.map((t, i): [HostTensor, HostTensor] => [t, b[i]!]) : [undefined];
  });
}

function firstDifference(a: HostTensor, b: HostTensor): string {
  if (a.dtype !== b.dtype || a.shape.join() !== b.shape.join())
    return `${a.dtype}[${a.shape}] before, ${b.dtype}[${b.shape}] after`;
  const x = hostValues(a),
    y = hostValues(b);
  const i = x.findIndex((v, k) => !Object.is(v, y[k]));
  if (i < 0) return 'the same values, other bits (a NaN payload)';
  const at: number[] = [];
  for (let k = a.shape.length - 1, rest = i; k >= 0; k--) {
    at.unshift(rest % a.shape[k]!);
    rest = Math.floor(rest / a.shape[k]!);
  }
  return `first at [${at}] (element ${i}): ${x[i]} before, ${y[i]} after`;
}

/**
 * A quantized output holds e4m3fn values only, and more than `distinctAbove` different ones (a
 * quant that clamped or zeroed everything would hold one or two).
 */
export function expectFp8Values(q: ArrayLike<number>, label: string, distinctAbove = 0): void {
  const values = Array.from(q);
  const off = values.findIndex((v) => f8e4m3fnValue(f8e4m3fnBits(v)) !== v);
  expect(off, `${label}: element ${off} (${values[off]}) is not an e4m3fn value`).toBe(-1);
  if (distinctAbove > 0)
    expect(new Set(values).size, `${label}: distinct values`).toBeGreaterThan(distinctAbove);
}

/** Rank 0's outputs of one run of `g`, as values, in the graph's output order. */
export async function outputValues(g: Graph, options: RunOptions): Promise<Float64Array[]> {
  const out = await runGraph(g, options);
  return [...out.outputs[0]!.values()].map((v) => hostValues(v));
}
