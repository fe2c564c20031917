// What a KERNELS entry declares: its wire fields, worker ops, rounding contract, whether it spans ranks.

import type { InputRole } from './inputRoles.ts';
import type { MapFn } from './mapFns.ts';
import type { View } from './views.ts';
import type { WorkerOp } from './workerOps.ts';

/**
 * How the fused all-reduce + RMSNorm rounds its norm: 'once' (its semantics: r(z·rsqrt(…)·γ)) or
 * 'as-unfused' (r(r(z·rsqrt(…))·γ), as all_reduce + fused_add_rms_norm do), so a fused graph can
 * be checked bit for bit against the unfused one.
 */
export type FusedNormRounding = 'once' | 'as-unfused';

/** How a kernel step's field travels on the wire (agent/planWire.ts checks each by its kind). */
export type Field =
  | 'view'
  | 'view?'
  | 'storage'
  | 'num'
  | 'int'
  | 'int?'
  | 'str'
  | 'bool'
  | 'ints'
  | 'role'
  | 'mapfn'
  | 'rounding?';
interface FieldValue {
  view: View;
  'view?': View | null;
  storage: string;
  num: number;
  int: number;
  'int?': number;
  str: string;
  bool: boolean;
  ints: number[];
  role: InputRole;
  mapfn: MapFn;
  'rounding?': FusedNormRounding;
}
type OptionalField = 'int?' | 'rounding?' | 'view?';

/**
 * How exactly a kernel's result is specified against the CPU reference: 'exact' where every
 * rounding point is fixed (bitwise), else how far a conforming kernel may be, in ulps of the
 * output dtype at the output's largest magnitude (f32 accumulation orders differ between
 * backends, and a sum that cancels is not accurate relative to its own small value).
 */
export type Rounding = 'exact' | { ulps: { bf16: number; f32: number } };

export interface KernelDef {
  fields: Record<string, Field>;
  /** The worker ops the agent runs it as (gather steps for non-contiguous views come on top). */
  worker: readonly WorkerOp[];
  rounding: Rounding;
  /**
   * Across ranks (the CPU reference and WebGPU run it through the collectives): such a kernel's
   * `group` field names the process group it spans (src/runtime/rankMesh.ts resolves it to ranks).
   */
  collective: boolean;
  doc: string;
}

export type Flatten<T> = { [P in keyof T]: T[P] };
/** A kernel's parameters from its wire fields (optional fields may be absent). */
export type KernelFields<F> = Flatten<
  {
    -readonly [P in keyof F as F[P] extends OptionalField ? never : P]: F[P] extends Field
      ? FieldValue[F[P]]
      : never;
  } & {
    -readonly [P in keyof F as F[P] extends OptionalField ? P : never]?: F[P] extends Field
      ? FieldValue[F[P]]
      : never;
  }
>;
