// `fusionlab bench agent`: the native worker's NCCL all-reduce beside torch.distributed's, the
// fused all-reduce + RMSNorm kernels beside the CUDA-graphed unfused pairs (NCCL or torch
// symmetric memory + a separate add+norm), and add+RMSNorm beside the device's copy bandwidth. The driver is a plain script (agent/bench.mjs) so the GPU
// host can run it without node_modules.
export async function bench(argv: string[]): Promise<number> {
  const { runAgentBench } = (await import('../agent/bench.mjs')) as {
    runAgentBench(argv: string[]): Promise<number>;
  };
  return runAgentBench(argv);
}
