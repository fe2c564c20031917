// `fusionlab bench agent`: the native worker's NCCL all-reduce beside torch.distributed's, the
// one-shot fused all-reduce + RMSNorm beside NCCL + a separate add+norm kernel, and add+RMSNorm
// beside the device's copy bandwidth. The driver is a plain script (agent/bench.mjs) so the GPU
// host can run it without node_modules.
export async function bench(argv: string[]): Promise<number> {
  const { runAgentBench } = (await import('../agent/bench.mjs')) as { runAgentBench(argv: string[]): Promise<number> };
  return runAgentBench(argv);
}
