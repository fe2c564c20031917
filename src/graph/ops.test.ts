import { describe, expect, it } from 'vitest';
import { ELEMENTWISE_OPS } from './opTable.ts';
import { FX_OPS, allOps, isFxOp, type FxOp } from './ops.ts';

describe('the op registry', () => {
  it('registers every op through FX_OPS or the elementwise table, the unions lowering switches over', () => {
    // An op registered any other way would escape `FxOp`, and with it plan.ts lowerCall's assertNever.
    const outside = allOps()
      .map((d) => d.name)
      .filter((name) => !isFxOp(name) && !Object.prototype.hasOwnProperty.call(ELEMENTWISE_OPS, name));
    expect(outside).toEqual([]);
    expect(allOps()).toHaveLength(FX_OPS.length + Object.keys(ELEMENTWISE_OPS).length);
  });

  it('types each FX op name as a literal, so a switch over them can be exhaustive', () => {
    const known: FxOp = 'aten.mm.default';
    // @ts-expect-error: not registered, hence not an FxOp (were FxOp widened to string, this line would compile and typecheck fail).
    const unknown: FxOp = 'aten.not_an_op.default';
    expect(isFxOp(known)).toBe(true);
    expect(isFxOp(unknown)).toBe(false);
    expect(isFxOp('aten.mul.Tensor')).toBe(false);
  });
});
