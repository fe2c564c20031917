// Generated from src/graph/opTable.ts by agent/opTableCpp.ts (npm run agent). Do not edit.
#pragma once
#include <stdexcept>
#include <string>
#include <utility>

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
