// Mutated real dumps (lines deleted, duplicated, swapped, cut; characters garbled) must each end
// in a Graph or a GraphImportError that points inside the text — never another exception.
// Each run uses a fresh seed, printed so a failure can be replayed: FUZZ_SEED=<seed>.

import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { GraphImportError } from '../errors.ts';
import { withoutSourceLines, type Graph } from '../ir.ts';
import { parseFx } from './parse.ts';
import { printFx } from './print.ts';
import { mutateText as mutate, prng } from '../mutants.ts';

const FIXTURES = new URL('../../../fixtures/fx/', import.meta.url);
const SOURCES = [
  'real/qwen2-paral1_layer1-r0.py',
  'real/qwen2-paral2_layer1-r0.py',
  'real/qwen2-paral4_layer1-r0.py',
  'real/gpt-paral2_layer2-r0.py',
  'seed/pr28841-before.fragment.txt',
  'seed/pr28841-after.fragment.txt',
].map((f) => ({ file: f, text: readFileSync(new URL(f, FIXTURES), 'utf8') }));
const CASES = process.env.FUZZ_CASES ? Number(process.env.FUZZ_CASES) : 600;

describe('fuzzing parseFx with mutated real dumps', () => {
  // The seed is in the test's name, so a failure report carries it.
  const seed = process.env.FUZZ_SEED ? Number(process.env.FUZZ_SEED) : Math.floor(Math.random() * 2 ** 31);
  it(`${CASES} mutations end in a Graph or a positioned GraphImportError (seed ${seed})`, () => {
    console.log(`fuzz seed ${seed} (replay: FUZZ_SEED=${seed} npx vitest run src/graph/fx/fuzz.test.ts)`);
    const rnd = prng(seed);
    let graphs = 0;
    let errors = 0;
    for (let c = 0; c < CASES; c++) {
      const src = SOURCES[Math.floor(rnd() * SOURCES.length)];
      const { text, steps } = mutate(src.text, rnd);
      const where = `seed ${seed}, case ${c}, ${src.file}: ${steps.join('; ')}`;
      let graph: Graph | undefined;
      try {
        graph = parseFx(text).graph;
      } catch (e) {
        if (!(e instanceof GraphImportError)) throw new Error(`${where}: threw ${String(e)}`, { cause: e });
        const lines = text.split('\n');
        const lineText = (lines[e.line - 1] ?? '').replace(/\r$/, '');
        if (!(e.line >= 1 && e.line <= lines.length && e.col >= 1 && e.col <= lineText.length + 1)) {
          throw new Error(`${where}: error position ${e.line}:${e.col} is outside the text (${e.message})`);
        }
        expect(e.format()).toContain(`${e.line}:${e.col}: `);
        errors++;
      }
      if (graph) {
        // What imports must also print and import back to the same graph.
        const again = parseFx(printFx(graph)).graph;
        if (JSON.stringify(withoutSourceLines(again)) !== JSON.stringify(withoutSourceLines(graph))) {
          expect(withoutSourceLines(again), where).toEqual(withoutSourceLines(graph));
        }
        graphs++;
      }
    }
    console.log(`fuzz: ${graphs} graphs, ${errors} import errors`);
    // Both outcomes occur: mutations that break the text, and harmless ones (a deleted blank line).
    expect(graphs).toBeGreaterThan(0);
    expect(errors).toBeGreaterThan(0);
  });
});
