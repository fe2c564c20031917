// Seeded CLI mutants over the real dumps: mutated FX text and fusionlab.graph/1 JSON (garbled or
// restructured) and mutated command lines, run in this process, and the judgement of each outcome:
// exit 0, or exit 2 (1: a --compare that differs) with exactly one line on stderr and no stack
// trace; FX text the CLI writes must import back. Used by the CLI's tests and the reliability suite.

import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseFx } from '../graph/fx/parse.ts';
import { importGraph } from '../graph/formats.ts';
import { graphToJson } from '../graph/json.ts';
import { mutateGraphJson, mutateText, prng } from '../graph/mutants.ts';
import { runCliCaptured, type CliOutcome } from './captured.ts';

const FIXTURES = new URL('../../fixtures/fx/', import.meta.url);
const fixture = (file: string) => ({ file, text: readFileSync(new URL(file, FIXTURES), 'utf8') });
/** The PR's fragments: small enough to run as well as rewrite. */
const FRAGMENTS = ['seed/pr28841-before.fragment.txt', 'seed/pr28841-after.fragment.txt'].map(fixture);
const SOURCES = [
  ...['real/qwen2-paral2_layer1-r0.py', 'real/qwen2-paral4_layer1-r0.py'].map(fixture),
  ...FRAGMENTS,
];
const JSON_SOURCES = SOURCES.map((s) => ({
  file: `${s.file}.json`,
  text: JSON.stringify(graphToJson(parseFx(s.text).graph)),
}));

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

export interface Mutant {
  argv: string[];
  what: string;
}

function makeMutant(dir: string, c: number, rnd: () => number): Mutant {
  const kind = rnd();
  const pickOf = <T>(xs: T[]) => xs[Math.floor(rnd() * xs.length)];
  // A `rewrite` of the mutated text, written where the CLI reads it.
  const rewriteOf = (ext: 'py' | 'json', m: { text: string; steps: string[] }, what: string): Mutant => {
    const path = join(dir, `m${c}.${ext}`);
    writeFileSync(path, m.text);
    return { argv: ['rewrite', path, ...flags(rnd, FLAGS)], what: `${what}: ${m.steps.join('; ')}` };
  };
  if (kind < 0.4) {
    const src = pickOf(SOURCES);
    return rewriteOf('py', mutateText(src.text, rnd), src.file);
  }
  if (kind < 0.7) {
    const src = pickOf(JSON_SOURCES);
    return rewriteOf('json', mutateGraphJson(src.text, rnd), src.file);
  }
  if (kind < 0.8) {
    const src = pickOf(JSON_SOURCES);
    const pretty = JSON.stringify(JSON.parse(src.text), null, 1);
    return rewriteOf('json', mutateText(pretty, rnd), `${src.file} (text)`);
  }
  if (kind < 0.95) {
    const file = pickOf([join(dir, 'missing.py'), dir, new URL(pickOf(SOURCES).file, FIXTURES).pathname]);
    const argv = ['rewrite', file, ...flags(rnd, FLAGS), ...flags(rnd, FLAGS)];
    if (rnd() < 0.1) argv.push('extra-positional');
    return { argv, what: 'command line' };
  }
  // `run` on the CPU reference at the tiny preset: mutated fragments and command lines.
  const src = pickOf(FRAGMENTS);
  const m = mutateText(src.text, rnd);
  const path = join(dir, `m${c}.py`);
  writeFileSync(path, m.text);
  return {
    argv: ['run', path, '--backend', 'cpu', ...flags(rnd, RUN_FLAGS)],
    what: `run ${src.file}: ${m.steps.join('; ')}`,
  };
}

/** What is wrong with one outcome, or null. */
function judge(m: Mutant, o: CliOutcome): string | null {
  if (o.threw) return `threw ${o.threw}`;
  const errLines = o.stderr
    .split('\n')
    .filter((l) => l !== '' && !/: warning: /.test(l) && !l.startsWith('fed from seeded inputs'));
  if (errLines.some((l) => /^\s+at /.test(l))) return `stack trace on stderr:\n${o.stderr}`;
  if (errLines.some((l) => /internal error/.test(l))) return `internal error: ${errLines.join(' | ')}`;
  if (o.code === 0) {
    if (errLines.length) return `exit 0 with stderr ${JSON.stringify(o.stderr)}`;
    const emitsFx =
      m.argv[0] === 'rewrite' &&
      !m.argv.some((a) => a === '--report' || a === '--emit=json' || a.startsWith('--out')) &&
      !m.argv.some((a, i) => a === '--emit' && m.argv[i + 1] === 'json');
    if (emitsFx) {
      try {
        importGraph(o.stdout, { fileName: 'rewritten.py' });
      } catch (e) {
        return `wrote FX that does not import back: ${(e as Error).message}`;
      }
    }
    return null;
  }
  // Exit 1 is a --compare whose outputs differ; every other failure here is bad input (2).
  const compares = m.argv[0] === 'run' && m.argv.some((a) => a === '--compare' || a.startsWith('--compare='));
  if (o.code !== 2 && !(o.code === 1 && compares)) return `exit ${o.code}`;
  if (errLines.length !== 1) return `exit ${o.code} with ${errLines.length} lines on stderr:\n${o.stderr}`;
  return null;
}

export interface MutantReport {
  tried: number;
  codes: Record<number, number>;
  failures: string[];
}

/** Runs `cases` mutants from `seed`; each failure names its case, what was mutated and why it failed. */
export async function runCliMutants(seed: number, cases: number): Promise<MutantReport> {
  const dir = mkdtempSync(join(tmpdir(), 'fusionlab-mutants-'));
  const rnd = prng(seed);
  const codes: Record<number, number> = {};
  const failures: string[] = [];
  try {
    for (let c = 0; c < cases; c++) {
      const m = makeMutant(dir, c, rnd);
      const o = await runCliCaptured(m.argv);
      codes[o.code] = (codes[o.code] ?? 0) + 1;
      const bad = judge(m, o);
      if (bad)
        failures.push(
          `case ${c} (${m.what}) ${m.argv.slice(0, 1).concat(m.argv.slice(2)).join(' ')}: ${bad}`,
        );
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  return { tried: cases, codes, failures };
}
