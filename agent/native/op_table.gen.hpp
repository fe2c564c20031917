// Generated from src/graph/opTable.ts by agent/opTableCpp.ts (npm run agent). Do not edit.
#pragma once
#include <cstdint>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#ifdef __CUDACC__
#define FL_HOST_DEVICE __host__ __device__
#else
#define FL_HOST_DEVICE
#endif

namespace fl {

/** The worker's step ops (WORKER_OPS), in wire order. */
enum class OpCode { Gather, Add, Mm, Embedding, Seed, Fill, Map, AllReduce, RmsNorm, FusedAddRmsNorm, AllReduceNorm, Moe, ReduceScatter, AllGather, MmReduceScatter };

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
      {"mm_reduce_scatter", OpCode::MmReduceScatter},
  };
  for (auto& [n, c] : table) if (s == n) return c;
  throw std::runtime_error("unknown step op '" + s + "'");
}

/** Integers inside a step's `i`: per-dim shapes and strides, one value per rank. */
struct IntList {
  const int64_t* data = nullptr;
  int64_t size = 0;
  int64_t operator[](int64_t k) const { return data[k]; }
};

/** Reads a step's `i` and `f` in its op's declared order; throws naming what is missing or left over. */
class ArgReader {
 public:
  ArgReader(const std::vector<int64_t>& i, const std::vector<double>& f, const char* op) : i_(i), f_(f), op_(op) {}
  int64_t integer(const char* name) {
    if (ni_ >= i_.size()) fail(std::string("is missing its argument '") + name + "'");
    return i_[ni_++];
  }
  IntList list(const char* name, int64_t n) {
    if (n < 0 || (uint64_t)n > i_.size() - ni_)
      fail("needs " + std::to_string(n) + " values of '" + name + "', has " + std::to_string(i_.size() - ni_) + " left");
    IntList l{i_.data() + ni_, n};
    ni_ += (size_t)n;
    return l;
  }
  double real(const char* name) {
    if (nf_ >= f_.size()) fail(std::string("is missing its argument '") + name + "'");
    return f_[nf_++];
  }
  void end() const {
    if (ni_ != i_.size() || nf_ != f_.size())
      fail("takes " + std::to_string(ni_) + " integer and " + std::to_string(nf_) + " float arguments, not " + std::to_string(i_.size()) + " and " +
           std::to_string(f_.size()));
  }

 private:
  [[noreturn]] void fail(const std::string& what) const { throw std::runtime_error(std::string("step op '") + op_ + "' " + what); }
  const std::vector<int64_t>& i_;
  const std::vector<double>& f_;
  const char* op_;
  size_t ni_ = 0, nf_ = 0;
};

// Each op's arguments (WORKER_OPS[op].i, then .f), read from a step's `i` and `f`.

/** gather: strided copy / broadcast / constant pad into a contiguous slot. */
struct GatherArgs {
  int64_t offset;
  int64_t nd;
  IntList outShape;
  IntList inShape;
  IntList stride;
  IntList lo;
  double value;
};
template <class S>
GatherArgs gatherArgs(const S& st) {
  ArgReader r(st.i, st.f, "gather");
  GatherArgs a;
  a.offset = r.integer("offset");
  a.nd = r.integer("nd");
  a.outShape = r.list("outShape", a.nd);
  a.inShape = r.list("inShape", a.nd);
  a.stride = r.list("stride", a.nd);
  a.lo = r.list("lo", a.nd);
  a.value = r.real("value");
  r.end();
  return a;
}

/** add: a + alpha · b. */
struct AddArgs {
  double alpha;
};
template <class S>
AddArgs addArgs(const S& st) {
  ArgReader r(st.i, st.f, "add");
  AddArgs a;
  a.alpha = r.real("alpha");
  r.end();
  return a;
}

/** mm: alpha · A·B + beta · bias. */
struct MmArgs {
  int64_t M;
  int64_t K;
  int64_t N;
  int64_t biasMode;
  int64_t transB;
  double alpha;
  double beta;
};
template <class S>
MmArgs mmArgs(const S& st) {
  ArgReader r(st.i, st.f, "mm");
  MmArgs a;
  a.M = r.integer("M");
  a.K = r.integer("K");
  a.N = r.integer("N");
  a.biasMode = r.integer("biasMode");
  a.transB = r.integer("transB");
  a.alpha = r.real("alpha");
  a.beta = r.real("beta");
  r.end();
  return a;
}

/** embedding: rows of a table by token id. */
struct EmbeddingArgs {
  int64_t T;
  int64_t V;
  int64_t H;
};
template <class S>
EmbeddingArgs embeddingArgs(const S& st) {
  ArgReader r(st.i, st.f, "embedding");
  EmbeddingArgs a;
  a.T = r.integer("T");
  a.V = r.integer("V");
  a.H = r.integer("H");
  r.end();
  return a;
}

/** seed: counter-based seeded values (src/runtime/random.ts). */
struct SeedArgs {
  int64_t seed;
  int64_t range;
  IntList stream;
  double scale;
  double offset;
};
template <class S>
SeedArgs seedArgs(const S& st, int64_t world) {
  ArgReader r(st.i, st.f, "seed");
  SeedArgs a;
  a.seed = r.integer("seed");
  a.range = r.integer("range");
  a.stream = r.list("stream", world);
  a.scale = r.real("scale");
  a.offset = r.real("offset");
  r.end();
  return a;
}

/** fill: a constant. */
struct FillArgs {
  double value;
};
template <class S>
FillArgs fillArgs(const S& st) {
  ArgReader r(st.i, st.f, "fill");
  FillArgs a;
  a.value = r.real("value");
  r.end();
  return a;
}

/** map: an elementwise map function (MAP_FNS). */
struct MapArgs {
  int64_t fn;
  double scalar;
};
template <class S>
MapArgs mapArgs(const S& st) {
  ArgReader r(st.i, st.f, "map");
  MapArgs a;
  a.fn = r.integer("fn");
  a.scalar = r.real("scalar");
  r.end();
  return a;
}

/** all_reduce: sum over ranks. */
struct AllReduceArgs {};
template <class S>
AllReduceArgs allReduceArgs(const S& st) {
  ArgReader r(st.i, st.f, "all_reduce");
  AllReduceArgs a{};
  r.end();
  return a;
}

/** rms_norm: RMSNorm. */
struct RmsNormArgs {
  int64_t rows;
  int64_t cols;
  int64_t xOffset;
  int64_t xRowStride;
  double eps;
};
template <class S>
RmsNormArgs rmsNormArgs(const S& st) {
  ArgReader r(st.i, st.f, "rms_norm");
  RmsNormArgs a;
  a.rows = r.integer("rows");
  a.cols = r.integer("cols");
  a.xOffset = r.integer("xOffset");
  a.xRowStride = r.integer("xRowStride");
  a.eps = r.real("eps");
  r.end();
  return a;
}

/** fused_add_rms_norm: residual add + RMSNorm. */
using FusedAddRmsNormArgs = RmsNormArgs;
template <class S>
FusedAddRmsNormArgs fusedAddRmsNormArgs(const S& st) {
  ArgReader r(st.i, st.f, "fused_add_rms_norm");
  FusedAddRmsNormArgs a;
  a.rows = r.integer("rows");
  a.cols = r.integer("cols");
  a.xOffset = r.integer("xOffset");
  a.xRowStride = r.integer("xRowStride");
  a.eps = r.real("eps");
  r.end();
  return a;
}

/** allreduce_norm: all-reduce + residual add + RMSNorm, one kernel. */
struct AllReduceNormArgs {
  int64_t rows;
  int64_t cols;
  double eps;
};
template <class S>
AllReduceNormArgs allReduceNormArgs(const S& st) {
  ArgReader r(st.i, st.f, "allreduce_norm");
  AllReduceNormArgs a;
  a.rows = r.integer("rows");
  a.cols = r.integer("cols");
  a.eps = r.real("eps");
  r.end();
  return a;
}

/** moe: GPT-OSS mixture of experts. */
struct MoeArgs {
  int64_t T;
  int64_t H;
  int64_t E;
  int64_t I;
  int64_t K;
};
template <class S>
MoeArgs moeArgs(const S& st) {
  ArgReader r(st.i, st.f, "moe");
  MoeArgs a;
  a.T = r.integer("T");
  a.H = r.integer("H");
  a.E = r.integer("E");
  a.I = r.integer("I");
  a.K = r.integer("K");
  r.end();
  return a;
}

/** reduce_scatter: sum over ranks; rank r keeps the r-th block of token rows. */
struct ReduceScatterArgs {};
template <class S>
ReduceScatterArgs reduceScatterArgs(const S& st) {
  ArgReader r(st.i, st.f, "reduce_scatter");
  ReduceScatterArgs a{};
  r.end();
  return a;
}

/** all_gather: every rank's token rows, concatenated in rank order. */
struct AllGatherArgs {};
template <class S>
AllGatherArgs allGatherArgs(const S& st) {
  ArgReader r(st.i, st.f, "all_gather");
  AllGatherArgs a{};
  r.end();
  return a;
}

/** mm_reduce_scatter: async TP's fused matmul + reduce-scatter: one row block per destination rank, its reduce overlapping the next block's matmul. */
using MmReduceScatterArgs = MmArgs;
template <class S>
MmReduceScatterArgs mmReduceScatterArgs(const S& st) {
  ArgReader r(st.i, st.f, "mm_reduce_scatter");
  MmReduceScatterArgs a;
  a.M = r.integer("M");
  a.K = r.integer("K");
  a.N = r.integer("N");
  a.biasMode = r.integer("biasMode");
  a.transB = r.integer("transB");
  a.alpha = r.real("alpha");
  a.beta = r.real("beta");
  r.end();
  return a;
}

/** Checks a step's arguments against its op's layout (parseProgram runs it on every step). */
template <class S>
void checkArgs(const S& st, int64_t world) {
  switch (st.op) {
    case OpCode::Gather: gatherArgs(st); return;
    case OpCode::Add: addArgs(st); return;
    case OpCode::Mm: mmArgs(st); return;
    case OpCode::Embedding: embeddingArgs(st); return;
    case OpCode::Seed: seedArgs(st, world); return;
    case OpCode::Fill: fillArgs(st); return;
    case OpCode::Map: mapArgs(st); return;
    case OpCode::AllReduce: allReduceArgs(st); return;
    case OpCode::RmsNorm: rmsNormArgs(st); return;
    case OpCode::FusedAddRmsNorm: fusedAddRmsNormArgs(st); return;
    case OpCode::AllReduceNorm: allReduceNormArgs(st); return;
    case OpCode::Moe: moeArgs(st); return;
    case OpCode::ReduceScatter: reduceScatterArgs(st); return;
    case OpCode::AllGather: allGatherArgs(st); return;
    case OpCode::MmReduceScatter: mmReduceScatterArgs(st); return;
  }
  (void)world;
}

/** Map functions (MAP_FNS), by wire code. */
enum MapFn { MapMul = 0, MapMuls = 1, MapAdds = 2, MapGe = 3, MapLt = 4, MapAnd = 5, MapNot = 6, MapMaskedFill = 7, MapSiluMul = 8, MapSigmoid = 9, MapFnCount };

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
    case MapSigmoid: return (1.f / (1.f + expf(-a)));  // σ(a) = 1 / (1 + e^−a)
    default: return a;  // unreachable: parseProgram refuses codes outside MapFn
  }
}

}  // namespace fl
