// Types of build.mjs (a plain script so `npm run agent` needs no compiler).
export interface BuiltWorker { path: string; mode: 'cuda' | 'cpu'; note: string }
export function buildWorker(opts?: { forceCpu?: boolean; log?: (message: string) => void }): BuiltWorker;
export function checkCudaSources(opts?: { log?: (message: string) => void }): string | null;
/** `stdio: 'pipe'` keeps the compiler's output on the thrown error (`stderr`) instead of printing it. */
export function buildCpuWorkerVariant(files: Record<string, string>, opts?: { log?: (message: string) => void; stdio?: 'inherit' | 'pipe' }): string;
