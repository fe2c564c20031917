// `fusionlab bench sp`: the cost model's prediction for the three graphs agent/native/sp_bench.cu
// measures on GPUs — the all-reduce path, sequence parallelism, SP + async TP — on the GPT-OSS-20B
// layer's collective path (o_proj GEMM → collective + norm; MoE partial sum → collective + norm →
// qkv GEMM), made by the passes themselves from one fragment, at T = 1 … 16384 and TP 2/4/8.
// Prints, per T, predicted µs and the ratios ar ÷ sp and ar ÷ async (> 1: the split path wins);
// the measured ratios come from sp_bench (bench/RESULTS.md puts them side by side).
// Usage: fusionlab bench sp [--profile H200-NVLink] [--tp 2,4,8] [--measured sp.jsonl]

import { parseFx } from '../src/graph/fx/parse.ts';
import type { Graph } from '../src/graph/ir.ts';
import { runPipeline } from '../src/graph/passes/pipeline.ts';
import { predictGraph } from '../src/graph/cost/model.ts';
import { PROFILES } from '../src/graph/cost/profiles.ts';

/** The segment sp_bench times, as vLLM's rank-0 graph has it at TP `tp` (GPT-OSS-20B sizes). */
export function collectivePath(tp: number): Graph {
  const q = 4096 / tp,
    qkv = 5120 / tp,
    H = 2880;
  // The first norm is rms_norm (its residual is the all-reduce itself, as the first layer's): the
  // segment then starts the residual stream, which sequence parallelism must own end to end.
  const text = `class Segment(torch.nn.Module):
    def forward(self, arg0_1: "bf16[s72, ${q}]", arg1_1: "bf16[${q}, ${H}]", arg2_1: "bf16[${H}]", arg3_1: "bf16[s72, ${H}]", arg4_1: "bf16[${H}, ${qkv}]"):
        mm: "bf16[s72, ${H}]" = torch.ops.aten.mm.default(arg0_1, arg1_1)
        all_reduce: "bf16[s72, ${H}]" = torch.ops.vllm.all_reduce.default(mm, 'tp:0')
        empty_like: "bf16[s72, ${H}]" = torch.ops.aten.empty_like.default(all_reduce, pin_memory = False)
        auto_functionalized = torch.ops.higher_order.auto_functionalized(torch.ops._C.rms_norm.default, result = empty_like, input = all_reduce, weight = arg2_1, epsilon = 1e-05)
        getitem: "bf16[s72, ${H}]" = auto_functionalized[1]
        all_reduce_1: "bf16[s72, ${H}]" = torch.ops.vllm.all_reduce.default(arg3_1, 'tp:0')
        auto_functionalized_1 = torch.ops.higher_order.auto_functionalized(torch.ops._C.fused_add_rms_norm.default, input = all_reduce_1, residual = all_reduce, weight = arg2_1, epsilon = 1e-05)
        getitem_1: "bf16[s72, ${H}]" = auto_functionalized_1[1]
        mm_1: "bf16[s72, ${qkv}]" = torch.ops.aten.mm.default(getitem_1, arg4_1)
        return (getitem, mm_1)
`;
  return parseFx(text).graph;
}

export const SP_TOKENS = Array.from({ length: 15 }, (_, i) => 2 ** i);

export function predictSequenceParallel(tp: number, profile = PROFILES['H200-NVLink']!) {
  const g = collectivePath(tp);
  const sp = runPipeline(g, ['sequence-parallelism'], { worldSize: tp });
  const asyncTp = runPipeline(sp.output, ['async-tp'], { worldSize: tp });
  if (sp.stages[0]!.matches.length !== 2 || asyncTp.stages[0]!.matches.length !== 2) {
    throw new Error(
      `the passes rewrote ${sp.stages[0]!.matches.length} and ${asyncTp.stages[0]!.matches.length} sites of the segment, expected 2 and 2`,
    );
  }
  return SP_TOKENS.map((T) => {
    const us = (x: Graph) => predictGraph(x, profile, { tp, tokens: T }).total_us;
    // SP needs T divisible by the ranks (the pass refuses otherwise): those rows stay on the all-reduce path.
    const split = T % tp === 0;
    return { T, ar: us(g), sp: split ? us(sp.output) : null, async: split ? us(asyncTp.output) : null };
  });
}

interface Measured {
  T: number;
  world: number;
  chunks: number;
  ar_us: number;
  sp_us: number;
  async_us: number;
  max_ulp_sp: number;
  max_ulp_async: number;
}

/** sp_bench's lines (one JSON object each) beside the model: measured µs and ratios, predicted ratios. */
export function measuredTable(lines: string, profile = PROFILES['H200-NVLink']!): string {
  const rows = lines
    .split('\n')
    .filter((l) => l.includes('"section":"sp"'))
    .map((l) => JSON.parse(l) as Measured);
  if (rows.length === 0) throw new Error('no "sp" lines in the measured file (sp_bench prints them)');
  const world = rows[0]!.world;
  const model = new Map(predictSequenceParallel(world, profile).map((r) => [r.T, r]));
  const out = [
    `measured (sp_bench, ${world} GPUs, CUDA graphs) beside the cost model (${profile.name}); µs per layer, ratio > 1: the split path wins`,
    '| T | all-reduce path µs | SP µs | SP + async TP µs | ar ÷ SP | ar ÷ async | model ar ÷ SP | model ar ÷ async | chunks | max ulp SP / async |',
    '|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|',
  ];
  const f = (x: number) => (x < 0 ? 'n/a' : x.toFixed(1));
  const ratio = (a: number, b: number | null) => (b === null || b < 0 ? 'n/a' : (a / b).toFixed(2));
  for (const r of rows) {
    const m = model.get(r.T);
    out.push(
      `| ${r.T} | ${f(r.ar_us)} | ${f(r.sp_us)} | ${f(r.async_us)} | ${ratio(r.ar_us, r.sp_us)} | ${ratio(r.ar_us, r.async_us)} | ${m ? ratio(m.ar, m.sp) : 'n/a'} | ${m ? ratio(m.ar, m.async) : 'n/a'} | ${r.chunks} | ${r.max_ulp_sp < 0 ? 'n/a' : `${r.max_ulp_sp} / ${r.max_ulp_async}`} |`,
    );
  }
  return out.join('\n') + '\n';
}

export async function bench(argv: string[]): Promise<number> {
  let profileName = 'H200-NVLink',
    tps = [2, 4, 8];
  let measured: string | undefined;
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === '--profile') profileName = argv[++i] ?? '';
    else if (argv[i] === '--tp') tps = (argv[++i] ?? '').split(',').map(Number);
    else if (argv[i] === '--measured') measured = argv[++i];
    else {
      process.stderr.write(`fusionlab bench sp: unknown option '${argv[i]}'\n`);
      return 2;
    }
  }
  if (measured !== undefined) {
    const { readFileSync } = await import('node:fs');
    let text: string;
    try {
      text = readFileSync(measured, 'utf8');
    } catch (e) {
      process.stderr.write(`fusionlab bench sp: cannot read ${measured}: ${(e as Error).message}\n`);
      return 2;
    }
    try {
      process.stdout.write(measuredTable(text, PROFILES[profileName]));
    } catch (e) {
      process.stderr.write(`fusionlab bench sp: ${measured}: ${(e as Error).message}\n`);
      return 2;
    }
    return 0;
  }
  const profile = PROFILES[profileName];
  if (!profile) {
    process.stderr.write(
      `fusionlab bench sp: unknown profile '${profileName}' (${Object.keys(PROFILES).join(', ')})\n`,
    );
    return 2;
  }
  if (tps.some((t) => ![2, 4, 8].includes(t))) {
    process.stderr.write('fusionlab bench sp: --tp takes a list of 2, 4, 8\n');
    return 2;
  }
  for (const tp of tps) {
    process.stdout.write(
      `\ncost model, ${profile.name}, TP ${tp}: GPT-OSS-20B collective path per layer (µs; ratio > 1: the split path wins)\n`,
    );
    process.stdout.write(
      '| T | all-reduce path | SP | SP + async TP | ar ÷ SP | ar ÷ async |\n|---:|---:|---:|---:|---:|---:|\n',
    );
    for (const r of predictSequenceParallel(tp, profile)) {
      const f = (x: number | null) => (x === null ? 'n/a' : x.toFixed(1));
      const ratio = (x: number | null) => (x === null ? 'n/a' : (r.ar / x).toFixed(2));
      process.stdout.write(
        `| ${r.T} | ${r.ar.toFixed(1)} | ${f(r.sp)} | ${f(r.async)} | ${ratio(r.sp)} | ${ratio(r.async)} |\n`,
      );
    }
  }
  return 0;
}
