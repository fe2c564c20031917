// The bench entry, `node --import tsx bench/main.ts <suite> [options]`: `fusionlab bench` starts
// it in a process of its own. Each suite is a module here exporting `bench(argv)` (the exit code);
// suites print ratios against a ceiling measured in the same run, never bare times.
import { CHOOSE_A_SUITE, isBenchSuite, type BenchSuite } from './suites.ts';

const SUITES: Record<BenchSuite, () => Promise<{ bench(argv: string[]): Promise<number> }>> = {
  passes: () => import('./passes.ts'),
  kernels: () => import('./kernels.ts'),
  fusions: () => import('./fusions.ts'),
  ui: () => import('./ui.ts'),
  agent: () => import('./agent.ts'),
  sp: () => import('./sequenceParallel.ts'),
};

async function main([suite, ...rest]: string[]): Promise<number> {
  if (!isBenchSuite(suite)) {
    process.stderr.write(CHOOSE_A_SUITE);
    return 2;
  }
  try {
    return await (await SUITES[suite]()).bench(rest);
  } catch (e) {
    // As the CLI's last guard: a bug ends in one line and exit 2 rather than a stack trace.
    const what = e instanceof Error ? `${e.name}: ${e.message}` : String(e);
    process.stderr.write(`fusionlab bench: internal error: ${what.split('\n')[0]}\n`);
    return 2;
  }
}

process.exitCode = await main(process.argv.slice(2));
