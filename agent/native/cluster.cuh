// The GPUs of one run, shared by the executor and the bench mode.
#pragma once
#include <algorithm>
#include <map>
#include <string>
#include <type_traits>
#include <vector>

#include "allreduce_fusion.cuh"
#include "cuda_kernels.cuh"
#ifndef FUSIONLAB_NO_CUBLAS
#include <cublas_v2.h>
#endif
#ifndef FUSIONLAB_NO_NCCL
#include <nccl.h>
#endif

namespace fl {

#define FL_CUDA(call)                                                                                  \
  do {                                                                                                 \
    cudaError_t e_ = (call);                                                                           \
    if (e_ != cudaSuccess) throw std::runtime_error(std::string(#call) + ": " + cudaGetErrorString(e_)); \
  } while (0)
#ifndef FUSIONLAB_NO_NCCL
#define FL_NCCL(call)                                                                                     \
  do {                                                                                                    \
    ncclResult_t r_ = (call);                                                                             \
    if (r_ != ncclSuccess) throw std::runtime_error(std::string(#call) + ": " + ncclGetErrorString(r_)); \
  } while (0)
#endif

struct RankCtx {
  cudaStream_t stream = nullptr;
  unsigned* flags = nullptr;  // two-shot barrier words (kFlagWords)
  FusionCtl* fusionCtl = nullptr;
  void* lamport = nullptr;  // one-shot receive buffer: 3 regions of world · fusionElems
  void* twoShot = nullptr;  // two-shot scratch: 2 parities of (world + 1) · fusionElems
  int sms = 0;
#ifndef FUSIONLAB_NO_CUBLAS
  cublasHandle_t blas = nullptr;
#endif
#ifndef FUSIONLAB_NO_NCCL
  ncclComm_t comm = nullptr;
#endif
};

#ifndef FUSIONLAB_NO_NCCL
/** One communicator per rank (indexed by rank), each of the group holding that rank. */
using GroupComms = std::vector<ncclComm_t>;
#else
using GroupComms = std::vector<void*>;
#endif

/** The GPUs of one run: streams, barrier flags, library handles; kept across runs of one world size. */
struct Cluster {
  int world = 0;
  std::vector<RankCtx> ranks;
  // Communicators of process groups smaller than the world (src/runtime/rankMesh.ts), by their
  // groups written out ("0,2;1,3"): made on first use, kept like the world's.
  std::map<std::string, GroupComms> groupComms;
  bool allPeers = false;
  std::string missingPeer;  // the first pair without peer access, for the trace note
  unsigned long long fusionElems = 0;  // the largest all-reduce + norm the buffers hold (rows · cols)
  size_t fusionElemBytes = 0;           // the dtype they were cleared for (the sentinel is per dtype)
};

// The executor's add+RMSNorm launch (bench mode times exactly this).
/** Vectors per thread for a row of `nvec` vectors: as few as fit in 1024 threads. */
inline int vecsPerThread(int64_t nvec) { return nvec <= 1024 ? 1 : nvec <= 2048 ? 2 : 4; }

template <typename T, int V>
void launchAddRmsNormV(cudaStream_t s, int sms, const T* x, int64_t xStride, const T* res, const T* g, T* y, T* z, int64_t rows, int cols, float eps, bool two) {
  const int64_t nvec = cols / V;
  const int vpt = vecsPerThread(nvec);
  const int threads = normThreads(nvec, vpt);
  // As many blocks as are resident at once (one wave); each walks rows, prefetching the next.
  auto launch = [&](auto kernel) {
    int perSm = 1;
    cudaOccupancyMaxActiveBlocksPerMultiprocessor(&perSm, kernel, threads, 0);
    const int grid = (int)std::max<int64_t>(1, std::min<int64_t>(rows, (int64_t)sms * std::max(1, perSm)));
    kernel<<<grid, threads, 0, s>>>(x, xStride, res, g, y, z, rows, cols, eps, two);
  };
  if (vpt == 1) launch(kAddRmsNorm<T, V, 1>);
  else if (vpt == 2) launch(kAddRmsNorm<T, V, 2>);
  else launch(kAddRmsNorm<T, V, 4>);
}


/** Streams, flags and communicators for GPUs 0..world-1 (created once, reused by later runs). */
Cluster& clusterFor(int world);

/**
 * Grows (or re-clears, when the dtype changes) every rank's fused all-reduce buffers to hold
 * `elems` = rows · cols of `elemBytes` each. Synchronizes every GPU: call between runs, not while
 * a capture or a run is in flight.
 */
void ensureFusionBuffers(Cluster& C, unsigned long long elems, size_t elemBytes);

enum class FusionPath { OneShot, OneShotBarrier, TwoShot };
constexpr FusionPath kFusionPaths[] = {FusionPath::OneShot, FusionPath::OneShotBarrier, FusionPath::TwoShot};
inline const char* fusionPathName(FusionPath p) {
  switch (p) {
    case FusionPath::OneShot: return "one-shot (Lamport)";
    case FusionPath::OneShotBarrier: return "one-shot (barrier)";
    case FusionPath::TwoShot: return "two-shot";
  }
  return "";
}

/**
 * The size switch, by the bytes each rank pushes ((N−1) · rows · cols): the Lamport one-shot up to
 * kLamportMaxPushBytes (no barrier round trip; its clearing grows with size), then the barrier
 * one-shot. On 2× H200 (bench/RESULTS.md, agent, run 4) the barrier one-shot was the faster of
 * the two large-message kernels at every T from 256 up, the two-shot 1.7–4.0× slower than it at every T;
 * the two-shot is selectable (FUSIONLAB_ALLREDUCE_FUSION=two-shot) and checked, but no size picks
 * it until a run on 4 or more GPUs (where it moves 2/N of the one-shot's NVLink bytes) shows a win.
 */
constexpr unsigned long long kLamportMaxPushBytes = 1ull << 20;
inline FusionPath fusionPathFor(int world, int64_t rows, int cols, size_t elemBytes) {
  return (unsigned long long)(world - 1) * rows * cols * elemBytes <= kLamportMaxPushBytes ? FusionPath::OneShot : FusionPath::OneShotBarrier;
}

/**
 * Enqueues the fused all-reduce + residual + RMSNorm on `rank`'s stream (every rank must enqueue
 * the same call). `in` must be 16-byte aligned rows when V > 1; the buffers must hold rows · cols.
 */
template <typename T, int V>
FusionPath launchAllReduceNormV(Cluster& C, int rank, FusionPath path, const T* in, const T* res, const T* g, T* y, T* z, T* ar, int64_t rows, int cols, float eps) {
  RankCtx& k = C.ranks[rank];
  int minSms = k.sms;
  for (auto& o : C.ranks) minSms = std::min(minSms, o.sms);
  const int64_t nvec = cols / V;
  const int threads = normThreads(nvec, 1);
  const int vpt = (int)((nvec + threads - 1) / threads);
  // Only as many blocks as are resident at once (all of them, several per SM: one per SM left
  // too few loads in flight to cover NVLink's latency), so blocks spinning on peers cannot starve
  // the blocks they wait for; every rank uses the same grid, since block b meets block b.
  auto gridFor = [&](auto kernel) {
    int perSm = 1;
    cudaOccupancyMaxActiveBlocksPerMultiprocessor(&perSm, kernel, threads, 0);
    return (int)std::max<int64_t>(1, std::min<int64_t>({rows, (int64_t)minSms * std::max(1, perSm), (int64_t)kMaxBarrierBlocks}));
  };
  if (path == FusionPath::OneShot) {
    OneShotLamportArgs a{};
    for (int r = 0; r < C.world; r++) a.recv[r] = C.ranks[r].lamport;
    a.ctl = k.fusionCtl;
    a.regionElems = (unsigned long long)C.world * C.fusionElems;
    a.world = C.world;
    a.rank = rank;
    auto go = [&](auto kernel) { kernel<<<gridFor(kernel), threads, 0, k.stream>>>(a, in, res, g, y, z, ar, rows, cols, eps); };
    auto byWorld = [&](auto mw) {
      constexpr int MW = decltype(mw)::value;
      if (vpt <= 1) go(kOneShotLamport<T, V, 1, MW>);
      else if (vpt == 2) go(kOneShotLamport<T, V, 2, MW>);
      else go(kOneShotLamport<T, V, 4, MW>);
    };
    if (C.world <= 2) byWorld(std::integral_constant<int, 2>{});
    else if (C.world <= 4) byWorld(std::integral_constant<int, 4>{});
    else byWorld(std::integral_constant<int, kMaxRanks>{});
  } else if (path == FusionPath::OneShotBarrier || path == FusionPath::TwoShot) {
    TwoShotArgs a{};
    for (int r = 0; r < C.world; r++) { a.scratch[r] = C.ranks[r].twoShot; a.flags[r] = C.ranks[r].flags; }
    a.ctl = k.fusionCtl;
    a.parityElems = (unsigned long long)(C.world + 1) * C.fusionElems;
    a.world = C.world;
    a.rank = rank;
    auto go = [&](auto kernel) { kernel<<<gridFor(kernel), threads, 0, k.stream>>>(a, in, res, g, y, z, ar, rows, cols, eps); };
    auto byWorld = [&](auto mw) {
      constexpr int MW = decltype(mw)::value;
      if (path == FusionPath::OneShotBarrier) {
        if (vpt <= 1) go(kOneShotBarrier<T, V, 1, MW>);
        else if (vpt == 2) go(kOneShotBarrier<T, V, 2, MW>);
        else go(kOneShotBarrier<T, V, 4, MW>);
      } else if (vpt <= 1) go(kTwoShot<T, V, 1, MW>);
      else if (vpt == 2) go(kTwoShot<T, V, 2, MW>);
      else go(kTwoShot<T, V, 4, MW>);
    };
    if (C.world <= 2) byWorld(std::integral_constant<int, 2>{});
    else if (C.world <= 4) byWorld(std::integral_constant<int, 4>{});
    else byWorld(std::integral_constant<int, kMaxRanks>{});
  }
  return path;
}

}  // namespace fl
