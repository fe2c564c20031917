// `fusionlab trace` and `fusionlab rewrite --frame` on the real TORCH_TRACE folder of fixtures/trace.
import { describe, expect, it } from 'vitest';
import { runCliCaptured } from './captured.ts';

const DIR = new URL('../../fixtures/trace', import.meta.url).pathname;

describe('fusionlab trace', () => {
  it('lists each compile with its function, graph breaks, recompiles (the failed guard) and graphs per stage', async () => {
    const r = await runCliCaptured(['trace', DIR]);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const lines = r.stdout.split('\n');
    expect(lines[0]).toMatch(
      /dedicated_log_torch_trace_\w+\.log: 4 compiles of 2 frames, 2 graph breaks, 2 recompiles$/,
    );
    expect(lines.filter((l) => l.startsWith('['))).toEqual([
      expect.stringMatching(/^\[0\/0\] forward \(.*torch_trace\.py:93\)$/),
      expect.stringMatching(/^\[0\/1\] forward /),
      expect.stringMatching(/^\[1\/0\] torch_dynamo_resume_in_forward_at_101 /),
      expect.stringMatching(/^\[1\/1\] torch_dynamo_resume_in_forward_at_101 /),
    ]);
    expect(r.stdout).toContain(
      "  recompile: guard failed on 0/0: tensor 'tokens' size mismatch at index 0. expected 8, actual 12",
    );
    expect(
      lines.filter((l) => l.startsWith('  graph break: Call to torch._dynamo.graph_break() at ')),
    ).toHaveLength(2);
    expect(lines.filter((l) => /^ {2}post_grad {9}FX graph/.test(l))).toHaveLength(4);
    expect(lines.filter((l) => /^ {2}output_code .*output code/.test(l))).toHaveLength(4);
  });

  it('--json: the same as data, without the graph texts', async () => {
    const r = await runCliCaptured(['trace', DIR, '--json']);
    const j = JSON.parse(r.stdout) as {
      frames: { compileId: string; stages: { stage: string }[] }[];
      recompiles: { guard: string }[];
    };
    expect(j.frames.map((f) => f.compileId)).toEqual(['0/0', '0/1', '1/0', '1/1']);
    expect(j.frames[0]!.stages.map((s) => s.stage)).toContain('post_grad');
    expect(j.recompiles[1]!.guard).toBe("tensor 'x' size mismatch at index 0. expected 8, actual 12");
    expect(r.stdout).not.toContain('torch.ops.aten');
  });

  it('a folder with no log, and no argument: exit 2 with one line', async () => {
    const none = await runCliCaptured([
      'trace',
      new URL('../../fixtures/capture/tp', import.meta.url).pathname,
    ]);
    expect(none.code).toBe(2);
    expect(none.stderr).toMatch(/no dedicated_log_torch_trace_\*\.log in it\n$/);
    expect((await runCliCaptured(['trace'])).code).toBe(2);
  });
});

describe('fusionlab rewrite on a TORCH_TRACE folder', () => {
  it("--frame and --stage pick one compile's graph; the report lists that compile's stages", async () => {
    const r = await runCliCaptured(['rewrite', DIR, '--frame', '0/1', '--stage', 'post_grad', '--report']);
    expect(r.code).toBe(0);
    const j = JSON.parse(r.stdout) as {
      stage: string;
      stages: { name: string; path: string; nodes: number }[];
      skipped: { path: string }[];
    };
    expect(j.stage).toBe('post_grad');
    expect(j.stages.map((s) => s.name)).toEqual([
      'dynamo',
      'pre_grad.before',
      'pre_grad.after',
      'aot_inference',
      'joint.before',
      'joint.after',
      'post_grad.before',
      'post_grad',
    ]);
    expect(j.stages.at(-1)!.path).toBe('[0/1]/post_grad');
    expect(j.skipped.map((s) => s.path)).toContain('[0/1]/output_code');
    // The graph rewritten is the recompiled one: its token count is the symbol Dynamo made dynamic.
    const fx = await runCliCaptured(['rewrite', DIR, '--frame', '0/1', '--stage', 'post_grad']);
    expect(fx.stdout).toContain('embedding');
    expect(fx.stdout).toMatch(/s52/);
  });

  it('an unknown compile id: exit 2, naming the compiles there are', async () => {
    const r = await runCliCaptured(['rewrite', DIR, '--frame', '9/9']);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain("no compile '9/9'");
    expect(r.stderr).toContain('(compiles: 0/0, 0/1, 1/0, 1/1)');
  });
});
