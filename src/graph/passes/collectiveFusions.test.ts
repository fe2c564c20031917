// sequence-parallelism, async-tp and moe-unpad on the generated stacks, against the counts vLLM's
// e2e fusion tests expect (tests/compile/fusions_e2e/models.py, for L layers):
//   gpt-oss-20b  ar_rms 2L+1, sequence_parallel 2L+1, async_tp 2L (here L: see below)
//   Llama-3 8B   ar_rms 2L+1, sequence_parallel 2L+1, async_tp 4L
//   Qwen3-30B-A3B ar_rms 2L+1, sequence_parallel 2L+1, async_tp 2L
import { describe, expect, it } from 'vitest';
import { parseFx } from '../fx/parse.ts';
import { printFx } from '../fx/print.ts';
import type { Graph } from '../ir.ts';
import type { SampleModel } from '../samples/index.ts';
import { generateSample } from '../samples/index.ts';
import { PASSES, runPipeline } from './pipeline.ts';

const ops = (g: Graph, op: string) => g.nodes.filter((n) => n.op === op);
const count = (g: Graph, passes: string[], tp: number) =>
  Object.fromEntries(runPipeline(g, passes, { worldSize: tp }).stages.map((s) => [s.pass, s.matches.length]));
const sample = (model: SampleModel, tp: number, layers?: number) =>
  parseFx(generateSample(model, layers === undefined ? { tp } : { tp, layers })).graph;

describe('vLLM e2e counts on the generated stacks (full depth)', () => {
  // GPT-OSS's qkv projection has a bias: the post-grad graph holds addmm (torch 2.13 keeps
  // F.linear(x, W, b) as addmm(b, x, Wᵀ)), which vLLM's all-gather + GEMM pattern (aten.mm) does not
  // match; only o_proj's mm → reduce_scatter fuses, L per stack, not the table's 2L.
  const cases: [SampleModel, number, number][] = [
    ['gpt-oss-20b', 24, 1],
    ['llama', 32, 4],
    ['qwen3-moe', 48, 2],
  ];
  for (const [model, L, perLayer] of cases) {
    it(`${model}: sequence_parallel ${2 * L + 1}, async_tp ${perLayer * L} at TP 2, 4 and 8 once nothing sits between all-reduce and norm`, () => {
      for (const tp of [2, 4, 8]) {
        const g = sample(model, tp);
        const after = count(g, ['noop-elimination', 'slice-hoist', 'sequence-parallelism', 'async-tp'], tp);
        expect(after, `${model} tp ${tp}`).toMatchObject({
          'sequence-parallelism': 2 * L + 1,
          'async-tp': perLayer * L,
        });
        expect(
          count(g, ['noop-elimination', 'slice-hoist', 'allreduce-rmsnorm'], tp)['allreduce-rmsnorm'],
        ).toBe(2 * L + 1);
      }
    });
  }

  it('gpt-oss-20b before the fix: the slice blocks both (0 split, 0 fused) and every all-reduce says why', () => {
    const g = sample('gpt-oss-20b', 4);
    const r = runPipeline(g, ['noop-elimination', 'sequence-parallelism', 'async-tp'], { worldSize: 4 });
    expect(r.stages.map((s) => s.matches.length)).toEqual([0, 0, 0]);
    const sp = r.stages[1]!.diagnostics;
    expect(sp).toHaveLength(49);
    // The MoE all-reduces name the slice; the others name the broken residual stream.
    expect(
      sp.filter((d) =>
        /slice_\d* \(aten\.slice\.Tensor\) sits between all_reduce_\d+ and the norm; run slice-hoist/.test(
          d.reason,
        ),
      ),
    ).toHaveLength(24);
    expect(
      sp.filter((d) => d.reason.endsWith('SP splits the whole residual stream or none of it')),
    ).toHaveLength(25);
    // async-tp does not ask for sequence-parallelism, which ran: it gives SP's reason for each all-reduce.
    const atp = r.stages[2]!.diagnostics;
    expect(atp.filter((d) => d.reason.includes('run sequence-parallelism first'))).toEqual([]);
    expect(atp).toHaveLength(49);
    for (const d of atp) {
      const own = sp.find((e) => e.node === d.node)!;
      expect(d.reason).toBe(`${d.node} is left as sequence-parallelism left it: ${own.reason}`);
      expect([d.pass, d.blocker]).toEqual(['async-tp', own.blocker]);
    }
    // Every stage's diagnostics, ordered by stage.
    expect(r.diagnostics).toEqual([...r.stages[0]!.diagnostics, ...sp, ...atp]);
  });

  it('gpt-oss-20b after the re-land (moe-unpad instead of slice-hoist): the same counts, and no pad or slice left', () => {
    for (const tp of [2, 8]) {
      const g = sample('gpt-oss-20b', tp);
      const r = runPipeline(g, ['noop-elimination', 'moe-unpad', 'sequence-parallelism', 'async-tp'], {
        worldSize: tp,
      });
      expect(r.stages.map((s) => s.matches.length)).toEqual([0, 24, 49, 24]);
      expect(ops(r.stages[1]!.graph, 'aten.constant_pad_nd.default')).toHaveLength(0);
      expect(ops(r.stages[1]!.graph, 'aten.slice.Tensor')).toHaveLength(0);
      expect(count(g, ['moe-unpad', 'allreduce-rmsnorm'], tp)['allreduce-rmsnorm']).toBe(49);
    }
  });
});

describe('sequence-parallelism', () => {
  const g = sample('llama', 4, 2);
  const r = PASSES['sequence-parallelism'](g, { worldSize: 4 });
  const byName = (name: string) => r.graph.nodes.find((n) => n.name === name)!;

  it('reduce-scatters each partial sum along tokens, norms the shard, gathers the normed output back', () => {
    const rs = ops(r.graph, 'vllm.reduce_scatter.default');
    const ag = ops(r.graph, 'vllm.all_gather.default');
    expect(rs).toHaveLength(5);
    expect(ag).toHaveLength(5);
    expect(ops(r.graph, 'vllm.all_reduce.default')).toHaveLength(0);
    for (const n of rs) {
      expect(n.kwargs).toEqual({ dim: 0, world_size: 4, group_name: 'tp:0' });
      expect(n.type).toEqual({ kind: 'tensor', dtype: 'bf16', shape: ['s72//4', 4096] });
    }
    for (const n of ag) expect(n.type).toEqual({ kind: 'tensor', dtype: 'bf16', shape: ['s72', 4096] });
    // The first norm reads the embedding's shard into a shard-sized buffer; the next norm's residual is that shard.
    const first = byName('auto_functionalized');
    expect(first.kwargs['input']).toEqual({ kind: 'ref', name: rs[0]!.name });
    expect(byName((first.kwargs['result'] as { name: string }).name).type).toEqual(rs[0]!.type);
    const second = r.graph.nodes.find(
      (n) => n.kwargs['input'] && (n.kwargs['input'] as { name: string }).name === rs[1]!.name,
    )!;
    expect(second.kwargs['residual']).toEqual({ kind: 'ref', name: rs[0]!.name });
    // The residual stream ([2]) is a shard from then on.
    expect(byName('getitem_8').type).toEqual({ kind: 'tensor', dtype: 'bf16', shape: ['s72//4', 4096] });
    expect(r.matches[0]).toMatchObject({ pass: 'sequence-parallelism', site: 'all_reduce' });
  });

  it('prints a graph that imports back to the same nodes', () => {
    const back = parseFx(printFx(r.graph)).graph;
    expect(back.nodes.map((n) => [n.name, n.op, n.type])).toEqual(
      r.graph.nodes.map((n) => [n.name, n.op, n.type]),
    );
  });

  it('refuses a token count that does not divide by the world size, naming it', () => {
    const text = generateSample('llama', { layers: 1, tp: 2 })
      .replaceAll('s72', '7')
      .replace('"Sym(7)"', '"Sym(s7)"');
    const seven = parseFx(text).graph;
    const out = PASSES['sequence-parallelism'](seven, { worldSize: 2 });
    expect(out.matches).toEqual([]);
    expect(out.diagnostics[0]!.reason).toBe(
      'all_reduce has 7 tokens, which do not divide by world size 2 (7 = 3·2 + 1)',
    );
    expect(out.diagnostics[0]!.blocker).toBe('token count');
    expect(
      PASSES['sequence-parallelism'](parseFx(text.replaceAll('[7,', '[8,')).graph, { worldSize: 2 }).matches,
    ).toHaveLength(3);
  });

  it('follows later vLLM under compile-range gating: no SP on Hopper for hidden < 8192', () => {
    const out = PASSES['sequence-parallelism'](g, { worldSize: 4, tokenGate: 'compile-range' });
    expect(out.matches).toEqual([]);
    expect(out.diagnostics[0]!.reason).toBe(
      'hidden size 4096 < 8192: vLLM enables sequence parallelism on hopper only for models with hidden ≥ 8192',
    );
  });

  it('applies to every site or none: one site alone is refused with the reason', () => {
    const one = PASSES['sequence-parallelism'](g, { worldSize: 4 }, (s) => s === 'all_reduce_1');
    expect(one.matches).toEqual([]);
    expect(one.diagnostics[0]!.reason).toBe(
      'sequence parallelism splits the whole residual stream: apply it to every site at once',
    );
  });
});

describe('async-tp', () => {
  const fragment = (rs: string, mmType = 'bf16[8, 64]') =>
    parseFx(
      [
        `mm: "${mmType}" = torch.ops.aten.mm.default(arg0_1, arg1_1)`,
        `reduce_scatter: "bf16[4, 64]" = torch.ops.vllm.reduce_scatter.default(mm, ${rs})`,
        `all_gather: "bf16[8, 64]" = torch.ops.vllm.all_gather.default(reduce_scatter, dim = 0, world_size = 2, group_name = 'tp:0')`,
        `mm_1: "bf16[8, 32]" = torch.ops.aten.mm.default(all_gather, arg2_1)`,
      ].join('\n'),
    ).graph;

  it('fuses mm → reduce_scatter and all_gather → mm into the symmetric-memory ops', () => {
    const r = PASSES['async-tp'](fragment("dim = 0, world_size = 2, group_name = 'tp:0'"), { worldSize: 2 });
    expect(r.matches.map((m) => [m.site, m.consumed])).toEqual([
      ['reduce_scatter', ['mm', 'reduce_scatter']],
      ['all_gather', ['all_gather', 'mm_1']],
    ]);
    const printed = printFx(r.graph);
    expect(printed).toContain(
      "fused_matmul_reduce_scatter: \"bf16[4, 64]\" = torch.ops.symm_mem.fused_matmul_reduce_scatter.default(arg0_1, arg1_1, 'sum', scatter_dim = 0, group_name = 'tp:0')",
    );
    expect(printed).toContain(
      "fused_all_gather_matmul = torch.ops.symm_mem.fused_all_gather_matmul.default(fused_matmul_reduce_scatter, [arg2_1], gather_dim = 0, group_name = 'tp:0')",
    );
    expect(r.diagnostics).toEqual([]);
  });

  it('refuses a reduce_scatter along a dim other than tokens, and one whose size does not divide', () => {
    const dim1 = PASSES['async-tp'](fragment("dim = 1, world_size = 2, group_name = 'tp:0'"), {
      worldSize: 2,
    });
    expect(dim1.matches.map((m) => m.site)).toEqual(['all_gather']);
    expect(dim1.diagnostics[0]!.reason).toBe(
      "reduce_scatter (vllm.reduce_scatter.default) works along dim 1, not the token dim 0: vLLM's async-TP patterns fuse token-dim collectives only",
    );
    const odd = PASSES['async-tp'](fragment("dim = 0, world_size = 2, group_name = 'tp:0'", 'bf16[7, 64]'), {
      worldSize: 2,
    });
    expect(odd.diagnostics[0]!.reason).toBe(
      "reduce_scatter's input has 7 tokens, which do not divide by world size 2 (7 = 3·2 + 1)",
    );
    expect(odd.matches.map((m) => m.site)).toEqual(['all_gather']);
  });

  it('says why the MoE side of a layer stays unfused: the all_gather also feeds the MoE, the reduce_scatter reads no matmul', () => {
    const g = runPipeline(sample('qwen3-moe', 2, 1), ['sequence-parallelism'], { worldSize: 2 }).output;
    const r = PASSES['async-tp'](g, { worldSize: 2 });
    expect(r.matches).toHaveLength(2);
    const reasons = r.diagnostics.map((d) => d.reason);
    expect(reasons).toContain(
      "all_gather_1 feeds mm_2 (aten.mm.default) and also auto_functionalized_6 (higher_order.auto_functionalized): vLLM's pattern returns only the matmul output of the fused op",
    );
    expect(
      reasons.some((x) => /reduce_scatter_2 reduces getitem_\d+ \(getitem\), not a matmul/.test(x)),
    ).toBe(true);
  });
});

describe('moe-unpad', () => {
  it('folds pad and slice into the MoE on the original graph and on the hoisted one alike', () => {
    const g = sample('gpt-oss-20b', 2, 2);
    const direct = PASSES['moe-unpad'](g, { worldSize: 2 });
    const hoisted = runPipeline(g, ['slice-hoist', 'moe-unpad'], { worldSize: 2 }).output;
    expect(direct.matches.map((m) => m.site)).toEqual(['auto_functionalized_4', 'auto_functionalized_9']);
    expect(direct.matches[0]!.consumed).toEqual([
      'constant_pad_nd',
      'auto_functionalized_4',
      'getitem_9',
      'slice_1',
      'all_reduce_2',
    ]);
    const padInput = ops(g, 'aten.constant_pad_nd.default')[0]!.args[0];
    const shapeOf = (x: Graph, name: string) =>
      (x.nodes.find((n) => n.name === name)!.type as { shape: unknown[] }).shape;
    for (const x of [direct.graph, hoisted]) {
      expect(shapeOf(x, 'getitem_9')).toEqual(['s72', 2880]);
      expect(shapeOf(x, 'all_reduce_2')).toEqual(['s72', 2880]);
      expect(x.nodes.find((n) => n.name === 'auto_functionalized_4')!.kwargs['hidden_states']).toEqual(
        padInput,
      );
    }
    expect(printFx(direct.graph)).toBe(printFx(hoisted));
  });

  it('refuses a pad that is not zero, or a slice that keeps other columns, with the reason', () => {
    const text = generateSample('gpt-oss-20b', { layers: 1, tp: 2 });
    const nonzero = PASSES['moe-unpad'](parseFx(text.replace('[0, 192], 0.0)', '[0, 192], 1.0)')).graph, {});
    expect(nonzero.matches).toEqual([]);
    expect(nonzero.diagnostics[0]!.reason).toBe(
      "constant_pad_nd pads with 1, not 0: the padded columns would change the MoE's sums",
    );
    const wide = PASSES['moe-unpad'](
      parseFx(
        text
          .replace('slice.Tensor(all_reduce_2, 1, 0, 2880)', 'slice.Tensor(all_reduce_2, 1, 0, 2816)')
          .replace('slice_1: "bf16[s72, 2880]"', 'slice_1: "bf16[s72, 2816]"'),
      ).graph,
      {},
    );
    expect(wide.diagnostics[0]!.reason).toBe(
      'slice_1 takes [0:2816:1] of dim 1, not exactly the 2880 unpadded columns',
    );
  });
});
