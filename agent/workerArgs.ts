// A worker step's arguments by name. WORKER_OPS (src/graph/opTable.ts) declares each op's integer
// and float arguments in wire order; the lowering (program.ts) writes a step's `i` and `f` through
// workerArgs, and the C++ generator (opTableCpp.ts) reads the same declaration into one struct per
// op, so the worker reads named fields of exactly what was written.

import { WORKER_OPS, type WorkerOp } from '../src/graph/opTable.ts';

type ArgName<F extends string> = F extends `${infer N}[${string}]` ? N : F;
type ArgValue<F extends string> = F extends `${string}[${string}]` ? readonly number[] : number;
type ArgSpec<Op extends WorkerOp> =
  (typeof WORKER_OPS)[Op]['i'][number] | (typeof WORKER_OPS)[Op]['f'][number];

/** An op's arguments as named values (lists for `name[n]`): a missing or misspelt one is a type error. */
export type WorkerArgs<Op extends WorkerOp> = { [F in ArgSpec<Op> as ArgName<F>]: ArgValue<F> };

export interface ArgField {
  name: string;
  /** For a list: its length, an earlier integer argument or 'world' (one value per rank). */
  count?: string;
}

/** The fields of one of an op's layouts (`WORKER_OPS[op].i` or `.f`), in order. */
export function argFields(layout: readonly string[]): ArgField[] {
  return layout.map((spec) => {
    const m = /^(\w+)\[(\w+)\]$/.exec(spec);
    if (m) return { name: m[1], count: m[2] };
    if (!/^\w+$/.test(spec)) throw new Error(`worker argument '${spec}' is neither a name nor name[count]`);
    return { name: spec };
  });
}

/** The step's `i` and `f` arrays: the arguments in the op's declared order, lists checked against their lengths. */
export function workerArgs<Op extends WorkerOp>(
  op: Op,
  args: WorkerArgs<Op>,
  world: number,
): { i: number[]; f: number[] } {
  const values = args as Record<string, number | readonly number[]>;
  const scalar = (name: string): number => {
    const v = values[name];
    if (typeof v !== 'number') throw new Error(`worker op ${op}: argument '${name}' is not a number`);
    return v;
  };
  const i: number[] = [];
  for (const { name, count } of argFields(WORKER_OPS[op].i)) {
    if (count === undefined) {
      i.push(scalar(name));
      continue;
    }
    const list = values[name];
    const n = count === 'world' ? world : scalar(count);
    if (typeof list === 'number' || list.length !== n)
      throw new Error(`worker op ${op}: '${name}' needs ${n} values (${count})`);
    i.push(...list);
  }
  return { i, f: argFields(WORKER_OPS[op].f).map(({ name }) => scalar(name)) };
}
