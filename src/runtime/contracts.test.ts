// The contracts the differential check holds backends to come from the op table, and its graphs
// reach every entry: every elementwise op and map function is run, its tensor operands fed from
// the map function's declared domain, and every output is held to the rounding the table declares
// for the step that wrote it. So an op added as table entries alone is checked with no other edit
// (agent/differential.test.ts runs these graphs on WebGPU and the agent).

import { describe, expect, it } from 'vitest';
import {
  ELEMENTWISE_OPS,
  KERNELS,
  MAP_FNS,
  OPERAND_DOMAINS,
  mapFnUlps,
  mapFnsOfDtype,
  type MapFn,
  type MapRounding,
  type OperandDomain,
  type OperandDomainDef,
} from '../graph/opTable.ts';
import { prng } from '../graph/seededRandom.ts';
import { allowedUlps, differentialCases, outputContract, randomGraph } from './differential.ts';
import { buildPlan, outputsOf, type Plan, type Step } from './plan.ts';
import { hostValues } from './hostTensor.ts';

const cases = differentialCases(20261129, 6);
const planOf = (c: (typeof cases)[number]) => {
  const { graph, inputs } = randomGraph(c);
  return {
    graph,
    inputs,
    plan: buildPlan(graph, { preset: 'tiny', dtype: c.dtype, ranks: c.ranks, tokens: c.tokens }),
  };
};
/** The seed step that wrote a storage: which graph input a view reads. */
const inputOf = (plan: Plan, storage: string) =>
  plan.steps.find((s): s is Extract<Step, { kernel: 'seed' }> => s.kernel === 'seed' && s.out === storage);

describe('operand domains', () => {
  it('every special point and draw belongs to its domain; float ones are 0 or 2^-24 ≤ |x| ≤ 2^16 (no subnormal products)', () => {
    const u = prng(7);
    for (const [name, d] of Object.entries(OPERAND_DOMAINS) as [OperandDomain, OperandDomainDef][]) {
      const xs = [...d.special, ...Array.from({ length: 10_000 }, () => d.draw(u))];
      expect(
        xs.filter((x) => !d.holds(x)),
        name,
      ).toEqual([]);
      if (d.dtype === 'float')
        expect(
          xs.filter((x) => x !== 0 && !(Math.abs(x) >= 2 ** -24 && Math.abs(x) <= 2 ** 16)),
          name,
        ).toEqual([]);
      // The real domain's draws spread over both signs and many decades.
      const drawn = xs.slice(d.special.length);
      if (name === 'real') {
        expect(drawn.some((x) => x < -100) && drawn.some((x) => x > 100)).toBe(true);
        expect(drawn.some((x) => x !== 0 && Math.abs(x) < 1e-3)).toBe(true);
      }
    }
    expect(OPERAND_DOMAINS.real.special).toEqual(expect.arrayContaining([0, -0, 88, -89, 2 ** -24, -65504]));
  });
});

describe('the differential graphs reach every table entry', () => {
  it('every elementwise op and every map function runs, each tensor operand fed from its declared domain', () => {
    const ranOverSweep = new Set<MapFn>();
    for (const c of cases) {
      const { graph, inputs, plan } = planOf(c);
      for (const op of Object.keys(ELEMENTWISE_OPS))
        expect(
          graph.nodes.some((n) => n.op === op),
          op,
        ).toBe(true);
      const ran = new Set<MapFn>();
      for (const s of plan.steps) {
        if (s.kernel !== 'map') continue;
        ran.add(s.fn);
        const views = MAP_FNS[s.fn].tensorB ? [s.a, s.b] : [s.a];
        expect(views.length).toBe(MAP_FNS[s.fn].domain.length);
        views.forEach((v, k) => {
          const domain = OPERAND_DOMAINS[MAP_FNS[s.fn].domain[k]];
          const fed = v && inputOf(plan, v.storage);
          const given = fed && inputs.get(fed.name);
          expect(given, `${s.node} (${s.fn}) operand ${k}: fed from its domain`).toBeDefined();
          const values = [...hostValues(given!)];
          expect(values.filter((x) => !domain.holds(x))).toEqual([]);
        });
      }
      expect([...ran].sort(), c.dtype).toEqual(mapFnsOfDtype(c.dtype).sort());
      ran.forEach((fn) => ranOverSweep.add(fn));
    }
    // Over the sweep (bf16 and f32 cases), every map function of the table.
    expect([...ranOverSweep].sort()).toEqual((Object.keys(MAP_FNS) as MapFn[]).sort());
    // Over the sweep, real operands hold negatives, large and small values, not only 0 and 1.
    const real = cases.flatMap((c) => {
      const { inputs, plan } = planOf(c);
      return plan.steps.flatMap((s) => {
        const fed =
          s.kernel === 'map' && MAP_FNS[s.fn].domain[0] === 'real' ? inputOf(plan, s.a.storage) : undefined;
        return fed ? [...hostValues(inputs.get(fed.name)!)] : [];
      });
    });
    expect(real.some((x) => x < -50)).toBe(true);
    expect(real.some((x) => x > 50)).toBe(true);
    expect(real.some((x) => x !== 0 && Math.abs(x) < 0.01)).toBe(true);
    expect(new Set(real).size).toBeGreaterThan(500);
  });

  it("every output is held to the rounding the table declares for the step that wrote it: a map step's function's, else its kernel's", () => {
    const writers = new Set<string>();
    for (const c of cases) {
      const { plan } = planOf(c);
      for (const o of plan.outputs) {
        const writer = plan.steps.findLast((s) => outputsOf(s).includes(o.view.storage));
        const got = outputContract(plan, o.name, c.dtype);
        if (writer?.kernel === 'map') {
          expect(got).toMatchObject({
            ulps: mapFnUlps(MAP_FNS[writer.fn].rounding, c.dtype),
            perElement: true,
          });
          expect(got.why).toMatch(new RegExp(`^map ${writer.fn}:`));
        } else
          expect(got).toMatchObject({
            ulps: allowedUlps(KERNELS[writer?.kernel ?? 'seed'].rounding, c.dtype),
            perElement: false,
          });
        writers.add(writer?.kernel ?? 'seed');
      }
    }
    expect([...writers]).toEqual(expect.arrayContaining(['map', 'gemm', 'rms_norm', 'moe', 'seed']));
  });

  it("a map function's declared rounding is the one the check applies (changing the declaration changes the contract)", () => {
    const c = cases[1];
    const { plan } = planOf(c);
    const sigmoidOut = plan.outputs.find((o) =>
      plan.steps.some((s) => s.kernel === 'map' && s.fn === 'sigmoid' && s.out === o.view.storage),
    )!;
    expect(sigmoidOut).toBeDefined();
    const entry = MAP_FNS.sigmoid as { rounding: MapRounding };
    const declared = entry.rounding;
    try {
      entry.rounding = { ulps: { bf16: 7, f32: 9 } };
      expect(outputContract(plan, sigmoidOut.name, c.dtype).ulps).toBe(c.dtype === 'bf16' ? 7 : 9);
      entry.rounding = 'exact';
      expect(outputContract(plan, sigmoidOut.name, c.dtype).ulps).toBe(0);
    } finally {
      entry.rounding = declared;
    }
  });
});
