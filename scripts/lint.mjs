#!/usr/bin/env node
// `npm run lint`: typescript-eslint (switch exhaustiveness, React hooks), the Prettier check and
// dependency-cruiser's layer rules. The linters live in tools/lint with their own TypeScript 5:
// typescript-eslint needs the compiler API, which TypeScript 7 (the project's tsc) does not ship.
// Installs them on first use. `--fix-format` writes Prettier's formatting instead of checking it.
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';

const root = new URL('..', import.meta.url).pathname;
const tools = join(root, 'tools', 'lint');
const bin = (name) => join(tools, 'node_modules', '.bin', name);

if (!existsSync(bin('eslint')) || !existsSync(bin('depcruise')) || !existsSync(bin('prettier'))) {
  console.log('fusionlab: installing the linters (npm ci in tools/lint)…');
  execFileSync('npm', ['ci', '--no-audit', '--no-fund'], { cwd: tools, stdio: 'inherit' });
}

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
