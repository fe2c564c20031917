// The bench suites by name: what `fusionlab bench` accepts and bench/main.ts runs. Names only, so
// the CLI can check and list them without importing a suite (some drive the app in chromium or the
// agent's native worker, which stay out of the CLI's module graph).

export const BENCH_SUITES = ['passes', 'kernels', 'fusions', 'ui', 'agent', 'sp'] as const;
export type BenchSuite = (typeof BENCH_SUITES)[number];

export function isBenchSuite(name: string | undefined): name is BenchSuite {
  return (BENCH_SUITES as readonly (string | undefined)[]).includes(name);
}

/** The line a run without a known suite prints (exit 2). */
export const CHOOSE_A_SUITE = `fusionlab bench: choose a suite: ${BENCH_SUITES.join(' | ')}\n`;
