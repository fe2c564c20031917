// Small graphs for the runtime's tests: a module's FX text from its signature and body lines, and
// seeded bf16 values to feed it.

import type { Graph } from '../graph/ir.ts';
import { parseFx } from '../graph/fx/parse.ts';
import { prng } from '../graph/seededRandom.ts';
import { toHostTensor, type HostTensor } from './hostTensor.ts';
import { roundTo } from './weights.ts';

/** `def forward(self, ${args}):` over the node lines `body`, as print_readable writes a module. */
export const moduleGraph = (args: string, body: string[]): Graph =>
  parseFx(
    [
      'class GraphModule(torch.nn.Module):',
      `    def forward(self, ${args}):`,
      ...body.map((l) => `        ${l}`),
    ].join('\n'),
  ).graph;

/** n seeded values uniform in (−scale, scale), rounded to bf16. */
export function bf16Values(seed: number, n: number, scale: number): number[] {
  const u = prng(seed);
  return Array.from({ length: n }, () => roundTo('bf16', (u() * 2 - 1) * scale));
}

export const bf16Tensor = (shape: number[], xs: number[]): HostTensor => toHostTensor('bf16', shape, xs);
