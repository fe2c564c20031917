// The rotary embedding recognizer on the llama capture (fixtures/capture/llama-tp2.py): one
// _C.rotary_embedding per layer, through auto_functionalized, query and key rotated.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { parseFx } from '../../fx/parse.ts';
import { ref } from '../../ir.ts';
import { indexGraph } from '../../match.ts';
import { findRotaries } from './index.ts';
import { ROTARY_FORMS } from './rotaryForms.ts';

const LLAMA = new URL('../../../../fixtures/capture/llama-tp2.py', import.meta.url).pathname;

describe('findRotaries', () => {
  it("finds each layer's rotary embedding with its inputs and the rotated query and key", () => {
    const ix = indexGraph(parseFx(readFileSync(LLAMA, 'utf8')).graph);
    const { occurrences, refusals } = findRotaries(ix);
    expect(refusals).toEqual([]);
    expect(occurrences).toHaveLength(2);
    const [first] = occurrences;
    expect(first).toMatchObject({
      op: 'rotary_embedding',
      form: 'custom',
      anchor: 'auto_functionalized_1',
      positions: ref('arg7_1'),
      query: ref('getitem_2'),
      key: ref('getitem_3'),
      headSize: 16,
      isNeox: true,
    });
    expect(Object.keys(first!.outputs).sort()).toEqual(['key', 'query']);
    expect(first!.nodes[0]).toBe('auto_functionalized_1');
  });
});

// The native form (RotaryEmbedding.forward_static) as torch 2.13 prints it: rotaryForms.ts.
describe('findRotaries: the native form', () => {
  const find = (text: string) => findRotaries(indexGraph(parseFx(text).graph));

  it.each([
    ['native-neox', true, 'view_1', 'view_3'],
    ['native-gptj', false, 'view_2', 'view_5'],
  ] as const)('%s: query and key rotated, every node of the decomposition taken', (form, neox, q, k) => {
    const { occurrences, refusals } = find(ROTARY_FORMS[form]);
    expect(refusals).toEqual([]);
    expect(occurrences).toHaveLength(1);
    const [o] = occurrences;
    expect(o).toMatchObject({
      op: 'rotary_embedding',
      form: 'native',
      anchor: 'index',
      positions: ref('arg2_1'),
      query: ref('arg3_1'),
      key: ref('arg5_1'),
      headSize: 8,
      cosSinCache: ref('arg0_1'),
      isNeox: neox,
      outputs: { query: q, key: k },
    });
    // Everything but the graph's inputs and return: the rewrite that replaces it removes them all.
    const g = parseFx(ROTARY_FORMS[form]).graph;
    expect([...o!.nodes].sort()).toEqual(g.nodes.map((n) => n.name).sort());
  });

  it('refuses a native rotary whose rotated half is read from outside, naming the reader', () => {
    const text = ROTARY_FORMS['native-neox'].replace(
      '    return (view_1, view_3)',
      '    return (view_1, view_3, sub_11)',
    );
    const { occurrences, refusals } = find(text);
    expect(occurrences).toEqual([]);
    expect(refusals).toHaveLength(1);
    expect(refusals[0]).toMatchObject({ form: 'native', value: 'sub_11', reader: 'output' });
    expect(refusals[0]!.reason).toContain(
      "sub_11, inside the rotary_embedding at index (native form), is read by the graph's return",
    );
  });

  it('is no rotary where the cos and sin halves are swapped (a rotation by −θ)', () => {
    const text = ROTARY_FORMS['native-neox'].replace(
      'mul_21: "bf16[s37, 2, 4]" = torch.ops.aten.mul.Tensor(getitem_3, unsqueeze_1)',
      'mul_21: "bf16[s37, 2, 4]" = torch.ops.aten.mul.Tensor(getitem_3, unsqueeze)',
    );
    const { occurrences } = find(text);
    // The key's rotation is still one, alone: a query-less pair is the query of its own.
    expect(occurrences.every((o) => o.key === null)).toBe(true);
  });
});
