// Comparing a graph's outputs before and after a rewrite, per rank, position by position.
//
// Tolerance: slice-hoist alone must be bitwise equal (the all-reduce sums the same elements in
// the same rank order either way). The all-reduce + RMSNorm fusion rounds the norm once
// (bf16(z·rsqrt(…)·γ)) where the unfused pair rounds twice (bf16(bf16(z·rsqrt(…))·γ)); the extra
// rounding moves the product by at most half an ulp relative, so the results differ by at most
// 2 ulps of the output dtype. The residual output is rounded the same way in both: bitwise equal.
// The exact check (compareExact) compares before with the after-graph run with the fused norm
// rounded twice like the pair: bitwise, at any number of fused sites.

import type { RunResult } from './backend.ts';
import { bitwiseEqual, hostValues, type HostTensor } from './hostTensor.ts';
import { bf16Bits, f16Bits } from './bf16.ts';
import { f8e4m3fnBits } from '../graph/fp8.ts';

export interface OutputComparison {
  name: string;
  maxAbs: number;
  maxRel: number;
  bitwiseEqual: boolean;
  ulps: number;
  tolerance: string;
  pass: boolean;
  /**
   * Nodes on a path to this output, before or after the rewrite, that no kernel computed: they
   * were fed with seeded random values (the plan's `fed`). Empty when every path was computed.
   */
  fedFrom: string[];
  /**
   * The comparison proves this output: it passed a real gate (not "reported only") and `fedFrom`
   * is empty. Equal values downstream of a fed node show only that the data flow around it was
   * kept, so such an output is never proven.
   */
  proven: boolean;
}

/** Per graph: output name → the fed nodes it depends on (runtime/fedSources.ts). */
export interface FedSources {
  before: Map<string, string[]>;
  after: Map<string, string[]>;
}
const NONE_FED: FedSources = { before: new Map(), after: new Map() };

export const FUSED_NORM_ULPS = 2;

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);
/** Ordered integer key of a value in a dtype, so ulps are a difference of keys. */
function ulpKey(dtype: HostTensor['dtype'], x: number): number {
  let bits: number, sign: number;
  if (dtype === 'bf16') {
    bits = bf16Bits(x);
    sign = 0x8000;
  } else if (dtype === 'f16') {
    bits = f16Bits(x);
    sign = 0x8000;
  } else if (dtype === 'f32') {
    f32[0] = x;
    bits = u32[0];
    sign = 0x80000000;
  } else return x;
  return bits >= sign ? -(bits - sign) : bits;
}

export function compareTensor(
  name: string,
  a: HostTensor,
  b: HostTensor,
  allowedUlps: number,
  why: string,
): OutputComparison {
  const same = bitwiseEqual(a, b);
  if (a.shape.join() !== b.shape.join()) {
    return {
      name,
      maxAbs: Infinity,
      maxRel: Infinity,
      bitwiseEqual: false,
      ulps: Infinity,
      tolerance: `shapes differ: [${a.shape}] vs [${b.shape}]`,
      pass: false,
      fedFrom: [],
      proven: false,
    };
  }
  const x = hostValues(a),
    y = hostValues(b);
  let maxAbs = 0,
    maxRel = 0,
    ulps = 0;
  for (let i = 0; i < x.length; i++) {
    const d = Math.abs(x[i] - y[i]);
    if (Number.isNaN(d)) {
      maxAbs = maxRel = ulps = Infinity;
      break;
    }
    maxAbs = Math.max(maxAbs, d);
    if (x[i] !== 0) maxRel = Math.max(maxRel, d / Math.abs(x[i]));
    ulps = Math.max(ulps, Math.abs(ulpKey(a.dtype, x[i]) - ulpKey(a.dtype, y[i])));
  }
  const tolerance = allowedUlps === 0 ? `bitwise (${why})` : `≤ ${allowedUlps} ${a.dtype} ulps (${why})`;
  if (allowedUlps === Infinity)
    return {
      name,
      maxAbs,
      maxRel,
      bitwiseEqual: same,
      ulps,
      tolerance: '',
      pass: true,
      fedFrom: [],
      proven: false,
    };
  const pass = allowedUlps === 0 ? same : ulps <= allowedUlps;
  return { name, maxAbs, maxRel, bitwiseEqual: same, ulps, tolerance, pass, fedFrom: [], proven: pass };
}

/**
 * `fusedSites`: how many all-reduce + norm sites the rewrite fused. One site: its outputs are
 * gated at 2 ulps (those of the after-graph named in `fusedResults`, when given: the fused op's
 * own results; others are reported and gated by the exact check). Several in series: each later
 * layer starts from inputs that already differ by an ulp, and GEMMs and MoE routing (where the
 * graph routes) amplify it, so there is no ulp bound on the final outputs; they are reported here
 * and gated by the exact check (`exactCheck`).
 */
export function compareOutputs(
  before: RunResult,
  after: RunResult,
  fusedSites: number,
  routed = false,
  fp8Outputs: ReadonlySet<string> = new Set(),
  fed: FedSources = NONE_FED,
  fusedResults?: Set<string>,
  splitBiasSites = 0,
): OutputComparison[] {
  const fused = fusedSites > 0;
  // Named only where the graph has them: a dense block has no routing to flip.
  const amplifiers = routed ? 'later GEMMs and MoE routing (a top-k that flips)' : 'later GEMMs and norms';
  return comparePositions(before, after, fed, (name, a, b, output, afterName) => {
    if (splitBiasSites > 0) {
      // async-tp: symm_mem.fused_all_gather_matmul has no bias, so a biased GEMM's product is
      // rounded before its bias add: a real change of rounding (on a GPU too), not a wrong sum.
      const c = compareTensor(name, a, b, Infinity, '');
      return {
        ...c,
        tolerance: `not gated: async-tp split ${splitBiasSites} bias add${splitBiasSites > 1 ? 's' : ''} out of the fused all_gather GEMM (its op takes no bias), one extra bf16 rounding each; ${amplifiers} amplify it`,
        pass: true,
      };
    }
    if (fusedSites === 1 && fusedResults && !fusedResults.has(afterName)) {
      // The 2-ulp bound holds for the fused op's own results; GEMMs after them amplify it.
      const c = compareTensor(name, a, b, Infinity, '');
      return {
        ...c,
        tolerance:
          'not gated: read through other ops after the fused site, which amplify its one extra rounding (the exact check gates the rewrite)',
        pass: true,
      };
    }
    if (fusedSites > 1) {
      const c = compareTensor(name, a, b, Infinity, '');
      return {
        ...c,
        tolerance: `not gated: ${fusedSites} fused sites in series, each rounding the norm once where the pair rounds twice; ${amplifiers} amplify the difference (the exact check gates the rewrite)`,
        pass: true,
      };
    }
    if (fused && fp8Outputs.has(output)) return compareFp8(name, a, b);
    return compareTensor(
      name,
      a,
      b,
      fused ? FUSED_NORM_ULPS : 0,
      fused
        ? 'the fused kernel rounds the norm once, the pair twice; the new residual is rounded alike'
        : 'same sums in the same order',
    );
  });
}

/** Ordered integer of an e4m3fn value (sign-magnitude codes), so fp8 steps are a difference of keys. */
function fp8Key(x: number): number {
  const c = f8e4m3fnBits(x);
  return c & 0x80 ? -(c & 0x7f) : c;
}

/**
 * A quantized output of one fused site: its norm may differ by 2 bf16 ulps (a relative 2⁻⁷), which
 * moves the value it quantizes to by at most one fp8 step (a relative 2⁻³ at least).
 */
function compareFp8(name: string, a: HostTensor, b: HostTensor): OutputComparison {
  const c = compareTensor(name, a, b, Infinity, '');
  const x = hostValues(a),
    y = hostValues(b);
  let steps = 0;
  for (let i = 0; i < x.length; i++)
    steps = Math.max(
      steps,
      Number.isNaN(x[i]!) !== Number.isNaN(y[i]!) ? Infinity : Math.abs(fp8Key(x[i]!) - fp8Key(y[i]!)),
    );
  const pass = c.bitwiseEqual || steps <= FUSED_FP8_STEPS;
  return {
    ...c,
    ulps: steps,
    tolerance: `≤ ${FUSED_FP8_STEPS} fp8 step (the quant of a norm the fused kernel rounds once, the pair twice)`,
    pass,
    proven: pass,
  };
}

export const FUSED_FP8_STEPS = 1;

/**
 * The exact check: `after` ran with the fused norm rounded as the unfused pair rounds it
 * (fusedNormRounding 'as-unfused'), so every output must be bitwise equal to `before`: the same
 * sums in the same order over the same data flow, whatever the number of fused sites.
 */
export function compareExact(
  before: RunResult,
  afterAsUnfused: RunResult,
  fed: FedSources = NONE_FED,
): OutputComparison[] {
  return comparePositions(before, afterAsUnfused, fed, (name, a, b) =>
    compareTensor(
      name,
      a,
      b,
      0,
      'fused norm rounded as the unfused pair: same sums, same order, same data flow',
    ),
  );
}

function comparePositions(
  before: RunResult,
  after: RunResult,
  fed: FedSources,
  compare: (
    name: string,
    a: HostTensor,
    b: HostTensor,
    output: string,
    afterName: string,
  ) => OutputComparison,
): OutputComparison[] {
  const out: OutputComparison[] = [];
  for (let r = 0; r < before.outputs.length; r++) {
    const a = [...before.outputs[r]];
    const b = [...after.outputs[r]];
    if (a.length !== b.length) {
      out.push({
        name: `rank ${r}: ${a.length} outputs before, ${b.length} after`,
        maxAbs: Infinity,
        maxRel: Infinity,
        bitwiseEqual: false,
        ulps: Infinity,
        tolerance: 'same outputs',
        pass: false,
        fedFrom: [],
        proven: false,
      });
      continue;
    }
    for (let i = 0; i < a.length; i++) {
      const name = a[i][0] === b[i][0] ? `rank ${r}: ${a[i][0]}` : `rank ${r}: ${a[i][0]} → ${b[i][0]}`;
      const c = compare(name, a[i][1], b[i][1], a[i][0], b[i][0]);
      const fedFrom = [...new Set([...(fed.before.get(a[i][0]) ?? []), ...(fed.after.get(b[i][0]) ?? [])])];
      out.push({ ...c, fedFrom, proven: c.proven && fedFrom.length === 0 });
    }
  }
  return out;
}
