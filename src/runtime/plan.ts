// Planning: a Graph becomes a list of kernel steps over storages and strided views, before any
// device work. Each node's op lowers through its entry in the lowering table (lower/table.ts, one
// module per op family); views cost nothing; auto_functionalized is unwrapped; ops without a
// kernel but with an annotated type are fed from seeded inputs; ops that can be neither are
// collected and reported together. Shapes are computed here and checked against the graph's
// annotations (mapped through the preset).

import type { Arg, Graph } from '../graph/ir.ts';
import { isRef } from '../graph/ir.ts';
import { forEachInput } from '../graph/call.ts';
import {
  KERNELS,
  KERNEL_DECOMPOSITIONS,
  type Kernel,
  type KernelName,
  type NewStorage,
  type StorageShape,
  type StorageDType,
  type View,
} from '../graph/opTable.ts';
import { RunError } from './runError.ts';
import { numelOf } from './lower/layout.ts';
import type { Preset, PresetName } from './presets.ts';
import { PlanBuilder } from './lower/builder.ts';
import type { Value } from './lower/lowering.ts';
import { lowerNode } from './lower/nodes.ts';
import { roleHints } from './lower/roles.ts';
import { worldSize, type RankMesh } from './rankMesh.ts';

export type { FusedNormRounding, InputRole, Kernel, MapFn, StorageDType, View } from '../graph/opTable.ts';
export { asRows, broadcastShape, broadcastStrides, isContiguous, numelOf } from './lower/layout.ts';
export { evalDim } from './lower/builder.ts';

export type FloatDType = 'bf16' | 'f16' | 'f32';

export interface Storage {
  id: string;
  dtype: StorageDType;
  shape: number[];
  numel: number;
}

export type Step = Kernel & { node: string; op: string };

/** Steps that run across ranks (every rank meets the others); the rest run on each rank alone. */
export type CollectiveStep = Extract<Step, { kernel: CollectiveKernel }>;
type CollectiveKernel = {
  [K in KernelName]: (typeof KERNELS)[K]['collective'] extends true ? K : never;
}[KernelName];
export function isCollective(s: Step): s is CollectiveStep {
  return KERNELS[s.kernel].collective;
}

export interface PlanOutput {
  name: string;
  view: View;
}

/** A collective whose process group the run cannot resolve to ranks (rankMesh.ts): it ran over the world. */
export interface UnknownGroup {
  node: string;
  group: string;
  why: string;
}

export interface Plan {
  graph: string;
  preset: Preset;
  dtype: FloatDType;
  /** Simulated ranks: the mesh's world (dp × tp), global rank = dp_rank · tp + tp_rank. */
  ranks: number;
  mesh: RankMesh;
  /** Collectives whose group the run could not resolve: no comparison through them is proof. */
  unknownGroups: UnknownGroup[];
  tokens: number;
  storages: Map<string, Storage>;
  steps: Step[];
  outputs: PlanOutput[];
  /** Nodes whose values come from seeded inputs because no kernel computes them. */
  fed: string[];
  /** Storages whose last reader is step i, freed after it. */
  freeAfter: Map<number, string[]>;
}

export interface PlanOptions {
  preset: PresetName;
  dtype: FloatDType;
  /** The TP group's size. */
  ranks: number;
  /** The data-parallel size (default 1): the run simulates dp × ranks ranks. */
  dp?: number;
  tokens?: number;
}

export function buildPlan(g: Graph, opts: PlanOptions): Plan {
  const b = new PlanBuilder(g, opts, roleHints(g));
  for (const n of g.nodes) lowerNode(b, n);
  if (b.unsupported.length)
    throw new RunError(
      'unsupported-ops',
      `no kernel and no annotated type to feed from: ${b.unsupported.join(', ')}`,
      { node: b.unsupported[0].split(' ')[0] },
    );
  const outputs = planOutputs(g, b);
  return {
    graph: g.name,
    preset: b.preset,
    dtype: opts.dtype,
    ranks: worldSize(b.mesh),
    mesh: b.mesh,
    unknownGroups: b.unknownGroups,
    tokens: b.tokens,
    storages: b.storages,
    steps: b.steps,
    outputs,
    fed: b.fed,
    freeAfter: lifetimes(b.steps, outputs),
  };
}

/** The returned values, or for a fragment every value no node reads (tuples expanded). */
function planOutputs(g: Graph, b: PlanBuilder): PlanOutput[] {
  const outputs: PlanOutput[] = [];
  const addOut = (name: string, v: Value | undefined) => {
    if (!v) return;
    if (v.t === 'tensor') outputs.push({ name, view: v.view });
    else if (v.t === 'tuple') v.items.forEach((it, i) => it && addOut(`${name}[${i}]`, it));
  };
  if (g.outputs) {
    const walk = (a: Arg) => {
      if (Array.isArray(a)) a.forEach(walk);
      else if (a && typeof a === 'object' && a.kind === 'tuple') a.items.forEach(walk);
      else if (isRef(a)) addOut(a.name, b.values.get(a.name));
    };
    g.outputs.forEach(walk);
    // A piecewise graph hands its next piece the inputs it wrote in place.
    for (const name of b.writtenInputs)
      if (!outputs.some((o) => o.name === name)) addOut(name, b.values.get(name));
  } else {
    const read = new Set<string>();
    for (const n of g.nodes) forEachInput(n, (name) => read.add(name));
    for (const n of g.nodes) if (!read.has(n.name)) addOut(n.name, b.values.get(n.name));
  }
  return outputs;
}

/** Buffer lifetimes: a storage is freed after the last step that reads or writes it, unless an output. */
function lifetimes(steps: Step[], outputs: PlanOutput[]): Map<number, string[]> {
  const keep = new Set(outputs.map((o) => o.view.storage));
  const last = new Map<string, number>();
  steps.forEach((s, i) => {
    for (const id of storagesOf(s)) last.set(id, i);
  });
  const freeAfter = new Map<number, string[]>();
  for (const [id, i] of last)
    if (!keep.has(id)) {
      if (!freeAfter.has(i)) freeAfter.set(i, []);
      freeAfter.get(i)!.push(id);
    }
  return freeAfter;
}

/**
 * The plan with every kernel of KERNEL_DECOMPOSITIONS expanded into the unfused steps it rounds as
 * (for a backend without its own kernel: the native worker), intermediates in new storages.
 */
export function decomposed(plan: Plan): Plan {
  if (!plan.steps.some((s) => KERNEL_DECOMPOSITIONS[s.kernel])) return plan;
  const storages = new Map(plan.storages);
  const steps: Step[] = [];
  for (const s of plan.steps) {
    const expand = KERNEL_DECOMPOSITIONS[s.kernel] as
      ((k: Step, storage: NewStorage, shapeOf: StorageShape) => Kernel[] | null) | undefined;
    const storage: NewStorage = (name, dtype, shape) => {
      const id = `${s.out}.${name}`;
      storages.set(id, { id, dtype, shape, numel: numelOf(shape) });
      return id;
    };
    const parts = expand?.(s, storage, (id) => storages.get(id)!.shape) ?? null;
    if (parts) for (const k of parts) steps.push({ ...k, node: s.node, op: s.op });
    else steps.push(s);
  }
  return { ...plan, storages, steps, freeAfter: lifetimes(steps, plan.outputs) };
}

/** The storages a step writes: its out, and the fused kernels' second and third results. */
export function outputsOf(s: Step): string[] {
  const ids = [s.out];
  if ('residualOut' in s) ids.push(s.residualOut);
  if ('scaleOut' in s) ids.push(s.scaleOut);
  return ids;
}

/** Every storage a step reads or writes. */
export function storagesOf(s: Step): string[] {
  const ids: string[] = [];
  for (const [k, v] of Object.entries(s)) {
    if (v && typeof v === 'object' && 'storage' in v) ids.push((v as View).storage);
    else if ((k === 'out' || k === 'residualOut' || k === 'scaleOut') && typeof v === 'string') ids.push(v);
  }
  return ids;
}
