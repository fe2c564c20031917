// The fixture texts the app's tests read (in Node): the PR #28841 fragment, the real Qwen2 TP2 and
// Megatron GPT dumps, and any other file of the repository by its path.

import { readFileSync } from 'node:fs';

/** A file of the repository, by its path from the root (`fixtures/fx/…`, `e2e/fixtures/…`). */
export const repoText = (path: string): string =>
  readFileSync(new URL(`../../${path}`, import.meta.url), 'utf8');

/** The FX fragment of vLLM PR #28841 before the fix: the slice between all-reduce and norm. */
export const PR_BEFORE = repoText('fixtures/fx/seed/pr28841-before.fragment.txt');
/** A real Qwen2 dump at TP2, one layer: three all-reduce + norm sites. */
export const QWEN_TP2 = repoText('fixtures/fx/real/qwen2-paral2_layer1-r0.py');
/** A real Megatron GPT dump at TP2: 8 layers, found from its `# File:` comments. */
export const MEGATRON_L8 = repoText('fixtures/fx/real/gpt-paral2_layer8-r0.py');
