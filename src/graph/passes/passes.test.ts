import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { parseFx } from '../fx/parse.ts';
import type { Graph, Node } from '../ir.ts';
import { float, ref } from '../ir.ts';
import { GraphBuilder } from '../build.ts';
import { generateSample } from '../samples/index.ts';
import { DEFAULT_PIPELINE, PASSES, diagnose, runPipeline } from './pipeline.ts';
import { functionalizedTarget } from '../call.ts';
import { FUSED_ALLREDUCE_NORM } from './patternOps.ts';

const FX = new URL('../../../fixtures/fx/', import.meta.url).pathname;
const load = (f: string) => parseFx(readFileSync(FX + f, 'utf8')).graph;
const nodesByOp = (g: Graph, op: string) => g.nodes.filter((n) => n.op === op);
const afOf = (g: Graph, target: string) => g.nodes.filter((n) => functionalizedTarget(n) === target);
const FUSED = FUSED_ALLREDUCE_NORM;
const byName = (g: Graph, name: string) => g.nodes.find((n) => n.name === name)!;

describe('PR #28841 fragments', () => {
  const before = load('seed/pr28841-before.fragment.txt');
  const after = load('seed/pr28841-after.fragment.txt');

  it('hoists the slice once, then fuses it into flashinfer_trtllm_fused_allreduce_norm as the "after" fragment shows', () => {
    const r = runPipeline(before, [...DEFAULT_PIPELINE], { gpu: 'blackwell' });
    expect(r.stages.map((s) => s.matches.length)).toEqual([0, 1, 1]);
    expect(r.stages[1]!.matches[0]).toEqual({
      pass: 'slice-hoist',
      site: 'all_reduce_1',
      consumed: ['all_reduce_1', 'slice_1'],
      produced: ['slice_1', 'all_reduce_1'],
    });
    const hoisted = r.stages[1]!.graph;
    expect(byName(hoisted, 'slice_1').args).toEqual([ref('getitem_3'), 1, 0, 2880]);
    expect(byName(hoisted, 'all_reduce_1').args).toEqual([ref('slice_1'), 'tp:0']);
    expect(byName(hoisted, 'all_reduce_1').type).toEqual({
      kind: 'tensor',
      dtype: 'bf16',
      shape: ['s72', 2880],
    });

    const [fused] = afOf(r.output, FUSED);
    const [expected] = afOf(after, FUSED);
    // Same call as the PR's: allreduce_in = the slice, world size 4, max_token_num 5825 (B200).
    // Only the residual's name differs: the two fragments come from different dumps.
    const { residual: r1, ...rest } = fused!.kwargs;
    const { residual: r2, ...restExpected } = expected!.kwargs;
    expect(rest).toEqual(restExpected);
    expect(r1).toEqual(ref('getitem_18'));
    expect(r2).toEqual(ref('getitem_14'));
    expect(fused!.meta.madeBy).toEqual({
      pass: 'allreduce-rmsnorm',
      from: ['all_reduce_1', 'auto_functionalized_2'],
    });
    expect(nodesByOp(r.output, 'vllm.all_reduce.default')).toEqual([]);
    expect(r.diagnostics).toEqual([]);
  });

  it('without the hoist, names the slice as the blocker', () => {
    const r = runPipeline(before, ['allreduce-rmsnorm']);
    expect(r.stages[0]!.matches).toEqual([]);
    expect(r.diagnostics).toEqual([
      {
        pass: 'allreduce-rmsnorm',
        node: 'all_reduce_1',
        blocker: 'slice_1',
        reason: 'slice_1 (aten.slice.Tensor) sits between all_reduce_1 and the norm; run slice-hoist',
        fix: 'run slice-hoist',
      },
    ]);
  });

  it('leaves its input graphs untouched (every stage, every pattern)', () => {
    for (const g of [
      before,
      load('real/qwen2-paral2_layer1-r0.py'),
      parseFx(generateSample('gpt-oss-20b', { layers: 2 })).graph,
    ]) {
      const snapshot = JSON.stringify(g);
      const r = runPipeline(g, [...DEFAULT_PIPELINE], { worldSize: 2 });
      expect(JSON.stringify(g)).toBe(snapshot);
      expect(r.stages.reduce((n, s) => n + s.matches.length, 0)).toBeGreaterThan(0);
    }
  });
});

describe('Qwen2 real dumps', () => {
  for (const [file, worldSize] of [
    ['real/qwen2-paral2_layer1-r0.py', 2],
    ['real/qwen2-paral2_layer1-r1.py', 2],
    ['real/qwen2-paral4_layer1-r0.py', 4],
  ] as const) {
    it(`${file}: 3 fusable sites — embedding → rms_norm, attention and MLP → fused_add_rms_norm`, () => {
      const g = load(file);
      const r = runPipeline(g, [...DEFAULT_PIPELINE], { worldSize });
      const fusion = r.stages[2]!;
      expect(fusion.matches.map((m) => m.site)).toEqual(['all_reduce', 'all_reduce_1', 'all_reduce_2']);
      const fused = afOf(r.output, FUSED);
      expect(fused).toHaveLength(3);
      expect(fused.map((n) => n.kwargs['rms_eps'])).toEqual([float(1e-6), float(1e-6), float(1e-6)]);
      // hidden 1536 bf16: min(64 MiB / 3072 B, 8192) = 8192 at TP2; ⌊2 MiB / 3072 B⌋ = 682 at TP4 (Hopper).
      expect(fused.map((n) => n.kwargs['max_token_num'])).toEqual(
        Array(3).fill(worldSize === 2 ? 8192 : 682),
      );
      expect(fused.map((n) => n.kwargs['world_size'])).toEqual([worldSize, worldSize, worldSize]);
      expect(r.diagnostics).toEqual([]);
      expect(nodesByOp(r.output, 'vllm.all_reduce.default')).toHaveLength(0);
    });
  }

  it('first-layer rms_norm: zero residual, a new norm_out buffer, normed output from [3], the residual stream from [1]', () => {
    const r = runPipeline(load('real/qwen2-paral2_layer1-r0.py'), ['allreduce-rmsnorm'], { worldSize: 2 });
    const first = r.stages[0]!.matches[0]!;
    // In graph order: the norm's scratch output buffer comes before the norm.
    expect(first.consumed).toEqual(['all_reduce', 'empty_like', 'auto_functionalized', 'getitem_1']);
    const g = r.output;
    const fused = byName(
      g,
      first.produced.find((p) => p.startsWith('auto_functionalized'))!,
    );
    expect(fused.kwargs['allreduce_in']).toEqual(ref('masked_fill'));
    const zeros = byName(g, (fused.kwargs['residual'] as { name: string }).name);
    const out = byName(g, (fused.kwargs['norm_out'] as { name: string }).name);
    expect([zeros.op, zeros.args]).toEqual(['aten.zeros_like.default', [ref('masked_fill')]]);
    expect([out.op, out.args]).toEqual(['aten.empty_like.default', [ref('masked_fill')]]);
    expect(byName(g, 'getitem_1').args).toEqual([ref(fused.name), 3]);
    // The attention norm's residual read the all-reduce; now it reads the fused op's [1].
    const attnNorm = afOf(g, FUSED)[1]!;
    const residual = byName(g, (attnNorm.kwargs['residual'] as { name: string }).name);
    expect(residual.args).toEqual([ref(fused.name), 1]);
    // Every node reads only values defined above it.
    const seen = new Set(g.inputs.map((i) => i.name));
    for (const n of g.nodes) {
      for (const v of Object.values(n.kwargs).concat(n.args)) {
        if (v && typeof v === 'object' && !Array.isArray(v) && v.kind === 'ref')
          expect(seen.has(v.name), `${n.name} reads ${v.name}`).toBe(true);
      }
      seen.add(n.name);
    }
  });

  it('TP1 has no all-reduce: nothing fuses and nothing is diagnosed', () => {
    const r = runPipeline(load('real/qwen2-paral1_layer1-r0.py'), [...DEFAULT_PIPELINE]);
    expect(r.stages[2]!.matches).toEqual([]);
    expect(r.diagnostics).toEqual([]);
  });

  it("'compile-range' token gate: 32768 tokens exceed max_token_num, with the numbers", () => {
    const d = diagnose(load('real/qwen2-paral4_layer1-r0.py'), { worldSize: 4, tokenGate: 'compile-range' });
    expect(d).toHaveLength(3);
    expect(d[0]).toEqual({
      pass: 'allreduce-rmsnorm',
      node: 'all_reduce',
      blocker: 'too many tokens',
      reason:
        "too many tokens: 32768 tokens × 1536 × 2 B = 96 MiB exceeds FlashInfer's 2 MiB limit at world size 4 on hopper (max_token_num 682)",
      fix: 'at most 682 tokens (--max-tokens 682), or world size 2',
    });
  });
});

describe('Megatron GPT training graphs (c10d collectives)', () => {
  for (const file of ['real/gpt-paral2_layer2-r0.py', 'real/gpt-paral2_layer8-r0.py']) {
    it(`${file}: no vLLM fusion; every all_reduce explained`, () => {
      const g = load(file);
      const r = runPipeline(g, [...DEFAULT_PIPELINE]);
      expect(r.stages[1]!.matches).toEqual([]);
      expect(r.stages[2]!.matches).toEqual([]);
      const ars = nodesByOp(g, '_c10d_functional.all_reduce.default');
      expect(ars.length).toBeGreaterThan(0);
      expect(r.diagnostics.map((d) => d.node)).toEqual(ars.map((n) => n.name));
      for (const d of r.diagnostics) {
        expect(d.reason).toMatch(
          new RegExp(
            `^${d.node} is _c10d_functional\\.all_reduce\\.default, not vllm\\.all_reduce: .*; its result feeds copy(_\\d+)? \\(aten\\.copy\\.default\\)$`,
          ),
        );
      }
    });
  }
});

describe("generated samples: the counts of vLLM's e2e fusion test", () => {
  for (const [model, layers] of [
    ['gpt-oss-20b', 24],
    ['gpt-oss-120b', 36],
  ] as const) {
    it(`${model} (${layers} layers): ${layers + 1} fusions without the hoist, ${layers} hoists, then ${2 * layers + 1}`, () => {
      const g = parseFx(generateSample(model)).graph;
      const only = runPipeline(g, ['allreduce-rmsnorm']);
      expect(only.stages[0]!.matches).toHaveLength(layers + 1);
      expect(only.diagnostics).toHaveLength(layers);
      expect(new Set(only.diagnostics.map((d) => d.fix))).toEqual(new Set(['run slice-hoist']));
      expect(nodesByOp(only.output, 'aten.slice.Tensor')).toHaveLength(layers);
      const full = runPipeline(g, [...DEFAULT_PIPELINE]);
      expect(full.stages.map((s) => s.matches.length)).toEqual([0, layers, 2 * layers + 1]);
      expect(full.diagnostics).toEqual([]);
      // The hoisted all-reduce moves 2880 columns instead of 3072.
      const hoisted = full.stages[1]!.graph;
      const moeReduce = byName(hoisted, full.stages[1]!.matches[0]!.site);
      expect(moeReduce.type).toEqual({ kind: 'tensor', dtype: 'bf16', shape: ['s72', 2880] });
      // New nodes keep the source location of what they stand in for.
      expect(moeReduce.meta.file).toMatch(
        /^\/opt\/vllm\/vllm\/distributed\/parallel_state\.py:307 in all_reduce/,
      );
      expect(
        afOf(full.output, FUSED).every((n) =>
          /_custom_ops\.py:15[38] in (fused_add_)?rms_norm/.test(n.meta.file ?? ''),
        ),
      ).toBe(true);
    });
  }

  it('llama (32 layers): 65 fusions, nothing to hoist', () => {
    const r = runPipeline(parseFx(generateSample('llama')).graph, [...DEFAULT_PIPELINE]);
    expect(r.stages.map((s) => s.matches.length)).toEqual([0, 0, 65]);
  });

  it('applies one site when asked (only)', () => {
    const g = parseFx(generateSample('gpt-oss-20b', { layers: 2 })).graph;
    const r = PASSES['slice-hoist'](g, {}, (site) => site === 'all_reduce_4');
    expect(r.matches.map((m) => m.site)).toEqual(['all_reduce_4']);
    const partialSums = byName(g, 'all_reduce_4').args[0] as { name: string };
    expect(byName(g, partialSums.name).op).toBe('getitem');
    expect(nodesByOp(r.graph, 'aten.slice.Tensor').map((n) => n.args[0])).toEqual([
      ref('all_reduce_2'),
      partialSums,
    ]);
  });
});

describe('gates', () => {
  const g = parseFx(generateSample('gpt-oss-20b', { layers: 1 })).graph;

  it('world size 3 stops every fusion, with the fix', () => {
    const r = runPipeline(g, [...DEFAULT_PIPELINE], { worldSize: 3 });
    expect(r.stages[2]!.matches).toEqual([]);
    expect(r.diagnostics).toHaveLength(3);
    expect(r.diagnostics[0]).toEqual({
      pass: 'allreduce-rmsnorm',
      node: 'all_reduce',
      blocker: 'world size',
      reason: "world size 3 (option): FlashInfer's fused all-reduce + RMSNorm runs on 2, 4 or 8 ranks",
      fix: 'world size must be 2, 4 or 8',
    });
  });

  it('eps other than 1e-5 / 1e-6 is not fused', () => {
    const text = generateSample('gpt-oss-20b', { layers: 1 }).replaceAll(
      'epsilon = 1e-05',
      'epsilon = 0.001',
    );
    const r = runPipeline(parseFx(text).graph, [...DEFAULT_PIPELINE]);
    expect(r.stages[2]!.matches).toEqual([]);
    expect(r.diagnostics.map((d) => d.blocker)).toEqual(['eps', 'eps', 'eps']);
    expect(r.diagnostics[0]!.reason).toBe(
      'eps 0.001: vLLM registers the all-reduce + RMSNorm patterns for eps 1e-05 and 1e-06 only',
    );
  });

  it("max_token_num per GPU generation; 'compile-range' refuses a batch budget above it", () => {
    const fusedAt = (opts: Parameters<typeof runPipeline>[2]) =>
      afOf(runPipeline(g, [...DEFAULT_PIPELINE], opts).output, FUSED).map((n) => n.kwargs['max_token_num']);
    // hidden 2880 bf16 = 5760 B per token.
    expect(fusedAt({ worldSize: 2 })).toEqual([8192, 8192, 8192]); // min(⌊64 MiB / 5760⌋ = 11650, 8192)
    expect(fusedAt({ worldSize: 4 })).toEqual([364, 364, 364]); // ⌊2 MiB / 5760⌋
    expect(fusedAt({ worldSize: 8 })).toEqual([91, 91, 91]); // ⌊0.5 MiB / 5760⌋
    expect(fusedAt({ worldSize: 4, gpu: 'blackwell' })).toEqual([5825, 5825, 5825]);
    expect(fusedAt({ worldSize: 8, gpu: 'blackwell' })).toEqual([182, 182, 182]);
    expect(fusedAt({ worldSize: 2, maxTokens: 2048 })).toEqual([2048, 2048, 2048]);
    const r = runPipeline(g, [...DEFAULT_PIPELINE], { worldSize: 4, tokenGate: 'compile-range' });
    expect(r.stages[2]!.matches).toEqual([]);
    expect(r.diagnostics[0]!.blocker).toBe('too many tokens');
    expect(r.diagnostics[0]!.reason).toBe(
      "too many tokens: 8192 tokens × 2880 × 2 B = 45 MiB exceeds FlashInfer's 2 MiB limit at world size 4 on hopper (max_token_num 364)",
    );
    expect(
      runPipeline(g, [...DEFAULT_PIPELINE], { worldSize: 4, tokenGate: 'compile-range', maxTokens: 364 })
        .stages[2]!.matches,
    ).toHaveLength(3);
  });
});

describe('slice-hoist refusals', () => {
  const T = 'bf16[s72, 3072]';
  const block = (
    extra: (b: GraphBuilder) => void,
    slice: [number, number, number, number] = [1, 0, 2880, 1],
    op = 'vllm.all_reduce.default',
  ) => {
    const b = new GraphBuilder();
    b.input('x', T);
    b.input('res', 'bf16[s72, 2880]');
    b.input('w', 'bf16[2880]');
    const ar =
      op === 'vllm.all_reduce.default'
        ? b.node('all_reduce_1', op, [ref('x'), 'tp:0'], {}, T)
        : b.node(
            'wait_tensor',
            '_c10d_functional.wait_tensor.default',
            [b.node('all_reduce_1', op, [ref('x'), 'sum', '0'], {}, T)],
            {},
            T,
          );
    b.node(
      'slice_1',
      'aten.slice.Tensor',
      [ar, ...slice],
      {},
      `bf16[s72, ${Math.ceil((slice[2] - slice[1]) / slice[3])}]`,
    );
    extra(b);
    return b.build();
  };
  const hoist = (g: Graph) => PASSES['slice-hoist'](g, {});

  it('another user of the all-reduce needs the full tensor', () => {
    const g = block((b) => b.node('clone', 'aten.clone.default', [ref('all_reduce_1')], {}, T));
    expect(hoist(g)).toMatchObject({
      matches: [],
      diagnostics: [
        {
          pass: 'slice-hoist',
          node: 'all_reduce_1',
          blocker: 'clone',
          reason:
            'all_reduce_1 has another user, clone, that needs the full tensor; hoisting slice_1 would reduce only part of it',
        },
      ],
    });
  });

  it('a step-2 slice is hoisted too, with a contiguous copy before the collective', () => {
    const r = hoist(block(() => {}, [1, 0, 3072, 2]));
    expect(r.matches).toEqual([
      {
        pass: 'slice-hoist',
        site: 'all_reduce_1',
        consumed: ['all_reduce_1', 'slice_1'],
        produced: ['slice_1', 'clone', 'all_reduce_1'],
      },
    ]);
    expect(r.graph.nodes.map((n: Node) => [n.name, n.op, n.args, n.type])).toEqual([
      [
        'slice_1',
        'aten.slice.Tensor',
        [ref('x'), 1, 0, 3072, 2],
        { kind: 'tensor', dtype: 'bf16', shape: ['s72', 1536] },
      ],
      [
        'clone',
        'aten.clone.default',
        [ref('slice_1')],
        { kind: 'tensor', dtype: 'bf16', shape: ['s72', 1536] },
      ],
      [
        'all_reduce_1',
        'vllm.all_reduce.default',
        [ref('clone'), 'tp:0'],
        { kind: 'tensor', dtype: 'bf16', shape: ['s72', 1536] },
      ],
    ]);
    expect(r.graph.nodes[1]!.kwargs).toEqual({
      memory_format: { kind: 'expr', text: 'torch.contiguous_format' },
    });
  });

  it('c10d all_reduce + wait_tensor is hoisted as a pair', () => {
    const r = hoist(block(() => {}, undefined, '_c10d_functional.all_reduce.default'));
    expect(r.matches).toEqual([
      {
        pass: 'slice-hoist',
        site: 'all_reduce_1',
        consumed: ['all_reduce_1', 'wait_tensor', 'slice_1'],
        produced: ['slice_1', 'all_reduce_1', 'wait_tensor'],
      },
    ]);
    expect(r.graph.nodes.map((n: Node) => [n.name, n.args[0]])).toEqual([
      ['slice_1', ref('x')],
      ['all_reduce_1', ref('slice_1')],
      ['wait_tensor', ref('all_reduce_1')],
    ]);
  });

  it('all_gather along the sliced dim does not commute; along another dim it is hoisted', () => {
    const gather = (dim: number) => {
      const b = new GraphBuilder();
      b.input('x', 'bf16[16, 3072]');
      const ag = b.node(
        'all_gather_into_tensor',
        '_c10d_functional.all_gather_into_tensor.default',
        [ref('x'), 4, '0'],
        {},
        'bf16[64, 3072]',
      );
      const w = b.node('wait_tensor', '_c10d_functional.wait_tensor.default', [ag], {}, 'bf16[64, 3072]');
      b.node(
        'slice_1',
        'aten.slice.Tensor',
        [w, dim, 0, dim === 0 ? 32 : 2880],
        {},
        dim === 0 ? 'bf16[32, 3072]' : 'bf16[64, 2880]',
      );
      return b.build();
    };
    const along = hoist(gather(0));
    expect(along.matches).toEqual([]);
    expect(along.diagnostics[0]!.reason).toBe(
      'slice_1 (aten.slice.Tensor) slices dim 0, the dim all_gather_into_tensor gathers along: the slice does not commute with it',
    );
    const across = hoist(gather(1));
    expect(across.matches).toHaveLength(1);
    expect(across.graph.nodes.map((n) => n.type)).toEqual([
      { kind: 'tensor', dtype: 'bf16', shape: [16, 2880] },
      { kind: 'tensor', dtype: 'bf16', shape: [64, 2880] },
      { kind: 'tensor', dtype: 'bf16', shape: [64, 2880] },
    ]);
  });

  it('diagnose names a slice that cannot be hoisted, and why', () => {
    const g = block(
      (b) => {
        b.functionalized('auto_functionalized', '_C.fused_add_rms_norm.default', {
          input: ref('slice_1'),
          residual: ref('res'),
          weight: ref('w'),
          epsilon: float(1e-5),
        });
        b.node('getitem', 'getitem', [ref('auto_functionalized'), 1], {}, 'bf16[s72, 1536]');
      },
      [5, 0, 3072, 2],
    );
    expect(diagnose(g)).toEqual([
      {
        pass: 'allreduce-rmsnorm',
        node: 'all_reduce_1',
        blocker: 'slice_1',
        reason:
          'slice_1 (aten.slice.Tensor) sits between all_reduce_1 and the norm, and cannot be hoisted: slice_1 (aten.slice.Tensor): dim 5 is outside the 2-d result of all_reduce_1',
      },
    ]);
  });
});

describe('noop-elimination', () => {
  it('drops a reshape to the same shape, a view chain back to its input shape, and a full-range slice', () => {
    const b = new GraphBuilder();
    b.input('x', 'bf16[8, 768]');
    b.node('view', 'aten.view.default', [ref('x'), [8, 768]], {}, 'bf16[8, 768]');
    b.node('view_1', 'aten.view.default', [ref('view'), [-1, 6, 128]], {}, 'bf16[8, 6, 128]');
    b.node('view_2', 'aten.view.default', [ref('view_1'), [-1, 768]], {}, 'bf16[8, 768]');
    b.node('slice_1', 'aten.slice.Tensor', [ref('view_2'), 0, 0, 9223372036854775807], {}, 'bf16[8, 768]');
    b.node('slice_2', 'aten.slice.Tensor', [ref('slice_1'), 1, 0, 512], {}, 'bf16[8, 512]');
    b.output(ref('slice_2'));
    const r = PASSES['noop-elimination'](b.build(), {});
    expect(r.matches.map((m) => m.consumed)).toEqual([['view'], ['view_2', 'view_1'], ['slice_1']]);
    expect(r.graph.nodes.map((n) => [n.name, n.args[0]])).toEqual([['slice_2', ref('x')]]);
    expect(r.graph.outputs).toEqual([ref('slice_2')]);
  });
});

describe('robustness', () => {
  it('every graph the importer accepts from mutated real dumps goes through the pipeline and diagnose without throwing', () => {
    // Deterministic line mutations (delete, duplicate, swap) of the fixtures and a sample.
    let seed = 28841;
    const rand = (n: number) => (seed = (seed * 1103515245 + 12345) % 2147483648) % n;
    const texts = [
      'seed/pr28841-before.fragment.txt',
      'real/qwen2-paral2_layer1-r0.py',
      'real/gpt-paral2_layer2-r0.py',
    ]
      .map((f) => readFileSync(FX + f, 'utf8'))
      .concat(generateSample('gpt-oss-20b', { layers: 2 }));
    let imported = 0;
    for (let k = 0; k < 240; k++) {
      const lines = texts[k % texts.length]!.split('\n');
      for (let m = 0, count = 1 + rand(2); m < count; m++) {
        const i = rand(lines.length),
          j = rand(lines.length);
        const op = rand(3);
        if (op === 0) lines.splice(i, 1);
        else if (op === 1) lines.splice(i, 0, lines[j]!);
        else [lines[i], lines[j]] = [lines[j]!, lines[i]!];
      }
      let g: Graph;
      try {
        g = parseFx(lines.join('\n')).graph;
      } catch {
        continue;
      }
      imported++;
      for (const opts of [{}, { worldSize: 3 }, { tokenGate: 'compile-range' as const }]) {
        const r = runPipeline(g, [...DEFAULT_PIPELINE], opts);
        for (const d of r.diagnostics) expect(d.reason.length).toBeGreaterThan(0);
        diagnose(g, opts);
      }
    }
    expect(imported).toBeGreaterThan(60);
  });
});
