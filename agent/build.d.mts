// Types of build.mjs (a plain script so `npm run agent` needs no compiler).
export interface BuiltWorker { path: string; mode: 'cuda' | 'cpu'; note: string }
export function buildWorker(opts?: { forceCpu?: boolean; log?: (message: string) => void }): BuiltWorker;
export function checkCudaSources(opts?: { log?: (message: string) => void }): string | null;
export function buildCpuWorkerVariant(files: Record<string, string>, opts?: { log?: (message: string) => void }): string;
