// The CUDA executor: ranks = GPUs 0..world-1 of this host, one host thread per GPU, NCCL for
// all_reduce, cuBLAS for mm/addmm, and the fused all-reduce + RMSNorm kernels over peer memory (allreduce_fusion.cuh).
// FUSIONLAB_NO_CUBLAS / FUSIONLAB_NO_NCCL exist only so the source compiles on machines with
// cudart alone; such builds use plain kernels for GEMM and refuse all_reduce.
#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <stdexcept>
#include <thread>

#include "cluster.cuh"
#include "executors.hpp"
#include "collective_gemm.cuh"

namespace fl {

static Cluster g_cluster;

static int gridFor(int64_t n, int sms) { return (int)std::max<int64_t>(1, std::min<int64_t>((n + 255) / 256, (int64_t)sms * 8)); }

Cluster& clusterFor(int world) {
  if (g_cluster.world == world) return g_cluster;
  for (size_t r = 0; r < g_cluster.ranks.size(); r++) {  // a different world size: start over
    cudaSetDevice((int)r);
    auto& k = g_cluster.ranks[r];
#ifndef FUSIONLAB_NO_NCCL
    if (k.comm) ncclCommDestroy(k.comm);
#endif
#ifndef FUSIONLAB_NO_CUBLAS
    if (k.blas) cublasDestroy(k.blas);
#endif
    cudaFree(k.flags);
    cudaFree(k.fusionCtl);
    cudaFree(k.lamport);
    cudaFree(k.twoShot);
    cudaStreamDestroy(k.stream);
  }
  g_cluster = Cluster{};
  Cluster& C = g_cluster;
  C.ranks.resize(world);
  C.allPeers = true;
  for (int r = 0; r < world; r++) {
    FL_CUDA(cudaSetDevice(r));
    auto& k = C.ranks[r];
    FL_CUDA(cudaStreamCreateWithFlags(&k.stream, cudaStreamNonBlocking));
    FL_CUDA(cudaMalloc(&k.flags, kFlagWords * sizeof(unsigned)));
    FL_CUDA(cudaMemset(k.flags, 0, kFlagWords * sizeof(unsigned)));
    FL_CUDA(cudaMalloc(&k.fusionCtl, sizeof(FusionCtl)));
    FL_CUDA(cudaMemset(k.fusionCtl, 0, sizeof(FusionCtl)));
    FL_CUDA(cudaDeviceGetAttribute(&k.sms, cudaDevAttrMultiProcessorCount, r));
#ifndef FUSIONLAB_NO_CUBLAS
    if (cublasCreate(&k.blas) != CUBLAS_STATUS_SUCCESS) throw std::runtime_error("cublasCreate failed on GPU " + std::to_string(r));
    cublasSetStream(k.blas, k.stream);
#endif
    for (int j = 0; j < world; j++) {
      if (j == r) continue;
      int can = 0;
      cudaDeviceCanAccessPeer(&can, r, j);
      if (can) {
        cudaError_t e = cudaDeviceEnablePeerAccess(j, 0);
        if (e != cudaSuccess && e != cudaErrorPeerAccessAlreadyEnabled) can = 0;
        cudaGetLastError();  // the already-enabled case leaves a sticky-free error to clear
      }
      if (!can && C.allPeers) {
        C.allPeers = false;
        C.missingPeer = "GPU " + std::to_string(r) + " cannot read GPU " + std::to_string(j);
      }
    }
  }
#ifndef FUSIONLAB_NO_NCCL
  std::vector<ncclComm_t> comms(world);
  std::vector<int> devs(world);
  for (int r = 0; r < world; r++) devs[r] = r;
  FL_NCCL(ncclCommInitAll(comms.data(), world, devs.data()));
  for (int r = 0; r < world; r++) C.ranks[r].comm = comms[r];
#endif
  C.world = world;
  return C;
}

void ensureFusionBuffers(Cluster& C, unsigned long long elems, size_t elemBytes) {
  if (elems <= C.fusionElems && elemBytes == C.fusionElemBytes) return;
  // Whole 64-element blocks, so every region and rank slot starts 16-byte aligned for the vector
  // kernels (uint4 loads) whatever row width set the size: an odd rows · cols once put them off.
  elems = (std::max(elems, C.fusionElems) + 63) & ~63ull;
  const unsigned long long W = (unsigned long long)C.world;
  for (int r = 0; r < C.world; r++) {
    FL_CUDA(cudaSetDevice(r));
    FL_CUDA(cudaDeviceSynchronize());
    auto& k = C.ranks[r];
    cudaFree(k.lamport);
    cudaFree(k.twoShot);
    k.lamport = k.twoShot = nullptr;
    C.fusionElems = 0;
    const unsigned long long lamportElems = 3 * W * elems, twoShotElems = 2 * (W + 1) * elems;
    if (cudaMalloc(&k.lamport, lamportElems * elemBytes) != cudaSuccess || cudaMalloc(&k.twoShot, twoShotElems * elemBytes) != cudaSuccess)
      throw std::runtime_error("out of GPU memory on GPU " + std::to_string(r) + " for the fused all-reduce buffers (" +
                               std::to_string((lamportElems + twoShotElems) * elemBytes) + " bytes)");
    // Every Lamport slot starts as "not arrived"; the control words and barrier epochs restart.
    if (elemBytes == 2) kFillSentinel<__nv_bfloat16><<<1024, 256, 0, k.stream>>>(static_cast<__nv_bfloat16*>(k.lamport), lamportElems);
    else kFillSentinel<float><<<1024, 256, 0, k.stream>>>(static_cast<float*>(k.lamport), lamportElems);
    FL_CUDA(cudaMemsetAsync(k.fusionCtl, 0, sizeof(FusionCtl), k.stream));
    FL_CUDA(cudaMemsetAsync(k.flags, 0, kFlagWords * sizeof(unsigned), k.stream));
    FL_CUDA(cudaStreamSynchronize(k.stream));
  }
  C.fusionElems = elems;
  C.fusionElemBytes = elemBytes;
}

DeviceReport probeCuda() {
  DeviceReport d;
  int n = 0;
  cudaError_t e = cudaGetDeviceCount(&n);
  if (e != cudaSuccess || n == 0) {
    d.reason = e != cudaSuccess ? std::string("no CUDA device: ") + cudaGetErrorString(e) : "no CUDA device";
    cudaGetLastError();
    return d;
  }
  d.mode = "cuda";
  int rt = 0;
  cudaRuntimeGetVersion(&rt);
  d.cudaVersion = std::to_string(rt / 1000) + "." + std::to_string((rt % 1000) / 10);
#ifndef FUSIONLAB_NO_NCCL
  int nv = 0;
  ncclGetVersion(&nv);
  d.ncclVersion = std::to_string(nv / 10000) + "." + std::to_string((nv / 100) % 100) + "." + std::to_string(nv % 100);
#endif
  for (int i = 0; i < n; i++) {
    cudaDeviceProp p{};
    cudaGetDeviceProperties(&p, i);
    d.gpus.push_back({p.name, (uint64_t)p.totalGlobalMem, p.major, p.minor});
  }
  d.peer.assign(n, std::vector<int>(n, 0));
  for (int i = 0; i < n; i++)
    for (int j = 0; j < n; j++) {
      int can = i == j;
      if (i != j) cudaDeviceCanAccessPeer(&can, i, j);
      d.peer[i][j] = can;
    }
  return d;
}

namespace {

struct NormShape { int V; int threads; };
/** Vector width and block size for a row of `cols`; each thread holds ≤ kMaxVecPerThread vectors. */
template <typename T>
NormShape normShape(const Step& st, int64_t cols, int perThread, int64_t xOffset = 0, int64_t xStride = 0) {
  int V = sizeof(T) == 2 ? 8 : 4;
  // 16-byte vectors need every row start aligned: the width, the offset and the row stride.
  if (cols % V || xOffset % V || xStride % V) V = 1;
  int64_t nvec = cols / V;
  int threads = normThreads(nvec, perThread);
  if (nvec > (int64_t)threads * kMaxVecPerThread)
    throw StepError(st.node, "a row of " + std::to_string(cols) + " columns exceeds the norm kernel's limit of " +
                                 std::to_string(1024 * kMaxVecPerThread * V));
  return {V, threads};
}

template <typename T>
void launchAddRmsNorm(const Step& st, cudaStream_t s, int sms, const T* x, int64_t xOffset, int64_t xStride, const T* res, const T* g, T* y, T* z,
                      int64_t rows, int cols, float eps, bool two) {
  if (rows == 0) return;
  NormShape ns = normShape<T>(st, cols, 1, xOffset, xStride);  // checks the row fits the kernel
  if (ns.V == 1) launchAddRmsNormV<T, 1>(s, sms, x + xOffset, xStride, res, g, y, z, rows, cols, eps, two);
  else launchAddRmsNormV<T, 16 / sizeof(T)>(s, sms, x + xOffset, xStride, res, g, y, z, rows, cols, eps, two);
}

template <typename T>
FusionPath launchFusedAllReduceNorm(const Step& st, Cluster& C, int rank, const T* in, const T* res, const T* g, T* y, T* z, T* ar, int64_t rows, int cols,
                                   float eps) {
  NormShape ns = normShape<T>(st, cols, 1);
  FusionPath path = fusionPathFor(C.world, rows, cols, sizeof(T));
  // Checks run each kernel through the executor at sizes the switch would give the other.
  if (const char* force = std::getenv("FUSIONLAB_ALLREDUCE_FUSION")) {
    if (!std::strcmp(force, "one-shot")) path = FusionPath::OneShot;
    else if (!std::strcmp(force, "one-shot-barrier")) path = FusionPath::OneShotBarrier;
    else if (!std::strcmp(force, "two-shot")) path = FusionPath::TwoShot;
    else throw StepError(st.node, std::string("FUSIONLAB_ALLREDUCE_FUSION is '") + force + "'; expected one-shot, one-shot-barrier or two-shot");
  }
  if (rows == 0) return path;
  if (ns.V == 1) return launchAllReduceNormV<T, 1>(C, rank, path, in, res, g, y, z, ar, rows, cols, eps);
  return launchAllReduceNormV<T, 16 / sizeof(T)>(C, rank, path, in, res, g, y, z, ar, rows, cols, eps);
}

template <typename T>
void ncclAllReduceSum(const Step& st, RankCtx& k, const void* in, void* out, int64_t n) {
#ifndef FUSIONLAB_NO_NCCL
  ncclDataType_t t = sizeof(T) == 2 ? ncclBfloat16 : ncclFloat32;
  ncclResult_t r = ncclAllReduce(in, out, (size_t)n, t, ncclSum, k.comm, k.stream);
  if (r != ncclSuccess) throw StepError(st.node, std::string("ncclAllReduce: ") + ncclGetErrorString(r));
#else
  (void)k; (void)in; (void)out; (void)n;
  throw StepError(st.node, "this worker was built without NCCL");
#endif
}

/** reduce_scatter / all_gather along tokens: `n` elements out (reduce_scatter) or per rank in (all_gather). */
template <typename T>
void ncclScatterGather(const Step& st, RankCtx& k, const void* in, void* out, int64_t n, bool reduceScatter) {
#ifndef FUSIONLAB_NO_NCCL
  ncclDataType_t t = sizeof(T) == 2 ? ncclBfloat16 : ncclFloat32;
  ncclResult_t r = reduceScatter ? ncclReduceScatter(in, out, (size_t)n, t, ncclSum, k.comm, k.stream) : ncclAllGather(in, out, (size_t)n, t, k.comm, k.stream);
  if (r != ncclSuccess) throw StepError(st.node, std::string(reduceScatter ? "ncclReduceScatter: " : "ncclAllGather: ") + ncclGetErrorString(r));
#else
  (void)k; (void)in; (void)out; (void)n; (void)reduceScatter;
  throw StepError(st.node, "this worker was built without NCCL");
#endif
}

/** Enqueues one step on one rank's stream; returns a note for the trace (the path taken). */
template <typename T>
std::string launchStep(const Program& p, const Step& st, Cluster& C, int rank, const std::vector<std::vector<void*>>& buf) {
  RankCtx& k = C.ranks[rank];
  cudaStream_t s = k.stream;
  auto in = [&](size_t q) -> const T* {
    if (q >= st.in.size() || st.in[q] < 0) throw StepError(st.node, "missing operand " + std::to_string(q));
    return static_cast<const T*>(buf[rank][st.in[q]]);
  };
  auto out = [&](size_t q) -> T* {
    if (q >= st.out.size() || st.out[q] < 0) return nullptr;
    return static_cast<T*>(buf[rank][st.out[q]]);
  };
  // Arguments were checked against their op's layout when the program was parsed (parseProgram).
  int64_t n0 = st.out.empty() || st.out[0] < 0 ? 0 : p.slotNumel[st.out[0]];
  int grid = gridFor(n0, k.sms);
  switch (st.op) {
    case OpCode::Fill: kFill<T><<<grid, 256, 0, s>>>(out(0), n0, (float)argsOf<FillArgs>(st).value); break;
    case OpCode::Add: kAdd<T><<<grid, 256, 0, s>>>(in(0), in(1), out(0), n0, (float)argsOf<AddArgs>(st).alpha); break;
    case OpCode::Gather: {
      const GatherArgs a = argsOf<GatherArgs>(st);
      GatherKernelArgs g{};
      g.offset = a.offset;
      g.nd = (int)a.nd;
      if (a.nd > kMaxGatherDims) throw StepError(st.node, "a view of " + std::to_string(a.nd) + " dims (limit " + std::to_string(kMaxGatherDims) + ")");
      for (int d = 0; d < g.nd; d++) { g.outShape[d] = a.outShape[d]; g.inShape[d] = a.inShape[d]; g.stride[d] = a.stride[d]; g.lo[d] = a.lo[d]; }
      g.value = (float)a.value;
      if (!n0) break;
      // Token ids and masks are i32 slots whatever the run's dtype.
      if (p.slotIsInt[st.out[0]]) kGather<int32_t><<<grid, 256, 0, s>>>(static_cast<const int32_t*>(buf[rank][st.in[0]]), static_cast<int32_t*>(buf[rank][st.out[0]]), n0, g);
      else kGather<T><<<grid, 256, 0, s>>>(in(0), out(0), n0, g);
      break;
    }
    case OpCode::Map: {
      if (!n0) break;
      const bool hasB = st.in.size() > 1 && st.in[1] >= 0;
      const MapArgs a = argsOf<MapArgs>(st);
      kMap<T><<<grid, 256, 0, s>>>(buf[rank][st.in.at(0)], p.slotIsInt[st.in[0]], hasB ? buf[rank][st.in[1]] : nullptr, hasB && p.slotIsInt[st.in[1]],
                                   buf[rank][st.out[0]], p.slotIsInt[st.out[0]], n0, (int)a.fn, (float)a.scalar);
      break;
    }
    case OpCode::Fp8Quant: kFp8Quant<T><<<grid, 256, 0, s>>>(in(0), in(1), out(0), n0, argsOf<Fp8QuantArgs>(st).satfinite != 0); break;
    case OpCode::ReduceRows: {
      const ReduceRowsArgs a = argsOf<ReduceRowsArgs>(st);
      if (a.rows > 0)
        kReduceRows<T><<<gridFor(a.rows, k.sms), 256, 0, s>>>(in(0), out(0), a.rows, a.cols, a.xOffset, a.xRowStride, a.mean != 0);
      break;
    }
    case OpCode::Seed: {
      const SeedArgs a = argsOf<SeedArgs>(st, p.world);
      uint32_t seed = (uint32_t)a.seed, stream = (uint32_t)a.stream[rank];
      if (!n0) break;
      if (p.slotIsInt[st.out[0]]) kSeedIndex<<<grid, 256, 0, s>>>(static_cast<int32_t*>(buf[rank][st.out[0]]), n0, seed, stream, a.range);
      else kSeed<T><<<grid, 256, 0, s>>>(out(0), n0, seed, stream, (float)a.scale, (float)a.offset);
      break;
    }
    case OpCode::Embedding: {
      const EmbeddingArgs a = argsOf<EmbeddingArgs>(st);
      int64_t Tn = a.T, V = a.V, H = a.H;
      if (!Tn) break;
      unsigned long long* bad = nullptr;
      if (cudaMallocAsync(&bad, sizeof(*bad), s) != cudaSuccess) throw StepError(st.node, "out of GPU memory");
      cudaMemsetAsync(bad, 0, sizeof(*bad), s);
      kEmbedding<T><<<grid, 256, 0, s>>>(in(0), static_cast<const int32_t*>(buf[rank][st.in[1]]), out(0), Tn, V, H, bad);
      unsigned long long pos = 0;
      cudaMemcpyAsync(&pos, bad, sizeof(pos), cudaMemcpyDeviceToHost, s);
      cudaStreamSynchronize(s);  // a bad token id must fail this node, not a later one
      cudaFreeAsync(bad, s);
      if (pos) throw StepError(st.node, "a token id at position " + std::to_string(pos - 1) + " is outside the vocabulary [0, " + std::to_string(V) + ")");
      break;
    }
    case OpCode::Mm: {
      const MmArgs a = argsOf<MmArgs>(st);
      int64_t M = a.M, K = a.K, N = a.N, biasMode = a.biasMode, transB = a.transB;
      float* acc = nullptr;
      if (M * N == 0) break;
      if (cudaMallocAsync(&acc, (size_t)M * N * sizeof(float), s) != cudaSuccess) throw StepError(st.node, "out of GPU memory for the GEMM accumulator");
#ifndef FUSIONLAB_NO_CUBLAS
      // Row-major C = A·B is column-major Cᵀ = Bᵀ·Aᵀ: swap the operands instead of transposing.
      // A row-major [N, K] weight read as column-major is already Bᵀ's transpose: op T.
      const float one = 1.f, zero = 0.f;
      cudaDataType_t dt = sizeof(T) == 2 ? CUDA_R_16BF : CUDA_R_32F;
      cublasStatus_t bs = cublasGemmEx(k.blas, transB ? CUBLAS_OP_T : CUBLAS_OP_N, CUBLAS_OP_N, (int)N, (int)M, (int)K, &one, in(1), dt, transB ? (int)K : (int)N,
                                       in(0), dt, (int)K, &zero, acc, CUDA_R_32F, (int)N, CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT);
      if (bs != CUBLAS_STATUS_SUCCESS) throw StepError(st.node, "cublasGemmEx failed with status " + std::to_string((int)bs));
#else
      kGemmNaive<T><<<gridFor(M * N, k.sms), 256, 0, s>>>(in(0), in(1), acc, M, K, N, transB != 0);
#endif
      kBiasEpilogue<T><<<gridFor(M * N, k.sms), 256, 0, s>>>(acc, biasMode ? in(2) : nullptr, out(0), M, N, (int)biasMode, (float)a.alpha, (float)a.beta);
      cudaFreeAsync(acc, s);
      break;
    }
    case OpCode::AllReduce: ncclAllReduceSum<T>(st, k, in(0), out(0), n0); return "nccl";
    case OpCode::ReduceScatter: ncclScatterGather<T>(st, k, in(0), out(0), n0, true); return "nccl";
    case OpCode::MmReduceScatter: {
      const MmReduceScatterArgs a = argsOf<MmReduceScatterArgs>(st);
      return launchMmReduceScatter<T>(st, k, rank, C.world, in(0), in(1), out(0), out(1), a.M, a.K, a.N, a.biasMode, a.transB != 0, (float)a.alpha,
                                      (float)a.beta, a.biasMode == 1 ? in(2) : nullptr);
    }
    case OpCode::AllGather: ncclScatterGather<T>(st, k, in(0), out(0), n0 / C.world, false); return "nccl";
    case OpCode::RmsNorm: {
      const RmsNormArgs a = argsOf<RmsNormArgs>(st);
      launchAddRmsNorm<T>(st, s, k.sms, in(0), a.xOffset, a.xRowStride, nullptr, in(1), out(0), nullptr, a.rows, (int)a.cols, (float)a.eps, true);
      break;
    }
    case OpCode::FusedAddRmsNorm: {
      const FusedAddRmsNormArgs a = argsOf<FusedAddRmsNormArgs>(st);
      launchAddRmsNorm<T>(st, s, k.sms, in(0), a.xOffset, a.xRowStride, in(1), in(2), out(0), out(1), a.rows, (int)a.cols, (float)a.eps, true);
      break;
    }
    case OpCode::AllReduceNorm: {
      const AllReduceNormArgs a = argsOf<AllReduceNormArgs>(st);
      const float eps = (float)a.eps;
      int64_t rows = a.rows;
      int cols = (int)a.cols;
      if (C.allPeers && !p.forceNcclFallback) {
        return std::string(fusionPathName(launchFusedAllReduceNorm<T>(st, C, rank, in(0), in(1), in(2), out(0), out(1), out(2), rows, cols, eps))) +
               " over peer memory";
      }
      T* ar = out(2);
      bool temp = ar == nullptr;
      if (temp && cudaMallocAsync(&ar, (size_t)rows * cols * sizeof(T), s) != cudaSuccess) throw StepError(st.node, "out of GPU memory");
      ncclAllReduceSum<T>(st, k, in(0), ar, rows * cols);
      launchAddRmsNorm<T>(st, s, k.sms, ar, 0, cols, in(1), in(2), out(0), out(1), rows, cols, eps, false);
      if (temp) cudaFreeAsync(ar, s);
      return std::string("fallback: NCCL all-reduce + fused add+RMSNorm (") + (p.forceNcclFallback ? "requested" : C.missingPeer) + ")";
    }
    case OpCode::Moe: {
      const MoeArgs a = argsOf<MoeArgs>(st);
      int64_t T_ = a.T, H = a.H, E = a.E, Iw = a.I;
      int K = (int)std::min<int64_t>(a.K, E);
      if (K < 1 || K > 8) throw StepError(st.node, "top-k must be 1..8");
      if (T_ == 0) break;
      int* idx = nullptr;
      float *wk = nullptr, *act = nullptr;
      if (cudaMallocAsync(&idx, T_ * K * sizeof(int), s) != cudaSuccess || cudaMallocAsync(&wk, T_ * K * sizeof(float), s) != cudaSuccess ||
          cudaMallocAsync(&act, T_ * K * Iw * sizeof(float), s) != cudaSuccess)
        throw StepError(st.node, "out of GPU memory for the MoE scratch");
      kMoeRoute<T><<<(unsigned)((T_ + 127) / 128), 128, 0, s>>>(in(1), T_, (int)E, K, idx, wk);
      kMoeExpertUp<T><<<dim3((unsigned)(T_ * K), (unsigned)((Iw + 127) / 128)), 128, 0, s>>>(in(0), in(2), in(3), idx, act, H, Iw, K);
      kMoeExpertDown<T><<<dim3((unsigned)T_, (unsigned)((H + 127) / 128)), 128, 0, s>>>(act, in(4), in(5), idx, wk, out(0), H, Iw, K, rank == 0);
      cudaFreeAsync(idx, s);
      cudaFreeAsync(wk, s);
      cudaFreeAsync(act, s);
      break;
    }
  }
  return "";
}

}  // namespace

RunOutcome runOnCuda(const Program& p, const uint8_t* payload, const StepHook& hook) {
  Cluster& C = clusterFor(p.world);
  const int W = p.world;
  const size_t nSlots = p.slotNumel.size(), nSteps = p.steps.size();
  std::vector<std::vector<void*>> buf(W, std::vector<void*>(nSlots, nullptr));
  if (C.allPeers && !p.forceNcclFallback) {
    unsigned long long fused = 0;
    for (const Step& st : p.steps)
      if (st.op == OpCode::AllReduceNorm) {
        const AllReduceNormArgs a = argsOf<AllReduceNormArgs>(st);
        fused = std::max<unsigned long long>(fused, (unsigned long long)(a.rows * a.cols));
      }
    if (fused) ensureFusionBuffers(C, fused, elemBytes(p.dtype));
  }
  auto freeAll = [&] {
    for (int r = 0; r < W; r++) { cudaSetDevice(r); for (void* b : buf[r]) if (b) cudaFree(b); }
  };
  try {
    for (int r = 0; r < W; r++) {
      FL_CUDA(cudaSetDevice(r));
      for (size_t s = 0; s < nSlots; s++)
        if (p.slotBytes((int)s) && cudaMalloc(&buf[r][s], p.slotBytes((int)s)) != cudaSuccess)
          throw StepError("allocation", "out of GPU memory on GPU " + std::to_string(r) + " allocating " + std::to_string(p.slotBytes((int)s)) + " bytes");
    }
    for (auto& b : p.inputs)
      for (int r = 0; r < W; r++)
        if (b.rank < 0 || b.rank == r) {
          FL_CUDA(cudaSetDevice(r));
          FL_CUDA(cudaMemcpy(buf[r][b.slot], payload + b.offset, p.slotBytes(b.slot), cudaMemcpyHostToDevice));
        }
  } catch (...) {
    freeAll();
    throw;
  }

  RunOutcome out;
  std::vector<std::vector<TraceRecord>> perRank(W);
  const bool syncEachStep = std::getenv("FUSIONLAB_SYNC_STEPS") != nullptr;
  const bool debugAbort = !p.abortAt.empty() && std::getenv("FUSIONLAB_WORKER_DEBUG") != nullptr;
  auto rankThread = [&](int r) {
    RankCtx& k = C.ranks[r];
    cudaSetDevice(r);
    std::vector<cudaEvent_t> ev(2 * nSteps + 1);
    for (auto& e : ev) cudaEventCreate(&e);
    std::vector<std::string> notes(nSteps);
    cudaEventRecord(ev[0], k.stream);
    size_t k0 = 0;
    try {
      for (k0 = 0; k0 < nSteps; k0++) {
        const Step& st = p.steps[k0];
        if (r == 0) hook((int)k0);
        if (debugAbort && st.node == p.abortAt) {
          if (r != 0) hook((int)k0);  // name the node this thread stops at, not rank 0's last
          std::abort();
        }
        cudaEventRecord(ev[1 + 2 * k0], k.stream);
        notes[k0] = p.dtype == DType::BF16 ? launchStep<__nv_bfloat16>(p, st, C, r, buf) : launchStep<float>(p, st, C, r, buf);
        cudaEventRecord(ev[2 + 2 * k0], k.stream);
        cudaError_t e = cudaGetLastError();
        if (e == cudaSuccess && syncEachStep) e = cudaStreamSynchronize(k.stream);
        if (e != cudaSuccess) failRun(st.node, std::string("CUDA error on GPU ") + std::to_string(r) + ": " + cudaGetErrorString(e));
      }
      cudaError_t e = cudaStreamSynchronize(k.stream);
      if (e != cudaSuccess)
        failRun(nSteps ? p.steps[nSteps - 1].node : "run",
                std::string("asynchronous CUDA error on GPU ") + std::to_string(r) + " (set FUSIONLAB_SYNC_STEPS=1 to pin the node): " + cudaGetErrorString(e));
    } catch (const StepError& e) {
      // Peers may already wait in a collective for this rank: report and end the process.
      failRun(e.node, e.what());
    } catch (const std::exception& e) {
      failRun(k0 < nSteps ? p.steps[k0].node : "run", e.what());
    }
    for (size_t q = 0; q < nSteps; q++) {
      float a = 0, b = 0;
      cudaEventElapsedTime(&a, ev[0], ev[1 + 2 * q]);
      cudaEventElapsedTime(&b, ev[1 + 2 * q], ev[2 + 2 * q]);
      perRank[r].push_back({r, (int)q, a * 1000.0, b * 1000.0, notes[q]});
    }
    for (auto& e : ev) cudaEventDestroy(e);
  };
  std::vector<std::thread> threads;
  for (int r = 0; r < W; r++) threads.emplace_back(rankThread, r);
  for (auto& t : threads) t.join();
  for (auto& v : perRank) out.trace.insert(out.trace.end(), v.begin(), v.end());
  for (int s : p.outputs) {
    std::vector<std::vector<uint8_t>> rs;
    for (int r = 0; r < W; r++) {
      std::vector<uint8_t> bytes(p.slotBytes(s));
      cudaSetDevice(r);
      if (!bytes.empty()) FL_CUDA(cudaMemcpy(bytes.data(), buf[r][s], bytes.size(), cudaMemcpyDeviceToHost));
      rs.push_back(std::move(bytes));
    }
    out.outputs.push_back(std::move(rs));
  }
  freeAll();
  return out;
}

}  // namespace fl
