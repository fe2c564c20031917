// `fusionlab bench <suite>`: each suite is a module in bench/ exporting `bench(argv)`.
// Suites print ratios against a ceiling measured in the same run, never bare times.

const SUITES: Record<string, () => Promise<{ bench(argv: string[]): Promise<number> }>> = {
  passes: () => import('../../bench/passes.ts'),
  kernels: () => import('../../bench/kernels.ts'),
  ui: () => import('../../bench/ui.ts'),
  agent: () => import('../../bench/agent.ts'),
  sp: () => import('../../bench/sequenceParallel.ts'),
};

export async function command(argv: string[]): Promise<number> {
  const [suite, ...rest] = argv;
  const load = suite ? SUITES[suite] : undefined;
  if (!load) {
    process.stderr.write(`fusionlab bench: choose a suite: ${Object.keys(SUITES).join(' | ')}\n`);
    return 2;
  }
  return (await load()).bench(rest);
}
