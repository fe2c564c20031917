import { describe, expect, it } from 'vitest';
import { parseFx } from '../fx/parse.ts';
import {
  VllmConfigError,
  compileRanges,
  loggedCompileRange,
  modelShapeOf,
  parseCompileRange,
  passesInRange,
  splitCommandLine,
  resolveVllmConfig,
  splitVllmArgs,
} from './vllmConfig.ts';

const resolve = (argv: string[], ctx = {}) => {
  const { vllm, rest } = splitVllmArgs(argv);
  return { r: resolveVllmConfig(vllm ?? { passConfig: {}, numbers: {} }, ctx), rest, given: vllm !== null };
};
const flag = (r: ReturnType<typeof resolveVllmConfig>, name: string) => r.flags.find((f) => f.flag === name)!;

describe("vLLM's compilation config (vllm/config/vllm.py OPTIMIZATION_LEVEL_0x, pass_manager.py)", () => {
  it('-O2 at TP 2 on Hopper runs noop elimination and the all-reduce + RMSNorm fusion, in that order', () => {
    const { r } = resolve(['-O2', '-tp', '2'], { platform: 'sm90' });
    expect(r.passes).toEqual(['noop-elimination', 'allreduce-rmsnorm', 'vllm-ir-lowering']);
    expect(r.options).toEqual({ worldSize: 2, gpu: 'hopper', platform: 'sm90', aiter: false });
  });

  it('TP 1 leaves the all-reduce fusion off, and says why', () => {
    const { r } = resolve(['-O2']);
    expect(r.passes).toEqual(['noop-elimination', 'vllm-ir-lowering']);
    expect(flag(r, 'fuse_allreduce_rms').why).toMatch(/TP 1/);
  });

  it('Ampere never gets the FlashInfer fusion, even at TP 4', () => {
    const { r } = resolve(['-O3', '--tensor-parallel-size=4'], { platform: 'sm80' });
    expect(flag(r, 'fuse_allreduce_rms').on).toBe(false);
    expect(flag(r, 'fuse_allreduce_rms').why).toMatch(/sm80/);
  });

  it('-O1 leaves the all-reduce fusion off at any TP', () => {
    expect(resolve(['-O1', '-tp', '8']).r.passes).toEqual(['noop-elimination', 'vllm-ir-lowering']);
  });

  it('-O0 runs nothing', () => {
    expect(resolve(['-O0', '-tp', '2']).r.passes).toEqual([]);
  });

  it('norm + quant is on only when rms_norm or quant_fp8 is a custom op, and then runs norm-quant', () => {
    const off = resolve(['-O2']).r;
    expect(flag(off, 'fuse_norm_quant').on).toBe(false);
    expect(flag(off, 'fuse_norm_quant').why).toMatch(/Inductor/);
    const on = resolve(['-O2', '-cc.custom_ops=["+rms_norm"]']).r;
    expect(flag(on, 'fuse_norm_quant').on).toBe(true);
    expect(on.passes).toContain('norm-quant');
    expect(on.notRun.map((f) => f.flag)).not.toContain('fuse_norm_quant');
    // '-quant_fp8' does not turn off what '+rms_norm' turned on.
    const mixed = resolve(['--compilation-config', '{"custom_ops": ["+silu_and_mul", "-quant_fp8"]}']).r;
    expect(flag(mixed, 'fuse_act_quant').on).toBe(true);
    expect(flag(mixed, 'fuse_norm_quant').on).toBe(false);
  });

  it('explicit flags win over the level, in both spellings', () => {
    const dotted = resolve(['-O2', '-tp', '2', '-cc.pass_config.fuse_allreduce_rms=False']).r;
    const json = resolve([
      '-O2',
      '-tp',
      '2',
      '--compilation-config',
      '{"pass_config": {"fuse_allreduce_rms": false}}',
    ]).r;
    for (const r of [dotted, json]) {
      expect(r.passes).toEqual(['noop-elimination', 'vllm-ir-lowering']);
      expect(flag(r, 'fuse_allreduce_rms').source).toBe('explicit');
    }
  });

  it('async TP needs sequence parallelism, as the pass manager adds it only under enable_sp', () => {
    const alone = resolve(['-tp', '2', '-cc.pass_config.fuse_gemm_comms=true']).r;
    expect(alone.passes).not.toContain('async-tp');
    expect(flag(alone, 'fuse_gemm_comms').why).toMatch(/enable_sp is off/);
    const both = resolve([
      '-tp',
      '2',
      '-cc.pass_config.enable_sp=true',
      '-cc.pass_config.fuse_gemm_comms=true',
      '-cc.pass_config.fuse_allreduce_rms=false',
    ]).r;
    expect(both.passes).toEqual(['noop-elimination', 'sequence-parallelism', 'async-tp', 'vllm-ir-lowering']);
  });

  it("ROCm's padding fusion wants AITER and GPT-OSS's hidden size 2880", () => {
    const gptOss = resolve(['-O1'], { platform: 'rocm', aiter: true, hiddenSize: 2880 }).r;
    expect(flag(gptOss, 'fuse_act_padding').on).toBe(true);
    const llama = resolve(['-O1'], { platform: 'rocm', aiter: true, hiddenSize: 4096 }).r;
    expect(flag(llama, 'fuse_act_padding').why).toMatch(/4096/);
    expect(flag(resolve(['-O1'], { platform: 'sm90', hiddenSize: 2880 }).r, 'fuse_act_padding').on).toBe(
      false,
    );
  });

  it('keeps the arguments that are not vLLM’s, in order', () => {
    const { rest, given } = resolve(['graph.py', '-O2', '--report', '-cc.mode=3', '--emit', 'json']);
    expect(given).toBe(true);
    expect(rest).toEqual(['graph.py', '--report', '--emit', 'json']);
    expect(splitVllmArgs(['graph.py', '--report']).vllm).toBeNull();
  });

  it('refuses what vLLM would refuse, naming the argument', () => {
    expect(() => splitVllmArgs(['-cc.pass_config.fuse_everything=true'])).toThrow(
      /no field 'fuse_everything'/,
    );
    expect(() => splitVllmArgs(['-cc.pass_config.enable_sp=maybe'])).toThrow(VllmConfigError);
    expect(() => splitVllmArgs(['--compilation-config', '{pass_config'])).toThrow(/not JSON/);
    expect(() => splitVllmArgs(['-O', '7'])).toThrow(/0, 1, 2 or 3/);
    expect(() => splitVllmArgs(['-tp', 'two'])).toThrow(/positive integer/);
  });
});

describe("compile ranges (vllm/config/vllm.py _set_compile_ranges, each pass's is_applicable_for_range)", () => {
  const llama = { hidden: 4096, elementSize: 2 };
  const ranges = (argv: string[], model: typeof llama | null = llama) => {
    const r = resolve(argv).r;
    return { r, cr: compileRanges(r, model ?? undefined) };
  };

  it('TP 4 on Hopper splits at the all-reduce fusion’s max_token_num, and the fusion runs only below it', () => {
    // FI_ALLREDUCE_FUSION_MAX_SIZE_MB[90][4] = 2 MB: 2·2^20 / (4096 · 2 B) = 256 tokens < 8192.
    const { r, cr } = ranges(['-O2', '-tp', '4']);
    expect(cr.ranges).toEqual([
      { start: 1, end: 256 },
      { start: 257, end: 8192 },
    ]);
    expect(passesInRange(r, cr, cr.ranges[0]!).passes).toContain('allreduce-rmsnorm');
    const big = passesInRange(r, cr, cr.ranges[1]!);
    expect(big.passes).toEqual(['noop-elimination', 'vllm-ir-lowering']);
    expect(big.outOfRange).toEqual([
      expect.objectContaining({ flag: 'fuse_allreduce_rms', pass: 'allreduce-rmsnorm' }),
    ]);
    expect(big.outOfRange[0]!.why).toMatch(/not applicable in range \(257, 8192\): it ends above 256 tokens/);
  });

  it('TP 2 (64 MB) covers every batch: one range, the fusion in it', () => {
    const { r, cr } = ranges(['-O2', '-tp', '2']);
    expect(cr.ranges).toEqual([{ start: 1, end: 8192 }]);
    expect(passesInRange(r, cr, cr.ranges[0]!).passes).toContain('allreduce-rmsnorm');
  });

  it('SP starts its own range at sp_min_token_num, async TP with it; the all-reduce fusion takes the smallest', () => {
    // hidden 8192 bf16 at TP 4 on Hopper: SP's threshold 8 MiB · 4 / (8192 · 2 B) = 2048 → end 2047;
    // the all-reduce fusion's 2 MiB / 16384 B = 128.
    const { r, cr } = ranges(
      ['-O2', '-tp', '4', '-cc.pass_config.enable_sp=true', '-cc.pass_config.fuse_gemm_comms=true'],
      { hidden: 8192, elementSize: 2 },
    );
    expect(cr.ranges).toEqual([
      { start: 1, end: 128 },
      { start: 129, end: 2047 },
      { start: 2048, end: 8192 },
    ]);
    const inRange = cr.ranges.map((g) => passesInRange(r, cr, g).passes);
    expect(inRange[0]).toEqual(['noop-elimination', 'allreduce-rmsnorm', 'vllm-ir-lowering']);
    expect(inRange[1]).toEqual(['noop-elimination', 'vllm-ir-lowering']);
    expect(inRange[2]).toEqual(['noop-elimination', 'sequence-parallelism', 'async-tp', 'vllm-ir-lowering']);
    const low = passesInRange(r, cr, cr.ranges[0]!).outOfRange.find((o) => o.flag === 'enable_sp')!;
    expect(low.why).toMatch(/starts below 2048 tokens/);
  });

  it('a given sp_min_token_num, the user’s endpoints (both spellings) and max_num_batched_tokens set the ends', () => {
    const { cr } = ranges([
      '-tp',
      '2',
      '--max-num-batched-tokens',
      '4096',
      '-cc.pass_config.enable_sp=true',
      '-cc.pass_config.sp_min_token_num=512',
      '-cc.compile_ranges_split_points=[1024, 9000, 1]',
    ]);
    expect(cr.ranges.map((g) => g.end)).toEqual([511, 1024, 4096]);
    const json = ranges(['-cc', '{"compile_ranges_endpoints": [64]}']).cr;
    expect(json.ranges).toEqual([
      { start: 1, end: 64 },
      { start: 65, end: 8192 },
    ]);
  });

  it('the RoPE + KV-cache fusion runs up to rope_kvcache_fusion_max_token_num (256 by default)', () => {
    const { r, cr } = ranges(['-O2', '-cc.pass_config.fuse_rope_kvcache=true']);
    expect(cr.ranges.map((g) => g.end)).toEqual([256, 8192]);
    expect(passesInRange(r, cr, cr.ranges[1]!).outOfRange.map((o) => o.flag)).toEqual(['fuse_rope_kvcache']);
  });

  it('without a typed all-reduce the bound is not evaluated, and says so', () => {
    const { r, cr } = ranges(['-O2', '-tp', '4'], null);
    expect(cr.ranges).toEqual([{ start: 1, end: 8192 }]);
    expect(cr.unevaluated[0]).toMatch(/hidden size is unknown/);
    expect(passesInRange(r, cr, cr.ranges[0]!).passes).toContain('allreduce-rmsnorm');
  });

  it('reads the hidden size off the graph’s all-reduce, the range off a log and the command line', () => {
    const g = parseFx(
      [
        'def forward(self, x: "bf16[s0, 5120]"):',
        '    all_reduce: "bf16[s0, 5120]" = torch.ops.vllm.all_reduce.default(x, "tp:0");  x = None',
        '    return (all_reduce,)',
      ].join('\n'),
    ).graph;
    expect(modelShapeOf(g)).toEqual({ hidden: 5120, elementSize: 2 });
    expect(
      loggedCompileRange(
        'INFO [backends.py:390] Compiling a graph for compile range (1, 8192) takes 12.10 s',
      ),
    ).toEqual({ start: 1, end: 8192 });
    expect(parseCompileRange('257-8192', 'x')).toEqual({ start: 257, end: 8192 });
    expect(parseCompileRange('(1, 256)', 'x')).toEqual({ start: 1, end: 256 });
    expect(() => parseCompileRange('9-3', '--compile-range')).toThrow(/--compile-range takes a token range/);
    expect(splitVllmArgs(['--compile-range', '1-256']).vllm?.compileRange).toEqual({ start: 1, end: 256 });
  });
});

describe('a pasted command line, split as the shell splits it', () => {
  it('keeps quoted JSON whole, joins continued lines, unescapes double quotes', () => {
    expect(
      splitCommandLine(
        `vllm serve m -O2 \\\n --compilation-config '{"pass_config": {"enable_sp": true}}' -cc.custom_ops="[\\"+rms_norm\\"]"`,
      ),
    ).toEqual([
      'vllm',
      'serve',
      'm',
      '-O2',
      '--compilation-config',
      '{"pass_config": {"enable_sp": true}}',
      '-cc.custom_ops=["+rms_norm"]',
    ]);
  });

  it('names the column of a quote left open', () => {
    expect(() => splitCommandLine(`-O2 --compilation-config '{`)).toThrow(/unclosed ' opened at column 26/);
  });
});
