// The TORCH_TRACE reader on the real log of fixtures/trace (torch 2.13, CPU: one graph break, two
// recompiles; see its README), and on truncated and corrupted copies of it. Counts are read from the
// raw log here by plain text search, apart from the reader.
import { readdirSync, readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { importGraph } from '../formats.ts';
import {
  TorchTraceReader,
  TRACE_STAGES,
  frameStages,
  oneLineSignature,
  parseTorchTrace,
  type TorchTrace,
} from './torchTrace.ts';

const DIR = new URL('../../../fixtures/trace/torch_trace/', import.meta.url).pathname;
const LOG_NAME = readdirSync(DIR).find((f) => f.endsWith('.log'))!;
const LOG = readFileSync(DIR + LOG_NAME, 'utf8');
const LINES = LOG.split('\n');

/** Envelope lines whose JSON has `"KEY"` (an envelope key or artifact name), by their `frame/compile`. */
function envelopesOf(key: string): string[] {
  return LINES.filter(
    (l) => !l.startsWith('\t') && (l.includes(`{"${key}"`) || l.includes(`"name": "${key}"`)),
  ).map((l) => {
    const m = /"frame_id": (\d+), "frame_compile_id": (\d+)/.exec(l)!;
    return `${m[1]}/${m[2]}`;
  });
}

const summary = (t: TorchTrace) => ({
  frames: t.frames.map((f) => f.compileId),
  breaks: t.breaks.map((b) => b.compileId),
  recompiles: t.recompiles.map((r) => r.compileId),
  graphs: t.frames.map((f) => f.graphs.length),
});

describe('TORCH_TRACE log of a real torch.compile', () => {
  const t = parseTorchTrace(LOG);

  it('reads every line: no problems, the line count the file has', () => {
    expect(t.problems).toEqual([]);
    expect(t.lines).toBe(LOG.endsWith('\n') ? LINES.length - 1 : LINES.length);
  });

  it('frames: one per compilation_metrics entry, with the compiled function and where it starts', () => {
    const metrics = [...LOG.matchAll(/"compilation_metrics": \{"compile_id": "(\d+\/\d+)"/g)].map(
      (m) => m[1],
    );
    expect(metrics).toHaveLength(4);
    expect(t.frames.map((f) => f.compileId).sort()).toEqual([...metrics].sort());
    const f0 = t.frames.find((f) => f.compileId === '0/0')!;
    expect(f0.fn).toBe('forward');
    expect(f0.file).toMatch(/scripts\/capture\/torch_trace\.py$/);
    expect(f0.firstLine).toBe(93);
    expect(t.frames.find((f) => f.compileId === '1/0')!.fn).toBe('torch_dynamo_resume_in_forward_at_101');
  });

  it('graph breaks: one per dynamo_graph_break_reason artifact, with the reason and the user frame', () => {
    const expected = envelopesOf('dynamo_graph_break_reason');
    expect(expected).toEqual(['0/0', '0/1']);
    expect(t.breaks.map((b) => b.compileId)).toEqual(expected);
    const b = t.breaks[0]!;
    expect(b.reason).toBe('Call to torch._dynamo.graph_break()');
    expect(b.where).toMatch(/torch_trace\.py:101$/);
    expect(b.userStack.at(-1)).toMatch(/torch_trace\.py:101 in forward$/);
    expect(b.detail).toContain('User-inserted graph break');
  });

  it('recompiles: one per recompile_reasons artifact, with the failed guard and the compile it failed', () => {
    const expected = envelopesOf('recompile_reasons');
    expect(expected).toEqual(['0/1', '1/1']);
    expect(t.recompiles.map((r) => r.compileId)).toEqual(expected);
    expect(t.recompiles[0]).toMatchObject({
      previous: '0/0',
      guard: "tensor 'tokens' size mismatch at index 0. expected 8, actual 12",
    });
    expect(t.recompiles[1]).toMatchObject({ previous: '1/0', guard: expect.stringContaining("tensor 'x'") });
  });

  it('graphs per stage: each stage envelope of each compile, in compile order', () => {
    for (const stage of TRACE_STAGES) {
      const logged = [...new Set(envelopesOf(stage))].sort();
      const read = t.frames.filter((f) => f.graphs.some((g) => g.stage === stage)).map((f) => f.compileId);
      expect(read.sort(), stage).toEqual(logged);
    }
    // Every compile logged the nine stages of an inference compile, then its output code and the
    // provenance mapping (provenance tracking was on).
    for (const f of t.frames) {
      expect(frameStages(f).map((g) => g.stage)).toEqual([
        'dynamo_output_graph',
        'before_pre_grad_graph',
        'after_pre_grad_graph',
        'aot_inference_graph',
        'before_joint_graph',
        'after_joint_graph',
        'before_post_grad_graph',
        'inductor_post_grad_graph',
        'inductor_output_code',
        'inductor_provenance_tracking_node_mappings',
      ]);
    }
    // 0/0 was restarted by its graph break: its graphs are attempt 1's.
    expect(t.frames.find((f) => f.compileId === '0/0')!.graphs.every((g) => g.attempt === 1)).toBe(true);
  });

  it("the post-grad graph imports as FX with the nodes the log's payload names; the output code is kept as text", () => {
    const f = t.frames.find((x) => x.compileId === '0/0')!;
    const post = f.graphs.find((g) => g.stage === 'inductor_post_grad_graph')!;
    const g = importGraph(post.text).graph;
    const payloadAt = LINES.findIndex((l, i) => i + 1 === post.line);
    const payloadNames: string[] = [];
    for (let i = payloadAt + 1; LINES[i]!.startsWith('\t'); i++) {
      const m = /^\t {8}(\w+)(?:: "[^"]*")? = torch\.ops\./.exec(LINES[i]!);
      if (m) payloadNames.push(m[1]!);
    }
    expect(payloadNames.length).toBeGreaterThan(50);
    expect(g.nodes.map((n) => n.name)).toEqual(expect.arrayContaining(payloadNames));
    const code = f.graphs.find((g2) => g2.stage === 'inductor_output_code')!;
    expect(code.kind).toBe('output_code');
    expect(code.text).toContain('cpp_fused_');
  });

  it("AOT's graphs (one argument a line, each with a comment) import once joined", () => {
    const aot = t.frames[0]!.graphs.find((g) => g.stage === 'aot_inference_graph')!;
    expect(aot.text).not.toMatch(/PlainAOTInput/);
    expect(importGraph(aot.text).graph.nodes.length).toBeGreaterThan(50);
    expect(oneLineSignature('    def forward(\n        self,\n        a: "f32[2]",  # x\n    ):\n')).toBe(
      '    def forward(self, a: "f32[2]"):\n',
    );
  });

  it('reads the same in chunks of any size (a line split across chunks)', () => {
    for (const size of [1 << 16, 4099]) {
      const r = new TorchTraceReader();
      for (let i = 0; i < LOG.length; i += size) r.push(LOG.slice(i, i + size));
      expect(summary(r.finish())).toEqual(summary(t));
    }
  });
});

describe('malformed and truncated logs: what can be read loads, the bad line is named', () => {
  const full = summary(parseTorchTrace(LOG));

  it('a log cut inside the last output code: that payload is named, every frame and graph before it kept', () => {
    const lastCode = LINES.findLastIndex((l) => l.includes('"inductor_output_code"'));
    const cut = LINES.slice(0, lastCode + 40).join('\n') + '\n\tdef call(ar';
    const t = parseTorchTrace(cut);
    expect(t.problems).toHaveLength(1);
    expect(t.problems[0]).toMatchObject({ line: lastCode + 1 });
    expect(t.problems[0]!.message).toMatch(
      /ends inside this entry's payload.*inductor_output_code was not loaded/,
    );
    expect(t.frames.map((f) => f.compileId)).toEqual(full.frames);
    const last = t.frames.find((f) => f.compileId === '1/1')!;
    expect(last.graphs.map((g) => g.stage)).not.toContain('inductor_output_code');
    expect(last.graphs.map((g) => g.stage)).toContain('inductor_post_grad_graph');
    expect(t.breaks.map((b) => b.compileId)).toEqual(full.breaks);
    expect(t.recompiles.map((r) => r.compileId)).toEqual(full.recompiles);
  });

  it('a log cut mid-envelope: the line is named with its first characters', () => {
    const at = LINES.findIndex((l) => l.includes('"recompile_reasons"'));
    const t = parseTorchTrace(LINES.slice(0, at).join('\n') + '\n' + LINES[at]!.slice(0, 120));
    expect(t.problems).toEqual([
      { line: at + 1, head: LINES[at]!.slice(0, 60), message: 'the log ends mid-line (truncated)' },
    ]);
    expect(t.frames.map((f) => f.compileId)).toEqual(['0/0', '1/0']);
    expect(t.recompiles).toEqual([]);
  });

  it('a corrupted envelope and a line of garbage mid-log: both named, everything else read', () => {
    const breakAt = LINES.findIndex((l) => l.includes('"dynamo_graph_break_reason"'));
    const bad = [...LINES];
    bad[breakAt] = bad[breakAt]!.replace('{"artifact"', '{"artifact" ');
    bad[breakAt] = bad[breakAt]!.slice(0, -5);
    // Before an envelope line (not inside a payload), after the broken envelope.
    const garbageAt = LINES.findIndex((l) => l.includes('{"dynamo_output_graph"'));
    expect(garbageAt).toBeGreaterThan(breakAt);
    bad.splice(garbageAt, 0, 'garbage from another process');
    const t = parseTorchTrace(bad.join('\n'));
    expect(t.problems.map((p) => p.line)).toEqual([breakAt + 1, garbageAt + 1]);
    expect(t.problems[1]).toMatchObject({ head: 'garbage from another process' });
    expect(t.problems[1]!.message).toMatch(/no glog prefix/);
    expect(t.problems[0]!.message).toMatch(/JSON envelope does not parse/);
    expect(t.problems[0]!.head).toBe(bad[breakAt]!.slice(0, 60));
    // The broken envelope's payload lines go with it (not named one by one); the rest is whole.
    // 0/0's break is still known: from its compilation_metrics' restart_reasons, as older logs give it.
    expect(t.breaks.map((b) => [b.compileId, b.reason])).toEqual([
      ['0/1', 'Call to torch._dynamo.graph_break()'],
      ['0/0', 'Call to torch._dynamo.graph_break()'],
    ]);
    expect(summary(t).frames).toEqual(full.frames);
    expect(summary(t).graphs).toEqual(full.graphs);
    expect(summary(t).recompiles).toEqual(full.recompiles);
  });
});
