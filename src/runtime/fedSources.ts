// Which outputs a run actually computed. A node with no kernel is fed with seeded random values
// (plan.fed); anything downstream of it is a function of that noise, so two runs agreeing there
// shows only that the rewrite kept the data flow around the fed node, not that it computes the
// same values. Here each output gets the fed nodes on any path to it, followed through storages
// step by step (views share their storage; an in-place write adds to what the storage held).

import type { Plan, View } from './plan.ts';

/** Output name → the fed nodes its value depends on, in plan order; empty when every path to it was computed. */
export function fedSourcesOfOutputs(plan: Plan): Map<string, string[]> {
  const deps = new Map<string, Set<string>>();
  const order = new Map(plan.fed.map((n, i) => [n, i]));
  for (const step of plan.steps) {
    if (step.kernel === 'seed') {
      deps.set(step.out, step.role === 'fed' ? new Set([step.node]) : new Set());
      continue;
    }
    const read = new Set<string>();
    const written: string[] = [];
    for (const [key, v] of Object.entries(step)) {
      if (isView(v)) for (const f of deps.get(v.storage) ?? []) read.add(f);
      else if (WRITTEN_FIELDS.has(key) && typeof v === 'string') written.push(v);
    }
    for (const id of written) deps.set(id, new Set([...(deps.get(id) ?? []), ...read]));
  }
  const out = new Map<string, string[]>();
  for (const o of plan.outputs) {
    const fed = [...(deps.get(o.view.storage) ?? [])].sort(
      (a, b) => (order.get(a) ?? 0) - (order.get(b) ?? 0),
    );
    out.set(o.name, fed);
  }
  return out;
}

/** The step fields that name a storage the step writes (every View field is one it reads). */
const WRITTEN_FIELDS = new Set(['out', 'residualOut', 'scaleOut']);

function isView(v: unknown): v is View {
  return !!v && typeof v === 'object' && 'storage' in v && 'strides' in v;
}
