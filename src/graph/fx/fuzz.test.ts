// Mutated real dumps (lines deleted, duplicated, swapped, cut; characters garbled) must each end
// in a Graph or a GraphImportError that points inside the text — never another exception.
// Each run uses a fresh seed, printed so a failure can be replayed: FUZZ_SEED=<seed>.

import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { GraphImportError } from '../errors.ts';
import { withoutSourceLines, type Graph } from '../ir.ts';
import { parseFx } from './parse.ts';
import { printFx } from './print.ts';

const FIXTURES = new URL('../../../fixtures/fx/', import.meta.url);
const SOURCES = [
  'real/qwen2-paral1_layer1-r0.py', 'real/qwen2-paral2_layer1-r0.py', 'real/qwen2-paral4_layer1-r0.py',
  'real/gpt-paral2_layer2-r0.py', 'seed/pr28841-before.fragment.txt', 'seed/pr28841-after.fragment.txt',
].map((f) => ({ file: f, text: readFileSync(new URL(f, FIXTURES), 'utf8') }));
const CASES = process.env.FUZZ_CASES ? Number(process.env.FUZZ_CASES) : 600;

/** mulberry32: small, fast, and the same sequence for the same seed everywhere. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const NASTY = ['(', ')', '[', ']', '{', '}', "'", '"', ',', ':', '=', '#', '%', '\0', '\uFFFD', 'é', '\t', '\n', '-', '.', '*', ';', ' ', '\\', '0', 'x'];

function mutate(text: string, rnd: () => number): { text: string; steps: string[] } {
  const pick = (n: number) => Math.floor(rnd() * n);
  let lines = text.split('\n');
  const steps: string[] = [];
  const rounds = 1 + pick(3);
  for (let r = 0; r < rounds; r++) {
    if (lines.length === 0) lines = [''];
    const i = pick(lines.length);
    switch (pick(8)) {
      case 0: steps.push(`delete line ${i + 1}`); lines.splice(i, 1); break;
      case 1: steps.push(`duplicate line ${i + 1}`); lines.splice(i, 0, lines[i]); break;
      case 2: {
        const j = pick(lines.length);
        steps.push(`swap lines ${i + 1} and ${j + 1}`);
        [lines[i], lines[j]] = [lines[j], lines[i]];
        break;
      }
      case 3: {
        const at = pick(lines[i].length + 1);
        steps.push(`cut line ${i + 1} at ${at}`);
        lines[i] = lines[i].slice(0, at);
        break;
      }
      case 4: {
        const all = lines.join('\n');
        const at = pick(all.length + 1);
        steps.push(`cut text at ${at}`);
        lines = all.slice(0, at).split('\n');
        break;
      }
      case 5: case 6: case 7: {
        const line = lines[i];
        const at = pick(line.length + 1);
        const ch = NASTY[pick(NASTY.length)];
        const kind = ['replace', 'delete', 'insert'][pick(3)];
        steps.push(`${kind} ${JSON.stringify(ch)} at line ${i + 1}:${at + 1}`);
        if (kind === 'replace') lines[i] = line.slice(0, at) + ch + line.slice(at + 1);
        else if (kind === 'delete') lines[i] = line.slice(0, at) + line.slice(at + 1);
        else lines[i] = line.slice(0, at) + ch + line.slice(at);
        break;
      }
    }
  }
  return { text: lines.join('\n'), steps };
}


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
