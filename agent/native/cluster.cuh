// The GPUs of one run, shared by the executor and the bench mode.
#pragma once
#include <algorithm>
#include <string>
#include <vector>

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
  unsigned* flags = nullptr;
  unsigned epoch = 0;
  int sms = 0;
#ifndef FUSIONLAB_NO_CUBLAS
  cublasHandle_t blas = nullptr;
#endif
#ifndef FUSIONLAB_NO_NCCL
  ncclComm_t comm = nullptr;
#endif
};

/** The GPUs of one run: streams, barrier flags, library handles; kept across runs of one world size. */
struct Cluster {
  int world = 0;
  std::vector<RankCtx> ranks;
  bool allPeers = false;
  std::string missingPeer;  // the first pair without peer access, for the trace note
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

}  // namespace fl
