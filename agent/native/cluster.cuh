// The GPUs of one run, shared by the executor and the bench mode.
#pragma once
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

/** Streams, flags and communicators for GPUs 0..world-1 (created once, reused by later runs). */
Cluster& clusterFor(int world);

}  // namespace fl
