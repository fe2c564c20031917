// The flat program the agent plans from a graph (agent/program.ts): buffers ("slots", one per value,
// present on every rank) and steps over them. The worker only executes; all graph knowledge
// (ops, shapes, auto_functionalized results) stays on the Node side.
#pragma once
#include <cstdint>
#include <algorithm>
#include <cmath>
#include <cstring>
#include <functional>
#include <string>
#include <vector>

#include "json.hpp"
#include "op_table.gen.hpp"

namespace fl {

enum class DType { BF16, F32 };
inline size_t elemBytes(DType d) { return d == DType::BF16 ? 2 : 4; }

struct Step {
  std::string node;
  std::string opName;
  OpCode op;
  std::vector<int> in, out;  // slot ids; -1 = absent optional
  std::vector<int64_t> i;    // integer arguments, per op: read them as its struct (op_table.gen.hpp, e.g. argsOf<MoeArgs>(st))
  std::vector<double> f;     // float arguments
  // A collective's process groups (src/runtime/rankMesh.ts): each a list of ranks, in group-rank
  // order, that meet only each other; together they hold every rank once, all of one size.
  std::vector<std::vector<int>> groups;
};

struct InputBinding {
  int slot;
  int rank;  // -1: the same bytes on every rank
  uint64_t offset;
};

struct Program {
  std::string id;
  int world = 1;
  DType dtype = DType::BF16;
  std::vector<int64_t> slotNumel;
  std::vector<char> slotIsInt;  // i32 slots (token ids); every other slot holds the run's dtype
  std::vector<InputBinding> inputs;
  std::vector<Step> steps;
  std::vector<int> outputs;
  // Debugging aids honoured only when FUSIONLAB_WORKER_DEBUG is set in the worker's environment (tests):
  std::string abortAt;      // abort the process when this node starts
  int stepDelayMs = 0;      // sleep before each step, so a test can act while a run is in flight
  bool forceNcclFallback = false;  // take the NCCL + add/norm path even where peers are reachable
  size_t slotBytes(int s) const { return (size_t)slotNumel[s] * (slotIsInt[s] ? 4 : elemBytes(dtype)); }
};

struct TraceRecord {
  int rank;
  int step;
  double startUs, durUs;
  std::string note;  // e.g. the fallback taken for a fused op
};

struct RunOutcome {
  std::vector<TraceRecord> trace;
  // outputs[o][rank]: bytes of program.outputs[o] on that rank
  std::vector<std::vector<std::vector<uint8_t>>> outputs;
};

/** A failure inside a step: the node is named in the error reply. */
struct StepError : std::runtime_error {
  std::string node;
  StepError(const std::string& n, const std::string& m) : std::runtime_error(m), node(n) {}
};

/** Called before each step starts, so a crash can be pinned to the node that was running. */
using StepHook = std::function<void(int step)>;

/** A step's groups ("groups", absent: one group of every rank), checked to split the world evenly. */
inline void parseGroups(Step& st, const Json& s, int world) {
  std::vector<int> seen(world, 0);
  if (!s.has("groups")) {
    st.groups.assign(1, {});
    for (int r = 0; r < world; r++) st.groups[0].push_back(r);
    return;
  }
  for (auto& g : s.at("groups").arr()) {
    std::vector<int> ranks;
    for (auto& v : g.arr()) {
      int64_t r = v.i64();
      if (r < 0 || r >= world || seen[r]++) throw std::runtime_error("step '" + st.node + "': groups must hold each rank 0.." + std::to_string(world - 1) + " once");
      ranks.push_back((int)r);
    }
    if (ranks.empty() || (!st.groups.empty() && ranks.size() != st.groups[0].size()))
      throw std::runtime_error("step '" + st.node + "': groups must all have one size");
    st.groups.push_back(std::move(ranks));
  }
  for (int r = 0; r < world; r++)
    if (!seen[r]) throw std::runtime_error("step '" + st.node + "': rank " + std::to_string(r) + " is in no group");
}

inline Program parseProgram(const Json& m, uint64_t payloadBytes) {
  Program p;
  p.id = m.at("id").str();
  p.world = (int)m.at("world").i64();
  if (p.world < 1 || p.world > 8) throw std::runtime_error("world must be 1..8");
  const std::string& dt = m.at("dtype").str();
  if (dt == "bf16") p.dtype = DType::BF16;
  else if (dt == "f32") p.dtype = DType::F32;
  else throw std::runtime_error("dtype must be bf16 or f32");
  for (auto& s : m.at("slots").arr()) {
    int64_t n = s.i64();
    if (n < 0 || n > (int64_t(1) << 34)) throw std::runtime_error("slot size out of range");
    p.slotNumel.push_back(n);
  }
  p.slotIsInt.assign(p.slotNumel.size(), 0);
  if (m.has("intSlots"))
    for (auto& v : m.at("intSlots").arr()) {
      int64_t s = v.i64();
      if (s < 0 || s >= (int64_t)p.slotNumel.size()) throw std::runtime_error("intSlots entry out of range");
      p.slotIsInt[s] = 1;
    }
  auto checkSlot = [&](int64_t s, bool optional) {
    if (optional && s == -1) return;
    if (s < 0 || s >= (int64_t)p.slotNumel.size()) throw std::runtime_error("slot " + std::to_string(s) + " out of range");
  };
  for (auto& b : m.at("inputs").arr()) {
    InputBinding ib{(int)b.at("slot").i64(), (int)b.at("rank").i64(), (uint64_t)b.at("offset").i64()};
    checkSlot(ib.slot, false);
    if (ib.rank < -1 || ib.rank >= p.world) throw std::runtime_error("input rank out of range");
    if (ib.offset + p.slotBytes(ib.slot) > payloadBytes) throw std::runtime_error("input outside the payload");
    p.inputs.push_back(ib);
  }
  for (auto& s : m.at("steps").arr()) {
    Step st;
    st.node = s.at("node").str();
    st.opName = s.at("op").str();
    st.op = parseOp(st.opName);
    for (auto& v : s.at("in").arr()) { checkSlot(v.i64(), true); st.in.push_back((int)v.i64()); }
    for (auto& v : s.at("out").arr()) { checkSlot(v.i64(), true); st.out.push_back((int)v.i64()); }
    if (s.has("i")) for (auto& v : s.at("i").arr()) st.i.push_back(v.i64());
    if (s.has("f")) for (auto& v : s.at("f").arr()) st.f.push_back(v.num());
    parseGroups(st, s, p.world);
    // Arguments by their op's layout (op_table.gen.hpp), so the executors read named fields of a checked step.
    try {
      checkArgs(st, p.world);
    } catch (const std::runtime_error& e) {
      throw std::runtime_error("step '" + st.node + "': " + e.what());
    }
    if (st.op == OpCode::Map) {
      const int64_t fn = argsOf<MapArgs>(st).fn;
      if (fn < 0 || fn >= MapFnCount)
        throw std::runtime_error("step '" + st.node + "': map function code " + std::to_string(fn) + " is outside 0.." + std::to_string(MapFnCount - 1));
    }
    p.steps.push_back(std::move(st));
  }
  for (auto& o : m.at("outputs").arr()) { checkSlot(o.i64(), false); p.outputs.push_back((int)o.i64()); }
  p.abortAt = m.strOr("abortAt", "");
  p.stepDelayMs = (int)std::min(1000.0, std::max(0.0, m.numOr("stepDelayMs", 0)));
  p.forceNcclFallback = m.has("forceFallback") && m.at("forceFallback").kind == Json::Bool && m.at("forceFallback").b;
  return p;
}

// ---- bf16 on the host: stored as the high 16 bits of an f32, rounded to nearest even --------
inline float bf16ToF32(uint16_t h) {
  uint32_t u = (uint32_t)h << 16;
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}
inline uint16_t f32ToBf16(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  if ((u & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((u >> 16) | 0x40);  // NaN stays NaN
  u += 0x7fffu + ((u >> 16) & 1u);
  return (uint16_t)(u >> 16);
}
inline float roundTo(DType d, float v) { return d == DType::BF16 ? bf16ToF32(f32ToBf16(v)) : v; }

// ---- the runtime's counter-based generator (src/runtime/random.ts), bit for bit ----------------
inline uint32_t lowbias32(uint32_t x) {
  x ^= x >> 16; x *= 0x7feb352du; x ^= x >> 15; x *= 0x846ca68bu; x ^= x >> 16;
  return x;
}
inline uint32_t rand3(uint32_t seed, uint32_t stream, uint32_t i) { return lowbias32(lowbias32(lowbias32(seed) ^ stream) ^ i); }
/** uniform in [-1, 1), exact in f32; then one f32 multiply and one f32 add, as weights.ts does. */
inline float seededValue(uint32_t seed, uint32_t stream, uint32_t i, float scale, float offset) {
  volatile float u = (float)(rand3(seed, stream, i) >> 8) * 5.9604644775390625e-8f * 2.0f - 1.0f;
  volatile float m = u * scale;  // volatile: no fused multiply-add, to match the TypeScript
  return m + offset;
}
inline int32_t seededIndex(uint32_t seed, uint32_t stream, uint32_t i, int64_t range) {
  double u = (double)(rand3(seed, stream, i) >> 8) * 5.9604644775390625e-8 * 2.0 - 1.0;
  int64_t v = (int64_t)std::floor((u + 1.0) * 0.5 * (double)range);
  return (int32_t)std::min<int64_t>(range - 1, v);
}

}  // namespace fl
