// Guards of the passes that only a wrong graph would reveal: each test fails if its guard is
// removed or inverted (a refusal that stops refusing, a check that stops checking).

import { describe, expect, it } from 'vitest';
import { parseFx } from '../fx/parse.ts';
import type { Graph, Node } from '../ir.ts';
import { ref } from '../ir.ts';
import { GraphBuilder } from '../build.ts';
import { runPipeline } from './pipeline.ts';
import { topologicalOrder } from './graphEdit.ts';

const FUSED = 'vllm.flashinfer_trtllm_fused_allreduce_norm.default';
const fx = (text: string) => parseFx(text).graph;
const names = (g: Graph) => g.nodes.map((n) => n.name);
/** Every reference in the graph names an input or an earlier node. */
function danglingRefs(g: Graph): string[] {
  const defined = new Set(g.inputs.map((i) => i.name));
  const bad: string[] = [];
  const walk = (a: unknown, at: string) => {
    if (Array.isArray(a)) a.forEach((x) => walk(x, at));
    else if (a && typeof a === 'object' && (a as { kind?: string }).kind === 'ref') {
      const r = (a as { name: string }).name;
      if (!defined.has(r)) bad.push(`${at} reads ${r}`);
    }
  };
  for (const n of g.nodes) {
    n.args.forEach((a) => walk(a, n.name));
    Object.values(n.kwargs).forEach((a) => walk(a, n.name));
    defined.add(n.name);
  }
  return bad;
}

const fusedAddSite = (extraReader: string) =>
  fx(`
all_reduce_1: "bf16[s72, 2880]" = torch.ops.vllm.all_reduce.default(getitem_3, 'tp:0')
auto_functionalized_2 = torch.ops.higher_order.auto_functionalized(torch.ops._C.fused_add_rms_norm.default, input = all_reduce_1, residual = getitem_18, weight = arg8_1, epsilon = 1e-05)
getitem_20: "bf16[s72, 2880]" = auto_functionalized_2[1]
getitem_21: "bf16[s72, 2880]" = auto_functionalized_2[2]
${extraReader}`);

describe('allreduce-rmsnorm', () => {
  it('refuses a fused-add site whose all_reduce has another reader, naming it; fuses the same site without it', () => {
    const refused = runPipeline(
      fusedAddSite('mul_7: "bf16[s72, 2880]" = torch.ops.aten.mul.Tensor(all_reduce_1, 2.0)'),
      ['allreduce-rmsnorm'],
      { worldSize: 2 },
    );
    expect(refused.stages[0]!.matches).toEqual([]);
    expect(refused.output.nodes.some((n) => n.op === 'vllm.all_reduce.default')).toBe(true);
    expect(refused.diagnostics).toContainEqual(
      expect.objectContaining({
        node: 'all_reduce_1',
        blocker: 'mul_7',
        reason:
          'all_reduce_1 has another user, mul_7, that needs the reduced tensor; the fused kernel overwrites it with the normed output',
      }),
    );
    const fused = runPipeline(fusedAddSite(''), ['allreduce-rmsnorm'], { worldSize: 2 });
    expect(fused.stages[0]!.matches.map((m) => m.site)).toEqual(['all_reduce_1']);
    expect(fused.output.nodes.some((n) => JSON.stringify(n.args[0]).includes(FUSED))).toBe(true);
  });
});

describe('noop-elimination', () => {
  const chain = (extra: string) =>
    fx(`
def forward(self, x: "bf16[4, 6]"):
    view_1: "bf16[24]" = torch.ops.aten.view.default(x, [24])
    view_2: "bf16[4, 6]" = torch.ops.aten.view.default(view_1, [4, 6])
    add_1: "bf16[4, 6]" = torch.ops.aten.add.Tensor(view_2, view_2)
${extra}    return (add_1${extra ? ', neg_1' : ''})`);

  it('drops the inner reshape of a chain only when the chain was its only reader', () => {
    const alone = runPipeline(chain(''), ['noop-elimination']).output;
    expect(names(alone)).toEqual(['add_1']);
    expect(alone.nodes[0]!.args).toEqual([ref('x'), ref('x')]);
    const shared = runPipeline(chain('    neg_1: "bf16[24]" = torch.ops.aten.neg.default(view_1)\n'), [
      'noop-elimination',
    ]);
    expect(names(shared.output)).toEqual(['view_1', 'add_1', 'neg_1']);
    expect(shared.output.nodes.find((n) => n.name === 'add_1')!.args).toEqual([ref('x'), ref('x')]);
    expect(shared.stages[0]!.matches).toEqual([
      { pass: 'noop-elimination', site: 'view_2', consumed: ['view_2'], produced: [] },
    ]);
  });

  it('skips a match that overlaps one already taken: a chain of three reshapes keeps a well-formed graph', () => {
    // view_2(view_1(x)) and view_3(view_2(…)) both match the chain rule and share view_2.
    const g = fx(`
def forward(self, x: "bf16[4, 6]"):
    view_1: "bf16[24]" = torch.ops.aten.view.default(x, [24])
    view_2: "bf16[4, 6]" = torch.ops.aten.view.default(view_1, [4, 6])
    view_3: "bf16[24]" = torch.ops.aten.view.default(view_2, [24])
    return (view_3,)`);
    const r = runPipeline(g, ['noop-elimination']);
    expect(r.stages[0]!.matches.map((m) => m.site)).toEqual(['view_2']);
    expect(danglingRefs(r.output)).toEqual([]);
    expect(names(r.output)).toEqual(['view_3']);
    expect(r.output.nodes[0]!.args).toEqual([ref('x'), [24]]);
  });
});

describe('topologicalOrder', () => {
  const b = new GraphBuilder();
  b.input('x', 'bf16[4]');
  const node = (name: string, reads: string): Node => ({
    name,
    op: 'aten.neg.default',
    args: [ref(reads)],
    kwargs: {},
    type: null,
    meta: {},
  });
  const g = b.build();

  it('keeps an order that already defines every value before its readers (the same array)', () => {
    const nodes = [node('a', 'x'), node('b', 'a'), node('c', 'b')];
    expect(topologicalOrder(g, nodes)).toBe(nodes);
  });

  it('moves a node above its first reader when a rewrite placed it later, and keeps the rest in order', () => {
    const out = topologicalOrder(g, [node('b', 'a'), node('c', 'x'), node('a', 'x'), node('d', 'b')]);
    expect(out.map((n) => n.name)).toEqual(['a', 'b', 'c', 'd']);
  });

  it('names a node on a cycle', () => {
    expect(() => topologicalOrder(g, [node('p', 'q'), node('q', 'p')])).toThrow(
      "rewrite made a cycle through node 'p' (aten.neg.default)",
    );
  });
});
