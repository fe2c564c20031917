// The agent's C++ op codes are generated from the op table: the committed header must match it.

import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { OP_TABLE_HEADER, renderOpTableHeader } from './opTableCpp.ts';
import { buildCpuWorkerVariant } from './build.mjs';
import { MAP_FN_CODES, WORKER_OP_CODES } from '../src/graph/opTable.ts';

describe('agent/native/op_table.gen.hpp', () => {
  it('is what the op table generates (run `npm run agent` or `node --import tsx agent/opTableCpp.ts` after changing the table)', () => {
    expect(readFileSync(OP_TABLE_HEADER, 'utf8')).toBe(renderOpTableHeader());
  });

  it('gives every map function and worker op its position in the table as its code', () => {
    const text = renderOpTableHeader();
    MAP_FN_CODES.forEach((fn, i) => expect(text).toMatch(new RegExp(`Map[A-Za-z0-9]+ = ${i}[,\\s]`)));
    expect(text).toContain('MapMuls = 1');
    expect(text).toContain(`enum class OpCode { ${['Gather', 'Add', 'Mm'].join(', ')}`);
    for (const op of WORKER_OP_CODES) expect(text).toContain(`{"${op}", OpCode::`);
  });

  it('a worker op the table gains but the C++ executor does not handle fails the worker build (-Werror=switch)', () => {
    const header = renderOpTableHeader().replace('Map, AllReduce,', 'Map, Rotary, AllReduce,');
    expect(header).not.toBe(renderOpTableHeader());
    let err = '';
    try {
      buildCpuWorkerVariant({ 'op_table.gen.hpp': header }, { stdio: 'pipe' });
    } catch (e) {
      err = String((e as { stderr?: Buffer }).stderr ?? e);
    }
    expect(err).toMatch(/enumeration value .Rotary. not handled in switch/);
  }, 120_000);
});
