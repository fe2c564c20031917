// Fused all-reduce + residual + RMSNorm over peer memory, built as TensorRT-LLM's and
// FlashInfer's allreduce-fusion kernels are:
//   one-shot (Lamport): every rank pushes its rows into every rank's receive buffer; the data
//     carries its own ready marker (-0.0 is the "not yet written" sentinel, inputs' -0.0 are sent
//     as +0.0), so readers spin on the values themselves and no barrier round trip is needed.
//     The buffer is triple-buffered: the launch using region f clears region f-1 (which no peer
//     can write until launch f+2), so there is never a wait for a peer to finish reading.
//   two-shot: reduce-scatter by rows (each rank reduces and normalizes the rows it owns), then an
//     all-gather of the reduced rows, which each rank normalizes itself; two cross-GPU barriers
//     per block, no clearing, so its cost grows with 2(N−1)/N of the bytes instead of (N−1).
// Every piece of state (the Lamport region index, the barrier epochs) lives in device memory and
// is advanced by the kernels, so launches can be captured in a CUDA graph and replayed.
#pragma once
#include "cuda_kernels.cuh"

namespace fl {

/** Per-rank control words, in that rank's device memory. */
struct FusionCtl {
  unsigned lamportRegion;     // launches of the one-shot so far; region = count % 3
  unsigned lamportStarted;    // blocks of the running one-shot that have read lamportRegion
  unsigned long long clearElems;  // elements the previous one-shot wrote into its region
  unsigned blockEpoch[kMaxBarrierBlocks];  // two-shot launches each block took part in
};

/** The -0.0 bit pattern of T, the "not yet arrived" marker. */
template <typename T> struct NegZero;
template <> struct NegZero<__nv_bfloat16> { using Word = uint16_t; static constexpr uint16_t bits = 0x8000u; };
template <> struct NegZero<float> { using Word = uint32_t; static constexpr uint32_t bits = 0x80000000u; };

template <typename T, int V> struct alignas(V * sizeof(T) >= 16 ? 16 : sizeof(T)) Lanes {
  typename NegZero<T>::Word w[V];
};

template <typename T, int V>
__device__ __forceinline__ Lanes<T, V> loadLanes(const T* p) { return *reinterpret_cast<const Lanes<T, V>*>(p); }
template <typename T, int V>
__device__ __forceinline__ void storeLanes(T* p, const Lanes<T, V>& v) { *reinterpret_cast<Lanes<T, V>*>(p) = v; }
/** A load that goes to memory every time (peers write the buffer behind this SM's L1). */
template <typename T, int V>
__device__ __forceinline__ Lanes<T, V> loadLanesVolatile(const T* p) {
  Lanes<T, V> v;
  if constexpr (sizeof(Lanes<T, V>) == 16) {
    uint32_t a, b, c, d;
    asm volatile("ld.volatile.global.v4.u32 {%0,%1,%2,%3}, [%4];" : "=r"(a), "=r"(b), "=r"(c), "=r"(d) : "l"(p) : "memory");
    uint32_t u[4] = {a, b, c, d};
    memcpy(&v, u, 16);
  } else {
    const volatile typename NegZero<T>::Word* q = reinterpret_cast<const volatile typename NegZero<T>::Word*>(p);
#pragma unroll
    for (int e = 0; e < V; e++) v.w[e] = q[e];
  }
  return v;
}
template <typename T> __device__ __forceinline__ float laneF(typename NegZero<T>::Word w);
template <> __device__ __forceinline__ float laneF<__nv_bfloat16>(uint16_t w) { return __uint_as_float((uint32_t)w << 16); }
template <> __device__ __forceinline__ float laneF<float>(uint32_t w) { return __uint_as_float(w); }

/** Each rank's Lamport receive buffer: 3 regions of `regionElems` (world slots of a launch's rows). */
struct OneShotLamportArgs {
  void* recv[kMaxRanks];  // every rank's receive buffer (peer pointers)
  FusionCtl* ctl;         // this rank's
  unsigned long long regionElems;
  int world, rank;
};

/** Two-shot scratch per rank: 2 parities × (world slots of pushed rows + the gathered sums). */
struct TwoShotArgs {
  void* scratch[kMaxRanks];  // every rank's (peer pointers)
  unsigned* flags[kMaxRanks];  // every rank's barrier flags
  FusionCtl* ctl;
  unsigned long long parityElems;  // (world + 1) · rows · cols of the largest launch
  int world, rank;
};

/**
 * One row of the fused op from its all-reduced sum held in `sum` (f32, per thread's vectors):
 * ar = round(sum); z = round(ar + residual); y = z·rsqrt(mean(z²)+eps)·γ rounded once — the
 * rounding points of the CPU reference (cpu_exec.cpp, AllReduceNorm).
 */
template <typename T, int V, int VPT>
__device__ __forceinline__ void normFromSum(float (&sum)[VPT][V], int64_t row, int cols, const T* res, const T* gamma, T* y, T* zOut, T* arOut,
                                            float eps, float* shared32, T* arPush[kMaxRanks] = nullptr, int nPush = 0) {
  const int nvec = cols / V;
  const int64_t base = row * (int64_t)cols;
  float ss = 0.f;
#pragma unroll
  for (int k = 0; k < VPT; k++) {
    int v = threadIdx.x + k * blockDim.x;
    if (v >= nvec) break;
    float rv[V];
    Vec<T, V>::load(res, base + (int64_t)v * V, rv);
#pragma unroll
    for (int e = 0; e < V; e++) sum[k][e] = rnd<T>(sum[k][e]);
    if (arOut) Vec<T, V>::store(arOut, base + (int64_t)v * V, sum[k]);
    for (int q = 0; q < nPush; q++) Vec<T, V>::store(arPush[q], base + (int64_t)v * V, sum[k]);
#pragma unroll
    for (int e = 0; e < V; e++) {
      sum[k][e] = rnd<T>(sum[k][e] + rv[e]);
      ss += sum[k][e] * sum[k][e];
    }
    if (zOut) Vec<T, V>::store(zOut, base + (int64_t)v * V, sum[k]);
  }
  const float inv = rsqrtf(blockSum(ss, shared32) / (float)cols + eps);
#pragma unroll
  for (int k = 0; k < VPT; k++) {
    int v = threadIdx.x + k * blockDim.x;
    if (v >= nvec) break;
    float g[V], o[V];
    Vec<T, V>::load(gamma, (int64_t)v * V, g);
#pragma unroll
    for (int e = 0; e < V; e++) o[e] = sum[k][e] * inv * g[e];
    Vec<T, V>::store(y, base + (int64_t)v * V, o);
  }
}

/** MW: the world size rounded up to 2, 4 or 8, so per-rank loops unroll and every rank's load is in flight at once. */
template <typename T, int V, int VPT, int MW>
__global__ void kOneShotLamport(OneShotLamportArgs a, const T* in, const T* res, const T* gamma, T* y, T* zOut, T* arOut, int64_t rows, int cols, float eps) {
  __shared__ float shared32[32];
  const unsigned count = *reinterpret_cast<volatile unsigned*>(&a.ctl->lamportRegion);
  const unsigned long long clearElems = *reinterpret_cast<volatile unsigned long long*>(&a.ctl->clearElems);
  __syncthreads();
  if (threadIdx.x == 0) { __threadfence(); atomicAdd(&a.ctl->lamportStarted, 1u); }
  const int64_t n = rows * (int64_t)cols;
  const int nvec = cols / V;
  const unsigned long long cur = (count % 3) * a.regionElems, prev = ((count + 2) % 3) * a.regionElems;
  T* recv[MW];
#pragma unroll
  for (int r = 0; r < MW; r++) recv[r] = r < a.world ? static_cast<T*>(a.recv[r]) + cur + (int64_t)a.rank * n : nullptr;

  // Push this block's rows to every rank, -0.0 sent as +0.0 (same sum: -0 + x == x for x ≠ -0).
  for (int64_t row = blockIdx.x; row < rows; row += gridDim.x)
    for (int v = threadIdx.x; v < nvec; v += blockDim.x) {
      const int64_t off = row * cols + (int64_t)v * V;
      Lanes<T, V> l = loadLanes<T, V>(in + off);
#pragma unroll
      for (int e = 0; e < V; e++) if (l.w[e] == NegZero<T>::bits) l.w[e] = 0;
#pragma unroll
      for (int r = 0; r < MW; r++) if (r < a.world) storeLanes<T, V>(recv[r] + off, l);
    }
  // Clear what the previous launch wrote into this rank's buffer, for the launch after next.
  {
    Lanes<T, V> s;
#pragma unroll
    for (int e = 0; e < V; e++) s.w[e] = NegZero<T>::bits;
    T* old = static_cast<T*>(a.recv[a.rank]) + prev;
    const unsigned long long tid = blockIdx.x * (unsigned long long)blockDim.x + threadIdx.x, step = (unsigned long long)gridDim.x * blockDim.x;
    const unsigned long long whole = clearElems / V;
    for (unsigned long long v = tid; v < whole; v += step) storeLanes<T, V>(old + v * V, s);
    // The previous launch may have had a row width this launch's V does not divide: clear its tail too,
    // or a stale value there reads as "arrived" two launches on.
    using W = typename NegZero<T>::Word;
    for (unsigned long long i = whole * V + tid; i < clearElems; i += step) reinterpret_cast<W*>(old)[i] = NegZero<T>::bits;
  }
  // Reduce this block's rows from the own buffer's world slots, spinning until each vector arrived.
  const T* mine = static_cast<const T*>(a.recv[a.rank]) + cur;
  for (int64_t row = blockIdx.x; row < rows; row += gridDim.x) {
    float sum[VPT][V];
#pragma unroll
    for (int k = 0; k < VPT; k++) {
      int v = threadIdx.x + k * blockDim.x;
      if (v >= nvec) break;
#pragma unroll
      for (int e = 0; e < V; e++) sum[k][e] = 0.f;
      const T* p = mine + row * cols + (int64_t)v * V;
      Lanes<T, V> l[MW];
#pragma unroll
      for (int r = 0; r < MW; r++) if (r < a.world) l[r] = loadLanesVolatile<T, V>(p + (int64_t)r * n);
      for (bool ready = false; !ready;) {
        ready = true;
#pragma unroll
        for (int r = 0; r < MW; r++) {
          if (r >= a.world) continue;
          bool arrived = true;
#pragma unroll
          for (int e = 0; e < V; e++) arrived &= l[r].w[e] != NegZero<T>::bits;
          if (!arrived) { ready = false; l[r] = loadLanesVolatile<T, V>(p + (int64_t)r * n); }
        }
      }
#pragma unroll
      for (int r = 0; r < MW; r++)
        if (r < a.world)
#pragma unroll
          for (int e = 0; e < V; e++) sum[k][e] += laneF<T>(l[r].w[e]);
    }
    normFromSum<T, V, VPT>(sum, row, cols, res, gamma, y, zOut, arOut, eps, shared32);
  }
  // Block 0 advances the region once every block has read the current one.
  if (blockIdx.x == 0 && threadIdx.x == 0) {
    while (*reinterpret_cast<volatile unsigned*>(&a.ctl->lamportStarted) < gridDim.x) {
    }
    a.ctl->lamportStarted = 0;
    a.ctl->clearElems = (unsigned long long)a.world * n;
    __threadfence();
    a.ctl->lamportRegion = count + 1;
  }
}

__device__ __forceinline__ void flagRelease(unsigned* p, unsigned v) { asm volatile("st.release.sys.global.u32 [%0], %1;" ::"l"(p), "r"(v) : "memory"); }
__device__ __forceinline__ unsigned flagAcquire(const unsigned* p) {
  unsigned v;
  asm volatile("ld.acquire.sys.global.u32 %0, [%1];" : "=r"(v) : "l"(p) : "memory");
  return v;
}

/** Block b of every rank meets block b of every other rank, at this block's epoch. */
__device__ __forceinline__ void blockBarrier(unsigned* const* flags, int world, int rank, int phase, unsigned epoch) {
  __syncthreads();
  if (threadIdx.x < world) {
    const int t = threadIdx.x;
    const size_t slot = ((size_t)phase * kMaxBarrierBlocks + blockIdx.x) * kMaxRanks;
    flagRelease(flags[t] + slot + rank, epoch);
    while ((int)(flagAcquire(flags[rank] + slot + t) - epoch) < 0) {
    }
  }
  __syncthreads();
}

/**
 * Rows b, b+G, b+2G… belong to block b on every rank; the k-th of them is owned by rank k % world.
 * 1. push: each non-owned row goes to its owner's slot for this rank;  barrier
 * 2. the owner sums its rows (own input + the pushed slots, rank order), normalizes them, and
 *    pushes the rounded sum to every other rank;  barrier
 * 3. every rank normalizes the rows it received.
 * Scratch alternates between two parities by epoch, so launch e+1 may write while a slow peer
 * still reads launch e's; launch e+2 cannot start its pushes before every peer finished e.
 */
template <typename T, int V, int VPT, int MW>
__global__ void kTwoShot(TwoShotArgs a, const T* in, const T* res, const T* gamma, T* y, T* zOut, T* arOut, int64_t rows, int cols, float eps) {
  __shared__ float shared32[32];
  __shared__ unsigned epochS;
  if (threadIdx.x == 0) epochS = a.ctl->blockEpoch[blockIdx.x] + 1;
  __syncthreads();
  const unsigned epoch = epochS;
  const int nvec = cols / V;
  const int64_t n = rows * (int64_t)cols;
  const unsigned long long par = (epoch & 1) * a.parityElems;
  auto slot = [&](int owner, int from) { return static_cast<T*>(a.scratch[owner]) + par + (int64_t)from * n; };
  auto gathered = [&](int at) { return static_cast<T*>(a.scratch[at]) + par + (int64_t)a.world * n; };
  const int W = a.world;

  int64_t k = 0;
  for (int64_t row = blockIdx.x; row < rows; row += gridDim.x, k++) {
    const int owner = (int)(k % W);
    if (owner == a.rank) continue;
    T* dst = slot(owner, a.rank);
    for (int v = threadIdx.x; v < nvec; v += blockDim.x) {
      const int64_t off = row * cols + (int64_t)v * V;
      storeLanes<T, V>(dst + off, loadLanes<T, V>(in + off));
    }
  }
  blockBarrier(a.flags, W, a.rank, 0, epoch);
  T* push[kMaxRanks];
  int nPush = 0;
  for (int r = 0; r < W; r++) if (r != a.rank) push[nPush++] = gathered(r);
  k = 0;
  for (int64_t row = blockIdx.x; row < rows; row += gridDim.x, k++) {
    if ((int)(k % W) != a.rank) continue;
    float sum[VPT][V];
#pragma unroll
    for (int q = 0; q < VPT; q++) {
      int v = threadIdx.x + q * blockDim.x;
      if (v >= nvec) break;
#pragma unroll
      for (int e = 0; e < V; e++) sum[q][e] = 0.f;
      float t[MW][V];
#pragma unroll
      for (int r = 0; r < MW; r++)
        if (r < W) Vec<T, V>::load(r == a.rank ? in : slot(a.rank, r), row * cols + (int64_t)v * V, t[r]);
#pragma unroll
      for (int r = 0; r < MW; r++)
        if (r < W)
#pragma unroll
          for (int e = 0; e < V; e++) sum[q][e] += t[r][e];
    }
    normFromSum<T, V, VPT>(sum, row, cols, res, gamma, y, zOut, arOut, eps, shared32, push, nPush);
  }
  blockBarrier(a.flags, W, a.rank, 1, epoch);
  const T* got = gathered(a.rank);
  k = 0;
  for (int64_t row = blockIdx.x; row < rows; row += gridDim.x, k++) {
    if ((int)(k % W) == a.rank) continue;
    float sum[VPT][V];
#pragma unroll
    for (int q = 0; q < VPT; q++) {
      int v = threadIdx.x + q * blockDim.x;
      if (v >= nvec) break;
      Vec<T, V>::load(got, row * cols + (int64_t)v * V, sum[q]);
    }
    normFromSum<T, V, VPT>(sum, row, cols, res, gamma, y, zOut, arOut, eps, shared32);
  }
  if (threadIdx.x == 0) a.ctl->blockEpoch[blockIdx.x] = epoch;
}

/**
 * One-shot for large messages: every rank pushes its rows to every peer's scratch (the two-shot's
 * slots), block b of every rank meets block b of every other rank once, then each rank reduces
 * every row from its own input and the pushed slots. No sentinel, so nothing to clear: per launch
 * 7 row-sized passes over local memory instead of the Lamport kernel's 10 (its self-copy and
 * the clearing of the previous region), at the price of one barrier round trip (a few µs).
 * Scratch alternates by epoch parity: launch e+2 pushes only after every peer passed launch e+1's
 * barrier, so after it finished reading launch e's slots.
 */
template <typename T, int V, int VPT, int MW>
__global__ void kOneShotBarrier(TwoShotArgs a, const T* in, const T* res, const T* gamma, T* y, T* zOut, T* arOut, int64_t rows, int cols, float eps) {
  __shared__ float shared32[32];
  __shared__ unsigned epochS;
  if (threadIdx.x == 0) epochS = a.ctl->blockEpoch[blockIdx.x] + 1;
  __syncthreads();
  const unsigned epoch = epochS;
  const int nvec = cols / V;
  const int64_t n = rows * (int64_t)cols;
  const unsigned long long par = (epoch & 1) * a.parityElems;
  T* to[MW];
  const T* from[MW];
#pragma unroll
  for (int r = 0; r < MW; r++) {
    to[r] = r < a.world ? static_cast<T*>(a.scratch[r]) + par + (int64_t)a.rank * n : nullptr;
    from[r] = r == a.rank ? in : r < a.world ? static_cast<const T*>(a.scratch[a.rank]) + par + (int64_t)r * n : nullptr;
  }
  for (int64_t row = blockIdx.x; row < rows; row += gridDim.x)
    for (int v = threadIdx.x; v < nvec; v += blockDim.x) {
      const int64_t off = row * cols + (int64_t)v * V;
      const Lanes<T, V> l = loadLanes<T, V>(in + off);
#pragma unroll
      for (int r = 0; r < MW; r++) if (r < a.world && r != a.rank) storeLanes<T, V>(to[r] + off, l);
    }
  blockBarrier(a.flags, a.world, a.rank, 0, epoch);
  for (int64_t row = blockIdx.x; row < rows; row += gridDim.x) {
    float sum[VPT][V];
#pragma unroll
    for (int q = 0; q < VPT; q++) {
      int v = threadIdx.x + q * blockDim.x;
      if (v >= nvec) break;
      const int64_t off = row * cols + (int64_t)v * V;
      Lanes<T, V> l[MW];
#pragma unroll
      for (int r = 0; r < MW; r++) {
        if (r >= a.world) continue;
        if (r == a.rank) l[r] = loadLanes<T, V>(in + off);
        else if constexpr (sizeof(Lanes<T, V>) == 16) {
          // Written by a peer during this launch: read at L2, past this SM's L1.
          const uint4 u = __ldcg(reinterpret_cast<const uint4*>(from[r] + off));
          memcpy(&l[r], &u, 16);
        } else {
          l[r] = loadLanesVolatile<T, V>(from[r] + off);
        }
      }
#pragma unroll
      for (int e = 0; e < V; e++) sum[q][e] = 0.f;
#pragma unroll
      for (int r = 0; r < MW; r++)
        if (r < a.world)
#pragma unroll
          for (int e = 0; e < V; e++) sum[q][e] += laneF<T>(l[r].w[e]);
    }
    normFromSum<T, V, VPT>(sum, row, cols, res, gamma, y, zOut, arOut, eps, shared32);
  }
  if (threadIdx.x == 0) a.ctl->blockEpoch[blockIdx.x] = epoch;
}

template <typename T> __global__ void kFillSentinel(T* p, unsigned long long n) {
  using W = typename NegZero<T>::Word;
  W* q = reinterpret_cast<W*>(p);
  for (unsigned long long i = blockIdx.x * (unsigned long long)blockDim.x + threadIdx.x; i < n; i += (unsigned long long)gridDim.x * blockDim.x)
    q[i] = NegZero<T>::bits;
}

}  // namespace fl
