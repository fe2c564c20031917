// `sp_bench`: sequence parallelism and async TP against the all-reduce path on the GPT-OSS-20B
// layer, CUDA-graphed on every side, one host thread and one NCCL communicator per GPU.
//
// What differs between the three graphs of one layer (the MoE itself is the same in all three,
// so it is left out; its output is a seeded partial sum):
//   ar     o_proj GEMM → all-reduce → add+RMSNorm (T rows)          moe → all-reduce → add+RMSNorm → qkv GEMM
//   sp     o_proj GEMM → reduce-scatter → add+RMSNorm (T/N) → AG     moe → RS → add+RMSNorm (T/N) → AG → qkv GEMM
//   async  fused o_proj GEMM + RS → add+RMSNorm → AG                 moe → RS → add+RMSNorm → fused AG + qkv GEMM
// The fused ops are chunked, overlapped cuBLAS + NCCL pipelines: the tokens are cut into K
// chunks; chunk k's GEMM runs on the compute stream while chunk k−1's reduce-scatter (or chunk
// k+1's all-gather) runs on the communication stream. Each chunk's rows are scattered over the
// ranks, so a rank's shard is K interleaved blocks; the norm is row-wise and the all-gather
// undoes the same cut, so the values are those of the unchunked path.
// The add+RMSNorm kernel is the same in all three (vLLM's fused_add_rms_norm, in place).
//
// Prints one JSON object per line: {"section":"sp", T, world, chunks, ar_us, sp_us, async_us,
// max_ulp_sp, max_ulp_async} — time per layer on the slowest rank, and the largest distance in
// bf16 steps of the qkv GEMM's output from the all-reduce path's.
//
// Build (GPU host): nvcc -O3 -std=c++17 -arch=sm_90 -o sp_bench agent/native/sp_bench.cu -lcublas -lnccl -lpthread
// Run: ./sp_bench [--world N] [--iters I] [--tmax T] [--chunks K]
#include <cuda_bf16.h>
#include <cuda_runtime.h>
#include <cublas_v2.h>
#include <nccl.h>

#include <algorithm>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

namespace {

using bf16 = __nv_bfloat16;

#define CK(call)                                                                                          \
  do {                                                                                                    \
    cudaError_t e_ = (call);                                                                              \
    if (e_ != cudaSuccess) throw std::runtime_error(std::string(#call) + ": " + cudaGetErrorString(e_)); \
  } while (0)
#define NK(call)                                                                                             \
  do {                                                                                                       \
    ncclResult_t r_ = (call);                                                                                \
    if (r_ != ncclSuccess) throw std::runtime_error(std::string(#call) + ": " + ncclGetErrorString(r_));    \
  } while (0)
#define BK(call)                                                                                    \
  do {                                                                                              \
    cublasStatus_t s_ = (call);                                                                     \
    if (s_ != CUBLAS_STATUS_SUCCESS) throw std::runtime_error(std::string(#call) + " failed: " + std::to_string((int)s_)); \
  } while (0)

// GPT-OSS-20B: hidden 2880, 64 query heads and 8 KV heads of 64.
constexpr int kHidden = 2880, kQHeads = 64, kKvHeads = 8, kHeadDim = 64;
constexpr float kEps = 1e-5f;

__global__ void kInit(bf16* o, int64_t n, unsigned seed, float scale) {
  for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n; i += (int64_t)gridDim.x * blockDim.x) {
    unsigned x = (unsigned)i * 2654435761u ^ seed;
    x ^= x >> 16; x *= 0x7feb352du; x ^= x >> 15; x *= 0x846ca68bu; x ^= x >> 16;
    o[i] = __float2bfloat16_rn((((x >> 8) * (1.f / 16777216.f)) * 2.f - 1.f) * scale);
  }
}

/** vLLM's fused_add_rms_norm, in place: res ← bf16(x + res); y ← bf16(bf16(res · rsqrt(mean(res²) + eps)) · γ). */
__global__ void kAddRmsNorm(const bf16* __restrict__ x, bf16* __restrict__ res, const bf16* __restrict__ g, bf16* __restrict__ y, int cols, float eps) {
  __shared__ float part[32];
  const int64_t row = blockIdx.x;
  const bf16* xr = x + row * cols;
  bf16* rr = res + row * cols;
  float ss = 0.f;
  for (int c = threadIdx.x; c < cols; c += blockDim.x) {
    bf16 z = __float2bfloat16_rn(__bfloat162float(xr[c]) + __bfloat162float(rr[c]));
    rr[c] = z;
    float zf = __bfloat162float(z);
    ss += zf * zf;
  }
  for (int o = 16; o > 0; o >>= 1) ss += __shfl_xor_sync(0xffffffffu, ss, o);
  if ((threadIdx.x & 31) == 0) part[threadIdx.x >> 5] = ss;
  __syncthreads();
  if (threadIdx.x < 32) {
    float v = threadIdx.x < (blockDim.x >> 5) ? part[threadIdx.x] : 0.f;
    for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
    if (threadIdx.x == 0) part[0] = rsqrtf(v / cols + eps);
  }
  __syncthreads();
  const float inv = part[0];
  for (int c = threadIdx.x; c < cols; c += blockDim.x) {
    float n = __bfloat162float(__float2bfloat16_rn(__bfloat162float(rr[c]) * inv));
    y[row * cols + c] = __float2bfloat16_rn(n * __bfloat162float(g[c]));
  }
}

/** A barrier for the rank threads (timing phases start together). */
struct HostBarrier {
  std::mutex m;
  std::condition_variable cv;
  int parties, count = 0, gen = 0;
  explicit HostBarrier(int n) : parties(n) {}
  void wait() {
    std::unique_lock<std::mutex> l(m);
    int g = gen;
    if (++count == parties) { count = 0; gen++; cv.notify_all(); }
    else cv.wait(l, [&] { return gen != g; });
  }
};

struct Shared {
  int world = 2, iters = 50, warm = 5, tmax = 16384;
  /** Token chunks of the async pipelines; 0: 4 where every chunk still splits over the ranks, else 1. */
  int chunks = 0;
  ncclUniqueId id;
  HostBarrier* barrier = nullptr;
  std::mutex out;
  // Per T: per rank, µs of each variant and the ulps.
  std::vector<std::vector<double>> results;
};

struct Rank {
  int r = 0, world = 2;
  cudaStream_t s = nullptr, c = nullptr;
  cublasHandle_t blas = nullptr;
  ncclComm_t comm = nullptr;
  void* ws = nullptr;
  std::vector<cudaEvent_t> ev;
  int evNext = 0;
  cudaEvent_t event() {
    if (evNext == (int)ev.size()) {
      cudaEvent_t e;
      CK(cudaEventCreateWithFlags(&e, cudaEventDisableTiming));
      ev.push_back(e);
    }
    return ev[evNext++];
  }
};

/** Row-major C[M, N] = A[M, K] · W[K, N] (bf16, f32 accumulation) on the handle's stream. */
void gemm(Rank& k, const bf16* A, const bf16* W, bf16* C, int64_t M, int K, int N) {
  if (M == 0) return;
  const float one = 1.f, zero = 0.f;
  BK(cublasGemmEx(k.blas, CUBLAS_OP_N, CUBLAS_OP_N, N, (int)M, K, &one, W, CUDA_R_16BF, N, A, CUDA_R_16BF, K, &zero, C, CUDA_R_16BF, N,
                  CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT));
}

void addNorm(Rank& k, const bf16* x, bf16* res, const bf16* g, bf16* y, int64_t rows) {
  if (rows > 0) kAddRmsNorm<<<(unsigned)rows, 256, 0, k.s>>>(x, res, g, y, kHidden, kEps);
}

/** The communication stream joins the compute stream's work so far. */
void fork(Rank& k) {
  cudaEvent_t e = k.event();
  CK(cudaEventRecord(e, k.s));
  CK(cudaStreamWaitEvent(k.c, e, 0));
}
void join(Rank& k) {
  cudaEvent_t e = k.event();
  CK(cudaEventRecord(e, k.c));
  CK(cudaStreamWaitEvent(k.s, e, 0));
}

struct Buffers {
  bf16 *attn, *wo, *part, *ar, *res, *resShard, *g, *y, *yShard, *rs, *moe, *wqkv, *qkv;
};

enum class Variant { AllReduce, SequenceParallel, AsyncTp };

/** One layer's collective path (see the header) enqueued on rank k's streams. */
void layer(Rank& k, Buffers& b, Variant v, int64_t T, int chunks) {
  const int N = k.world;
  const int q = kQHeads * kHeadDim / N, qkv = (kQHeads + 2 * kKvHeads) * kHeadDim / N;
  const int64_t Ts = T / N;
  const size_t H = kHidden;
  if (v == Variant::AllReduce) {
    gemm(k, b.attn, b.wo, b.part, T, q, kHidden);
    NK(ncclAllReduce(b.part, b.ar, (size_t)T * H, ncclBfloat16, ncclSum, k.comm, k.s));
    addNorm(k, b.ar, b.res, b.g, b.y, T);
    NK(ncclAllReduce(b.moe, b.ar, (size_t)T * H, ncclBfloat16, ncclSum, k.comm, k.s));
    addNorm(k, b.ar, b.res, b.g, b.y, T);
    gemm(k, b.y, b.wqkv, b.qkv, T, kHidden, qkv);
    return;
  }
  if (v == Variant::SequenceParallel) {
    gemm(k, b.attn, b.wo, b.part, T, q, kHidden);
    NK(ncclReduceScatter(b.part, b.rs, (size_t)Ts * H, ncclBfloat16, ncclSum, k.comm, k.s));
    addNorm(k, b.rs, b.resShard, b.g, b.yShard, Ts);
    NK(ncclAllGather(b.yShard, b.y, (size_t)Ts * H, ncclBfloat16, k.comm, k.s));
    NK(ncclReduceScatter(b.moe, b.rs, (size_t)Ts * H, ncclBfloat16, ncclSum, k.comm, k.s));
    addNorm(k, b.rs, b.resShard, b.g, b.yShard, Ts);
    NK(ncclAllGather(b.yShard, b.y, (size_t)Ts * H, ncclBfloat16, k.comm, k.s));
    gemm(k, b.y, b.wqkv, b.qkv, T, kHidden, qkv);
    return;
  }
  // Async TP: chunk c covers rows [c·Tc, (c+1)·Tc); each rank keeps Tc/N of them.
  const int64_t Tc = T / chunks, Tcs = Tc / N;
  // fused_matmul_reduce_scatter: GEMM chunk c, then its reduce-scatter overlaps GEMM chunk c+1.
  for (int ch = 0; ch < chunks; ch++) {
    gemm(k, b.attn + ch * Tc * q, b.wo, b.part + ch * Tc * H, Tc, q, kHidden);
    fork(k);
    NK(ncclReduceScatter(b.part + ch * Tc * H, b.rs + ch * Tcs * H, (size_t)Tcs * H, ncclBfloat16, ncclSum, k.comm, k.c));
  }
  join(k);
  addNorm(k, b.rs, b.resShard, b.g, b.yShard, Ts);
  for (int ch = 0; ch < chunks; ch++) NK(ncclAllGather(b.yShard + ch * Tcs * H, b.y + ch * Tc * H, (size_t)Tcs * H, ncclBfloat16, k.comm, k.s));
  for (int ch = 0; ch < chunks; ch++) NK(ncclReduceScatter(b.moe + ch * Tc * H, b.rs + ch * Tcs * H, (size_t)Tcs * H, ncclBfloat16, ncclSum, k.comm, k.s));
  addNorm(k, b.rs, b.resShard, b.g, b.yShard, Ts);
  // fused_all_gather_matmul: chunk c+1's all-gather overlaps chunk c's GEMM.
  fork(k);
  std::vector<cudaEvent_t> gathered(chunks);
  for (int ch = 0; ch < chunks; ch++) {
    NK(ncclAllGather(b.yShard + ch * Tcs * H, b.y + ch * Tc * H, (size_t)Tcs * H, ncclBfloat16, k.comm, k.c));
    gathered[ch] = k.event();
    CK(cudaEventRecord(gathered[ch], k.c));
  }
  for (int ch = 0; ch < chunks; ch++) {
    CK(cudaStreamWaitEvent(k.s, gathered[ch], 0));
    gemm(k, b.y + ch * Tc * H, b.wqkv, b.qkv + ch * Tc * qkv, Tc, kHidden, qkv);
  }
}

bf16* alloc(size_t n) {
  bf16* p = nullptr;
  CK(cudaMalloc(&p, std::max<size_t>(n, 1) * sizeof(bf16)));
  return p;
}

void init(Rank& k, bf16* p, size_t n, unsigned seed, float scale) { kInit<<<1024, 256, 0, k.s>>>(p, (int64_t)n, seed, scale); }

int ulpKey(uint16_t u) { return (u & 0x8000) ? -(int)(u & 0x7fff) : (int)(u & 0x7fff); }

void rankMain(Shared& S, int r) {
  Rank k;
  k.r = r;
  k.world = S.world;
  CK(cudaSetDevice(r));
  CK(cudaStreamCreateWithFlags(&k.s, cudaStreamNonBlocking));
  CK(cudaStreamCreateWithFlags(&k.c, cudaStreamNonBlocking));
  BK(cublasCreate(&k.blas));
  BK(cublasSetStream(k.blas, k.s));
  // A fixed workspace, so cuBLAS allocates nothing while a graph is captured.
  CK(cudaMalloc(&k.ws, 64 << 20));
  BK(cublasSetWorkspace(k.blas, k.ws, 64 << 20));
  NK(ncclCommInitRank(&k.comm, S.world, S.id, r));
  const int N = S.world;
  const int q = kQHeads * kHeadDim / N, qkv = (kQHeads + 2 * kKvHeads) * kHeadDim / N;
  const size_t H = kHidden, Tm = (size_t)S.tmax;
  Buffers b{};
  b.attn = alloc(Tm * q); b.wo = alloc((size_t)q * H); b.part = alloc(Tm * H); b.ar = alloc(Tm * H);
  b.res = alloc(Tm * H); b.resShard = alloc(Tm * H); b.g = alloc(H); b.y = alloc(Tm * H); b.yShard = alloc(Tm * H);
  b.rs = alloc(Tm * H); b.moe = alloc(Tm * H); b.wqkv = alloc(H * qkv); b.qkv = alloc(Tm * qkv);
  bf16* resInit = alloc(Tm * H);
  init(k, b.attn, Tm * q, 11 + r, 1.f);
  init(k, b.wo, (size_t)q * H, 21 + r, 1.f / 45.f);  // weights 1/√fan-in (fan-in 2048 over both ranks)
  init(k, b.moe, Tm * H, 31 + r, 1.f);
  init(k, b.wqkv, H * qkv, 41 + r, 1.f / 54.f);
  init(k, b.g, H, 7, 1.f);
  init(k, resInit, Tm * H, 101, 1.f);  // the residual is replicated across ranks
  CK(cudaStreamSynchronize(k.s));

  std::vector<int> Ts;
  for (int T = 1; T <= S.tmax; T *= 2) Ts.push_back(T);
  for (int T : Ts) {
    const bool split = T % N == 0;
    // Chunks of the async pipeline: 4 when every chunk still splits over the ranks, else 1.
    const int chunks = S.chunks > 0 ? (T % (S.chunks * N) == 0 ? S.chunks : 1) : (T % (4 * N) == 0 && T >= 64 * N) ? 4 : 1;
    double us[3] = {-1, -1, -1};
    double ulps[2] = {-1, -1};
    std::vector<uint16_t> ref((size_t)T * qkv), got((size_t)T * qkv);
    for (int vi = 0; vi < 3; vi++) {
      Variant v = (Variant)vi;
      if (v != Variant::AllReduce && !split) continue;  // the passes refuse: T does not divide by N
      // The residual as it enters the layer: whole (ar) or this rank's shard, in the variant's layout.
      auto resetResidual = [&] {
        CK(cudaMemcpyAsync(b.res, resInit, (size_t)T * H * 2, cudaMemcpyDeviceToDevice, k.s));
        const int ch = v == Variant::AsyncTp ? chunks : 1;
        const int64_t Tc = T / ch, Tcs = Tc / N;
        for (int c = 0; c < ch && split; c++)
          CK(cudaMemcpyAsync(b.resShard + c * Tcs * H, resInit + (c * Tc + r * Tcs) * H, (size_t)Tcs * H * 2, cudaMemcpyDeviceToDevice, k.s));
      };
      // One checked run outside the graph: the residual starts from the same values for every variant.
      resetResidual();
      k.evNext = 0;
      layer(k, b, v, T, chunks);
      CK(cudaStreamSynchronize(k.s));
      CK(cudaStreamSynchronize(k.c));
      CK(cudaMemcpy(v == Variant::AllReduce ? ref.data() : got.data(), b.qkv, (size_t)T * qkv * 2, cudaMemcpyDeviceToHost));
      if (v != Variant::AllReduce) {
        int worst = 0;
        for (size_t i = 0; i < got.size(); i++) worst = std::max(worst, std::abs(ulpKey(ref[i]) - ulpKey(got[i])));
        ulps[vi - 1] = worst;
      }
      // The graph: one layer, captured once, replayed.
      cudaGraph_t graph;
      cudaGraphExec_t exec;
      k.evNext = 0;
      CK(cudaStreamBeginCapture(k.s, cudaStreamCaptureModeThreadLocal));
      layer(k, b, v, T, chunks);
      CK(cudaStreamEndCapture(k.s, &graph));
      CK(cudaGraphInstantiate(&exec, graph, 0));
      S.barrier->wait();
      for (int i = 0; i < S.warm; i++) CK(cudaGraphLaunch(exec, k.s));
      CK(cudaStreamSynchronize(k.s));
      S.barrier->wait();
      cudaEvent_t a, e;
      CK(cudaEventCreate(&a));
      CK(cudaEventCreate(&e));
      CK(cudaEventRecord(a, k.s));
      for (int i = 0; i < S.iters; i++) CK(cudaGraphLaunch(exec, k.s));
      CK(cudaEventRecord(e, k.s));
      CK(cudaEventSynchronize(e));
      float ms = 0;
      CK(cudaEventElapsedTime(&ms, a, e));
      us[vi] = ms * 1000.0 / S.iters;
      cudaEventDestroy(a);
      cudaEventDestroy(e);
      CK(cudaGraphExecDestroy(exec));
      CK(cudaGraphDestroy(graph));
    }
    {
      std::lock_guard<std::mutex> l(S.out);
      S.results.push_back({(double)T, (double)r, (double)chunks, us[0], us[1], us[2], ulps[0], ulps[1]});
    }
    S.barrier->wait();
  }
  ncclCommDestroy(k.comm);
}

}  // namespace

int main(int argc, char** argv) {
  Shared S;
  int n = 0;
  if (cudaGetDeviceCount(&n) != cudaSuccess || n < 2) {
    fprintf(stderr, "sp_bench: needs 2 or more CUDA devices (found %d)\n", n);
    return 2;
  }
  S.world = n;
  for (int i = 1; i < argc; i++) {
    if (!strcmp(argv[i], "--world") && i + 1 < argc) S.world = std::min(n, atoi(argv[++i]));
    else if (!strcmp(argv[i], "--iters") && i + 1 < argc) S.iters = atoi(argv[++i]);
    else if (!strcmp(argv[i], "--tmax") && i + 1 < argc) S.tmax = atoi(argv[++i]);
    else if (!strcmp(argv[i], "--chunks") && i + 1 < argc) S.chunks = std::max(0, atoi(argv[++i]));
  }
  cudaDeviceProp prop;
  cudaGetDeviceProperties(&prop, 0);
  int nccl = 0;
  ncclGetVersion(&nccl);
  printf("{\"section\":\"device\",\"world\":%d,\"gpu\":\"%s\",\"nccl\":%d,\"iters\":%d}\n", S.world, prop.name, nccl, S.iters);
  fflush(stdout);
  try {
    if (ncclGetUniqueId(&S.id) != ncclSuccess) throw std::runtime_error("ncclGetUniqueId failed");
    HostBarrier barrier(S.world);
    S.barrier = &barrier;
    std::vector<std::thread> threads;
    for (int r = 0; r < S.world; r++)
      threads.emplace_back([&, r] {
        // Another rank may already wait in NCCL on this one: report and end the process.
        try { rankMain(S, r); } catch (const std::exception& e) { fprintf(stderr, "sp_bench: rank %d: %s\n", r, e.what()); fflush(stderr); std::_Exit(1); }
      });
    for (auto& t : threads) t.join();
  } catch (const std::exception& e) {
    fprintf(stderr, "sp_bench: %s\n", e.what());
    return 1;
  }
  // Slowest rank per T and variant.
  std::vector<double> Ts;
  for (auto& row : S.results) if (std::find(Ts.begin(), Ts.end(), row[0]) == Ts.end()) Ts.push_back(row[0]);
  std::sort(Ts.begin(), Ts.end());
  for (double T : Ts) {
    double us[3] = {-1, -1, -1}, ulp[2] = {-1, -1}, chunks = 1;
    for (auto& row : S.results) {
      if (row[0] != T) continue;
      chunks = row[2];
      for (int v = 0; v < 3; v++) us[v] = row[3 + v] < 0 ? -1 : std::max(us[v], row[3 + v]);
      for (int v = 0; v < 2; v++) ulp[v] = std::max(ulp[v], row[6 + v]);
    }
    printf("{\"section\":\"sp\",\"T\":%.0f,\"world\":%d,\"chunks\":%.0f,\"ar_us\":%.3f,\"sp_us\":%.3f,\"async_us\":%.3f,\"max_ulp_sp\":%.0f,\"max_ulp_async\":%.0f}\n",
           T, S.world, chunks, us[0], us[1], us[2], ulp[0], ulp[1]);
  }
  return 0;
}
