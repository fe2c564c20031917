// The rotary embedding recognizer on the llama capture (fixtures/capture/llama-tp2.py): one
// _C.rotary_embedding per layer, through auto_functionalized, query and key rotated.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { parseFx } from '../../fx/parse.ts';
import { ref } from '../../ir.ts';
import { indexGraph } from '../../match.ts';
import { findRotaries } from './index.ts';

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
