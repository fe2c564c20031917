// Types of bench.mjs (a plain script so the GPU host runs it without node_modules).
export function runAgentBench(argv?: string[]): Promise<number>;
