// The lowering table: every family contributes its own ops (no op lowered by two families), and
// every role an entry declares names an argument of its op, whatever the context.

import { describe, expect, it } from 'vitest';
import { FX_OPS } from '../../graph/ops.ts';
import { INPUT_ROLES } from '../../graph/opTable.ts';
import { argIndex, isLoweredOp, UNREGISTERED_LOWERED, type ArgRole, type RoleContext } from './lowering.ts';
import { FAMILIES, LOWERINGS, rolesOf } from './table.ts';

const CONTEXTS: RoleContext[] = [undefined, 'router-logits', ...INPUT_ROLES].flatMap((result) =>
  [undefined, 'symm_mem.fused_all_gather_matmul.default'].map((p) => ({
    result: result as ArgRole | undefined,
    producer: () => p,
  })),
);

describe('the lowering table', () => {
  it('has each op from exactly one family, and every registered op and unregistered spelling', () => {
    const seen = new Map<string, string>();
    for (const [family, entries] of Object.entries(FAMILIES))
      for (const op of Object.keys(entries)) {
        expect(seen.get(op), `${op} is lowered by ${seen.get(op)} and ${family}`).toBeUndefined();
        seen.set(op, family);
      }
    const want = [...FX_OPS.map((d) => d.name), ...Object.keys(UNREGISTERED_LOWERED)].sort();
    expect([...seen.keys()].sort()).toEqual(want);
    expect(Object.keys(LOWERINGS).sort()).toEqual(want);
    expect(want.every(isLoweredOp)).toBe(true);
  });

  it('declares roles only for arguments its ops have', () => {
    const ops = [...Object.keys(LOWERINGS), 'aten.add.Tensor', 'aten.mul.Tensor', 'aten.masked_fill.Scalar'];
    for (const op of ops) {
      const decl = rolesOf(op);
      if (!decl) continue;
      for (const c of CONTEXTS) {
        const roles = typeof decl === 'function' ? decl(c) : decl;
        for (const name of Object.keys(roles))
          expect(argIndex(op, name), `${op}: ${name}`).toBeGreaterThanOrEqual(0);
      }
    }
  });

  it('gives a reason for every op it cannot lower', () => {
    const reasons = Object.entries(LOWERINGS).filter(([, l]) => l.unsupported !== undefined);
    expect(reasons.map(([op]) => op)).toContain('aten.sub.Tensor');
    expect(reasons.map(([op]) => op)).not.toContain('_C.scaled_fp4_quant.default');
    for (const [op, l] of reasons) expect(l.unsupported!.length, op).toBeGreaterThan(10);
  });
});
