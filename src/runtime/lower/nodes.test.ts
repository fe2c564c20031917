// What the node loop lets pass when an op has no kernel: only its consequences (nodes that fail
// on the value it left missing, directly or through others) — the op is reported at the end. A
// genuine input error elsewhere in the same graph still surfaces as itself.

import { describe, expect, it } from 'vitest';
import { parseFx } from '../../graph/fx/parse.ts';
import { buildPlan } from '../plan.ts';
import { RunError } from '../runError.ts';

const planError = (text: string): RunError => {
  try {
    buildPlan(parseFx(text).graph, { preset: 'tiny', dtype: 'bf16', ranks: 2 });
  } catch (e) {
    if (e instanceof RunError) return e;
    throw e;
  }
  throw new Error('planned without an error');
};

describe('an op with no kernel and no type', () => {
  it('is reported, and the nodes that read what it left missing (directly, through getitem, further on) pass quietly', () => {
    const err = planError(`def forward(self, x: "bf16[s0, 8]"):
    a = torch.ops.mystery.first.default(x)
    b: "bf16[s0, 8]" = torch.ops.aten.mul.Tensor(a, x)
    c: "bf16[s0, 8]" = torch.ops.aten.mul.Tensor(b, x)
    af = torch.ops.higher_order.auto_functionalized(torch.ops.mystery.second.default, x = x)
    g = af[1]
    d: "bf16[s0, 8]" = torch.ops.aten.mul.Tensor(g, c)
    return (d,)
`);
    expect(err.kind).toBe('unsupported-ops');
    expect(err.message).toBe(
      'no kernel and no annotated type to feed from: a (mystery.first.default), af (mystery.second.default)',
    );
  });

  it('does not hide an input error of a node that reads nothing it left missing', () => {
    const err = planError(`def forward(self, x: "bf16[s0, 8]", y):
    a = torch.ops.mystery.first.default(x)
    b: "bf16[s0, 8]" = torch.ops.aten.mul.Tensor(y, x)
    return (a, b)
`);
    expect(err.kind).toBe('input');
    expect(err.message).toMatch(/node b \(aten\.mul\.Tensor\) reads 'y', which has no type/);
  });

  it('does not hide a getitem of something that is no tuple', () => {
    const err = planError(`def forward(self, x: "bf16[s0, 8]"):
    a = torch.ops.mystery.first.default(x)
    g = x[1]
    return (a, g)
`);
    expect(err.kind).toBe('validation');
    expect(err.message).toMatch(/item 1 of 'x' does not exist/);
  });
});
