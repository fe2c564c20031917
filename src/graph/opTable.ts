// The op table: the one place where what the executors compute is declared. Every backend (CPU
// reference, WGSL, the agent's C++/CUDA worker) and the wire format read it from here; the agent's
// C++ enums and map bodies are generated from it (agent/opTableCpp.ts → agent/native/op_table.gen.hpp).
//
// Each table is a Record over a string union, so forgetting an entry is a type error. One file a
// table, in src/graph/opTable/; this file is what the rest of the tree imports:
// - mapFns.ts MAP_FNS: elementwise functions of one or two operands and a scalar (CPU, WGSL, C++
//   bodies), with operandDomains.ts OPERAND_DOMAINS (their operands' values) and mapHelpers.ts
//   MAP_HELPERS (functions the bodies call);
// - elementwiseOps.ts ELEMENTWISE_OPS: which FX op lowers to which map function;
// - workerOps.ts WORKER_OPS: the native worker's step ops and their arguments;
// - kernels.ts KERNELS: the plan's kernel steps (kernelDef.ts: what an entry declares, and the
//   `Kernel` type derived from its wire fields), kernelDecompositions.ts KERNEL_DECOMPOSITIONS
//   (fused kernels as their unfused steps), kernelCost.ts KERNEL_COST (bytes and FLOPs);
// - views.ts (storages and views), inputRoles.ts INPUT_ROLES, assertNever.ts.
// Schemas, shape rules and rewrite facts of FX ops stay in ops.ts (which reads ELEMENTWISE_OPS).

export { assertNever } from './opTable/assertNever.ts';
export { ELEMENTWISE_OPS, elementwiseOp } from './opTable/elementwiseOps.ts';
export type { ElementwiseOp, ElementwiseOpDef } from './opTable/elementwiseOps.ts';
export { INPUT_ROLES } from './opTable/inputRoles.ts';
export type { InputRole } from './opTable/inputRoles.ts';
export { DTYPE_BYTES, KERNEL_COST, kernelCost } from './opTable/kernelCost.ts';
export type { KernelCost } from './opTable/kernelCost.ts';
export { KERNEL_DECOMPOSITIONS, siluAndMulUnfused, siluMulHalves } from './opTable/kernelDecompositions.ts';
export type { NewStorage, StorageShape } from './opTable/kernelDecompositions.ts';
export type { Field, FusedNormRounding, KernelDef, Rounding } from './opTable/kernelDef.ts';
export { KERNELS } from './opTable/kernels.ts';
export type { Kernel, KernelName } from './opTable/kernels.ts';
export {
  MAP_FN_CODES,
  MAP_FNS,
  SILU_MUL_BY_DTYPE,
  mapFnUlps,
  mapFnsOfDtype,
  mapHelpersWgsl,
} from './opTable/mapFns.ts';
export type { MapFn, MapFnDef, MapRounding } from './opTable/mapFns.ts';
export { MAP_HELPERS, torchF8e4m3fn } from './opTable/mapHelpers.ts';
export type { MapHelper } from './opTable/mapHelpers.ts';
export { OPERAND_DOMAINS } from './opTable/operandDomains.ts';
export type { OperandDomain, OperandDomainDef } from './opTable/operandDomains.ts';
export type { StorageDType, View } from './opTable/views.ts';
export { WORKER_OP_CODES, WORKER_OPS } from './opTable/workerOps.ts';
export type { WorkerOp } from './opTable/workerOps.ts';
