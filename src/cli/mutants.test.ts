// 1,000 seeded mutants through the CLI, in process: mutated real dumps (FX text and
// fusionlab.graph/1 JSON, garbled or restructured) and mutated command lines. Every one ends in
// exit 0, or in exit 2 (1: a --compare that differs) with exactly one line on stderr and no
// stack trace; FX text the CLI writes imports back. Replay one seed: CLI_MUTANT_SEED=<seed>.

import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { parseFx } from '../graph/fx/parse.ts';
import { importGraph } from '../graph/formats.ts';
import { graphToJson } from '../graph/json.ts';
import { mutateGraphJson, mutateText, prng } from '../graph/mutants.ts';
import { runCliCaptured, type CliOutcome } from './captured.ts';

const FIXTURES = new URL('../../fixtures/fx/', import.meta.url);
const SOURCES = ['real/qwen2-paral2_layer1-r0.py', 'real/qwen2-paral4_layer1-r0.py', 'seed/pr28841-before.fragment.txt', 'seed/pr28841-after.fragment.txt']
  .map((f) => ({ file: f, text: readFileSync(new URL(f, FIXTURES), 'utf8') }));
const JSON_SOURCES = SOURCES.map((s) => ({ file: `${s.file}.json`, text: JSON.stringify(graphToJson(parseFx(s.text).graph)) }));
const CASES = process.env.CLI_MUTANTS ? Number(process.env.CLI_MUTANTS) : 1000;
const SEED = process.env.CLI_MUTANT_SEED ? Number(process.env.CLI_MUTANT_SEED) : 15;
const dir = mkdtempSync(join(tmpdir(), 'fusionlab-mutants-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const FLAGS: [string, string[]][] = [
  ['--passes', ['slice-hoist', 'allreduce-rmsnorm,slice-hoist', 'x', '', ',', 'noop-elimination,,']],
  ['--world-size', ['2', '3', '0', '-1', '1e9', 'two', '99999999999999999999']],
  ['--max-tokens', ['1', '0', '8192', 'NaN', '']],
  ['--gpu', ['hopper', 'blackwell', 'ampere', '']],
  ['--token-gate', ['compile-range', 'runtime-fallback', 'never']],
  ['--emit', ['fx', 'json', 'onnx']],
  ['--out', ['/nonexistent-dir/x.py', '', '.']],
  ['--report', []],
  ['--bogus', []],
];
const RUN_FLAGS: [string, string[]][] = [
  ['--ranks', ['1', '2', '3', '0', 'x']],
  ['--preset', ['tiny', 'huge']],
  ['--dtype', ['bf16', 'f32', 'f64']],
  ['--tokens', ['1', '4', '0', '-3']],
  ['--seed', ['0', '7', '-1']],
  ['--inputs', ['/nonexistent-dir', '.']],
  ['--compare', ['slice-hoist', 'nope']],
  ['--layers', ['1', '0']],
];

function flags(rnd: () => number, table: [string, string[]][]): string[] {
  const out: string[] = [];
  const n = Math.floor(rnd() * 3);
  for (let k = 0; k < n; k++) {
    const [flag, values] = table[Math.floor(rnd() * table.length)];
    out.push(flag);
    // Sometimes the value is missing or glued on with '='.
    if (values.length && rnd() < 0.9) {
      const v = values[Math.floor(rnd() * values.length)];
      if (rnd() < 0.2) out[out.length - 1] = `${flag}=${v}`;
      else out.push(v);
    }
  }
  return out;
}

interface Mutant { argv: string[]; what: string }

function makeMutant(c: number, rnd: () => number): Mutant {
  const kind = rnd();
  const pickOf = <T,>(xs: T[]) => xs[Math.floor(rnd() * xs.length)];
  if (kind < 0.4) {
    const src = pickOf(SOURCES);
    const m = mutateText(src.text, rnd);
    const path = join(dir, `m${c}.py`);
    writeFileSync(path, m.text);
    return { argv: ['rewrite', path, ...flags(rnd, FLAGS)], what: `${src.file}: ${m.steps.join('; ')}` };
  }
  if (kind < 0.7) {
    const src = pickOf(JSON_SOURCES);
    const m = mutateGraphJson(src.text, rnd);
    const path = join(dir, `m${c}.json`);
    writeFileSync(path, m.text);
    return { argv: ['rewrite', path, ...flags(rnd, FLAGS)], what: `${src.file}: ${m.steps.join('; ')}` };
  }
  if (kind < 0.8) {
    const src = pickOf(JSON_SOURCES);
    const m = mutateText(JSON.stringify(JSON.parse(src.text), null, 1), rnd);
    const path = join(dir, `m${c}.json`);
    writeFileSync(path, m.text);
    return { argv: ['rewrite', path, ...flags(rnd, FLAGS)], what: `${src.file} (text): ${m.steps.join('; ')}` };
  }
  if (kind < 0.95) {
    const file = pickOf([join(dir, 'missing.py'), dir, new URL(pickOf(SOURCES).file, FIXTURES).pathname]);
    const argv = ['rewrite', file, ...flags(rnd, FLAGS), ...flags(rnd, FLAGS)];
    if (rnd() < 0.1) argv.push('extra-positional');
    return { argv, what: 'command line' };
  }
  // `run` on the CPU reference at the tiny preset: mutated fragments and command lines.
  const src = pickOf(SOURCES.slice(2));
  const m = mutateText(src.text, rnd);
  const path = join(dir, `m${c}.py`);
  writeFileSync(path, m.text);
  return { argv: ['run', path, '--backend', 'cpu', ...flags(rnd, RUN_FLAGS)], what: `run ${src.file}: ${m.steps.join('; ')}` };
}

/** What is wrong with one outcome, or null. */
function judge(m: Mutant, o: CliOutcome): string | null {
  if (o.threw) return `threw ${o.threw}`;
  const errLines = o.stderr.split('\n').filter((l) => l !== '' && !/: warning: /.test(l) && !l.startsWith('fed from seeded inputs'));
  if (errLines.some((l) => /^\s+at /.test(l))) return `stack trace on stderr:\n${o.stderr}`;
  if (errLines.some((l) => /internal error/.test(l))) return `internal error: ${errLines.join(' | ')}`;
  if (o.code === 0) {
    if (errLines.length) return `exit 0 with stderr ${JSON.stringify(o.stderr)}`;
    const emitsFx = m.argv[0] === 'rewrite' && !m.argv.some((a) => a === '--report' || a === '--emit=json' || a.startsWith('--out'))
      && !m.argv.some((a, i) => a === '--emit' && m.argv[i + 1] === 'json');
    if (emitsFx) {
      try { importGraph(o.stdout, { fileName: 'rewritten.py' }); } catch (e) { return `wrote FX that does not import back: ${(e as Error).message}`; }
    }
    return null;
  }
  if (o.code !== 2 && !(o.code === 1 && m.argv[0] === 'run')) return `exit ${o.code}`;
  if (errLines.length !== 1) return `exit ${o.code} with ${errLines.length} lines on stderr:\n${o.stderr}`;
  return null;
}

describe('the CLI over seeded mutants of the real dumps', () => {
  it(`${CASES} mutants: exit 0, or exit 2 and one line; no stack trace (seed ${SEED})`, async () => {
    const rnd = prng(SEED);
    const counts = new Map<number, number>();
    const failures: string[] = [];
    for (let c = 0; c < CASES; c++) {
      const m = makeMutant(c, rnd);
      const o = await runCliCaptured(m.argv);
      counts.set(o.code, (counts.get(o.code) ?? 0) + 1);
      const bad = judge(m, o);
      if (bad) failures.push(`case ${c} (${m.what}) ${m.argv.slice(0, 1).concat(m.argv.slice(2)).join(' ')}: ${bad}`);
    }
    console.log(`CLI mutants (seed ${SEED}): ${CASES} tried, exit codes ${JSON.stringify(Object.fromEntries(counts))}, ${failures.length} failed`);
    expect(failures.slice(0, 10)).toEqual([]);
    // Both outcomes occur, so the mutants reach past the importers.
    expect(counts.get(0) ?? 0).toBeGreaterThan(CASES / 20);
    expect(counts.get(2) ?? 0).toBeGreaterThan(CASES / 4);
  }, 300_000);
});
