// 1,000 seeded mutants through the CLI, in process (see mutants.ts). Replay: CLI_MUTANT_SEED=<seed>.

import { describe, expect, it } from 'vitest';
import { runCliMutants } from './mutants.ts';

const CASES = process.env.CLI_MUTANTS ? Number(process.env.CLI_MUTANTS) : 1000;
const SEED = process.env.CLI_MUTANT_SEED ? Number(process.env.CLI_MUTANT_SEED) : 15;

describe('the CLI over seeded mutants of the real dumps', () => {
  it(`${CASES} mutants: exit 0, or exit 2 and one line; no stack trace (seed ${SEED})`, async () => {
    const r = await runCliMutants(SEED, CASES);
    console.log(
      `CLI mutants (seed ${SEED}): ${r.tried} tried, exit codes ${JSON.stringify(r.codes)}, ${r.failures.length} failed`,
    );
    expect(r.failures.slice(0, 10)).toEqual([]);
    // Both outcomes occur, so the mutants reach past the importers.
    expect(r.codes[0] ?? 0).toBeGreaterThan(CASES / 20);
    expect(r.codes[2] ?? 0).toBeGreaterThan(CASES / 4);
  }, 300_000);
});
