// The CPU executor: the same ops as the CUDA one, run on the host, so the agent, the protocol
// and the process boundary work (and are tested) on machines without a GPU. Values are held
// as f32 already rounded to the run's dtype. Sums over ranks and the norms accumulate in f64 and
// round where the CPU reference (src/runtime/cpuKernels.ts) does, so those outputs are bitwise the
// reference's and any drift fails the differential check; the other ops accumulate in f32.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <thread>

#include "executors.hpp"
#include "fp8.hpp"

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

// Arguments were checked against their op's layout when the program was parsed; operands are checked here.
void need(const Step& st, size_t nIn, size_t nOut) {
  if (st.in.size() < nIn || st.out.size() < nOut) throw StepError(st.node, "step '" + st.opName + "' is missing operands");
}

void checkSize(const Step& st, const Buf& b, int64_t want, const char* what) {
  if ((int64_t)b.size() < want) throw StepError(st.node, std::string(what) + " has " + std::to_string(b.size()) + " elements, needs " + std::to_string(want));
}

/**
 * One row of RMSNorm in f64, as cpuRmsNorm / cpuResidualNorm compute it: an f32 sum of 2880 squares
 * and an f32 scale land on the other side of a bf16 rounding boundary for about 1 element in 2,000.
 * A double rounds to the dtype through f32, as the reference's roundTo does.
 */
void rmsRow(const float* z, const float* w, float* y, int64_t cols, double eps, DType dt, bool roundBeforeWeight) {
  double ss = 0.0;
  for (int64_t c = 0; c < cols; c++) ss += (double)z[c] * (double)z[c];
  const double inv = 1.0 / std::sqrt(ss / (double)cols + eps);
  for (int64_t c = 0; c < cols; c++) {
    double n = (double)z[c] * inv;
    if (roundBeforeWeight) n = roundTo(dt, (float)n);
    y[c] = roundTo(dt, (float)(n * (double)w[c]));
  }
}

/** One row of KERNELS.reduce_rows (as cpuReduceRows and the CUDA kReduceRows compute it). */
float reduceRow(const float* x, int64_t cols, bool mean) {
  float acc = mean ? 0.f : x[0];
  for (int64_t c = mean ? 0 : 1; c < cols; c++) {
    if (mean) acc += x[c];
    else if (acc == acc && (x[c] > acc || x[c] != x[c])) acc = x[c];
  }
  return mean ? acc / (float)cols : acc;
}

/**
 * GPT-OSS MoE on one rank, with the runtime reference's rounding points (src/runtime/cpuKernels.ts):
 * h = round(x·W13ᵀ + b13); a = round((up + 1)·gate·σ(1.702·gate)); y_k = round(w_k·(a·W2ᵀ + b2·[rank 0]));
 * out = round(Σ_k y_k).
 */
void moeRank(const Step& st, CpuState& S, int rank) {
  need(st, 6, 1);
  const MoeArgs m = argsOf<MoeArgs>(st);
  int64_t T = m.T, H = m.H, E = m.E, I = m.I, K = std::min<int64_t>(m.K, E);
  const Buf &x = S.in(rank, st.in[0], st), &lg = S.in(rank, st.in[1], st), &w13 = S.in(rank, st.in[2], st),
            &b13 = S.in(rank, st.in[3], st), &w2 = S.in(rank, st.in[4], st), &b2 = S.in(rank, st.in[5], st);
  checkSize(st, x, T * H, "hidden_states"); checkSize(st, lg, T * E, "router_logits");
  checkSize(st, w13, E * 2 * I * H, "w13"); checkSize(st, b13, E * 2 * I, "b13");
  checkSize(st, w2, E * H * I, "w2"); checkSize(st, b2, E * H, "b2");
  Buf& y = S.out(rank, st.out[0]);
  std::vector<int> idx(E);
  std::vector<float> a(I), acc(H), wk(K);
  for (int64_t t = 0; t < T; t++) {
    for (int e = 0; e < E; e++) idx[e] = e;
    const float* l = &lg[t * E];
    // Top-k by logit; ties go to the lower expert index, as a stable sort gives.
    std::stable_sort(idx.begin(), idx.end(), [&](int p, int q) { return l[p] > l[q]; });
    float den = 0.f;
    for (int k = 0; k < K; k++) { wk[k] = std::exp(l[idx[k]] - l[idx[0]]); den += wk[k]; }
    std::fill(acc.begin(), acc.end(), 0.f);
    const float* xr = &x[t * H];
    for (int k = 0; k < K; k++) {
      int e = idx[k];
      for (int64_t j = 0; j < I; j++) {
        const float* gr = &w13[((int64_t)e * 2 * I + 2 * j) * H];  // gate rows are the even ones
        const float* ur = gr + H;
        float g = b13[(int64_t)e * 2 * I + 2 * j], u = b13[(int64_t)e * 2 * I + 2 * j + 1];
        for (int64_t c = 0; c < H; c++) { g += xr[c] * gr[c]; u += xr[c] * ur[c]; }
        g = std::min(S.r(g), 7.f);
        u = std::max(-7.f, std::min(S.r(u), 7.f));
        a[j] = S.r((u + 1.f) * g / (1.f + std::exp(-1.702f * g)));
      }
      float wgt = wk[k] / den;
      for (int64_t c = 0; c < H; c++) {
        const float* wr = &w2[((int64_t)e * H + c) * I];
        float s = rank == 0 ? b2[(int64_t)e * H + c] : 0.f;  // the bias belongs to one rank's partial sum
        for (int64_t j = 0; j < I; j++) s += a[j] * wr[j];
        acc[c] += S.r(wgt * s);
      }
    }
    for (int64_t c = 0; c < H; c++) y[t * H + c] = S.r(acc[c]);
  }
}

void runStepRank(const Step& st, CpuState& S, int rank) {
  const Program& p = S.p;
  switch (st.op) {
    case OpCode::Gather: {
      // out[idx] = x[offset + Σ (idx_d − lo_d)·stride_d], or `value` where idx_d − lo_d leaves the input:
      // strided copies, broadcasts (stride 0) and constant padding are all this one op.
      need(st, 1, 1);
      const GatherArgs g = argsOf<GatherArgs>(st);
      const int64_t off = g.offset, nd = g.nd;
      const IntList &os = g.outShape, &is = g.inShape, &sd = g.stride, &lo = g.lo;
      const Buf& a = S.in(rank, st.in[0], st);
      Buf& o = S.out(rank, st.out[0]);
      float v = S.r((float)g.value);
      std::vector<int64_t> ix(nd, 0);
      for (size_t q = 0; q < o.size(); q++) {
        int64_t src = off;
        bool inside = true;
        for (int64_t d = 0; d < nd; d++) {
          int64_t k = ix[d] - lo[d];
          if (k < 0 || k >= is[d]) { inside = false; break; }
          src += k * sd[d];
        }
        if (inside && (src < 0 || src >= (int64_t)a.size())) throw StepError(st.node, "a view reaches outside its storage");
        o[q] = inside ? a[src] : v;
        for (int64_t d = nd - 1; d >= 0; d--) { if (++ix[d] < os[d]) break; ix[d] = 0; }
      }
      break;
    }
    case OpCode::Mm: {
      need(st, 2, 1);
      const MmArgs mm = argsOf<MmArgs>(st);
      int64_t M = mm.M, K = mm.K, N = mm.N, biasMode = mm.biasMode, transB = mm.transB;
      const Buf& a = S.in(rank, st.in[0], st);
      const Buf& b = S.in(rank, st.in[1], st);
      checkSize(st, a, M * K, "mat1"); checkSize(st, b, K * N, "mat2");
      const Buf* bias = nullptr;
      if (biasMode) {
        if (st.in.size() < 3) throw StepError(st.node, "addmm without its bias operand");
        bias = &S.in(rank, st.in[2], st);
        checkSize(st, *bias, biasMode == 1 ? N : M * N, "bias");
      }
      float alpha = (float)mm.alpha, beta = (float)mm.beta;
      Buf& o = S.out(rank, st.out[0]);
      for (int64_t m = 0; m < M; m++)
        for (int64_t n = 0; n < N; n++) {
          float s = 0.f;
          // transB: mat2 is the transpose of a row-major [N, K] weight (a Linear layer's t(W)).
          if (transB) for (int64_t k = 0; k < K; k++) s += a[m * K + k] * b[n * K + k];
          else for (int64_t k = 0; k < K; k++) s += a[m * K + k] * b[k * N + n];
          float v = alpha * s;
          if (bias) v += beta * (*bias)[biasMode == 1 ? n : m * N + n];
          o[m * N + n] = S.r(v);
        }
      break;
    }
    case OpCode::Add: {
      need(st, 2, 1);
      const Buf& a = S.in(rank, st.in[0], st);
      const Buf& b = S.in(rank, st.in[1], st);
      Buf& o = S.out(rank, st.out[0]);
      checkSize(st, a, (int64_t)o.size(), "self"); checkSize(st, b, (int64_t)o.size(), "other");
      float alpha = (float)argsOf<AddArgs>(st).alpha;
      for (size_t q = 0; q < o.size(); q++) o[q] = S.r(a[q] + alpha * b[q]);
      break;
    }
    case OpCode::Embedding: {
      need(st, 2, 1);
      const EmbeddingArgs e = argsOf<EmbeddingArgs>(st);
      int64_t T = e.T, V = e.V, H = e.H;
      const Buf& w = S.in(rank, st.in[0], st);
      const Buf& ids = S.in(rank, st.in[1], st);
      checkSize(st, w, V * H, "weight"); checkSize(st, ids, T, "indices");
      Buf& o = S.out(rank, st.out[0]);
      for (int64_t t = 0; t < T; t++) {
        int64_t row = (int64_t)ids[t];
        if (row < 0 || row >= V) throw StepError(st.node, "token id " + std::to_string(row) + " at position " + std::to_string(t) + " is outside the vocabulary [0, " + std::to_string(V) + ")");
        std::copy(&w[row * H], &w[row * H] + H, &o[t * H]);
      }
      break;
    }
    case OpCode::Seed: {
      need(st, 0, 1);
      const SeedArgs g = argsOf<SeedArgs>(st, p.world);
      uint32_t seed = (uint32_t)g.seed, stream = (uint32_t)g.stream[rank];
      int64_t range = g.range;
      Buf& o = S.out(rank, st.out[0]);
      for (size_t q = 0; q < o.size(); q++)
        o[q] = range > 0 ? (float)seededIndex(seed, stream, (uint32_t)q, range)
                         : S.r(seededValue(seed, stream, (uint32_t)q, (float)g.scale, (float)g.offset));
      break;
    }
    case OpCode::Map: {
      // Mixed i32 / float operands (token ids, masks, activations): values are exact in f32 here.
      need(st, 1, 1);
      const MapArgs m = argsOf<MapArgs>(st);
      const Buf& a = S.in(rank, st.in[0], st);
      const Buf* b = st.in.size() > 1 && st.in[1] >= 0 ? &S.in(rank, st.in[1], st) : nullptr;
      Buf& o = S.out(rank, st.out[0]);
      checkSize(st, a, (int64_t)o.size(), "self");
      if (b) checkSize(st, *b, (int64_t)o.size(), "other");
      const bool outInt = p.slotIsInt[st.out[0]];
      for (size_t q = 0; q < o.size(); q++) {
        float v = mapValue((int)m.fn, a[q], b ? (*b)[q] : 0.f, (float)m.scalar);
        o[q] = outInt ? std::trunc(v) : S.r(v);
      }
      break;
    }
    case OpCode::Fp8Quant: {
      need(st, 2, 1);
      const bool sat = argsOf<Fp8QuantArgs>(st).satfinite != 0;
      const Buf &x = S.in(rank, st.in[0], st), &scale = S.in(rank, st.in[1], st);
      Buf& o = S.out(rank, st.out[0]);
      checkSize(st, x, (int64_t)o.size(), "input");
      checkSize(st, scale, 1, "scale");
      const float inv = 1.f / scale[0];  // once, correctly rounded, as the kernels take it
      for (size_t q = 0; q < o.size(); q++) o[q] = S.r(fp8QuantValue(x[q] * inv, sat));
      break;
    }
    case OpCode::ReduceRows: {
      // KERNELS.reduce_rows: an f32 sum in index order then one division, or the max (NaN wins).
      need(st, 1, 1);
      const ReduceRowsArgs a = argsOf<ReduceRowsArgs>(st);
      const Buf& x = S.in(rank, st.in[0], st);
      if (a.rows > 0) checkSize(st, x, a.xOffset + (a.rows - 1) * a.xRowStride + a.cols, "input");
      Buf& o = S.out(rank, st.out[0]);
      checkSize(st, o, a.rows, "output");
      for (int64_t q = 0; q < a.rows; q++) o[q] = S.r(reduceRow(&x[a.xOffset + q * a.xRowStride], a.cols, a.mean != 0));
      break;
    }
    case OpCode::Fill: {
      need(st, 0, 1);
      Buf& o = S.out(rank, st.out[0]);
      std::fill(o.begin(), o.end(), S.r((float)argsOf<FillArgs>(st).value));
      break;
    }
    case OpCode::RmsNorm:
    case OpCode::FusedAddRmsNorm: {
      // x may be a strided window (a slice of a padded tensor): rows of `cols` at xOffset + row·xRowStride.
      bool fused = st.op == OpCode::FusedAddRmsNorm;
      need(st, fused ? 3 : 2, fused ? 2 : 1);
      const RmsNormArgs a = fused ? argsOf<FusedAddRmsNormArgs>(st) : argsOf<RmsNormArgs>(st);
      int64_t rows = a.rows, cols = a.cols, xo = a.xOffset, xs = a.xRowStride;
      const Buf& x = S.in(rank, st.in[0], st);
      const Buf& w = S.in(rank, st.in[fused ? 2 : 1], st);
      if (rows > 0) checkSize(st, x, xo + (rows - 1) * xs + cols, "input");
      checkSize(st, w, cols, "weight");
      Buf& y = S.out(rank, st.out[0]);
      std::vector<float> z(cols);
      const Buf* res = fused ? &S.in(rank, st.in[1], st) : nullptr;
      if (res) checkSize(st, *res, rows * cols, "residual");
      Buf* zOut = fused ? &S.out(rank, st.out[1]) : nullptr;
      for (int64_t q = 0; q < rows; q++) {
        for (int64_t c = 0; c < cols; c++) {
          float v = x[xo + q * xs + c];
          if (res) { v = S.r(v + (*res)[q * cols + c]); (*zOut)[q * cols + c] = v; }
          z[c] = v;
        }
        rmsRow(z.data(), w.data(), &y[q * cols], cols, a.eps, p.dtype, true);
      }
      break;
    }
    // Every op is listed (no default), so -Werror=switch fails the build when the op table adds one.
    case OpCode::AllReduce:
    case OpCode::AllReduceNorm:
    case OpCode::ReduceScatter:
    case OpCode::AllGather:
    case OpCode::MmReduceScatter:
    case OpCode::Moe:
      throw StepError(st.node, "step '" + st.opName + "' is not a per-rank op");
  }
}

// Collectives see every rank at once: sums go in rank order so results are bitwise stable.
void runCollective(const Step& st, CpuState& S) {
  const Program& p = S.p;
  if (st.op == OpCode::AllReduce) {
    need(st, 1, 1);
    int64_t n = p.slotNumel[st.out[0]];
    std::vector<double> sum(n, 0.0);
    for (int r = 0; r < p.world; r++) {
      const Buf& a = S.in(r, st.in[0], st);
      checkSize(st, a, n, "input");
      for (int64_t q = 0; q < n; q++) sum[q] += a[q];
    }
    for (int r = 0; r < p.world; r++) {
      Buf& o = S.out(r, st.out[0]);
      for (int64_t q = 0; q < n; q++) o[q] = S.r((float)sum[q]);
    }
    return;
  }
  if (st.op == OpCode::MmReduceScatter) {
    // The matmul on every rank (into out[0], as the plan's gemm), then its reduce-scatter into out[1].
    // mm_reduce_scatter takes mm's arguments (WORKER_OPS), so the step runs as an mm as it is.
    need(st, 2, 2);
    Step mm = st;
    mm.op = OpCode::Mm;
    mm.out = {st.out[0]};
    for (int r = 0; r < p.world; r++) runStepRank(mm, S, r);
    Step rs = st;
    rs.op = OpCode::ReduceScatter;
    rs.in = {st.out[0]};
    rs.out = {st.out[1]};
    rs.i.clear();
    rs.f.clear();
    runCollective(rs, S);
    return;
  }
  if (st.op == OpCode::ReduceScatter || st.op == OpCode::AllGather) {
    // Sequence parallelism's pair along tokens: rank r's share is the r-th block of rows.
    need(st, 1, 1);
    int64_t n = p.slotNumel[st.out[0]];
    bool rs = st.op == OpCode::ReduceScatter;
    int64_t share = rs ? n : n / p.world;
    for (int r = 0; r < p.world; r++) checkSize(st, S.in(r, st.in[0], st), rs ? n * p.world : share, "input");
    for (int r = 0; r < p.world; r++) {
      Buf& o = S.out(r, st.out[0]);
      if (rs) {
        std::vector<double> sum(n, 0.0);
        for (int q = 0; q < p.world; q++) {
          const Buf& a = S.in(q, st.in[0], st);
          for (int64_t i = 0; i < n; i++) sum[i] += a[r * n + i];
        }
        for (int64_t i = 0; i < n; i++) o[i] = S.r((float)sum[i]);
      } else {
        for (int q = 0; q < p.world; q++) {
          const Buf& a = S.in(q, st.in[0], st);
          for (int64_t i = 0; i < share; i++) o[q * share + i] = a[i];
        }
      }
    }
    return;
  }
  // AllReduceNorm (pattern 1): ar = Σ x_r; res_out = ar + residual; norm = res_out·rsqrt(·)·γ, one rounding.
  need(st, 3, 2);
  const AllReduceNormArgs an = argsOf<AllReduceNormArgs>(st);
  int64_t rows = an.rows, cols = an.cols, n = rows * cols;
  std::vector<double> sum(n, 0.0);
  for (int r = 0; r < p.world; r++) {
    const Buf& a = S.in(r, st.in[0], st);
    checkSize(st, a, n, "allreduce_in");
    for (int64_t q = 0; q < n; q++) sum[q] += a[q];
  }
  Buf ar(n);
  for (int64_t q = 0; q < n; q++) ar[q] = S.r((float)sum[q]);
  for (int r = 0; r < p.world; r++) {
    const Buf& res = S.in(r, st.in[1], st);
    const Buf& w = S.in(r, st.in[2], st);
    checkSize(st, res, n, "residual"); checkSize(st, w, cols, "rms_gamma");
    Buf& y = S.out(r, st.out[0]);
    Buf& z = S.out(r, st.out[1]);
    for (int64_t q = 0; q < n; q++) z[q] = S.r(ar[q] + res[q]);
    for (int64_t q = 0; q < rows; q++) rmsRow(&z[q * cols], w.data(), &y[q * cols], cols, an.eps, p.dtype, false);
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
    if (p.slotIsInt[b.slot]) {
      for (int64_t q = 0; q < n; q++) { int32_t v; std::memcpy(&v, src + 4 * q, 4); dst[q] = (float)v; }
    } else if (p.dtype == DType::BF16) {
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
    if (std::getenv("FUSIONLAB_WORKER_DEBUG")) {
      if (p.stepDelayMs) std::this_thread::sleep_for(std::chrono::milliseconds(p.stepDelayMs));
      if (!p.abortAt.empty() && st.node == p.abortAt) std::abort();
    }
    if (st.op == OpCode::AllReduce || st.op == OpCode::AllReduceNorm || st.op == OpCode::ReduceScatter || st.op == OpCode::AllGather || st.op == OpCode::MmReduceScatter) {
      double s = us();
      runCollective(st, S);
      double d = us() - s;
      for (int r = 0; r < p.world; r++) out.trace.push_back({r, (int)k, s, d, st.op == OpCode::AllReduceNorm ? "one-shot (cpu)" : ""});
      continue;
    }
    for (int r = 0; r < p.world; r++) {
      double s = us();
      if (st.op == OpCode::Moe) moeRank(st, S, r);
      else runStepRank(st, S, r);
      out.trace.push_back({r, (int)k, s, us() - s, ""});
    }
  }
  for (int s : p.outputs) {
    std::vector<std::vector<uint8_t>> perRank;
    for (int r = 0; r < p.world; r++) {
      const Buf& b = S.slots[r][s];
      if (b.size() != (size_t)p.slotNumel[s]) throw StepError("output", "output slot " + std::to_string(s) + " was never produced");
      std::vector<uint8_t> bytes(p.slotBytes(s));
      if (p.slotIsInt[s]) for (size_t q = 0; q < b.size(); q++) { int32_t v = (int32_t)b[q]; std::memcpy(&bytes[4 * q], &v, 4); }
      else if (p.dtype == DType::BF16) for (size_t q = 0; q < b.size(); q++) { uint16_t h = f32ToBf16(b[q]); std::memcpy(&bytes[2 * q], &h, 2); }
      else std::memcpy(bytes.data(), b.data(), bytes.size());
      perRank.push_back(std::move(bytes));
    }
    out.outputs.push_back(std::move(perRank));
  }
  return out;
}

}  // namespace fl
