// How FX text names what a node calls: Python's operators as FX codegen prints `operator.*` calls
// (`mul = sym_size_int * 2`), and call targets as the IR's ops. The readers and the printer share
// these, so a target prints back as it was read.

import { normalizeTarget } from '../call.ts';

/** Python's infix operators as FX codegen prints `operator.*` calls (`mul = sym_size_int * 2`). */
export const INFIX_OPERATORS: Record<string, string> = {
  '+': 'operator.add',
  '-': 'operator.sub',
  '*': 'operator.mul',
  '/': 'operator.truediv',
  '//': 'operator.floordiv',
  '%': 'operator.mod',
  '**': 'operator.pow',
  '@': 'operator.matmul',
  '==': 'operator.eq',
  '!=': 'operator.ne',
  '<': 'operator.lt',
  '<=': 'operator.le',
  '>': 'operator.gt',
  '>=': 'operator.ge',
  '&': 'operator.and_',
  '|': 'operator.or_',
  '^': 'operator.xor',
  '<<': 'operator.lshift',
  '>>': 'operator.rshift',
};
export const PREFIX_OPERATORS: Record<string, string> = { '-': 'operator.neg', '~': 'operator.invert' };

/** The IR op for a call target: `torch.ops.` dropped, `operator.getitem` is `getitem`. */
export function opOfTarget(target: string): string {
  if (target.startsWith('torch.ops.')) return normalizeTarget(target);
  if (
    target === 'operator.getitem' ||
    target === '_operator.getitem' ||
    target === '<built-in function getitem>'
  )
    return 'getitem';
  if (target.startsWith('_operator.')) return target.slice(1);
  const builtin = /^<built-in function (\w+)>$/.exec(target);
  if (builtin) return `operator.${builtin[1]}`;
  return target;
}
