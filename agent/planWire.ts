// A runtime plan as it arrives on the wire (src/runtime/agentClient.ts `planToWire`), checked
// field by field and rebuilt. Every view is checked against its storage's size, so no kernel
// the plan leads to can read or write outside a buffer, whatever the client sent.

import type { Plan, Step, Storage, View, StorageDType } from '../src/runtime/plan.ts';
import {
  INPUT_ROLES,
  KERNELS,
  MAP_FN_CODES,
  assertNever,
  type Field,
  type InputRole,
  type MapFn,
} from '../src/graph/opTable.ts';
import { numelOf } from '../src/runtime/plan.ts';
import { PRESETS } from '../src/runtime/presets.ts';
import { rankMesh, type RankMesh } from '../src/runtime/rankMesh.ts';
import { ProtocolError, int, isObj, str } from '../src/runtime/agentProtocol.ts';

type Obj = Record<string, unknown>;
function fail(path: string, what: string): never {
  throw new ProtocolError('bad-message', `plan.${path}: ${what}`);
}

const DTYPES: StorageDType[] = ['bf16', 'f16', 'f32', 'i32'];
const ROUNDINGS = ['once', 'as-unfused'];

export interface PlanLimits {
  maxSteps: number;
  maxStorages: number;
  maxRanks: number;
  maxElements: number;
}

/** The plan's rank mesh: dp × tp must be its ranks (absent: one TP group of them all). */
function meshFromWire(m: unknown, ranks: number): RankMesh {
  if (m === undefined) return rankMesh(ranks);
  if (!isObj(m)) fail('mesh', 'must be an object');
  const tp = int(m.tp, 'plan.mesh.tp', 1, ranks);
  const dp = int(m.dp, 'plan.mesh.dp', 1, ranks);
  if (tp * dp !== ranks) fail('mesh', `tp ${tp} × dp ${dp} is not the plan's ${ranks} ranks`);
  return rankMesh(tp, dp);
}

export function planFromWire(x: unknown, lim: PlanLimits): Plan {
  if (!isObj(x)) fail('', 'must be an object');
  const p = x as Obj;
  const presetName = p.preset;
  if (presetName !== 'tiny' && presetName !== 'layer') fail('preset', 'must be tiny or layer');
  const dtype = p.dtype;
  if (dtype !== 'bf16' && dtype !== 'f32' && dtype !== 'f16') fail('dtype', 'must be bf16, f32 or f16');
  const ranks = int(p.ranks, 'plan.ranks', 1, lim.maxRanks);
  const tokens = int(p.tokens, 'plan.tokens', 0, 1 << 20);
  const mesh = meshFromWire(p.mesh, ranks);
  if (!Array.isArray(p.storages) || p.storages.length > lim.maxStorages)
    fail('storages', `must be a list of at most ${lim.maxStorages}`);
  if (!Array.isArray(p.steps) || p.steps.length > lim.maxSteps)
    fail('steps', `must be a list of at most ${lim.maxSteps}`);
  const storages = new Map<string, Storage>();
  (p.storages as unknown[]).forEach((s, k) => {
    const path = `storages[${k}]`;
    if (!isObj(s)) fail(path, 'must be an object');
    const id = str(s.id, `plan.${path}.id`);
    if (storages.has(id)) fail(`${path}.id`, `'${id}' appears twice`);
    if (!DTYPES.includes(s.dtype as StorageDType))
      fail(`${path}.dtype`, `must be one of ${DTYPES.join(', ')}`);
    if (!Array.isArray(s.shape) || s.shape.length > 8)
      fail(`${path}.shape`, 'must be a list of at most 8 dims');
    const shape = (s.shape as unknown[]).map((d, j) =>
      int(d, `plan.${path}.shape[${j}]`, 0, lim.maxElements),
    );
    const numel = numelOf(shape);
    if (numel > lim.maxElements) fail(path, `${numel} elements; the limit is ${lim.maxElements}`);
    storages.set(id, { id, dtype: s.dtype as StorageDType, shape, numel });
  });
  const view = (v: unknown, path: string): View => {
    if (!isObj(v)) fail(path, 'must be a view');
    const st = storages.get(v.storage as string);
    if (!st) fail(`${path}.storage`, `unknown storage '${String(v.storage).slice(0, 60)}'`);
    if (
      !Array.isArray(v.shape) ||
      !Array.isArray(v.strides) ||
      v.shape.length !== v.strides.length ||
      v.shape.length > 8
    )
      fail(path, 'shape and strides must be lists of the same length (≤ 8)');
    const shape = (v.shape as unknown[]).map((d, j) =>
      int(d, `plan.${path}.shape[${j}]`, 0, lim.maxElements),
    );
    const strides = (v.strides as unknown[]).map((d, j) =>
      int(d, `plan.${path}.strides[${j}]`, 0, lim.maxElements),
    );
    const offset = int(v.offset, `plan.${path}.offset`, 0, lim.maxElements);
    if (numelOf(shape) > 0) {
      const last = offset + shape.reduce((a, d, j) => a + (d - 1) * strides[j], 0);
      if (last >= st!.numel)
        fail(path, `reaches element ${last} of storage '${st!.id}', which has ${st!.numel}`);
    }
    return { storage: st!.id, dtype: st!.dtype, offset, shape, strides };
  };
  const steps: Step[] = (p.steps as unknown[]).map((s, k) => {
    const path = `steps[${k}]`;
    if (!isObj(s)) fail(path, 'must be an object');
    const kernel = s.kernel as Step['kernel'];
    const fields: Record<string, Field> | undefined = KERNELS[kernel]?.fields;
    if (!fields || !Object.prototype.hasOwnProperty.call(KERNELS, kernel))
      fail(`${path}.kernel`, `unknown kernel '${String(kernel).slice(0, 40)}'`);
    const out: Obj = { kernel, node: str(s.node, `plan.${path}.node`), op: str(s.op, `plan.${path}.op`) };
    for (const [f, t] of Object.entries(fields)) {
      const v = s[f];
      const fp = `${path}.${f}`;
      switch (t) {
        case 'view':
          out[f] = view(v, fp);
          break;
        case 'view?':
          out[f] = v === null || v === undefined ? null : view(v, fp);
          break;
        case 'storage':
          if (!storages.has(v as string)) fail(fp, `unknown storage '${String(v).slice(0, 60)}'`);
          out[f] = v;
          break;
        case 'num':
          if (typeof v !== 'number' || !Number.isFinite(v)) fail(fp, 'must be a finite number');
          out[f] = v;
          break;
        case 'int':
          out[f] = int(v, `plan.${fp}`, 0, lim.maxElements);
          break;
        case 'int?':
          if (v !== undefined && v !== null) out[f] = int(v, `plan.${fp}`, 1, 2 ** 31 - 1);
          break;
        case 'str':
          out[f] = str(v, `plan.${fp}`);
          break;
        case 'bool':
          if (typeof v !== 'boolean') fail(fp, 'must be a boolean');
          out[f] = v;
          break;
        case 'mapfn':
          if (!MAP_FN_CODES.includes(v as MapFn)) fail(fp, `must be one of ${MAP_FN_CODES.join(', ')}`);
          out[f] = v;
          break;
        case 'role':
          if (!INPUT_ROLES.includes(v as InputRole)) fail(fp, `must be one of ${INPUT_ROLES.join(', ')}`);
          out[f] = v;
          break;
        case 'rounding?':
          if (v !== undefined && v !== null) {
            if (!ROUNDINGS.includes(v as string)) fail(fp, `must be one of ${ROUNDINGS.join(', ')}`);
            out[f] = v;
          }
          break;
        case 'ints':
          if (!Array.isArray(v) || v.length > 8) fail(fp, 'must be a list of at most 8 integers');
          out[f] = (v as unknown[]).map((n, j) => int(n, `plan.${fp}[${j}]`, 0, lim.maxElements));
          break;
        default:
          assertNever(t, 'field kind');
      }
    }
    return out as unknown as Step;
  });
  const outputs = Array.isArray(p.outputs)
    ? (p.outputs as unknown[]).map((o, k) => {
        if (!isObj(o)) fail(`outputs[${k}]`, 'must be an object');
        return { name: str(o.name, `plan.outputs[${k}].name`), view: view(o.view, `outputs[${k}].view`) };
      })
    : fail('outputs', 'must be a list');
  const fed = Array.isArray(p.fed) ? (p.fed as unknown[]).map((f, k) => str(f, `plan.fed[${k}]`)) : [];
  return {
    graph: typeof p.graph === 'string' ? p.graph.slice(0, 200) : 'graph',
    preset: PRESETS[presetName as 'tiny' | 'layer'],
    dtype: dtype as Plan['dtype'],
    ranks,
    mesh,
    unknownGroups: [],
    tokens,
    storages,
    steps,
    outputs: outputs as Plan['outputs'],
    fed,
    freeAfter: new Map(),
  };
}
