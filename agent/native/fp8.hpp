// One FP8 quant element (KERNELS.fp8_quant, src/graph/fp8.ts): v = x · (1 / scale), then vLLM's
// clamp (fmaxf(−448, fminf(v, 448)): NaN becomes 448) or FlashInfer's saturating cast (±448, NaN
// stays NaN), then the e4m3fn value (the op table's f8e4m3fn, exact once clamped).
#pragma once
#include "op_table.gen.hpp"

namespace fl {

FL_HOST_DEVICE inline float fp8QuantValue(float v, bool satfinite) {
  if (v != v) return satfinite ? v : 448.f;
  return f8e4m3fn(fmaxf(-448.f, fminf(v, 448.f)));
}

}  // namespace fl
