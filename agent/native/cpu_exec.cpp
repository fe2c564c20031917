// The CPU executor: the same ops as the CUDA one, run on the host, so the agent, the protocol
// and the process boundary work (and are tested) on machines without a GPU. Values are held
// as f32 already rounded to the run's dtype; every op accumulates in f32, as the kernels do.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdlib>

#include "executors.hpp"

namespace fl {
namespace {

using Buf = std::vector<float>;

struct CpuState {
  const Program& p;
  std::vector<std::vector<Buf>> slots;  // [rank][slot]
  explicit CpuState(const Program& prog) : p(prog), slots(prog.world, std::vector<Buf>(prog.slotNumel.size())) {}
  float r(float v) const { return roundTo(p.dtype, v); }
  Buf& out(int rank, int s) {
    Buf& b = slots[rank][s];
    b.assign((size_t)p.slotNumel[s], 0.f);
    return b;
  }
  const Buf& in(int rank, int s, const Step& st) {
    const Buf& b = slots[rank][s];
    if (b.size() != (size_t)p.slotNumel[s]) throw StepError(st.node, "reads a value that no earlier step produced (slot " + std::to_string(s) + ")");
    return b;
  }
};

void need(const Step& st, size_t nIn, size_t nOut, size_t nI, size_t nF = 0) {
  if (st.in.size() < nIn || st.out.size() < nOut || st.i.size() < nI || st.f.size() < nF)
    throw StepError(st.node, "step '" + st.opName + "' is missing operands or parameters");
}

void checkSize(const Step& st, const Buf& b, int64_t want, const char* what) {
  if ((int64_t)b.size() < want) throw StepError(st.node, std::string(what) + " has " + std::to_string(b.size()) + " elements, needs " + std::to_string(want));
}

void rmsRow(const float* z, const float* w, float* y, int64_t cols, double eps, DType dt, bool roundBeforeWeight) {
  float ss = 0.f;
  for (int64_t c = 0; c < cols; c++) ss += z[c] * z[c];
  float inv = 1.f / std::sqrt(ss / (float)cols + (float)eps);
  for (int64_t c = 0; c < cols; c++) {
    float n = z[c] * inv;
    if (roundBeforeWeight) n = roundTo(dt, n);
    y[c] = roundTo(dt, n * w[c]);
  }
}

void moeRank(const Step& st, CpuState& S, int rank) {
  need(st, 6, 1, 5);
  int64_t T = st.i[0], H = st.i[1], E = st.i[2], I = st.i[3], K = std::min<int64_t>(st.i[4], E);
  const Buf &x = S.in(rank, st.in[0], st), &lg = S.in(rank, st.in[1], st), &w13 = S.in(rank, st.in[2], st),
            &b13 = S.in(rank, st.in[3], st), &w2 = S.in(rank, st.in[4], st), &b2 = S.in(rank, st.in[5], st);
  checkSize(st, x, T * H, "hidden_states"); checkSize(st, lg, T * E, "router_logits");
  checkSize(st, w13, E * 2 * I * H, "w13_weight"); checkSize(st, b13, E * 2 * I, "w13_bias");
  checkSize(st, w2, E * H * I, "w2_weight"); checkSize(st, b2, E * H, "w2_bias");
  Buf& y = S.out(rank, st.out[0]);
  std::vector<int> idx(E);
  std::vector<float> h(2 * I), a(I), acc(H);
  for (int64_t t = 0; t < T; t++) {
    for (int e = 0; e < E; e++) idx[e] = e;
    const float* l = &lg[t * E];
    // Top-k by logit; ties go to the lower expert index, as a stable sort gives.
    std::stable_sort(idx.begin(), idx.end(), [&](int p, int q) { return l[p] > l[q]; });
    float mx = l[idx[0]], den = 0.f;
    std::vector<float> wk(K);
    for (int k = 0; k < K; k++) { wk[k] = std::exp(l[idx[k]] - mx); den += wk[k]; }
    std::fill(acc.begin(), acc.end(), 0.f);
    for (int k = 0; k < K; k++) {
      int e = idx[k];
      float wgt = wk[k] / den;
      const float* xr = &x[t * H];
      for (int64_t j = 0; j < 2 * I; j++) {
        const float* wr = &w13[((int64_t)e * 2 * I + j) * H];
        float s = 0.f;
        for (int64_t c = 0; c < H; c++) s += xr[c] * wr[c];
        h[j] = s + b13[(int64_t)e * 2 * I + j];
      }
      for (int64_t j = 0; j < I; j++) {
        float g = std::min(h[2 * j], 7.f);           // gate rows are the even ones
        float u = std::max(-7.f, std::min(h[2 * j + 1], 7.f));
        a[j] = (u + 1.f) * g * (1.f / (1.f + std::exp(-1.702f * g)));
      }
      for (int64_t c = 0; c < H; c++) {
        const float* wr = &w2[((int64_t)e * H + c) * I];
        float s = 0.f;
        for (int64_t j = 0; j < I; j++) s += a[j] * wr[j];
        if (rank == 0) s += b2[(int64_t)e * H + c];  // the bias belongs to one rank's partial sum
        acc[c] += wgt * s;
      }
    }
    for (int64_t c = 0; c < H; c++) y[t * H + c] = S.r(acc[c]);
  }
}

void runStepRank(const Step& st, CpuState& S, int rank) {
  const Program& p = S.p;
  switch (st.op) {
    case OpCode::Copy: {
      need(st, 1, 1, 0);
      const Buf& a = S.in(rank, st.in[0], st);
      Buf& o = S.out(rank, st.out[0]);
      checkSize(st, a, (int64_t)o.size(), "input");
      std::copy(a.begin(), a.begin() + o.size(), o.begin());
      break;
    }
    case OpCode::Slice: {
      need(st, 1, 1, 6);
      int64_t outer = st.i[0], dimIn = st.i[1], inner = st.i[2], start = st.i[3], step = st.i[4], len = st.i[5];
      const Buf& a = S.in(rank, st.in[0], st);
      checkSize(st, a, outer * dimIn * inner, "input");
      if (len > 0 && (start < 0 || start + (len - 1) * step >= dimIn)) throw StepError(st.node, "slice reaches outside its input");
      Buf& o = S.out(rank, st.out[0]);
      for (int64_t q = 0; q < outer; q++)
        for (int64_t j = 0; j < len; j++)
          for (int64_t k = 0; k < inner; k++) o[(q * len + j) * inner + k] = a[(q * dimIn + start + j * step) * inner + k];
      break;
    }
    case OpCode::Pad: {
      need(st, 1, 1, 4, 1);
      int64_t rows = st.i[0], cin = st.i[1], left = st.i[2], right = st.i[3], cout = cin + left + right;
      const Buf& a = S.in(rank, st.in[0], st);
      checkSize(st, a, rows * cin, "input");
      Buf& o = S.out(rank, st.out[0]);
      float v = S.r((float)st.f[0]);
      for (int64_t q = 0; q < rows; q++)
        for (int64_t c = 0; c < cout; c++) {
          int64_t src = c - left;
          o[q * cout + c] = (src >= 0 && src < cin) ? a[q * cin + src] : v;
        }
      break;
    }
    case OpCode::Transpose: {
      need(st, 1, 1, 2);
      int64_t rows = st.i[0], cols = st.i[1];
      const Buf& a = S.in(rank, st.in[0], st);
      checkSize(st, a, rows * cols, "input");
      Buf& o = S.out(rank, st.out[0]);
      for (int64_t q = 0; q < rows; q++)
        for (int64_t c = 0; c < cols; c++) o[c * rows + q] = a[q * cols + c];
      break;
    }
    case OpCode::Mm: {
      need(st, 2, 1, 4, 2);
      int64_t M = st.i[0], K = st.i[1], N = st.i[2], biasMode = st.i[3];
      const Buf& a = S.in(rank, st.in[0], st);
      const Buf& b = S.in(rank, st.in[1], st);
      checkSize(st, a, M * K, "mat1"); checkSize(st, b, K * N, "mat2");
      const Buf* bias = nullptr;
      if (biasMode) {
        if (st.in.size() < 3) throw StepError(st.node, "addmm without its bias operand");
        bias = &S.in(rank, st.in[2], st);
        checkSize(st, *bias, biasMode == 1 ? N : M * N, "bias");
      }
      float alpha = (float)st.f[0], beta = (float)st.f[1];
      Buf& o = S.out(rank, st.out[0]);
      std::vector<float> row(N);
      for (int64_t m = 0; m < M; m++) {
        std::fill(row.begin(), row.end(), 0.f);
        for (int64_t k = 0; k < K; k++) {
          float av = a[m * K + k];
          const float* br = &b[k * N];
          for (int64_t n = 0; n < N; n++) row[n] += av * br[n];
        }
        for (int64_t n = 0; n < N; n++) {
          float v = alpha * row[n];
          if (bias) v += beta * (*bias)[biasMode == 1 ? n : m * N + n];
          o[m * N + n] = S.r(v);
        }
      }
      break;
    }
    case OpCode::Add: {
      need(st, 2, 1, 0, 1);
      const Buf& a = S.in(rank, st.in[0], st);
      const Buf& b = S.in(rank, st.in[1], st);
      Buf& o = S.out(rank, st.out[0]);
      checkSize(st, a, (int64_t)o.size(), "self"); checkSize(st, b, (int64_t)o.size(), "other");
      float alpha = (float)st.f[0];
      for (size_t q = 0; q < o.size(); q++) o[q] = S.r(a[q] + alpha * b[q]);
      break;
    }
    case OpCode::RmsNorm: {
      need(st, 2, 1, 2, 1);
      int64_t rows = st.i[0], cols = st.i[1];
      const Buf& x = S.in(rank, st.in[0], st);
      const Buf& w = S.in(rank, st.in[1], st);
      checkSize(st, x, rows * cols, "input"); checkSize(st, w, cols, "weight");
      Buf& y = S.out(rank, st.out[0]);
      for (int64_t q = 0; q < rows; q++) rmsRow(&x[q * cols], w.data(), &y[q * cols], cols, st.f[0], p.dtype, true);
      break;
    }
    case OpCode::FusedAddRmsNorm: {
      need(st, 3, 2, 2, 1);
      int64_t rows = st.i[0], cols = st.i[1];
      const Buf& x = S.in(rank, st.in[0], st);
      const Buf& res = S.in(rank, st.in[1], st);
      const Buf& w = S.in(rank, st.in[2], st);
      checkSize(st, x, rows * cols, "input"); checkSize(st, res, rows * cols, "residual"); checkSize(st, w, cols, "weight");
      Buf& y = S.out(rank, st.out[0]);
      Buf& z = S.out(rank, st.out[1]);
      for (int64_t q = 0; q < rows * cols; q++) z[q] = S.r(x[q] + res[q]);
      for (int64_t q = 0; q < rows; q++) rmsRow(&z[q * cols], w.data(), &y[q * cols], cols, st.f[0], p.dtype, true);
      break;
    }
    default:
      throw StepError(st.node, "step '" + st.opName + "' is not a per-rank op");
  }
}

// Collectives see every rank at once: sums go in rank order so results are bitwise stable.
void runCollective(const Step& st, CpuState& S) {
  const Program& p = S.p;
  if (st.op == OpCode::AllReduce) {
    need(st, 1, 1, 0);
    int64_t n = p.slotNumel[st.out[0]];
    std::vector<float> sum(n, 0.f);
    for (int r = 0; r < p.world; r++) {
      const Buf& a = S.in(r, st.in[0], st);
      checkSize(st, a, n, "input");
      for (int64_t q = 0; q < n; q++) sum[q] += a[q];
    }
    for (int r = 0; r < p.world; r++) {
      Buf& o = S.out(r, st.out[0]);
      for (int64_t q = 0; q < n; q++) o[q] = S.r(sum[q]);
    }
    return;
  }
  // AllReduceNorm (pattern 1): ar = Σ x_r; res_out = ar + residual; norm = res_out·rsqrt(·)·γ, one rounding.
  need(st, 3, 2, 2, 1);
  int64_t rows = st.i[0], cols = st.i[1], n = rows * cols;
  std::vector<float> ar(n, 0.f);
  for (int r = 0; r < p.world; r++) {
    const Buf& a = S.in(r, st.in[0], st);
    checkSize(st, a, n, "allreduce_in");
    for (int64_t q = 0; q < n; q++) ar[q] += a[q];
  }
  for (auto& v : ar) v = S.r(v);
  for (int r = 0; r < p.world; r++) {
    const Buf& res = S.in(r, st.in[1], st);
    const Buf& w = S.in(r, st.in[2], st);
    checkSize(st, res, n, "residual"); checkSize(st, w, cols, "rms_gamma");
    Buf& y = S.out(r, st.out[0]);
    Buf& z = S.out(r, st.out[1]);
    for (int64_t q = 0; q < n; q++) z[q] = S.r(ar[q] + res[q]);
    for (int64_t q = 0; q < rows; q++) rmsRow(&z[q * cols], w.data(), &y[q * cols], cols, st.f[0], p.dtype, false);
    if (st.out.size() > 2 && st.out[2] >= 0) S.out(r, st.out[2]) = ar;
  }
}

}  // namespace

RunOutcome runOnCpu(const Program& p, const uint8_t* payload, const StepHook& hook) {
  CpuState S(p);
  auto load = [&](int rank, const InputBinding& b) {
    Buf& dst = S.slots[rank][b.slot];
    int64_t n = p.slotNumel[b.slot];
    dst.resize((size_t)n);
    const uint8_t* src = payload + b.offset;
    if (p.dtype == DType::BF16) {
      for (int64_t q = 0; q < n; q++) { uint16_t h; std::memcpy(&h, src + 2 * q, 2); dst[q] = bf16ToF32(h); }
    } else {
      std::memcpy(dst.data(), src, (size_t)n * 4);
    }
  };
  for (auto& b : p.inputs) {
    if (b.rank >= 0) load(b.rank, b);
    else for (int r = 0; r < p.world; r++) load(r, b);
  }
  RunOutcome out;
  auto t0 = std::chrono::steady_clock::now();
  auto us = [&] { return std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - t0).count(); };
  for (size_t k = 0; k < p.steps.size(); k++) {
    const Step& st = p.steps[k];
    hook((int)k);
    if (!p.abortAt.empty() && st.node == p.abortAt && std::getenv("FUSIONLAB_WORKER_DEBUG_ABORT")) std::abort();
    if (st.op == OpCode::AllReduce || st.op == OpCode::AllReduceNorm) {
      double s = us();
      runCollective(st, S);
      double d = us() - s;
      for (int r = 0; r < p.world; r++) out.trace.push_back({r, (int)k, s, d, st.op == OpCode::AllReduceNorm ? "one-shot (cpu)" : ""});
      continue;
    }
    for (int r = 0; r < p.world; r++) {
      double s = us();
      if (st.op == OpCode::Moe) moeRank(st, S, r);
      else if (st.op == OpCode::Fill) {
        need(st, 0, 1, 0, 1);
        Buf& o = S.out(r, st.out[0]);
        std::fill(o.begin(), o.end(), S.r((float)st.f[0]));
      } else runStepRank(st, S, r);
      out.trace.push_back({r, (int)k, s, us() - s, ""});
    }
  }
  for (int s : p.outputs) {
    std::vector<std::vector<uint8_t>> perRank;
    for (int r = 0; r < p.world; r++) {
      const Buf& b = S.slots[r][s];
      if (b.size() != (size_t)p.slotNumel[s]) throw StepError("output", "output slot " + std::to_string(s) + " was never produced");
      std::vector<uint8_t> bytes(p.slotBytes(s));
      if (p.dtype == DType::BF16) for (size_t q = 0; q < b.size(); q++) { uint16_t h = f32ToBf16(b[q]); std::memcpy(&bytes[2 * q], &h, 2); }
      else std::memcpy(bytes.data(), b.data(), bytes.size());
      perRank.push_back(std::move(bytes));
    }
    out.outputs.push_back(std::move(perRank));
  }
  return out;
}

}  // namespace fl
