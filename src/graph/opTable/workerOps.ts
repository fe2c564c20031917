/**
 * The native worker's step ops; the wire code is the position (agent/native `OpCode`). `i` and `f`
 * are the step's integer and float arguments in wire order: a name, or `name[n]`, a list of n
 * integers where n is an earlier integer argument or `world` (one per rank). The lowering writes
 * them by name (agent/workerArgs.ts) and the worker reads them as one struct per op, generated
 * into agent/native/op_table.gen.hpp.
 */
export const WORKER_OPS = {
  gather: {
    cpp: 'Gather',
    doc: 'strided copy / broadcast / constant pad into a contiguous slot',
    // out[idx] = x[offset + Σ (idx_d − lo_d)·stride_d], or `value` where idx_d − lo_d leaves inShape.
    i: ['offset', 'nd', 'outShape[nd]', 'inShape[nd]', 'stride[nd]', 'lo[nd]'],
    f: ['value'],
  },
  add: { cpp: 'Add', doc: 'a + alpha · b', i: [], f: ['alpha'] },
  mm: {
    cpp: 'Mm',
    doc: 'alpha · A·B + beta · bias',
    // biasMode: 0 none, 1 a row [N], 2 a whole [M, N]; transB: B is the transpose of a row-major [N, K].
    i: ['M', 'K', 'N', 'biasMode', 'transB'],
    f: ['alpha', 'beta'],
  },
  embedding: { cpp: 'Embedding', doc: 'rows of a table by token id', i: ['T', 'V', 'H'], f: [] },
  seed: {
    cpp: 'Seed',
    doc: 'counter-based seeded values (src/runtime/random.ts)',
    // range > 0: integers in [0, range) (token ids); else u·scale + offset. One stream per rank.
    i: ['seed', 'range', 'stream[world]'],
    f: ['scale', 'offset'],
  },
  fill: { cpp: 'Fill', doc: 'a constant', i: [], f: ['value'] },
  map: { cpp: 'Map', doc: 'an elementwise map function (MAP_FNS)', i: ['fn'], f: ['scalar'] },
  all_reduce: { cpp: 'AllReduce', doc: 'sum over ranks', i: [], f: [] },
  rms_norm: { cpp: 'RmsNorm', doc: 'RMSNorm', i: ['rows', 'cols', 'xOffset', 'xRowStride'], f: ['eps'] },
  fused_add_rms_norm: {
    cpp: 'FusedAddRmsNorm',
    doc: 'residual add + RMSNorm',
    i: ['rows', 'cols', 'xOffset', 'xRowStride'],
    f: ['eps'],
  },
  allreduce_norm: {
    cpp: 'AllReduceNorm',
    doc: 'all-reduce + residual add + RMSNorm, one kernel',
    i: ['rows', 'cols'],
    f: ['eps'],
  },
  // I: this rank's intermediate rows; K: experts per token.
  moe: { cpp: 'Moe', doc: 'GPT-OSS mixture of experts', i: ['T', 'H', 'E', 'I', 'K'], f: [] },
  reduce_scatter: {
    cpp: 'ReduceScatter',
    doc: 'sum over ranks; rank r keeps the r-th block of token rows',
    i: [],
    f: [],
  },
  all_gather: { cpp: 'AllGather', doc: "every rank's token rows, concatenated in rank order", i: [], f: [] },
  // satfinite 1: FlashInfer's saturating cast (NaN stays NaN); 0: vLLM's clamp (NaN → 448).
  fp8_quant: {
    cpp: 'Fp8Quant',
    doc: 'x · (1 / scale[0]) cast to float8_e4m3fn, held as its value',
    i: ['satfinite'],
    f: [],
  },
  // rows: every dim but the last; mean: 1 the mean (sum in index order, one division), 0 the max.
  reduce_rows: {
    cpp: 'ReduceRows',
    doc: 'each row reduced to one value: the mean or the max',
    i: ['rows', 'cols', 'xOffset', 'xRowStride', 'mean'],
    f: [],
  },
  mm_reduce_scatter: {
    cpp: 'MmReduceScatter',
    doc: "async TP's fused matmul + reduce-scatter: one row block per destination rank, its reduce overlapping the next block's matmul",
    // mm's arguments: the matmul runs as mm does.
    i: ['M', 'K', 'N', 'biasMode', 'transB'],
    f: ['alpha', 'beta'],
  },
} as const satisfies Record<string, { cpp: string; doc: string; i: readonly string[]; f: readonly string[] }>;
export type WorkerOp = keyof typeof WORKER_OPS;
export const WORKER_OP_CODES = Object.keys(WORKER_OPS) as WorkerOp[];
