// Async TP's fused matmul + reduce-scatter on the agent (vLLM's AsyncTPPass emits
// symm_mem.fused_matmul_reduce_scatter): out = reduce_scatter(A·B) along the token rows, as a
// chunked, overlapped cuBLAS + NCCL pipeline. The rows are cut into one block per destination
// rank; block d's GEMM runs on the compute stream, then its ncclReduce to rank d runs on a second
// stream while block d+1's GEMM computes. Every rank issues the reduces in the same order (d = 0,
// 1, …), as NCCL requires. Rank d ends with rows [d·M/N, (d+1)·M/N) summed over the ranks: the
// reduce-scatter's layout. The full product is also written to `mm` (the plan's gemm output).
// Included by cuda_exec.cu after cluster.cuh (kernels, RankCtx) and executors.hpp (StepError).
#pragma once
#include <mutex>
#include <stdexcept>
#include <string>

#include <algorithm>

#include "cluster.cuh"
#include "program.hpp"

namespace fl {

inline int blocksFor(int64_t n, int sms) { return (int)std::max<int64_t>(1, std::min<int64_t>((n + 255) / 256, (int64_t)sms * 8)); }

/** One communication stream per GPU, created on first use and kept (the worker is long-lived). */
inline cudaStream_t commStream(int device) {
  static std::mutex m;
  static cudaStream_t streams[16] = {};
  std::lock_guard<std::mutex> l(m);
  if (device < 0 || device >= 16) throw std::runtime_error("device index out of range");
  if (!streams[device]) {
    int prev = 0;
    cudaGetDevice(&prev);
    cudaSetDevice(device);
    if (cudaStreamCreateWithFlags(&streams[device], cudaStreamNonBlocking) != cudaSuccess) throw std::runtime_error("cannot create the communication stream");
    cudaSetDevice(prev);
  }
  return streams[device];
}

template <typename T>
std::string launchMmReduceScatter(const Step& st, RankCtx& k, int rank, int world, const T* A, const T* B, T* mm, T* out, int64_t M, int64_t K, int64_t N,
                                  int64_t biasMode, bool transB, float alpha, float beta, const T* bias) {
#ifndef FUSIONLAB_NO_NCCL
  if (M % world != 0) throw StepError(st.node, std::to_string(M) + " rows do not split over " + std::to_string(world) + " ranks");
  if (biasMode == 2) throw StepError(st.node, "a full-size bias does not fuse with the reduce-scatter");
  cudaStream_t s = k.stream, c = commStream(rank);
  const int64_t Mb = M / world;
  float* acc = nullptr;
  if (M * N == 0) return "fused";
  if (cudaMallocAsync(&acc, (size_t)Mb * N * sizeof(float) * 2, s) != cudaSuccess) throw StepError(st.node, "out of GPU memory for the GEMM accumulator");
  ncclDataType_t t = sizeof(T) == 2 ? ncclBfloat16 : ncclFloat32;
  cudaEvent_t joined;
  cudaEventCreateWithFlags(&joined, cudaEventDisableTiming);
  for (int d = 0; d < world; d++) {
    // Two accumulators in turn: block d+1's GEMM writes the other one while block d's epilogue output is reduced.
    float* a = acc + (d & 1) * Mb * N;
    const T* Ad = A + d * Mb * K;
    T* mmd = mm + d * Mb * N;
#ifndef FUSIONLAB_NO_CUBLAS
    const float one = 1.f, zero = 0.f;
    cudaDataType_t dt = sizeof(T) == 2 ? CUDA_R_16BF : CUDA_R_32F;
    cublasStatus_t bs = cublasGemmEx(k.blas, transB ? CUBLAS_OP_T : CUBLAS_OP_N, CUBLAS_OP_N, (int)N, (int)Mb, (int)K, &one, B, dt, transB ? (int)K : (int)N,
                                     Ad, dt, (int)K, &zero, a, CUDA_R_32F, (int)N, CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT);
    if (bs != CUBLAS_STATUS_SUCCESS) throw StepError(st.node, "cublasGemmEx failed with status " + std::to_string((int)bs));
#else
    kGemmNaive<T><<<blocksFor(Mb * N, k.sms), 256, 0, s>>>(Ad, B, a, Mb, K, N, transB);
#endif
    kBiasEpilogue<T><<<blocksFor(Mb * N, k.sms), 256, 0, s>>>(a, biasMode ? bias : nullptr, mmd, Mb, N, (int)biasMode, alpha, beta);
    cudaEvent_t ready;
    cudaEventCreateWithFlags(&ready, cudaEventDisableTiming);
    cudaEventRecord(ready, s);
    cudaStreamWaitEvent(c, ready, 0);
    cudaEventDestroy(ready);
    ncclResult_t r = ncclReduce(mmd, out, (size_t)(Mb * N), t, ncclSum, d, k.comm, c);
    if (r != ncclSuccess) throw StepError(st.node, std::string("ncclReduce: ") + ncclGetErrorString(r));
    // The accumulator block d+2 reuses was last read by block d's epilogue, on the compute stream: in order.
  }
  cudaEventRecord(joined, c);
  cudaStreamWaitEvent(s, joined, 0);
  cudaEventDestroy(joined);
  cudaFreeAsync(acc, s);
  return "fused: " + std::to_string(world) + " row blocks, GEMM overlapped with NCCL reduce";
#else
  (void)k; (void)rank; (void)world; (void)A; (void)B; (void)mm; (void)out; (void)M; (void)K; (void)N; (void)biasMode; (void)transB; (void)alpha; (void)beta; (void)bias;
  throw StepError(st.node, "this worker was built without NCCL");
#endif
}

}  // namespace fl
