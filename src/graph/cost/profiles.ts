// Hardware profiles for the cost model: one place for every number, each with its source.
// Bandwidths in bytes/s, compute in FLOP/s, times in µs. NVLink bandwidth is per GPU and per
// direction (NVIDIA quotes the bidirectional total: 900 GB/s on Hopper, 1.8 TB/s on Blackwell).

export interface HardwareProfile {
  name: string;
  gpu: 'hopper' | 'blackwell';
  /** HBM bandwidth, bytes/s. */
  hbmBytesPerSec: number;
  /** Dense BF16 tensor-core throughput, FLOP/s (datasheets quote it with 2:4 sparsity: halved here). */
  bf16FlopsPerSec: number;
  /** NVLink bandwidth per GPU, one direction, bytes/s. */
  nvlinkBytesPerSec: number;
  /** Latency of one step of a collective algorithm across NVLink, µs. */
  linkStepLatencyUs: number;
  /** Cost of one kernel launch as seen inside a CUDA graph, µs. */
  launchUs: number;
  /** Where each number comes from. */
  sources: Record<'hbm' | 'bf16' | 'nvlink' | 'latency' | 'launch', string>;
}

const LATENCY_SOURCE =
  'estimate, not from a datasheet: the order of one NVLink hop plus a flag handshake in NCCL / custom all-reduce kernels (~1 µs); used for all profiles so comparisons stay like for like';
const LAUNCH_SOURCE =
  'estimate, not from a datasheet: a kernel node replayed inside a CUDA graph costs on the order of 2 µs of GPU idle; the same for all profiles';

export const PROFILES: Record<string, HardwareProfile> = {
  'H100-NVLink': {
    name: 'H100 SXM5 80GB, NVLink 4 (HGX H100)',
    gpu: 'hopper',
    hbmBytesPerSec: 3.35e12,
    bf16FlopsPerSec: 989e12,
    nvlinkBytesPerSec: 450e9,
    linkStepLatencyUs: 1,
    launchUs: 2,
    sources: {
      hbm: 'NVIDIA H100 Tensor Core GPU datasheet: H100 SXM GPU memory bandwidth 3.35 TB/s',
      bf16: 'NVIDIA H100 datasheet: BF16 Tensor Core 1,979 TFLOPS with sparsity → 989 dense',
      nvlink: 'NVIDIA H100 datasheet: NVLink 900 GB/s (bidirectional) → 450 GB/s per direction',
      latency: LATENCY_SOURCE,
      launch: LAUNCH_SOURCE,
    },
  },
  'H200-NVLink': {
    name: 'H200 SXM 141GB, NVLink 4 (HGX H200)',
    gpu: 'hopper',
    hbmBytesPerSec: 4.8e12,
    bf16FlopsPerSec: 989e12,
    nvlinkBytesPerSec: 450e9,
    linkStepLatencyUs: 1,
    launchUs: 2,
    sources: {
      hbm: 'NVIDIA H200 Tensor Core GPU datasheet: H200 SXM GPU memory bandwidth 4.8 TB/s',
      bf16: 'NVIDIA H200 datasheet: BF16 Tensor Core 1,979 TFLOPS with sparsity → 989 dense',
      nvlink: 'NVIDIA H200 datasheet: NVLink 900 GB/s (bidirectional) → 450 GB/s per direction',
      latency: LATENCY_SOURCE,
      launch: LAUNCH_SOURCE,
    },
  },
  'B200-NVLink': {
    name: 'B200 180GB, NVLink 5 (HGX B200)',
    gpu: 'blackwell',
    hbmBytesPerSec: 8e12,
    bf16FlopsPerSec: 2.25e15,
    nvlinkBytesPerSec: 900e9,
    linkStepLatencyUs: 1,
    launchUs: 2,
    sources: {
      hbm: 'NVIDIA HGX B200 datasheet: GPU memory bandwidth 8 TB/s per GPU',
      bf16: 'NVIDIA HGX B200 datasheet: FP16/BF16 Tensor Core 4.5 PFLOPS with sparsity per GPU → 2.25 dense',
      nvlink:
        'NVIDIA HGX B200 datasheet: NVLink 5, 1.8 TB/s per GPU (bidirectional) → 900 GB/s per direction',
      latency: LATENCY_SOURCE,
      launch: LAUNCH_SOURCE,
    },
  },
};
