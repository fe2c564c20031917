#!/usr/bin/env node
// `npm run health [-- --check] [-- --all]`: the figures that show the code's shape, for the next
// reader before a change and after it:
//  - functions over 200 and over 100 lines in the TypeScript of src/ and agent/ (each one over 200
//    with file:line and name; `--all` lists those over 100 too). Generated files are skipped; tests
//    (*.test.ts, *.spec.ts) are counted on a line of their own, since a describe() callback is long
//    by nature;
//  - the duplicate pairs in src/ as the `duplicates` tool counts them (a machine tool, not an npm
//    package: "not installed" when it is not on PATH);
//  - the largest files;
//  - positional kernel parameters left: `prm[<digit>` in src/wgsl, `st.i[` in agent/native;
//  - places outside src/graph/call.ts that compare a node's op with auto_functionalized instead of
//    asking call.ts which op the node runs.
// Exits 0, or with `--check` 1 when a function outside tests and generated files is over 200 lines.
import { spawnSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { functionLengths, isGenerated } from './functionLengths.mjs';
import { ensureLintTools, root } from './lintTools.mjs';

const ROOTS = ['src', 'agent'];
const LONG = 200;
const OVER = 100;
const LARGEST = 10;
const SKIP_DIRS = new Set(['node_modules', 'build', 'dist']);
const isTest = (path) => /\.(test|spec)\.tsx?$/.test(path);

/** Files under `dir` (relative to the root) whose name passes `keep`. */
function filesUnder(dir, keep) {
  const out = [];
  const walk = (abs) => {
    for (const entry of readdirSync(abs, { withFileTypes: true })) {
      const path = join(abs, entry.name);
      if (entry.isDirectory()) {
        if (!SKIP_DIRS.has(entry.name) && !entry.name.startsWith('.')) walk(path);
      } else if (entry.isFile() && keep(entry.name)) out.push(relative(root, path));
    }
  };
  walk(join(root, dir));
  return out.sort();
}

const read = (path) => readFileSync(join(root, path), 'utf8');
const countMatches = (text, re) => text.match(re)?.length ?? 0;
const sumOver = (paths, re) => paths.reduce((n, p) => n + countMatches(read(p), re), 0);

/** The `duplicates` tool's pair count for src/, undefined when the tool is not on PATH. */
function duplicatePairs() {
  const r = spawnSync('duplicates', ['--most', '1', '--seconds', '120'], {
    cwd: join(root, 'src'),
    encoding: 'utf8',
  });
  if (r.error?.code === 'ENOENT') return undefined;
  if (r.status !== 0) return `failed (${(r.stderr || '').trim().split('\n')[0] || `exit ${r.status}`})`;
  const first = r.stdout.split('\n')[0];
  const count = /^(\d+) pairs/.exec(first)?.[1] ?? (/^no duplicates/.test(first) ? '0' : undefined);
  const incomplete = r.stdout.split('\n').find((l) => l.startsWith('incomplete:'));
  return count === undefined
    ? `unreadable answer: ${first}`
    : `${count} pairs${incomplete ? ` (${incomplete})` : ''}`;
}

function main(argv) {
  ensureLintTools();
  const ts = ROOTS.flatMap((dir) =>
    filesUnder(dir, (name) => /\.tsx?$/.test(name) && !/\.d\.tsx?$/.test(name)),
  );
  const generated = [];
  const code = [];
  const tests = [];
  const sizes = [];
  for (const path of ts) {
    const text = read(path);
    if (isGenerated(path, text)) {
      generated.push(path);
      continue;
    }
    sizes.push({ path, lines: text.split('\n').length - (text.endsWith('\n') ? 1 : 0) });
    for (const f of functionLengths(path, text)) (isTest(path) ? tests : code).push({ ...f, path });
  }
  const byLength = (a, b) => b.lines - a.lines || a.path.localeCompare(b.path) || a.line - b.line;
  const long = code.filter((f) => f.lines > LONG).sort(byLength);
  const over = code.filter((f) => f.lines > OVER).sort(byLength);
  const row = (f) => `  ${String(f.lines).padStart(5)}  ${f.path}:${f.line}  ${f.name}`;

  const out = [];
  out.push(`fusionlab health: the TypeScript of ${ROOTS.join('/ and ')}/ — ${ts.length} files`);
  out.push(`  tests (*.test.ts) counted apart; generated files skipped: ${generated.join(', ') || 'none'}`);
  out.push(`functions over ${LONG} lines: ${long.length}`, ...long.map(row));
  out.push(`functions over ${OVER} lines: ${over.length}`);
  if (argv.includes('--all')) out.push(...over.filter((f) => f.lines <= LONG).map(row));
  const testsLong = tests.filter((f) => f.lines > LONG).length;
  const testsOver = tests.filter((f) => f.lines > OVER).length;
  out.push(`  in tests: ${testsLong} over ${LONG}, ${testsOver} over ${OVER}`);
  const pairs = duplicatePairs();
  out.push(pairs === undefined ? 'duplicates: not installed' : `duplicates in src: ${pairs}`);
  out.push(`largest files (lines):`);
  sizes.sort((a, b) => b.lines - a.lines || a.path.localeCompare(b.path));
  out.push(...sizes.slice(0, LARGEST).map((s) => `  ${String(s.lines).padStart(5)}  ${s.path}`));
  const wgsl = filesUnder('src/wgsl', (name) => /\.(tsx?|wgsl)$/.test(name));
  const native = filesUnder('agent/native', (name) => /\.(cpp|cu|cuh|hpp|h)$/.test(name));
  out.push(
    `positional kernel parameters: prm[<digit> in src/wgsl: ${sumOver(wgsl, /prm\[\d/g)}; st.i[ in agent/native: ${sumOver(native, /\bst\.i\[/g)}`,
  );
  const AUTO_FUNCTIONALIZED = /\.op\s*[!=]==?\s*['"]higher_order\.auto_functionalized(_v2)?['"]/g;
  const outsideCall = ts.filter((p) => p !== 'src/graph/call.ts');
  const opCompares = sumOver(
    outsideCall.filter((p) => !isTest(p)),
    AUTO_FUNCTIONALIZED,
  );
  const opComparesInTests = sumOver(outsideCall.filter(isTest), AUTO_FUNCTIONALIZED);
  out.push(
    `op === 'higher_order.auto_functionalized' outside src/graph/call.ts: ${opCompares} (in tests: ${opComparesInTests})`,
  );
  process.stdout.write(out.join('\n') + '\n');

  if (argv.includes('--check') && long.length) {
    process.stderr.write(`fusionlab health --check: ${long.length} function(s) over ${LONG} lines\n`);
    return 1;
  }
  return 0;
}

process.exitCode = main(process.argv.slice(2));
