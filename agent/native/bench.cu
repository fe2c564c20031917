// `fusionlab-worker --bench`: times, with CUDA events, what `npm run bench -- agent` reports.
// Prints one JSON object per line; the Node driver (agent/bench.mjs) pairs them with
// torch.distributed's figures and prints ratios.
//   allreduce  NCCL all-reduce (bf16, sum) bus bandwidth over all local GPUs, 1 MiB .. 1 GiB
//   fused      all-reduce + residual + RMSNorm: the one-shot and two-shot kernels and the size
//              switch, against NCCL all-reduce + the add+RMSNorm kernel rounded twice as vLLM's
//              pair is; every loop captured in a CUDA graph per rank and replayed (as vLLM decodes);
//              outputs against a host reference, and the unfused pair's distance from the fused
//   addnorm    fused add+RMSNorm bandwidth vs the best of two device-to-device copies on GPU 0
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <stdexcept>
#include <string>
#include <vector>

#include "cluster.cuh"
#include "executors.hpp"

namespace fl {
namespace {

__global__ void kInitUniform(__nv_bfloat16* o, int64_t n, unsigned seed) {
  for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n; i += (int64_t)gridDim.x * blockDim.x) {
    unsigned x = (unsigned)i * 2654435761u ^ seed;
    x ^= x >> 16; x *= 0x7feb352du; x ^= x >> 15; x *= 0x846ca68bu; x ^= x >> 16;
    o[i] = __float2bfloat16_rn(((x >> 8) * (1.f / 16777216.f)) * 2.f - 1.f);
  }
}

using bf16 = __nv_bfloat16;

void initUniform(bf16* p, int64_t n, unsigned seed, cudaStream_t s) { kInitUniform<<<1024, 256, 0, s>>>(p, n, seed); }

/** Runs `body(iter)` `iters` times on every rank after `warm` warm-ups; returns the slowest rank's µs per iteration. */
template <typename F>
double timeRanks(Cluster& C, int warm, int iters, F body) {
  int W = C.world;
  for (int i = 0; i < warm; i++) body();
  std::vector<cudaEvent_t> a(W), b(W);
  for (int r = 0; r < W; r++) {
    FL_CUDA(cudaSetDevice(r));
    FL_CUDA(cudaStreamSynchronize(C.ranks[r].stream));
    cudaEventCreate(&a[r]);
    cudaEventCreate(&b[r]);
    cudaEventRecord(a[r], C.ranks[r].stream);
  }
  for (int i = 0; i < iters; i++) body();
  double worst = 0;
  for (int r = 0; r < W; r++) {
    cudaSetDevice(r);
    cudaEventRecord(b[r], C.ranks[r].stream);
  }
  for (int r = 0; r < W; r++) {
    cudaSetDevice(r);
    FL_CUDA(cudaEventSynchronize(b[r]));
    float ms = 0;
    cudaEventElapsedTime(&ms, a[r], b[r]);
    worst = std::max(worst, ms * 1000.0 / iters);
    cudaEventDestroy(a[r]);
    cudaEventDestroy(b[r]);
  }
  return worst;
}

#ifndef FUSIONLAB_NO_NCCL
void ncclAll(Cluster& C, const std::vector<bf16*>& in, const std::vector<bf16*>& out, size_t n) {
  ncclGroupStart();
  for (int r = 0; r < C.world; r++) ncclAllReduce(in[r], out[r], n, ncclBfloat16, ncclSum, C.ranks[r].comm, C.ranks[r].stream);
  ncclGroupEnd();
}
#endif

void launchAddNorm(Cluster& C, int r, const bf16* x, const bf16* res, const bf16* g, bf16* y, bf16* z, int64_t rows, int cols, bool two) {
  launchAddRmsNormV<bf16, 8>(C.ranks[r].stream, C.ranks[r].sms, x, cols, res, g, y, z, rows, cols, 1e-5f, two);  // as the executor does
}

std::vector<bf16*> allocRanks(Cluster& C, size_t elems) {
  std::vector<bf16*> v(C.world);
  for (int r = 0; r < C.world; r++) {
    FL_CUDA(cudaSetDevice(r));
    FL_CUDA(cudaMalloc(&v[r], std::max<size_t>(elems, 1) * sizeof(bf16)));
  }
  return v;
}
void freeRanks(std::vector<bf16*>& v) {
  for (size_t r = 0; r < v.size(); r++) { cudaSetDevice((int)r); cudaFree(v[r]); }
}

struct GraphTiming { double us = -1; bool graph = false; std::string error; };

/**
 * `body()` enqueues one call on every rank; it is captured `iters` times into one CUDA graph per
 * rank from this one thread (as nccl-tests captures NCCL over the GPUs of one process), replayed
 * 3 times to warm up, then `reps` times; per replay the slowest rank's time / iters, the median
 * over replays. Where capture fails the same loop is timed from the streams and `graph` says so.
 * Any CUDA error (a faulting kernel) is thrown, naming `what`.
 */
template <typename F>
GraphTiming timeGraphs(Cluster& C, const std::string& what, int iters, int reps, F body) {
  const int W = C.world;
  fprintf(stderr, "bench: %s\n", what.c_str());
  std::vector<cudaGraph_t> g(W, nullptr);
  std::vector<cudaGraphExec_t> ex(W, nullptr);
  GraphTiming out;
  out.graph = true;
  for (int r = 0; r < W; r++) {
    cudaSetDevice(r);
    if (cudaStreamBeginCapture(C.ranks[r].stream, cudaStreamCaptureModeRelaxed) != cudaSuccess) out.graph = false;
  }
  if (out.graph) for (int i = 0; i < iters; i++) body();
  for (int r = 0; r < W; r++) {
    cudaSetDevice(r);
    cudaStreamCaptureStatus st;
    if (cudaStreamIsCapturing(C.ranks[r].stream, &st) == cudaSuccess && st != cudaStreamCaptureStatusNone) {
      if (cudaStreamEndCapture(C.ranks[r].stream, &g[r]) != cudaSuccess || !g[r] || cudaGraphInstantiate(&ex[r], g[r], 0) != cudaSuccess) out.graph = false;
    } else out.graph = false;
  }
  if (!out.graph) { out.error = std::string("capture failed: ") + cudaGetErrorString(cudaGetLastError()); cudaGetLastError(); }
  auto launch = [&] {
    if (out.graph) for (int r = 0; r < W; r++) { cudaSetDevice(r); cudaGraphLaunch(ex[r], C.ranks[r].stream); }
    else for (int i = 0; i < iters; i++) body();
  };
  auto sync = [&] {
    for (int r = 0; r < W; r++) {
      cudaSetDevice(r);
      cudaError_t e = cudaStreamSynchronize(C.ranks[r].stream);
      if (e != cudaSuccess) throw std::runtime_error(what + " on GPU " + std::to_string(r) + ": " + cudaGetErrorString(e));
    }
  };
  std::vector<cudaEvent_t> a(W), b(W);
  for (int r = 0; r < W; r++) { cudaSetDevice(r); cudaEventCreate(&a[r]); cudaEventCreate(&b[r]); }
  for (int i = 0; i < 3; i++) { launch(); sync(); }
  std::vector<double> worst;
  for (int q = 0; q < reps; q++) {
    for (int r = 0; r < W; r++) { cudaSetDevice(r); cudaEventRecord(a[r], C.ranks[r].stream); }
    launch();
    for (int r = 0; r < W; r++) { cudaSetDevice(r); cudaEventRecord(b[r], C.ranks[r].stream); }
    sync();
    double m = 0;
    for (int r = 0; r < W; r++) {
      float ms = 0;
      cudaEventElapsedTime(&ms, a[r], b[r]);
      m = std::max(m, ms * 1000.0 / iters);
    }
    worst.push_back(m);
  }
  for (int r = 0; r < W; r++) {
    cudaSetDevice(r);
    cudaEventDestroy(a[r]);
    cudaEventDestroy(b[r]);
    if (ex[r]) cudaGraphExecDestroy(ex[r]);
    if (g[r]) cudaGraphDestroy(g[r]);
  }
  std::sort(worst.begin(), worst.end());
  out.us = worst[worst.size() / 2];
  return out;
}

float bf16f(uint16_t u) { uint32_t w = (uint32_t)u << 16; float f; memcpy(&f, &w, 4); return f; }
uint16_t f2bf16(float f) {  // round to nearest even, as __float2bfloat16_rn (no NaNs here)
  uint32_t w; memcpy(&w, &f, 4);
  return (uint16_t)((w + 0x7fffu + ((w >> 16) & 1u)) >> 16);
}
/** Distance in bf16 steps, ordering negative patterns below -0 (a sign flip next to zero is 2, not 0x8000). */
int ulpDistance(uint16_t a, uint16_t b) {
  auto key = [](uint16_t u) { return (u & 0x8000) ? -(int)(u & 0x7fff) : (int)(u & 0x7fff); };
  return std::abs(key(a) - key(b));
}

/** The fused op on the host with the CPU reference's rounding points (cpu_exec.cpp, AllReduceNorm). */
std::vector<uint16_t> hostAllReduceNorm(const std::vector<std::vector<uint16_t>>& in, const std::vector<uint16_t>& res, const std::vector<uint16_t>& g,
                                        int64_t rows, int cols, float eps) {
  std::vector<uint16_t> y((size_t)rows * cols);
  std::vector<float> z(cols);
  for (int64_t row = 0; row < rows; row++) {
    double ss = 0;
    for (int c = 0; c < cols; c++) {
      const size_t q = (size_t)row * cols + c;
      float sum = 0.f;
      for (auto& x : in) sum += bf16f(x[q]);
      z[c] = bf16f(f2bf16(bf16f(f2bf16(sum)) + bf16f(res[q])));
      ss += (double)z[c] * z[c];
    }
    const float inv = (float)(1.0 / std::sqrt(ss / cols + eps));
    for (int c = 0; c < cols; c++) y[(size_t)row * cols + c] = f2bf16(z[c] * inv * bf16f(g[c]));
  }
  return y;
}

std::vector<uint16_t> toHost(const bf16* p, size_t n, int dev) {
  std::vector<uint16_t> h(n);
  cudaSetDevice(dev);
  FL_CUDA(cudaMemcpy(h.data(), p, n * 2, cudaMemcpyDeviceToHost));
  return h;
}
int maxUlp(const std::vector<uint16_t>& a, const std::vector<uint16_t>& b) {
  int m = 0;
  for (size_t q = 0; q < a.size(); q++) m = std::max(m, ulpDistance(a[q], b[q]));
  return m;
}

__global__ void kCopy16(const uint4* a, uint4* o, int64_t n) {
  for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n; i += (int64_t)gridDim.x * blockDim.x) o[i] = a[i];
}

}  // namespace

int benchCuda(int argc, char** argv) {
  int n = 0;
  if (cudaGetDeviceCount(&n) != cudaSuccess || n == 0) {
    fprintf(stderr, "fusionlab-worker --bench: no CUDA device\n");
    return 2;
  }
  int world = n;
  std::string only;
  for (int i = 1; i < argc; i++) {
    if (!strcmp(argv[i], "--world") && i + 1 < argc) world = std::min(n, atoi(argv[++i]));
    else if (!strcmp(argv[i], "--only") && i + 1 < argc) only = argv[++i];
  }
  try {
    Cluster& C = clusterFor(world);
    DeviceReport d = probeCuda();
    printf("{\"section\":\"device\",\"world\":%d,\"gpu\":\"%s\",\"cuda\":\"%s\",\"nccl\":\"%s\",\"peer\":%s}\n", world, d.gpus[0].name.c_str(),
           d.cudaVersion.c_str(), d.ncclVersion.c_str(), C.allPeers ? "true" : "false");
    fflush(stdout);

#ifndef FUSIONLAB_NO_NCCL
    if (only.empty() || only == "allreduce") {
      for (size_t bytes = 1ull << 20; bytes <= 1ull << 30; bytes <<= 2) {
        size_t elems = bytes / 2;
        auto in = allocRanks(C, elems), out = allocRanks(C, elems);
        for (int r = 0; r < world; r++) { cudaSetDevice(r); initUniform(in[r], elems, 1 + r, C.ranks[r].stream); }
        int iters = bytes >= (256ull << 20) ? 10 : 40;
        double us = timeRanks(C, 5, iters, [&] { ncclAll(C, in, out, elems); });
        double algbw = bytes / us / 1e3;  // GB/s
        printf("{\"section\":\"allreduce\",\"bytes\":%zu,\"us\":%.3f,\"busbw_GBps\":%.3f}\n", bytes, us, algbw * 2.0 * (world - 1) / world);
        fflush(stdout);
        freeRanks(in);
        freeRanks(out);
      }
    }
    if ((only.empty() || only == "fused") && world > 1) {
      const int H = 2880;
      const float eps = 1e-5f;
      const std::vector<int> tokens = {1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096, 8192, 16384};
      ensureFusionBuffers(C, (unsigned long long)tokens.back() * H, sizeof(bf16));
      for (int T : tokens) {
        size_t e = (size_t)T * H;
        auto in = allocRanks(C, e), res = allocRanks(C, e), g = allocRanks(C, H), y = allocRanks(C, e), z = allocRanks(C, e), ar = allocRanks(C, e);
        for (int r = 0; r < world; r++) {
          cudaSetDevice(r);
          initUniform(in[r], e, 11 + r, C.ranks[r].stream);
          initUniform(res[r], e, 101, C.ranks[r].stream);  // the residual is replicated across ranks
          initUniform(g[r], H, 7, C.ranks[r].stream);
          FL_CUDA(cudaStreamSynchronize(C.ranks[r].stream));
        }
        std::vector<std::vector<uint16_t>> hin;
        for (int r = 0; r < world; r++) hin.push_back(toHost(in[r], e, r));
        const auto ref = hostAllReduceNorm(hin, toHost(res[0], e, 0), toHost(g[0], H, 0), T, H, eps);
        const int iters = T <= 256 ? 50 : T <= 2048 ? 20 : 8, reps = 15;
        auto poison = [&] { for (int r = 0; r < world; r++) { cudaSetDevice(r); FL_CUDA(cudaMemset(y[r], 0xff, e * 2)); } };
        // Largest distance from the host reference over every rank's output.
        auto check = [&] {
          int m = 0;
          for (int r = 0; r < world; r++) m = std::max(m, maxUlp(toHost(y[r], e, r), ref));
          return m;
        };
        // vLLM's unfused pair: NCCL all-reduce, then fused_add_rms_norm rounding before γ.
        poison();
        GraphTiming unfused = timeGraphs(C, "NCCL + add+RMSNorm, T = " + std::to_string(T), iters, reps, [&] {
          ncclAll(C, in, ar, e);
          for (int r = 0; r < world; r++) { cudaSetDevice(r); launchAddNorm(C, r, ar[r], res[r], g[r], y[r], z[r], T, H, true); }
        });
        const auto unfusedY = toHost(y[0], e, 0);
        const int unfusedUlp = maxUlp(unfusedY, ref);
        GraphTiming path[3];
        int pathUlp[3] = {-1, -1, -1};
        if (C.allPeers)
          for (FusionPath p : kFusionPaths) {
            poison();
            path[(int)p] = timeGraphs(C, std::string(fusionPathName(p)) + ", T = " + std::to_string(T), iters, reps, [&] {
              for (int r = 0; r < world; r++) { cudaSetDevice(r); launchAllReduceNormV<bf16, 8>(C, r, p, in[r], res[r], g[r], y[r], z[r], nullptr, T, H, eps); }
            });
            pathUlp[(int)p] = check();
          }
        const FusionPath pick = fusionPathFor(world, T, H, sizeof(bf16));
        printf("{\"section\":\"fused\",\"tokens\":%d,\"hidden\":%d,\"graph\":%s,\"unfused_us\":%.3f,\"oneshot_us\":%.3f,\"oneshot_barrier_us\":%.3f,"
               "\"twoshot_us\":%.3f,\"fused_us\":%.3f,\"path\":\"%s\",\"oneshot_ulp_vs_ref\":%d,\"oneshot_barrier_ulp_vs_ref\":%d,\"twoshot_ulp_vs_ref\":%d,"
               "\"unfused_ulp_vs_ref\":%d,\"error\":\"%s\"}\n",
               T, H, unfused.graph && path[0].graph && path[1].graph && path[2].graph ? "true" : "false", unfused.us, path[0].us, path[1].us, path[2].us,
               path[(int)pick].us, fusionPathName(pick), pathUlp[0], pathUlp[1], pathUlp[2], unfusedUlp,
               (unfused.error + path[0].error + path[1].error + path[2].error).c_str());
        fflush(stdout);
        for (auto* v : {&in, &res, &g, &y, &z, &ar}) freeRanks(*v);
      }
    }
#endif
    if (only.empty() || only == "addnorm") {
      Cluster& C1 = C;
      const int H = 2880;
      const int64_t rows = 65536;
      size_t e = (size_t)rows * H;
      cudaSetDevice(0);
      cudaStream_t s = C1.ranks[0].stream;
      bf16 *x, *res, *g, *cpy;
      FL_CUDA(cudaMalloc(&x, e * 2));
      FL_CUDA(cudaMalloc(&res, e * 2));
      FL_CUDA(cudaMalloc(&g, H * 2));
      FL_CUDA(cudaMalloc(&cpy, e * 4));
      initUniform(x, e, 3, s);
      initUniform(res, e, 5, s);
      initUniform(g, H, 7, s);
      auto time0 = [&](auto body) {
        for (int i = 0; i < 3; i++) body();
        cudaEvent_t a, b;
        cudaEventCreate(&a);
        cudaEventCreate(&b);
        cudaEventRecord(a, s);
        const int iters = 20;
        for (int i = 0; i < iters; i++) body();
        cudaEventRecord(b, s);
        cudaEventSynchronize(b);
        float ms;
        cudaEventElapsedTime(&ms, a, b);
        return ms * 1000.0 / iters;
      };
      // In place, as vLLM's fused_add_rms_norm: reads input and residual, writes both back.
      double normUs = time0([&] { launchAddNorm(C1, 0, x, res, g, x, res, rows, H, true); });
      // The ceiling: the faster of the driver's copy and a 16-byte-vector copy kernel.
      double copyUs = std::min(time0([&] { cudaMemcpyAsync(cpy + e, cpy, e * 2, cudaMemcpyDeviceToDevice, s); }),
                               time0([&] { kCopy16<<<C1.ranks[0].sms * 8, 512, 0, s>>>(reinterpret_cast<const uint4*>(cpy), reinterpret_cast<uint4*>(cpy + e), (int64_t)(e * 2 / 16)); }));
      double normBytes = 4.0 * e * 2, copyBytes = 2.0 * e * 2;
      FL_CUDA(cudaGetLastError());
      printf("{\"section\":\"addnorm\",\"rows\":%lld,\"hidden\":%d,\"norm_us\":%.3f,\"norm_GBps\":%.3f,\"copy_us\":%.3f,\"copy_GBps\":%.3f}\n", (long long)rows, H,
             normUs, normBytes / normUs / 1e3, copyUs, copyBytes / copyUs / 1e3);
      fflush(stdout);
      cudaFree(x); cudaFree(res); cudaFree(g); cudaFree(cpy);
    }
  } catch (const std::exception& e) {
    fprintf(stderr, "fusionlab-worker --bench: %s\n", e.what());
    return 1;
  }
  return 0;
}

}  // namespace fl
