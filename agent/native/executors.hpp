// The two executors of a Program: the host one (always built) and the CUDA one (built by nvcc).
#pragma once
#include <string>
#include <vector>

#include "program.hpp"

namespace fl {

struct GpuInfo {
  std::string name;
  uint64_t memoryBytes = 0;
  int ccMajor = 0, ccMinor = 0;
};

struct DeviceReport {
  std::string mode = "cpu";  // "cuda" when GPUs drive the run
  std::string reason;        // why the CPU is used, when it is
  std::vector<GpuInfo> gpus;
  std::string cudaVersion, ncclVersion;
  std::vector<std::vector<int>> peer;  // peer[i][j]: GPU i can read GPU j's memory
};

/** Writes an error reply naming the node and ends the worker (the agent starts a new one). Used
 *  where other ranks may already wait on this one, so unwinding could hang. */
[[noreturn]] void failRun(const std::string& node, const std::string& message);

RunOutcome runOnCpu(const Program& p, const uint8_t* payload, const StepHook& hook);

#ifndef FUSIONLAB_CPU_ONLY
/** Probes the CUDA devices; mode stays "cpu" (with the reason) when none can be used. */
DeviceReport probeCuda();
/** Runs on GPUs 0..world-1, one host thread per GPU. Throws StepError naming the node on failure. */
RunOutcome runOnCuda(const Program& p, const uint8_t* payload, const StepHook& hook);
/** `--bench`: times NCCL all-reduce, the fused one-shot kernel and add+RMSNorm; prints JSON. */
int benchCuda(int argc, char** argv);
#endif

}  // namespace fl
