// CUDA kernels of the worker: elementwise ops, RMSNorm variants, GPT-OSS MoE (plain, for
// correctness). The fused all-reduce + RMSNorm kernels are in allreduce_fusion.cuh.
// Every kernel accumulates in f32 and rounds to the storage type once, on store.
#pragma once
#include <cuda_bf16.h>
#include <cuda_runtime.h>
#include <cstdint>

#include "op_table.gen.hpp"
#include "fp8.hpp"

namespace fl {

constexpr int kMaxRanks = 8;
constexpr int kMaxBarrierBlocks = 1024;
// Flag words per rank: two barrier phases × blocks × ranks.
constexpr size_t kFlagWords = 2ull * kMaxBarrierBlocks * kMaxRanks;

template <typename T> __device__ __forceinline__ float ld(const T* p, int64_t i);
template <> __device__ __forceinline__ float ld<float>(const float* p, int64_t i) { return p[i]; }
template <> __device__ __forceinline__ float ld<__nv_bfloat16>(const __nv_bfloat16* p, int64_t i) { return __bfloat162float(p[i]); }
template <> __device__ __forceinline__ float ld<int32_t>(const int32_t* p, int64_t i) { return (float)p[i]; }
template <typename T> __device__ __forceinline__ T cvt(float v);
template <> __device__ __forceinline__ int32_t cvt<int32_t>(float v) { return (int32_t)truncf(v); }
template <> __device__ __forceinline__ float cvt<float>(float v) { return v; }
template <> __device__ __forceinline__ __nv_bfloat16 cvt<__nv_bfloat16>(float v) { return __float2bfloat16_rn(v); }
template <typename T> __device__ __forceinline__ float rnd(float v);
template <> __device__ __forceinline__ float rnd<float>(float v) { return v; }
template <> __device__ __forceinline__ float rnd<__nv_bfloat16>(float v) { return __bfloat162float(__float2bfloat16_rn(v)); }

// ---- vectors of V elements: 16-byte loads and stores (8 bf16 or 4 f32) ---------------------
template <typename T, int V> struct Vec;
template <> struct Vec<__nv_bfloat16, 8> {
  static __device__ __forceinline__ void load(const __nv_bfloat16* p, int64_t i, float (&o)[8]) {
    uint4 u = *reinterpret_cast<const uint4*>(p + i);
    const uint32_t w[4] = {u.x, u.y, u.z, u.w};
#pragma unroll
    for (int k = 0; k < 4; k++) { o[2 * k] = __uint_as_float(w[k] << 16); o[2 * k + 1] = __uint_as_float(w[k] & 0xffff0000u); }
  }
  static __device__ __forceinline__ void store(__nv_bfloat16* p, int64_t i, const float (&v)[8]) {
    uint32_t w[4];
#pragma unroll
    for (int k = 0; k < 4; k++) {
      uint32_t lo = __bfloat16_as_ushort(__float2bfloat16_rn(v[2 * k]));
      uint32_t hi = __bfloat16_as_ushort(__float2bfloat16_rn(v[2 * k + 1]));
      w[k] = lo | (hi << 16);
    }
    *reinterpret_cast<uint4*>(p + i) = make_uint4(w[0], w[1], w[2], w[3]);
  }
};
template <> struct Vec<float, 4> {
  static __device__ __forceinline__ void load(const float* p, int64_t i, float (&o)[4]) {
    float4 f = *reinterpret_cast<const float4*>(p + i);
    o[0] = f.x; o[1] = f.y; o[2] = f.z; o[3] = f.w;
  }
  static __device__ __forceinline__ void store(float* p, int64_t i, const float (&v)[4]) {
    *reinterpret_cast<float4*>(p + i) = make_float4(v[0], v[1], v[2], v[3]);
  }
};
template <typename T> struct Vec<T, 1> {
  static __device__ __forceinline__ void load(const T* p, int64_t i, float (&o)[1]) { o[0] = ld<T>(p, i); }
  static __device__ __forceinline__ void store(T* p, int64_t i, const float (&v)[1]) { p[i] = cvt<T>(v[0]); }
};

__device__ __forceinline__ float blockSum(float v, float* shared32) {
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
  __syncthreads();  // shared32 may still be read from the previous row
  if (lane == 0) shared32[warp] = v;
  __syncthreads();
  int nw = (blockDim.x + 31) >> 5;
  float t = lane < nw ? shared32[lane] : 0.f;
  for (int o = 16; o > 0; o >>= 1) t += __shfl_xor_sync(0xffffffffu, t, o);
  return t;
}

// ---- elementwise -----------------------------------------------------------------------------
template <typename T> __global__ void kCopy(const T* a, T* o, int64_t n) {
  for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n; i += (int64_t)gridDim.x * blockDim.x) o[i] = a[i];
}
template <typename T> __global__ void kFill(T* o, int64_t n, float v) {
  for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n; i += (int64_t)gridDim.x * blockDim.x) o[i] = cvt<T>(v);
}
template <typename T> __global__ void kAdd(const T* a, const T* b, T* o, int64_t n, float alpha) {
  for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n; i += (int64_t)gridDim.x * blockDim.x)
    o[i] = cvt<T>(ld<T>(a, i) + alpha * ld<T>(b, i));
}
constexpr int kMaxGatherDims = 8;
/** A gather step's arguments (GatherArgs, op_table.gen.hpp) in fixed arrays, passed to the kernel by value. */
struct GatherKernelArgs { int64_t offset; int nd; int64_t outShape[kMaxGatherDims], inShape[kMaxGatherDims], stride[kMaxGatherDims], lo[kMaxGatherDims]; float value; };
/** Strided copy, broadcast (stride 0) and constant padding (lo, and out-of-input positions get `value`). */
template <typename T> __global__ void kGather(const T* a, T* o, int64_t n, GatherKernelArgs g) {
  for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n; i += (int64_t)gridDim.x * blockDim.x) {
    int64_t rem = i, src = g.offset;
    bool inside = true;
    for (int d = g.nd - 1; d >= 0; d--) {
      int64_t k = rem % g.outShape[d] - g.lo[d];
      rem /= g.outShape[d];
      if (k < 0 || k >= g.inShape[d]) inside = false;
      src += k * g.stride[d];
    }
    o[i] = inside ? a[src] : cvt<T>(g.value);
  }
}
/** The vocabulary-mask map over operands that are each i32 or the run's float type. */
template <typename T> __device__ __forceinline__ float ldAny(const void* p, bool isInt, int64_t i) {
  return isInt ? (float)static_cast<const int32_t*>(p)[i] : ld<T>(static_cast<const T*>(p), i);
}
template <typename T>
__global__ void kMap(const void* a, bool aInt, const void* b, bool bInt, void* o, bool oInt, int64_t n, int fn, float s) {
  for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n; i += (int64_t)gridDim.x * blockDim.x) {
    float x = ldAny<T>(a, aInt, i), y = b ? ldAny<T>(b, bInt, i) : 0.f, v = mapValue(fn, x, y, s);
    if (oInt) static_cast<int32_t*>(o)[i] = (int32_t)truncf(v);
    else static_cast<T*>(o)[i] = cvt<T>(v);
  }
}

/** KERNELS.fp8_quant: x · (1 / scale[0]), the reciprocal correctly rounded once, then fp8QuantValue. */
template <typename T> __global__ void kFp8Quant(const T* x, const T* scale, T* o, int64_t n, bool satfinite) {
  const float inv = __fdiv_rn(1.f, ld<T>(scale, 0));
  for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n; i += (int64_t)gridDim.x * blockDim.x)
    o[i] = cvt<T>(fp8QuantValue(__fmul_rn(ld<T>(x, i), inv), satfinite));
}
/** KERNELS.reduce_rows, one thread per row: an f32 sum in index order then one division, or the max (NaN wins). */
template <typename T>
__global__ void kReduceRows(const T* x, T* o, int64_t rows, int64_t cols, int64_t xOffset, int64_t xRowStride, bool mean) {
  for (int64_t r = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; r < rows; r += (int64_t)gridDim.x * blockDim.x) {
    const T* row = x + xOffset + r * xRowStride;
    float acc = mean ? 0.f : ld<T>(row, 0);
    for (int64_t c = mean ? 0 : 1; c < cols; c++) {
      float v = ld<T>(row, c);
      if (mean) acc = __fadd_rn(acc, v);
      else if (acc == acc && (v > acc || v != v)) acc = v;
    }
    o[r] = cvt<T>(mean ? __fdiv_rn(acc, (float)cols) : acc);
  }
}

__device__ __forceinline__ uint32_t dLowbias32(uint32_t x) {
  x ^= x >> 16; x *= 0x7feb352du; x ^= x >> 15; x *= 0x846ca68bu; x ^= x >> 16;
  return x;
}
/** The runtime's seeded values (src/runtime/weights.ts): one f32 multiply, one f32 add, no FMA. */
template <typename T> __global__ void kSeed(T* o, int64_t n, uint32_t seed, uint32_t stream, float scale, float offset) {
  uint32_t base = dLowbias32(dLowbias32(seed) ^ stream);
  for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n; i += (int64_t)gridDim.x * blockDim.x) {
    float u = (float)(dLowbias32(base ^ (uint32_t)i) >> 8) * 5.9604644775390625e-8f * 2.0f - 1.0f;
    o[i] = cvt<T>(__fadd_rn(__fmul_rn(u, scale), offset));
  }
}
static __global__ void kSeedIndex(int32_t* o, int64_t n, uint32_t seed, uint32_t stream, int64_t range) {
  uint32_t base = dLowbias32(dLowbias32(seed) ^ stream);
  for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n; i += (int64_t)gridDim.x * blockDim.x) {
    double u = (double)(dLowbias32(base ^ (uint32_t)i) >> 8) * 5.9604644775390625e-8 * 2.0 - 1.0;
    int64_t v = (int64_t)floor((u + 1.0) * 0.5 * (double)range);
    o[i] = (int32_t)(v < range - 1 ? v : range - 1);
  }
}
/** Rows of the table by token id; an id outside [0, V) records its position in *bad (first wins). */
template <typename T> __global__ void kEmbedding(const T* w, const int32_t* ids, T* o, int64_t Tn, int64_t V, int64_t H, unsigned long long* bad) {
  int64_t n = Tn * H;
  for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n; i += (int64_t)gridDim.x * blockDim.x) {
    int64_t t = i / H, c = i % H;
    int64_t row = ids[t];
    if (row < 0 || row >= V) {
      if (c == 0) atomicCAS(bad, 0ull, (unsigned long long)t + 1);
      o[i] = cvt<T>(0.f);
    } else o[i] = w[row * H + c];
  }
}

/** out = alpha·acc + beta·bias, rounded once (the GEMM accumulates into f32 scratch). */
template <typename T> __global__ void kBiasEpilogue(const float* acc, const T* bias, T* o, int64_t M, int64_t N, int biasMode, float alpha, float beta) {
  int64_t n = M * N;
  for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n; i += (int64_t)gridDim.x * blockDim.x) {
    float v = alpha * acc[i];
    if (biasMode == 1) v += beta * ld<T>(bias, i % N);
    else if (biasMode == 2) v += beta * ld<T>(bias, i);
    o[i] = cvt<T>(v);
  }
}
/** Plain GEMM for builds without cuBLAS: row-major C = A·B (B given as [N, K] when transB) in f32. */
template <typename T> __global__ void kGemmNaive(const T* A, const T* B, float* C, int64_t M, int64_t K, int64_t N, bool transB) {
  int64_t n = M * N;
  for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n; i += (int64_t)gridDim.x * blockDim.x) {
    int64_t m = i / N, c = i % N;
    float s = 0.f;
    for (int64_t k = 0; k < K; k++) s += ld<T>(A, m * K + k) * ld<T>(B, transB ? c * K + k : k * N + c);
    C[i] = s;
  }
}
/** Rank-ordered sum of W peer buffers (all-reduce for builds without NCCL). */
struct PeerSumArgs { const void* in[kMaxRanks]; };
template <typename T> __global__ void kPeerSum(PeerSumArgs a, int world, T* o, int64_t n) {
  for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n; i += (int64_t)gridDim.x * blockDim.x) {
    float s = 0.f;
    for (int r = 0; r < world; r++) s += ld<T>(static_cast<const T*>(a.in[r]), i);
    o[i] = cvt<T>(s);
  }
}

// ---- RMSNorm family: one row per block iteration, each thread holds up to MAXV vectors ------
constexpr int kMaxVecPerThread = 4;

/**
 * Threads per block for rows of `nvec` vectors, `perThread` vectors each (rounded up to warps).
 * Two per thread for the add+norm kernels (more loads in flight per thread, more blocks per SM);
 * one for the one-shot kernel, whose grid is capped at one block per SM.
 */
inline int normThreads(int64_t nvec, int perThread) {
  int64_t t = (nvec + perThread - 1) / perThread;
  t = (t + 31) / 32 * 32;
  return (int)(t < 32 ? 32 : t > 1024 ? 1024 : t);
}

/** One row's operands in registers, as stored (bf16 stays 16-bit: half the registers of f32). */
template <typename T, int V, int VPT> struct alignas(16) RowRegs { T x[VPT][V], r[VPT][V]; };

template <typename T, int V>
__device__ __forceinline__ void copyVec(T (&dst)[V], const T* src) {
  if constexpr (V * sizeof(T) == 16) *reinterpret_cast<uint4*>(dst) = *reinterpret_cast<const uint4*>(src);
  else for (int e = 0; e < V; e++) dst[e] = src[e];
}

template <typename T, int V, int VPT>
__device__ __forceinline__ void loadRow(RowRegs<T, V, VPT>& q, const T* x, int64_t xStride, const T* res, int64_t row, int nvec, int cols) {
#pragma unroll
  for (int k = 0; k < VPT; k++) {
    int v = threadIdx.x + k * blockDim.x;
    if (v < nvec) {
      copyVec<T, V>(q.x[k], x + row * xStride + (int64_t)v * V);
      if (res) copyVec<T, V>(q.r[k], res + row * (int64_t)cols + (int64_t)v * V);
    }
  }
}

/**
 * rms_norm (res null) and fused_add_rms_norm (res set, new residual into zOut), software
 * pipelined: the next row's loads are issued before this row's reduction and stores, so memory
 * stays busy through the block-wide sum. Works in place (y == x, zOut == res): a row is only
 * stored after it was loaded, and the prefetched row is a different one.
 */
template <typename T, int V, int VPT>
__global__ void kAddRmsNorm(const T* x, int64_t xStride, const T* res, const T* gamma, T* y, T* zOut, int64_t rows, int cols, float eps, bool twoRoundings) {
  __shared__ float shared32[32];
  const int nvec = cols / V;
  RowRegs<T, V, VPT> cur, nxt;
  int64_t row = blockIdx.x;
  if (row < rows) loadRow<T, V, VPT>(cur, x, xStride, res, row, nvec, cols);
  for (; row < rows; row += gridDim.x) {
    const int64_t next = row + gridDim.x;
    if (next < rows) loadRow<T, V, VPT>(nxt, x, xStride, res, next, nvec, cols);
    float ss = 0.f;
    float z[VPT][V];
#pragma unroll
    for (int k = 0; k < VPT; k++) {
      int v = threadIdx.x + k * blockDim.x;
      if (v >= nvec) break;
#pragma unroll
      for (int e = 0; e < V; e++) {
        z[k][e] = ld<T>(cur.x[k], e);
        if (res) z[k][e] = rnd<T>(z[k][e] + ld<T>(cur.r[k], e));
        ss += z[k][e] * z[k][e];
      }
      if (res && zOut) Vec<T, V>::store(zOut, row * (int64_t)cols + (int64_t)v * V, z[k]);
    }
    const float inv = rsqrtf(blockSum(ss, shared32) / (float)cols + eps);
#pragma unroll
    for (int k = 0; k < VPT; k++) {
      int v = threadIdx.x + k * blockDim.x;
      if (v >= nvec) break;
      float g[V], o[V];
      Vec<T, V>::load(gamma, (int64_t)v * V, g);
#pragma unroll
      for (int e = 0; e < V; e++) o[e] = twoRoundings ? rnd<T>(z[k][e] * inv) * g[e] : z[k][e] * inv * g[e];
      Vec<T, V>::store(y, row * (int64_t)cols + (int64_t)v * V, o);
    }
    cur = nxt;
  }
}

// ---- GPT-OSS MoE: routing, expert MLP, weighted combine (plain kernels; correctness first) --
template <typename T> __global__ void kMoeRoute(const T* logits, int64_t T_, int E, int K, int* idx, float* w) {
  int64_t t = blockIdx.x * (int64_t)blockDim.x + threadIdx.x;
  if (t >= T_) return;
  int best[8];
  float bv[8];
  for (int k = 0; k < K; k++) { best[k] = -1; bv[k] = -INFINITY; }
  for (int e = 0; e < E; e++) {
    float v = ld<T>(logits, t * E + e);
    // Strictly greater moves an expert up, so ties keep the lower index (a stable sort's order).
    int pos = K;
    while (pos > 0 && (best[pos - 1] < 0 || v > bv[pos - 1])) pos--;
    if (pos >= K) continue;
    for (int q = K - 1; q > pos; q--) { best[q] = best[q - 1]; bv[q] = bv[q - 1]; }
    best[pos] = e; bv[pos] = v;
  }
  float den = 0.f, ex[8];
  for (int k = 0; k < K; k++) { ex[k] = expf(bv[k] - bv[0]); den += ex[k]; }
  for (int k = 0; k < K; k++) { idx[t * K + k] = best[k]; w[t * K + k] = ex[k] / den; }
}
template <typename T>
__global__ void kMoeExpertUp(const T* x, const T* w13, const T* b13, const int* idx, float* act, int64_t H, int64_t I, int K) {
  int64_t tk = blockIdx.x;  // token·K + k
  int64_t j = blockIdx.y * (int64_t)blockDim.x + threadIdx.x;
  if (j >= I) return;
  int e = idx[tk];
  int64_t t = tk / K;
  const T* gr = w13 + ((int64_t)e * 2 * I + 2 * j) * H;  // gate rows are the even ones
  const T* ur = gr + H;
  float g = 0.f, u = 0.f;
  for (int64_t c = 0; c < H; c++) { float xv = ld<T>(x, t * H + c); g += xv * ld<T>(gr, c); u += xv * ld<T>(ur, c); }
  g += ld<T>(b13, (int64_t)e * 2 * I + 2 * j);
  u += ld<T>(b13, (int64_t)e * 2 * I + 2 * j + 1);
  // Rounding points as the runtime's reference: h and a are stored in the run's dtype.
  g = fminf(rnd<T>(g), 7.f);
  u = fmaxf(-7.f, fminf(rnd<T>(u), 7.f));
  act[tk * I + j] = rnd<T>((u + 1.f) * g / (1.f + expf(-1.702f * g)));
}
template <typename T>
__global__ void kMoeExpertDown(const float* act, const T* w2, const T* b2, const int* idx, const float* wk, T* y, int64_t H, int64_t I, int K, bool addBias) {
  int64_t t = blockIdx.x;
  int64_t c = blockIdx.y * (int64_t)blockDim.x + threadIdx.x;
  if (c >= H) return;
  float acc = 0.f;
  for (int k = 0; k < K; k++) {
    int e = idx[t * K + k];
    const T* wr = w2 + ((int64_t)e * H + c) * I;
    const float* ar = act + (t * K + k) * I;
    float s = addBias ? ld<T>(b2, (int64_t)e * H + c) : 0.f;
    for (int64_t j = 0; j < I; j++) s += ar[j] * ld<T>(wr, j);
    acc += rnd<T>(wk[t * K + k] * s);
  }
  y[t * H + c] = cvt<T>(acc);
}

}  // namespace fl
