// `fusionlab-worker --bench`: times, with CUDA events, what `npm run bench -- agent` reports.
// Prints one JSON object per line; the Node driver (agent/bench.mjs) pairs them with
// torch.distributed's figures and prints ratios.
//   allreduce  NCCL all-reduce (bf16, sum) bus bandwidth over all local GPUs, 1 MiB .. 1 GiB
//   fused      one-shot all-reduce + residual + RMSNorm vs NCCL all-reduce + fused add+RMSNorm
//   addnorm    fused add+RMSNorm bandwidth vs a device-to-device copy on GPU 0
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

void launchOneShot(Cluster& C, int r, const std::vector<bf16*>& in, const bf16* res, const bf16* g, bf16* y, bf16* z, int64_t rows, int cols) {
  OneShotArgs a{};
  int minSms = 1 << 30;
  for (int q = 0; q < C.world; q++) { a.in[q] = in[q]; a.flags[q] = C.ranks[q].flags; minSms = std::min(minSms, C.ranks[q].sms); }
  a.world = C.world;
  a.rank = r;
  a.epoch = ++C.ranks[r].epoch;
  int threads = normThreads(cols / 8, 1);
  int grid = (int)std::max<int64_t>(1, std::min<int64_t>({rows, (int64_t)minSms, (int64_t)kMaxBarrierBlocks}));
  kOneShotAllReduceNorm<bf16, 8><<<grid, threads, 0, C.ranks[r].stream>>>(a, res, g, y, z, nullptr, rows, cols, 1e-5f);
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
      for (int T : {1, 8, 32, 128, 512, 2048}) {
        size_t e = (size_t)T * H;
        auto in = allocRanks(C, e), res = allocRanks(C, e), g = allocRanks(C, H), y = allocRanks(C, e), z = allocRanks(C, e), ar = allocRanks(C, e);
        for (int r = 0; r < world; r++) {
          cudaSetDevice(r);
          initUniform(in[r], e, 11 + r, C.ranks[r].stream);
          initUniform(res[r], e, 101, C.ranks[r].stream);  // the residual is replicated across ranks
          initUniform(g[r], H, 7, C.ranks[r].stream);
        }
        double unfused = timeRanks(C, 10, 200, [&] {
          ncclAll(C, in, ar, e);
          for (int r = 0; r < world; r++) { cudaSetDevice(r); launchAddNorm(C, r, ar[r], res[r], g[r], y[r], z[r], T, H, false); }
        });
        std::vector<uint16_t> ref(e), got(e);
        cudaSetDevice(0);
        FL_CUDA(cudaMemcpy(ref.data(), y[0], e * 2, cudaMemcpyDeviceToHost));
        double fused = -1;
        double maxUlp = 0, maxAbs = 0;
        if (C.allPeers) {
          fused = timeRanks(C, 10, 200, [&] {
            for (int r = 0; r < world; r++) { cudaSetDevice(r); launchOneShot(C, r, in, res[r], g[r], y[r], z[r], T, H); }
          });
          cudaSetDevice(0);
          FL_CUDA(cudaMemcpy(got.data(), y[0], e * 2, cudaMemcpyDeviceToHost));
          // Distance in bf16 steps between the two paths (NCCL sums in its own order; a few ulps).
          for (size_t q = 0; q < e; q++) {
            // Order bf16 bit patterns as integers: negative values below -0, so a sign flip of a
            // value next to zero counts its true distance (2 steps), not 0x8000.
            auto key = [](uint16_t u) { return (u & 0x8000) ? -(int)(u & 0x7fff) : (int)(u & 0x7fff); };
            maxUlp = std::max(maxUlp, (double)std::abs(key(ref[q]) - key(got[q])));
            float fa, fb;
            uint32_t ua = (uint32_t)ref[q] << 16, ub = (uint32_t)got[q] << 16;
            memcpy(&fa, &ua, 4);
            memcpy(&fb, &ub, 4);
            maxAbs = std::max(maxAbs, (double)std::fabs(fa - fb));
          }
        }
        printf("{\"section\":\"fused\",\"tokens\":%d,\"hidden\":%d,\"fused_us\":%.3f,\"unfused_us\":%.3f,\"max_ulp\":%.0f,\"max_abs\":%.6g}\n", T, H, fused, unfused, maxUlp, maxAbs);
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
      double copyUs = time0([&] { cudaMemcpyAsync(cpy + e, cpy, e * 2 * 2 / 2, cudaMemcpyDeviceToDevice, s); });
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
