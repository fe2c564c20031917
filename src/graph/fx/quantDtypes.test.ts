import { describe, expect, it } from 'vitest';
import { parseFx } from './parse.ts';
import { DTYPES, DTYPE_BYTES, isFloatDType } from '../ir.ts';

// Every dtype vLLM's quant ops and caches use, as torch's FX annotations print them
// (torch/_subclasses/fake_tensor.py `dtype_abbrs`): the importer keeps each with its type.
const QUANT_DTYPES = ['f8e4m3fn', 'f8e4m3fnuz', 'f8e5m2', 'f8e5m2fnuz', 'f8e8m0fnu', 'f4e2m1fn_x2'] as const;

describe('FP8 / FP4 dtypes in FX annotations', () => {
  for (const dt of QUANT_DTYPES) {
    it(`keeps ${dt} as a one-byte float type`, () => {
      const text = [
        'class GraphModule(torch.nn.Module):',
        `    def forward(self, arg0_1: "${dt}[s0, 128]"):`,
        `        clone: "${dt}[s0, 128]" = torch.ops.aten.clone.default(arg0_1);  arg0_1 = None`,
        '        return (clone,)',
      ].join('\n');
      const { graph, warnings } = parseFx(text);
      expect(warnings.filter((w) => w.message.includes('dtype'))).toEqual([]);
      expect(graph.inputs[0]!.type).toEqual({ kind: 'tensor', dtype: dt, shape: ['s0', 128] });
      expect(graph.nodes[0]!.type).toEqual({ kind: 'tensor', dtype: dt, shape: ['s0', 128] });
      expect(DTYPE_BYTES[dt]).toBe(1);
      expect(isFloatDType(dt)).toBe(true);
    });
  }

  it('still names a dtype it does not know, and drops only that type', () => {
    const { graph, warnings } = parseFx(
      [
        'class GraphModule(torch.nn.Module):',
        '    def forward(self, arg0_1: "f6e3m2[8]"):',
        '        return (arg0_1,)',
      ].join('\n'),
    );
    expect(warnings.some((w) => /'f6e3m2'/.test(w.message))).toBe(true);
    expect(graph.inputs[0]!.type).toBeNull();
    expect(Object.keys(DTYPES)).not.toContain('f6e3m2');
  });
});
