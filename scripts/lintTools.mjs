// The linters' own package (tools/lint): typescript-eslint, dependency-cruiser, Prettier and the
// TypeScript 5 compiler API they need, which TypeScript 7 (the project's tsc) does not ship.
// Installed on first use by whichever script needs it (`npm run lint`, `npm run health`).
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const root = fileURLToPath(new URL('..', import.meta.url));
export const lintToolsDir = join(root, 'tools', 'lint');

/** The path of one of the linters' executables. */
export const lintBin = (name) => join(lintToolsDir, 'node_modules', '.bin', name);

/** Runs `npm ci` in tools/lint when any of the linters (or their TypeScript) is missing. */
export function ensureLintTools() {
  const present =
    ['eslint', 'depcruise', 'prettier'].every((name) => existsSync(lintBin(name))) &&
    existsSync(join(lintToolsDir, 'node_modules', 'typescript', 'package.json'));
  if (present) return;
  console.log('fusionlab: installing the linters (npm ci in tools/lint)…');
  execFileSync('npm', ['ci', '--no-audit', '--no-fund'], { cwd: lintToolsDir, stdio: 'inherit' });
}

/** The TypeScript 5 compiler API, as installed in tools/lint. */
export function lintTypeScript() {
  return createRequire(join(lintToolsDir, 'package.json'))('typescript');
}
