// Generated from src/graph/opTable.ts by agent/opTableCpp.ts (npm run agent). Do not edit.
#pragma once
#include <cmath>
#include <cstdint>
#include <cstring>
#include <stdexcept>
#include <string>
#include <utility>

#include "step_args.hpp"

#ifdef __CUDACC__
#define FL_HOST_DEVICE __host__ __device__
#else
#define FL_HOST_DEVICE
#endif

namespace fl {

/** The worker's step ops (WORKER_OPS), in wire order. */
enum class OpCode { Gather, Add, Mm, Embedding, Seed, Fill, Map, AllReduce, RmsNorm, FusedAddRmsNorm, AllReduceNorm, Moe, ReduceScatter, AllGather, Fp8Quant, ReduceRows, MmReduceScatter };

inline OpCode parseOp(const std::string& s) {
  static const std::pair<const char*, OpCode> table[] = {
      {"gather", OpCode::Gather},
      {"add", OpCode::Add},
      {"mm", OpCode::Mm},
      {"embedding", OpCode::Embedding},
      {"seed", OpCode::Seed},
      {"fill", OpCode::Fill},
      {"map", OpCode::Map},
      {"all_reduce", OpCode::AllReduce},
      {"rms_norm", OpCode::RmsNorm},
      {"fused_add_rms_norm", OpCode::FusedAddRmsNorm},
      {"allreduce_norm", OpCode::AllReduceNorm},
      {"moe", OpCode::Moe},
      {"reduce_scatter", OpCode::ReduceScatter},
      {"all_gather", OpCode::AllGather},
      {"fp8_quant", OpCode::Fp8Quant},
      {"reduce_rows", OpCode::ReduceRows},
      {"mm_reduce_scatter", OpCode::MmReduceScatter},
  };
  for (auto& [n, c] : table) if (s == n) return c;
  throw std::runtime_error("unknown step op '" + s + "'");
}

// Each op's arguments (WORKER_OPS[op].i, then .f): argsOf<MoeArgs>(st) reads a step's `i` and `f`.

/** gather: strided copy / broadcast / constant pad into a contiguous slot. */
struct GatherArgs {
  int64_t offset, nd;
  IntList outShape, inShape, stride, lo;
  double value;
  void read(ArgReader& r) { offset = r.integer("offset"); nd = r.integer("nd"); outShape = r.list("outShape", nd); inShape = r.list("inShape", nd); stride = r.list("stride", nd); lo = r.list("lo", nd); value = r.real("value"); }
};

/** add: a + alpha · b. */
struct AddArgs {
  double alpha;
  void read(ArgReader& r) { alpha = r.real("alpha"); }
};

/** mm: alpha · A·B + beta · bias. */
struct MmArgs {
  int64_t M, K, N, biasMode, transB;
  double alpha, beta;
  void read(ArgReader& r) { M = r.integer("M"); K = r.integer("K"); N = r.integer("N"); biasMode = r.integer("biasMode"); transB = r.integer("transB"); alpha = r.real("alpha"); beta = r.real("beta"); }
};

/** embedding: rows of a table by token id. */
struct EmbeddingArgs {
  int64_t T, V, H;
  void read(ArgReader& r) { T = r.integer("T"); V = r.integer("V"); H = r.integer("H"); }
};

/** seed: counter-based seeded values (src/runtime/random.ts). */
struct SeedArgs {
  int64_t seed, range;
  IntList stream;
  double scale, offset;
  void read(ArgReader& r) { seed = r.integer("seed"); range = r.integer("range"); stream = r.perRank("stream"); scale = r.real("scale"); offset = r.real("offset"); }
};

/** fill: a constant. */
struct FillArgs {
  double value;
  void read(ArgReader& r) { value = r.real("value"); }
};

/** map: an elementwise map function (MAP_FNS). */
struct MapArgs {
  int64_t fn;
  double scalar;
  void read(ArgReader& r) { fn = r.integer("fn"); scalar = r.real("scalar"); }
};

/** all_reduce: sum over ranks. */
struct AllReduceArgs {
  void read(ArgReader&) {}
};

/** rms_norm: RMSNorm. */
struct RmsNormArgs {
  int64_t rows, cols, xOffset, xRowStride;
  double eps;
  void read(ArgReader& r) { rows = r.integer("rows"); cols = r.integer("cols"); xOffset = r.integer("xOffset"); xRowStride = r.integer("xRowStride"); eps = r.real("eps"); }
};

/** fused_add_rms_norm: residual add + RMSNorm. */
using FusedAddRmsNormArgs = RmsNormArgs;

/** allreduce_norm: all-reduce + residual add + RMSNorm, one kernel. */
struct AllReduceNormArgs {
  int64_t rows, cols;
  double eps;
  void read(ArgReader& r) { rows = r.integer("rows"); cols = r.integer("cols"); eps = r.real("eps"); }
};

/** moe: GPT-OSS mixture of experts. */
struct MoeArgs {
  int64_t T, H, E, I, K;
  void read(ArgReader& r) { T = r.integer("T"); H = r.integer("H"); E = r.integer("E"); I = r.integer("I"); K = r.integer("K"); }
};

/** reduce_scatter: sum over ranks; rank r keeps the r-th block of token rows. */
struct ReduceScatterArgs {
  void read(ArgReader&) {}
};

/** all_gather: every rank's token rows, concatenated in rank order. */
struct AllGatherArgs {
  void read(ArgReader&) {}
};

/** fp8_quant: x · (1 / scale[0]) cast to float8_e4m3fn, held as its value. */
struct Fp8QuantArgs {
  int64_t satfinite;
  void read(ArgReader& r) { satfinite = r.integer("satfinite"); }
};

/** reduce_rows: each row reduced to one value: the mean or the max. */
struct ReduceRowsArgs {
  int64_t rows, cols, xOffset, xRowStride, mean;
  void read(ArgReader& r) { rows = r.integer("rows"); cols = r.integer("cols"); xOffset = r.integer("xOffset"); xRowStride = r.integer("xRowStride"); mean = r.integer("mean"); }
};

/** mm_reduce_scatter: async TP's fused matmul + reduce-scatter: one row block per destination rank, its reduce overlapping the next block's matmul. */
using MmReduceScatterArgs = MmArgs;

/** Checks a step's arguments against its op's layout (parseProgram runs it on every step). */
template <class S>
void checkArgs(const S& st, int64_t world) {
  switch (st.op) {
    case OpCode::Gather: argsOf<GatherArgs>(st, world); return;
    case OpCode::Add: argsOf<AddArgs>(st, world); return;
    case OpCode::Mm: argsOf<MmArgs>(st, world); return;
    case OpCode::Embedding: argsOf<EmbeddingArgs>(st, world); return;
    case OpCode::Seed: argsOf<SeedArgs>(st, world); return;
    case OpCode::Fill: argsOf<FillArgs>(st, world); return;
    case OpCode::Map: argsOf<MapArgs>(st, world); return;
    case OpCode::AllReduce: argsOf<AllReduceArgs>(st, world); return;
    case OpCode::RmsNorm: argsOf<RmsNormArgs>(st, world); return;
    case OpCode::FusedAddRmsNorm: argsOf<FusedAddRmsNormArgs>(st, world); return;
    case OpCode::AllReduceNorm: argsOf<AllReduceNormArgs>(st, world); return;
    case OpCode::Moe: argsOf<MoeArgs>(st, world); return;
    case OpCode::ReduceScatter: argsOf<ReduceScatterArgs>(st, world); return;
    case OpCode::AllGather: argsOf<AllGatherArgs>(st, world); return;
    case OpCode::Fp8Quant: argsOf<Fp8QuantArgs>(st, world); return;
    case OpCode::ReduceRows: argsOf<ReduceRowsArgs>(st, world); return;
    case OpCode::MmReduceScatter: argsOf<MmReduceScatterArgs>(st, world); return;
  }
}

/** Map functions (MAP_FNS), by wire code. */
enum MapFn { MapMul = 0, MapMuls = 1, MapAdds = 2, MapGe = 3, MapLt = 4, MapAnd = 5, MapNot = 6, MapMaskedFill = 7, MapSiluMul = 8, MapSiluMulBf16 = 9, MapSigmoid = 10, MapCast = 11, MapToF8e4m3fn = 12, MapSquare = 13, MapDiv = 14, MapDivs = 15, MapReciprocal = 16, MapRsqrt = 17, MapExp = 18, MapNeg = 19, MapAbs = 20, MapMaxs = 21, MapMins = 22, MapSilu = 23, MapFnCount };

/** Functions the map bodies call (MAP_HELPERS). */
FL_HOST_DEVICE inline float div_rn(float a, float b) { return a / b; }

FL_HOST_DEVICE inline float f8e4m3fn(float x) {
  uint32_t u;
  memcpy(&u, &x, 4);
  const uint32_t a = u & 0x7fffffffu;
  float v;
  if (a >= 0x3c800000u) {
    const uint32_t r = (a + 0x7ffffu + ((a >> 20) & 1u)) >> 20;
    if (r >= 0x43fu) return NAN;
    const uint32_t bits = r << 20;
    memcpy(&v, &bits, 4);
  } else {
    float ax;
    memcpy(&ax, &a, 4);
    v = rintf(ax * 512.f) * 0.001953125f;
  }
  return (u >> 31) ? -v : v;
}

FL_HOST_DEVICE inline float rn_bf16(float x) {
  uint32_t u;
  memcpy(&u, &x, 4);
  if ((u & 0x7fffffffu) > 0x7f800000u) u = (u | 0x400000u) & 0xffff0000u;
  else u = (u + 0x7fffu + ((u >> 16) & 1u)) & 0xffff0000u;
  float r;
  memcpy(&r, &u, 4);
  return r;
}

/** One map function at one element; a = in0, b = in1 (0 when absent), s = the scalar. */
FL_HOST_DEVICE inline float mapValue(int fn, float a, float b, float s) {
  switch (fn) {
    case MapMul: return a * b;  // a · b
    case MapMuls: return a * s;  // a · s (s a Python number)
    case MapAdds: return a + s;  // a + s (s a Python number)
    case MapGe: return (a >= s ? 1.f : 0.f);  // a ≥ s
    case MapLt: return (a < s ? 1.f : 0.f);  // a < s
    case MapAnd: return ((a != 0.f && b != 0.f) ? 1.f : 0.f);  // a ∧ b
    case MapNot: return (a == 0.f ? 1.f : 0.f);  // ¬a
    case MapMaskedFill: return (b != 0.f ? s : a);  // s where b, else a
    case MapSiluMul: return (a / (1.f + expf(-a))) * b;  // silu(a) · b
    case MapSiluMulBf16: return rn_bf16(a / (1.f + expf(-a))) * b;  // bf16(silu(a)) · b
    case MapSigmoid: return (1.f / (1.f + expf(-a)));  // σ(a) = 1 / (1 + e^−a)
    case MapCast: return a;  // a, rounded to the output dtype (prims.convert_element_type between float dtypes)
    case MapToF8e4m3fn: return f8e4m3fn(a);  // torch's cast to float8_e4m3fn: nearest even, NaN past 464 (no saturation), held as its value
    case MapSquare: return a * a;  // a² (pow(a, 2))
    case MapDiv: return div_rn(a, b);  // a / b, correctly rounded
    case MapDivs: return div_rn(a, s);  // a / s (s a Python number), correctly rounded
    case MapReciprocal: return div_rn(1.f, a);  // 1 / a, correctly rounded
    case MapRsqrt: return div_rn(1.f, sqrtf(a));  // 1 / √a
    case MapExp: return expf(a);  // e^a
    case MapNeg: return -a;  // −a
    case MapAbs: return fabsf(a);  // |a|
    case MapMaxs: return (s > a ? s : a);  // max(a, s) (clamp_min): a unless s > a, so NaN and the sign of a zero pass through
    case MapMins: return (s < a ? s : a);  // min(a, s) (clamp_max): a unless s < a, so NaN and the sign of a zero pass through
    case MapSilu: return (a / (1.f + expf(-a)));  // silu(a) = a · σ(a)
    default: return a;  // unreachable: parseProgram refuses codes outside MapFn
  }
}

}  // namespace fl
