// Dynamo's own graph from the real TORCH_TRACE fixture (torch 2.13, fixtures/trace): its torch-level
// calls imported as the registered ops they mean, the rest as opaque nodes named by their call.

import { readdirSync, readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { parseTorchTrace } from '../artifacts/torchTrace.ts';
import { lookupOp } from '../ops.ts';
import { parseFx } from './parse.ts';
import { TORCH_ALIAS, TORCH_LEVEL_CALLS } from './torchLevel.ts';

const DIR = new URL('../../../fixtures/trace/torch_trace/', import.meta.url).pathname;
const trace = parseTorchTrace(readFileSync(DIR + readdirSync(DIR).find((f) => f.endsWith('.log'))!, 'utf8'));
const dynamo = (compileId: string) =>
  trace.frames.find((f) => f.compileId === compileId)!.graphs.find((g) => g.stage === 'dynamo_output_graph')!
    .text;

describe("Dynamo's torch-level graph", () => {
  const { graph, warnings } = parseFx(dynamo('0/0'));
  const node = (name: string) => graph.nodes.find((n) => n.name === name)!;

  it("drops the inputs' aliases (l_tokens_ = L_tokens_): their uses read the input", () => {
    expect(graph.nodes.some((n) => n.op === TORCH_ALIAS)).toBe(false);
    expect(graph.nodes.some((n) => n.name === 'l_tokens_')).toBe(false);
    // F.embedding(input, weight, …) is aten.embedding(weight, indices).
    expect(node('embedding')).toMatchObject({
      op: 'aten.embedding.default',
      args: [
        { kind: 'ref', name: 'L_self_modules_embed_parameters_weight_' },
        { kind: 'ref', name: 'L_tokens_' },
      ],
      kwargs: {},
    });
  });

  it('maps calls, methods and tensor operators to the registered ops they mean', () => {
    expect(node('rsqrt').op).toBe('aten.rsqrt.default');
    expect(node('pow_1')).toMatchObject({ op: 'aten.pow.Tensor_Scalar', args: [{ name: 'embedding' }, 2] });
    expect(node('variance')).toMatchObject({ op: 'aten.mean.dim', args: [{ name: 'pow_1' }, [-1], true] });
    expect(node('view')).toMatchObject({
      op: 'aten.view.default',
      args: [{ name: 'linear' }, [8, 3, 4, 16]],
    });
    expect(node('mul').op).toBe('aten.mul.Tensor');
    expect(node('neg').op).toBe('aten.neg.default');
    expect(graph.nodes.filter((n) => n.op === 'aten.silu.default').length).toBeGreaterThan(0);
  });

  it('keeps a call with no registered op as an opaque node named by the call, with a warning', () => {
    expect(node('linear')).toMatchObject({
      op: 'torch._C._nn.linear',
      args: [
        { name: 'h' },
        { name: 'L_self_modules_layers_modules_0_modules_qkv_proj_parameters_weight_' },
        null,
      ],
    });
    expect(node('positions')).toMatchObject({ op: 'Tensor.float', args: [{ name: 'arange' }] });
    expect(warnings.map((w) => w.message)).toContain(
      `unknown op 'torch._C._nn.linear' (first used by 'linear' at line ${node('linear').meta.line}): imported as an opaque node`,
    );
  });

  it('reads every compile of the fixture, the recompiled ones with symbolic sizes too', () => {
    for (const id of ['0/0', '0/1', '1/0', '1/1'])
      expect(parseFx(dynamo(id)).graph.nodes.length).toBeGreaterThan(10);
  });

  it('maps only to registered ops', () => {
    for (const [call, { op }] of Object.entries(TORCH_LEVEL_CALLS)) expect(lookupOp(op), call).toBeDefined();
  });
});
