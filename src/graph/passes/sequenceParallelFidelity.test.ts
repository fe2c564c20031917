// sequence-parallelism and async-tp against vLLM's own cases, each as FX text the way a post-grad
// graph prints it (torch 2.13, vLLM's op schemas: scripts/capture/vllm_ops.py), with the count
// vLLM's tests expect:
//   - the TP group only: the patterns name tp.unique_name (sequence_parallelism.py
//     _SequenceParallelPatternHelper._reduce_scatter/_all_gather; collective_fusion.py BasePattern);
//   - a residual that enters as a graph input: Llama-4 in tests/compile/fusions_e2e/models.py,
//     llama4_scout_fp8: sequence_parallel = n_layers * 2, async_tp = n_layers * 2 - 1;
//   - the FP8 GEMMs: tests/compile/passes/distributed/test_async_tp.py's TestScaledMMRSModel,
//     TestAGScaledMMModel, TestCutlassScaledMMRSModel, TestAGCutlassScaledMMModel, one fused site
//     each (collective_fusion.py ScaledMMReduceScatterPattern … AllGatherCutlassScaledMMPattern);
//   - aten.addmm is in none of vLLM's patterns (they are written with aten.mm).
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { importGraph } from '../formats.ts';
import { parseFx } from '../fx/parse.ts';
import { printFx } from '../fx/print.ts';
import type { Graph } from '../ir.ts';
import { generateSample } from '../samples/index.ts';
import { PASSES, SEQUENCE_PARALLEL_PIPELINE, runPipeline } from './pipeline.ts';

const graph = (lines: string[]) => parseFx(lines.join('\n')).graph;
const counts = (g: Graph, tp: number) =>
  runPipeline(g, [...SEQUENCE_PARALLEL_PIPELINE], { worldSize: tp }).stages.map((s) => s.matches.length);
const ops = (g: Graph, op: string) => g.nodes.filter((n) => n.op === op);

describe('the TP group only', () => {
  // Two independent mm → all_reduce → rms_norm → mm chains, one over the TP group, one over 'dp:0'.
  const chain = (i: number, group: string) => {
    const [ar, af, out] =
      i === 0
        ? ['all_reduce', 'auto_functionalized', 'getitem']
        : [`all_reduce_${i}`, `auto_functionalized_${i}`, `getitem_${i}`];
    return [
      `        mm_${2 * i}: "bf16[8, 64]" = torch.ops.aten.mm.default(arg${i}_1, arg2_1)`,
      `        ${ar}: "bf16[8, 64]" = torch.ops.vllm.all_reduce.default(mm_${2 * i}, '${group}');  mm_${2 * i} = None`,
      `        empty_like_${i}: "bf16[8, 64]" = torch.ops.aten.empty_like.default(${ar}, pin_memory = False)`,
      `        ${af} = torch.ops.higher_order.auto_functionalized(torch.ops._C.rms_norm.default, result = empty_like_${i}, input = ${ar}, weight = arg3_1, epsilon = 1e-06)`,
      `        ${out}: "bf16[8, 64]" = ${af}[1];  ${af} = None`,
      `        mm_${2 * i + 1}: "bf16[8, 32]" = torch.ops.aten.mm.default(${out}, arg4_1)`,
    ];
  };
  const g = graph([
    'class GraphModule(torch.nn.Module):',
    '    def forward(self, arg0_1: "bf16[8, 16]", arg1_1: "bf16[8, 16]", arg2_1: "bf16[16, 64]", arg3_1: "bf16[64]", arg4_1: "bf16[64, 32]"):',
    ...chain(0, 'tp:0'),
    ...chain(1, 'dp:0'),
    '        return (mm_1, mm_3)',
  ]);

  it("a tp and a dp all-reduce: vLLM's 1 SP site and 2 async-TP sites, the dp one left with its group as the reason", () => {
    const r = runPipeline(g, [...SEQUENCE_PARALLEL_PIPELINE], { worldSize: 2 });
    expect(r.stages.map((s) => [s.pass, s.matches.map((m) => m.site)])).toEqual([
      ['noop-elimination', []],
      ['slice-hoist', []],
      ['sequence-parallelism', ['all_reduce']],
      ['async-tp', ['reduce_scatter', 'all_gather']],
    ]);
    const sp = r.stages[2]!.diagnostics;
    expect(sp).toEqual([
      {
        pass: 'sequence-parallelism',
        node: 'all_reduce_1',
        blocker: 'group',
        reason:
          "all_reduce_1 reduces over 'dp:0', not the TP group 'tp:0': vLLM's sequence-parallelism patterns match tensor_model_parallel_all_reduce only, and split the residual stream over the TP ranks",
        fix: "if 'dp:0' is the tensor-parallel group, --tp-group dp:0",
      },
    ]);
    // async-tp gives SP's reason (the group), not "run sequence-parallelism first".
    expect(r.stages[3]!.diagnostics.map((d) => [d.node, d.blocker])).toEqual([['all_reduce_1', 'group']]);
    expect(ops(r.output, 'vllm.all_reduce.default').map((n) => n.args[1])).toEqual(['dp:0']);
  });

  it('--tp-group dp:0 turns it around', () => {
    expect(
      runPipeline(g, ['sequence-parallelism'], { worldSize: 2, tpGroup: 'dp:0' }).stages[0]!.matches.map(
        (m) => m.site,
      ),
    ).toEqual(['all_reduce_1']);
  });

  it('async-tp alone leaves a dp reduce_scatter, naming the group', () => {
    const dp = graph([
      'mm: "bf16[8, 64]" = torch.ops.aten.mm.default(arg0_1, arg1_1)',
      `reduce_scatter: "bf16[4, 64]" = torch.ops.vllm.reduce_scatter.default(mm, dim = 0, world_size = 2, group_name = 'dp:0')`,
    ]);
    const r = PASSES['async-tp'](dp, { worldSize: 2 });
    expect(r.matches).toEqual([]);
    expect(r.diagnostics[0]).toMatchObject({ node: 'reduce_scatter', blocker: 'group' });
    expect(r.diagnostics[0]!.reason).toContain("reduce_scatter is over 'dp:0', not the TP group 'tp:0'");
  });
});

/**
 * Llama-4's stack: its embeddings are computed outside the graph (a multimodal model's inputs_embeds),
 * so the graph starts at the first layer's norm with no all-reduce before it, and the first layer's
 * residual is the graph input. The generated Qwen3-MoE stack (attention + MoE, like Llama-4's
 * layers) with its embedding cut off. `writeBack`: the custom-op norm mutates the input residual in
 * place, so functionalization writes it back (`copy_`) — as in every custom-op capture; vLLM IR's
 * functional norms (vLLM #36823) leave none.
 */
function llama4Like(layers: number, tp: number, writeBack = false): Graph {
  const lines = generateSample('qwen3-moe', { layers, tp }).split('\n');
  const def = lines.findIndex((l) => l.includes('def forward('));
  const ar = lines.findIndex((l) => /^\s+all_reduce: /.test(l));
  const body = lines
    .slice(ar + 1)
    .map((l) => (l.trim().startsWith('#') ? l : l.replace(/(?<![.\w])all_reduce\b/g, 'inputs_embeds')));
  const hidden = /all_reduce: "bf16\[s72, (\d+)\]"/.exec(lines[ar]!)![1];
  const head = lines[def]!.replace(
    'def forward(self, ',
    `def forward(self, inputs_embeds: "bf16[s72, ${hidden}]", `,
  );
  if (writeBack) {
    const ret = body.findIndex((l) => l.trim().startsWith('return'));
    // The first layer's new residual ([2] of its first fused_add_rms_norm), written back into the input.
    const norm = body
      .find((l) => l.includes('_C.fused_add_rms_norm.default'))!
      .trim()
      .split(' ')[0]!;
    const name = body
      .find((l) => l.includes(`= ${norm}[2]`))!
      .trim()
      .split(':')[0];
    body.splice(
      ret,
      0,
      `        copy_: "bf16[s72, ${hidden}]" = torch.ops.aten.copy_.default(inputs_embeds, ${name});  inputs_embeds = ${name} = copy_ = None`,
    );
  }
  return parseFx([...lines.slice(0, def), head, ...body].join('\n')).graph;
}

describe('a residual that enters as a graph input (Llama-4)', () => {
  it("48 layers: vLLM's 96 SP and 95 async-TP sites (2L, 2L − 1), at TP 2, 4 and 8", () => {
    for (const tp of [2, 4, 8]) expect(counts(llama4Like(48, tp), tp), `tp ${tp}`).toEqual([0, 0, 96, 95]);
  });

  it("each rank takes its own rows of the whole input residual (vllm.sequence_parallel_chunk_impl), not vLLM's prefix slice", () => {
    const g = llama4Like(1, 2);
    const out = PASSES['sequence-parallelism'](g, { worldSize: 2 });
    expect(out.matches).toHaveLength(2);
    const chunk = ops(out.graph, 'vllm.sequence_parallel_chunk_impl.default');
    expect(chunk).toHaveLength(1);
    expect(chunk[0]!.args).toEqual([{ kind: 'ref', name: 'inputs_embeds' }]);
    expect(chunk[0]!.type).toMatchObject({ shape: ['s72//2', 2048] });
    const norm = out.graph.nodes.find((n) =>
      JSON.stringify(n.kwargs['residual'] ?? null).includes(chunk[0]!.name),
    )!;
    expect(norm.kwargs['input']).toMatchObject({
      kind: 'ref',
      name: expect.stringMatching(/^reduce_scatter/),
    });
    expect(printFx(out.graph)).toContain(
      `${chunk[0]!.name}: "bf16[s72//2, 2048]" = torch.ops.vllm.sequence_parallel_chunk_impl.default(inputs_embeds)`,
    );
  });

  it('an input residual that is a shard already (a pipeline stage, vLLM is_residual_scattered_for_sp) is read as it is', () => {
    const text = printFx(llama4Like(1, 2)).replace(
      'inputs_embeds: "bf16[s72, 2048]"',
      'inputs_embeds: "bf16[s72//2, 2048]"',
    );
    const out = PASSES['sequence-parallelism'](parseFx(text).graph, { worldSize: 2 });
    expect(out.matches).toHaveLength(2);
    expect(ops(out.graph, 'vllm.sequence_parallel_chunk_impl.default')).toEqual([]);
  });

  it("refuses the custom-op form's write-back into the input (vLLM's graph would copy a shard into the whole input), with that reason", () => {
    const r = runPipeline(llama4Like(2, 2, true), [...SEQUENCE_PARALLEL_PIPELINE], { worldSize: 2 });
    expect(r.stages.map((s) => s.matches.length)).toEqual([0, 0, 0, 0]);
    expect(
      r.stages[2]!.diagnostics.some((d) =>
        d.reason.includes(
          'copy_ writes it back into the graph input inputs_embeds, which the norm mutated in place: a [T/N, H] shard cannot be written into the whole input',
        ),
      ),
    ).toBe(true);
  });
});

describe('FP8 GEMMs in async TP (bf16 model, TP 2)', () => {
  const head = (extra = '') =>
    `    def forward(self, arg0_1: "f8e4m3fn[16, 16]", arg1_1: "f8e4m3fn[16, 16]", arg2_1: "f32[16, 1]", arg3_1: "f32[1, 16]"${extra}):`;
  const scaledMmRs = (outDtype = 'torch.bfloat16', bias = 'None') =>
    graph([
      'class GraphModule(torch.nn.Module):',
      head(', arg4_1: "bf16[16]"'),
      '        permute: "f8e4m3fn[16, 16]" = torch.ops.aten.permute.default(arg1_1, [1, 0]);  arg1_1 = None',
      `        _scaled_mm: "bf16[16, 16]" = torch.ops.aten._scaled_mm.default(arg0_1, permute, arg2_1, arg3_1, ${bias}, None, ${outDtype});  arg0_1 = permute = arg2_1 = arg3_1 = None`,
      '        reduce_scatter: "bf16[8, 16]" = torch.ops.vllm.reduce_scatter.default(_scaled_mm, 0, 2, group_name = \'tp:0\');  _scaled_mm = None',
      '        return (reduce_scatter,)',
    ]);
  const agScaledMm = graph([
    'class GraphModule(torch.nn.Module):',
    '    def forward(self, arg0_1: "f8e4m3fn[8, 16]", arg1_1: "f8e4m3fn[16, 16]", arg2_1: "f32[16, 1]", arg3_1: "f32[1, 16]"):',
    '        all_gather: "f8e4m3fn[16, 16]" = torch.ops.vllm.all_gather.default(arg0_1, 0, 2, group_name = \'tp:0\');  arg0_1 = None',
    '        permute: "f8e4m3fn[16, 16]" = torch.ops.aten.permute.default(arg1_1, [1, 0]);  arg1_1 = None',
    '        _scaled_mm: "bf16[16, 16]" = torch.ops.aten._scaled_mm.default(all_gather, permute, arg2_1, arg3_1, None, None, torch.bfloat16);  all_gather = permute = arg2_1 = arg3_1 = None',
    '        return (_scaled_mm,)',
  ]);
  // As a capture prints _C.cutlass_scaled_mm (scripts/capture/vllm_ops.py's schema): out = a new buffer, result [1].
  const cutlass = (a: string, pre: string[], post: string[]) =>
    graph([
      'class GraphModule(torch.nn.Module):',
      head(),
      ...pre,
      '        permute: "f8e4m3fn[16, 16]" = torch.ops.aten.permute.default(arg1_1, [1, 0]);  arg1_1 = None',
      '        empty: "bf16[16, 16]" = torch.ops.aten.empty.memory_format([16, 16], dtype = torch.bfloat16, device = device(type=\'cuda\', index=0), pin_memory = False)',
      `        auto_functionalized = torch.ops.higher_order.auto_functionalized(torch.ops._C.cutlass_scaled_mm.default, out = empty, a = ${a}, b = permute, a_scales = arg2_1, b_scales = arg3_1, bias = None);  empty = permute = arg2_1 = arg3_1 = None`,
      '        getitem_1: "bf16[16, 16]" = auto_functionalized[1];  auto_functionalized = None',
      ...post,
    ]);
  const cutlassRs = cutlass(
    'arg0_1',
    [],
    [
      '        reduce_scatter: "bf16[8, 16]" = torch.ops.vllm.reduce_scatter.default(getitem_1, 0, 2, group_name = \'tp:0\');  getitem_1 = None',
      '        return (reduce_scatter,)',
    ],
  );
  const agCutlass = cutlass(
    'all_gather',
    [
      '        all_gather: "f8e4m3fn[16, 16]" = torch.ops.vllm.all_gather.default(arg0_1, 0, 2, group_name = \'tp:0\');  arg0_1 = None',
    ],
    ['        return (getitem_1,)'],
  );
  const fused = (g: Graph) => PASSES['async-tp'](g, { worldSize: 2 });

  it("_scaled_mm → reduce_scatter: vLLM's fused_scaled_matmul_reduce_scatter with its argument list", () => {
    const r = fused(scaledMmRs());
    expect(r.matches.map((m) => [m.site, m.consumed])).toEqual([
      ['reduce_scatter', ['_scaled_mm', 'reduce_scatter']],
    ]);
    expect(printFx(r.graph)).toContain(
      "fused_scaled_matmul_reduce_scatter: \"bf16[8, 16]\" = torch.ops.symm_mem.fused_scaled_matmul_reduce_scatter.default(arg0_1, permute, arg2_1, arg3_1, 'sum', 0, 0, 'tp:0', [16, 16], None, None, torch.bfloat16, False)",
    );
    expect(r.diagnostics).toEqual([]);
  });

  it("all_gather → _scaled_mm: vLLM's fused_all_gather_scaled_matmul, its matmul output [1][0]", () => {
    const r = fused(agScaledMm);
    expect(r.matches.map((m) => [m.site, m.consumed])).toEqual([
      ['all_gather', ['all_gather', '_scaled_mm']],
    ]);
    const printed = printFx(r.graph);
    expect(printed).toContain(
      "fused_all_gather_scaled_matmul = torch.ops.symm_mem.fused_all_gather_scaled_matmul.default(arg0_1, [permute], arg2_1, [arg3_1], gather_dim = 0, biases = [None], result_scales = [None], out_dtypes = [torch.bfloat16], use_fast_accum = [False], group_name = 'tp:0')",
    );
    expect(printed).toMatch(/return \(getitem_\d+,\)/);
  });

  it('cutlass_scaled_mm (through auto_functionalized) on either side: the same fused ops, its output buffer gone', () => {
    const rs = fused(cutlassRs);
    expect(rs.matches.map((m) => [m.site, m.consumed])).toEqual([
      ['reduce_scatter', ['empty', 'auto_functionalized', 'getitem_1', 'reduce_scatter']],
    ]);
    expect(ops(rs.graph, 'symm_mem.fused_scaled_matmul_reduce_scatter.default')).toHaveLength(1);
    expect(ops(rs.graph, 'aten.empty.memory_format')).toEqual([]);
    const ag = fused(agCutlass);
    expect(ag.matches.map((m) => [m.site, m.consumed])).toEqual([
      ['all_gather', ['all_gather', 'empty', 'auto_functionalized', 'getitem_1']],
    ]);
    expect(ops(ag.graph, 'symm_mem.fused_all_gather_scaled_matmul.default')).toHaveLength(1);
  });

  it('vLLM registers the FP8 patterns for bf16 models and bias = None only: an f16 output or a bias is refused with that reason', () => {
    const f16 = fused(scaledMmRs('torch.float16'));
    expect(f16.matches).toEqual([]);
    expect(f16.diagnostics[0]!.reason).toBe(
      '_scaled_mm (aten._scaled_mm.default) writes torch.float16: vLLM registers its FP8 async-TP patterns for bf16 models only (row-wise scaled matmuls return bf16 only)',
    );
    const biased = fused(scaledMmRs('torch.bfloat16', 'arg4_1'));
    expect(biased.matches).toEqual([]);
    expect(biased.diagnostics[0]!.reason).toBe(
      "_scaled_mm (aten._scaled_mm.default) has a bias: vLLM's FP8 async-TP patterns are written with bias = None",
    );
  });
});

describe('addmm is no GEMM vLLM matches', () => {
  it('all_gather → addmm stays, and the diagnostic says why', () => {
    const g = graph([
      'all_gather: "bf16[8, 64]" = torch.ops.vllm.all_gather.default(arg0_1, dim = 0, world_size = 2, group_name = \'tp:0\')',
      'addmm: "bf16[8, 96]" = torch.ops.aten.addmm.default(arg2_1, all_gather, arg1_1)',
    ]);
    const r = PASSES['async-tp'](g, { worldSize: 2 });
    expect(r.matches).toEqual([]);
    expect(r.diagnostics).toEqual([
      {
        pass: 'async-tp',
        node: 'all_gather',
        blocker: 'addmm',
        reason:
          "addmm (aten.addmm.default) is a matmul with a bias: vLLM's async-TP patterns match aten.mm, _scaled_mm and cutlass_scaled_mm without bias, and torch's post-grad graph keeps a biased linear as addmm",
      },
    ]);
  });
});

describe('every stage keeps its diagnostics', () => {
  const dump = readFileSync(
    new URL(
      '../../../fixtures/capture/vllm-dump-gpt-oss-before-tp2/before_noop_elimination-0.py',
      import.meta.url,
    ),
    'utf8',
  );
  const g = importGraph(dump, { fileName: 'before_noop_elimination-0.py' }).graph;

  it("a real vLLM dump before noop-elimination: slice-hoist's refusal names the write-back, and noop-elimination as the fix", () => {
    const r = runPipeline(g, ['slice-hoist'], { worldSize: 2 });
    const refusals = r.stages[0]!.diagnostics;
    expect(refusals.map((d) => [d.node, d.blocker, d.fix])).toEqual([
      ['all_reduce_2', 'slice_scatter_2', 'run noop-elimination'],
      ['all_reduce_4', 'slice_scatter_5', 'run noop-elimination'],
    ]);
    expect(refusals[0]!.reason).toBe(
      "all_reduce_2 is also read by slice_scatter_2, functionalization's write-back of the slice (a slice_scatter whose readers only take the same range back): noop-elimination removes it, and then slice_1 is the only reader",
    );
    // With noop-elimination first, both slices hoist.
    expect(
      runPipeline(g, ['noop-elimination', 'slice-hoist'], { worldSize: 2 }).stages[1]!.matches,
    ).toHaveLength(2);
  });

  it('the all-reduce fusion alone names noop-elimination as what unlocks the two MoE sites', () => {
    const r = runPipeline(g, ['allreduce-rmsnorm'], { worldSize: 2 });
    expect(r.diagnostics.map((d) => [d.node, d.fix])).toEqual([
      ['all_reduce_2', 'run noop-elimination'],
      ['all_reduce_4', 'run noop-elimination'],
    ]);
  });

  it("the SP pipeline on it: each stage its own diagnostics, the run's list their concatenation in stage order", () => {
    const r = runPipeline(g, ['slice-hoist', 'sequence-parallelism', 'async-tp'], { worldSize: 2 });
    expect(r.stages.map((s) => s.diagnostics.length)).toEqual([2, 5, 5]);
    expect(r.diagnostics).toEqual(r.stages.flatMap((s) => s.diagnostics));
    for (const s of r.stages) for (const d of s.diagnostics) expect(d.pass).toBe(s.pass);
    // async-tp repeats what held SP back instead of asking for it.
    expect(r.stages[2]!.diagnostics.some((d) => d.reason.includes('run sequence-parallelism first'))).toBe(
      false,
    );
  });
});

/**
 * vLLM's SP test model (tests/compile/passes/distributed/test_sequence_parallelism.py,
 * TestAllReduceRMSNormModel): relu → all_reduce → rms_norm, then three times mm → all_reduce →
 * fused_add_rms_norm, in each spelling of the norms vLLM's matchers accept — the custom op
 * ("+rms_norm"), the native decomposition ("-rms_norm", as torch 2.13 prints forward_native: see
 * matchers/normForms.ts) and the vLLM IR op. vLLM: matched_count == 4; async TP then 3 (each mm
 * fuses once, with the reduce_scatter after it).
 */
function spTestModel(form: 'custom' | 'native' | 'vllm-ir'): Graph {
  const T = '"bf16[s77, 16]"';
  const lines: string[] = [
    'def forward(self, arg0_1: "Sym(s77)", arg1_1: "bf16[s77, 16]", arg2_1: "bf16[16]", arg3_1: "bf16[16, 16]"):',
    `    relu: ${T} = torch.ops.aten.relu.default(arg1_1);  arg1_1 = None`,
  ];
  let residual = '';
  let input = 'relu';
  for (let i = 0; i < 4; i++) {
    const ar = `all_reduce_${i}`;
    lines.push(`    ${ar}: ${T} = torch.ops.vllm.all_reduce.default(${input}, 'tp:0')`);
    let normed: string;
    if (form === 'custom') {
      if (i === 0) {
        lines.push(
          `    empty: ${T} = torch.ops.aten.empty.memory_format([arg0_1, 16], dtype = torch.bfloat16, device = device(type='cuda', index=0), pin_memory = False)`,
          `    af_0 = torch.ops.higher_order.auto_functionalized(torch.ops._C.rms_norm.default, result = empty, input = ${ar}, weight = arg2_1, epsilon = 1e-06)`,
          `    normed_0: ${T} = af_0[1]`,
        );
      } else {
        lines.push(
          `    af_${i} = torch.ops.higher_order.auto_functionalized(torch.ops._C.fused_add_rms_norm.default, input = ${ar}, residual = ${residual}, weight = arg2_1, epsilon = 1e-06)`,
          `    normed_${i}: ${T} = af_${i}[1]`,
          ...(i < 3 ? [`    residual_${i}: ${T} = af_${i}[2]`] : []),
        );
      }
      normed = `normed_${i}`;
    } else if (form === 'vllm-ir') {
      if (i === 0)
        lines.push(`    normed_0: ${T} = torch.ops.vllm_ir.rms_norm.default(${ar}, arg2_1, 1e-06)`);
      else
        lines.push(
          `    ir_${i} = torch.ops.vllm_ir.fused_add_rms_norm.default(${ar}, ${residual}, arg2_1, 1e-06)`,
          `    normed_${i}: ${T} = ir_${i}[0]`,
          ...(i < 3 ? [`    residual_${i}: ${T} = ir_${i}[1]`] : []),
        );
      normed = `normed_${i}`;
    } else {
      const F = '"f32[s77, 16]"',
        S = '"f32[s77, 1]"';
      let v = `x32_${i}`;
      lines.push(`    ${v}: ${F} = torch.ops.prims.convert_element_type.default(${ar}, torch.float32)`);
      if (i > 0) {
        lines.push(
          `    r32_${i}: ${F} = torch.ops.prims.convert_element_type.default(${residual}, torch.float32)`,
          `    z_${i}: ${F} = torch.ops.aten.add.Tensor(${v}, r32_${i})`,
        );
        v = `z_${i}`;
      }
      lines.push(
        `    pow_${i}: ${F} = torch.ops.aten.pow.Tensor_Scalar(${v}, 2)`,
        `    mean_${i}: ${S} = torch.ops.aten.mean.dim(pow_${i}, [-1], True)`,
        `    eps_${i}: ${S} = torch.ops.aten.add.Tensor(mean_${i}, 1e-06)`,
        `    rsqrt_${i}: ${S} = torch.ops.aten.rsqrt.default(eps_${i})`,
        `    mul_${i}: ${F} = torch.ops.aten.mul.Tensor(${v}, rsqrt_${i})`,
        `    back_${i}: ${T} = torch.ops.prims.convert_element_type.default(mul_${i}, torch.bfloat16)`,
        `    normed_${i}: ${T} = torch.ops.aten.mul.Tensor(back_${i}, arg2_1)`,
        ...(i > 0 && i < 3
          ? [`    residual_${i}: ${T} = torch.ops.prims.convert_element_type.default(z_${i}, torch.bfloat16)`]
          : []),
      );
      normed = `normed_${i}`;
    }
    residual = i === 0 ? ar : `residual_${i}`;
    if (i < 3) {
      lines.push(`    mm_${i}: ${T} = torch.ops.aten.mm.default(${normed}, arg3_1)`);
      input = `mm_${i}`;
    } else lines.push(`    return (${normed},)`);
  }
  return parseFx(lines.join('\n')).graph;
}

describe("vLLM's SP test model in each norm spelling (custom op, native, vLLM IR)", () => {
  for (const form of ['custom', 'native', 'vllm-ir'] as const) {
    it(`${form}: 4 SP sites and 3 async-TP sites at TP 2, as vLLM counts them`, () => {
      const g = spTestModel(form);
      const r = runPipeline(g, [...SEQUENCE_PARALLEL_PIPELINE], { worldSize: 2 });
      expect(r.stages.map((s) => s.matches.length)).toEqual([0, 0, 4, 3]);
      expect(r.stages[2]!.diagnostics).toEqual([]);
      const sp = r.stages[2]!.graph;
      expect(ops(sp, 'vllm.all_reduce.default')).toEqual([]);
      expect(ops(sp, 'vllm.reduce_scatter.default')).toHaveLength(4);
      expect(ops(sp, 'vllm.all_gather.default')).toHaveLength(4);
      // Every norm now works on the shard: the normed outputs and residuals are [s77//2, 16].
      for (const n of sp.nodes.filter((x) => /^(normed|residual)_\d$/.test(x.name)))
        expect(n.type, n.name).toMatchObject({ shape: ['s77//2', 16] });
      // What the graph returns is gathered back to the whole token count.
      const ret = sp.outputs![0] as { name: string };
      expect(sp.nodes.find((n) => n.name === ret.name)).toMatchObject({
        op: 'vllm.all_gather.default',
        type: { shape: ['s77', 16] },
      });
    });
  }
});

describe('captured graphs (fixtures/capture): SP and async-TP counts as vLLM gives them', () => {
  const load = (f: string) =>
    importGraph(readFileSync(new URL(`../../../fixtures/capture/${f}`, import.meta.url), 'utf8'), {
      fileName: f,
    }).graph;
  // tests/compile/fusions_e2e/models.py at L = 2: Llama-3 (bf16 and FP8) 2L+1 / 4L, Qwen3-MoE 2L+1 / 2L.
  const cases: [string, number, number, number][] = [
    ['llama-tp2.py', 2, 5, 8],
    ['llama-tp2-v2.py', 2, 5, 8],
    ['llama-fp8-tp2.py', 2, 5, 8],
    ['qwen3-moe-tp4.py', 4, 5, 4],
  ];
  for (const [file, tp, sp, atp] of cases) {
    it(`${file}: ${sp} SP, ${atp} async-TP sites`, () => {
      expect(counts(load(file), tp)).toEqual([0, 0, sp, atp]);
    });
  }

  it("llama-fp8-tp2: the static FP8 quant after a split norm is split with it and its fp8 output gathered, so cutlass_scaled_mm after the all_gather fuses (vLLM's StaticFP8 SP patterns)", () => {
    const r = runPipeline(load('llama-fp8-tp2.py'), [...SEQUENCE_PARALLEL_PIPELINE], { worldSize: 2 });
    const gathers = ops(r.stages[2]!.graph, 'vllm.all_gather.default');
    expect(gathers.map((n) => n.type && n.type.kind === 'tensor' && n.type.dtype)).toEqual([
      'f8e4m3fn',
      'f8e4m3fn',
      'f8e4m3fn',
      'f8e4m3fn',
      'bf16',
    ]);
    expect(ops(r.output, 'symm_mem.fused_all_gather_scaled_matmul.default')).toHaveLength(4);
  });

  it('gpt-oss-after-tp2: 5 SP sites, and no async-TP site: its projections are biased (addmm), which no vLLM pattern matches', () => {
    const r = runPipeline(load('gpt-oss-after-tp2.py'), [...SEQUENCE_PARALLEL_PIPELINE], { worldSize: 2 });
    expect(r.stages.map((s) => s.matches.length)).toEqual([0, 0, 5, 0]);
    expect(r.stages[3]!.diagnostics.filter((d) => d.reason.includes('is a matmul with a bias'))).toHaveLength(
      6,
    );
  });
});
