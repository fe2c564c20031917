// Bundles what the GPU host runs into dist-agent/ (git-ignored): node_modules do not travel there.
import { build } from 'esbuild';
import { copyFileSync, mkdirSync } from 'node:fs';

mkdirSync('dist-agent', { recursive: true });
await build({
  entryPoints: ['agent/deviceCheck.ts'],
  bundle: true,
  platform: 'node',
  format: 'esm',
  target: 'node20',
  outfile: 'dist-agent/deviceCheck.mjs',
  external: ['bufferutil', 'utf-8-validate'],
  banner: {
    js: "import { createRequire as __cr } from 'node:module'; const require = __cr(import.meta.url);",
  },
  logLevel: 'warning',
});
// The server starts its preparation thread from this file next to it (agent/preparation.ts).
await build({
  entryPoints: ['agent/preparation.ts'],
  bundle: true,
  platform: 'node',
  format: 'esm',
  target: 'node20',
  outfile: 'dist-agent/preparationThread.mjs',
  external: ['bufferutil', 'utf-8-validate'],
  banner: {
    js: "import { createRequire as __cr } from 'node:module'; const require = __cr(import.meta.url);",
  },
  logLevel: 'warning',
});
// The differential check against the CUDA worker (agent/differential.ts; bench/RESULTS.md has the command).
await build({
  entryPoints: ['agent/differential.ts'],
  bundle: true,
  platform: 'node',
  format: 'esm',
  target: 'node20',
  outfile: 'dist-agent/differential.mjs',
  external: ['bufferutil', 'utf-8-validate', 'webgpu'],
  banner: {
    js: "import { createRequire as __cr } from 'node:module'; const require = __cr(import.meta.url);",
  },
  logLevel: 'warning',
});
for (const f of ['pr28841-before.fragment.txt', 'pr28841-after.fragment.txt'])
  copyFileSync(`fixtures/fx/seed/${f}`, `dist-agent/${f}`);
