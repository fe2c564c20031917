#!/usr/bin/env node
// `npm run lint`: typescript-eslint (switch exhaustiveness, React hooks), the Prettier check and
// dependency-cruiser's layer rules. The linters live in tools/lint with their own TypeScript 5:
// typescript-eslint needs the compiler API, which TypeScript 7 (the project's tsc) does not ship.
// Installs them on first use. `--fix-format` writes Prettier's formatting instead of checking it.
import { spawnSync } from 'node:child_process';
import { ensureLintTools, lintBin as bin, root } from './lintTools.mjs';

ensureLintTools();

const SOURCES = ['src', 'agent', 'bench', 'e2e', 'reliability', 'scripts', '*.ts'];
const checks = [
  [
    'eslint',
    [
      bin('eslint'),
      '--config',
      'tools/lint/eslint.config.mjs',
      '--no-warn-ignored',
      '--no-error-on-unmatched-pattern',
      ...SOURCES.map((s) => (s.includes('*') ? s : `${s}/**/*.{ts,tsx}`)),
    ],
  ],
  [
    'prettier',
    [
      bin('prettier'),
      process.argv.includes('--fix-format') ? '--write' : '--check',
      '--log-level',
      'warn',
      '--no-error-on-unmatched-pattern',
      ...SOURCES.map((s) => (s.includes('*') ? s : `${s}/**/*.{ts,tsx,mjs}`)),
    ],
  ],
  [
    'layers',
    [
      bin('depcruise'),
      '--config',
      'tools/lint/dependency-cruiser.cjs',
      'src',
      'agent',
      'bench',
      'e2e',
      'reliability',
    ],
  ],
];
let failed = [];
for (const [name, [cmd, ...args]] of checks) {
  const r = spawnSync(cmd, args, { cwd: root, stdio: 'inherit' });
  if (r.status !== 0) failed.push(name);
}
if (failed.length) {
  console.error(`fusionlab lint: ${failed.join(', ')} failed`);
  process.exit(1);
}
console.log('fusionlab lint: eslint, prettier and layer rules pass');
