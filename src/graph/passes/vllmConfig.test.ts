import { describe, expect, it } from 'vitest';
import { VllmConfigError, resolveVllmConfig, splitVllmArgs } from './vllmConfig.ts';

const resolve = (argv: string[], ctx = {}) => {
  const { vllm, rest } = splitVllmArgs(argv);
  return { r: resolveVllmConfig(vllm ?? { passConfig: {}, numbers: {} }, ctx), rest, given: vllm !== null };
};
const flag = (r: ReturnType<typeof resolveVllmConfig>, name: string) => r.flags.find((f) => f.flag === name)!;

describe("vLLM's compilation config (vllm/config/vllm.py OPTIMIZATION_LEVEL_0x, pass_manager.py)", () => {
  it('-O2 at TP 2 on Hopper runs noop elimination and the all-reduce + RMSNorm fusion, in that order', () => {
    const { r } = resolve(['-O2', '-tp', '2'], { platform: 'sm90' });
    expect(r.passes).toEqual(['noop-elimination', 'allreduce-rmsnorm', 'vllm-ir-lowering']);
    expect(r.options).toEqual({ worldSize: 2, gpu: 'hopper', platform: 'sm90' });
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
