// Writes a graph as `GraphModule.print_readable()` prints a vLLM post-grad graph: annotated
// placeholders in `def forward`, one node per line with its result annotation, `# File:`
// comments before each source line's group, and `;  a = b = None` freeing each value at its last use.

import type { Arg } from '../ir.ts';
import { isRef, ref, refsOf } from '../ir.ts';

/** Python's repr of a float: `1e-05`, `0.0`, `7.0`. */
export function pyFloat(v: number): string {
  if (Number.isInteger(v) && Math.abs(v) < 1e16) return `${v}.0`;
  const a = Math.abs(v);
  if (a < 1e-4 || a >= 1e16) {
    const [m, e] = v.toExponential().split('e');
    const exp = Number(e);
    return `${m}e${exp < 0 ? '-' : '+'}${String(Math.abs(exp)).padStart(2, '0')}`;
  }
  return String(v);
}

export function pyArg(a: Arg): string {
  if (a === null) return 'None';
  if (a === true) return 'True';
  if (a === false) return 'False';
  if (typeof a === 'number') return String(a);
  if (typeof a === 'string') return `'${a.replace(/\\/g, '\\\\').replace(/'/g, "\\'")}'`;
  if (Array.isArray(a)) return `[${a.map(pyArg).join(', ')}]`;
  switch (a.kind) {
    case 'ref':
      return a.name;
    case 'float':
      return pyFloat(a.value);
    case 'op':
      return `torch.ops.${a.target}`;
    case 'expr':
      return a.text;
    case 'tuple':
      return a.items.length === 1 ? `(${pyArg(a.items[0]!)},)` : `(${a.items.map(pyArg).join(', ')})`;
  }
}

const PY_BUILTINS = new Set([
  'slice',
  'max',
  'min',
  'abs',
  'sum',
  'pow',
  'round',
  'all',
  'any',
  'div',
  'input',
  'iter',
  'len',
  'list',
  'range',
  'type',
  'zip',
  'map',
  'filter',
  'hash',
  'id',
]);

interface Line {
  name: string;
  type: string | null;
  call: string;
  reads: string[];
  file: string | undefined;
}

export class FxWriter {
  private params: { name: string; type: string }[] = [];
  private lines: Line[] = [];
  private counters = new Map<string, number>();
  private file: string | undefined;
  private outputs: Arg[] = [];

  /** A new placeholder, named as Dynamo names lifted inputs: arg0_1, arg1_1, … */
  param(type: string) {
    const name = `arg${this.params.length}_1`;
    this.params.push({ name, type });
    return ref(name);
  }

  /** The `# File:` comment for the nodes that follow: `path:line in fn, code: text`. */
  source(file: string) {
    this.file = file;
  }

  private fresh(base: string): string {
    // FX never shadows a Python builtin: the first slice is `slice_1`.
    const k = this.counters.get(base) ?? (PY_BUILTINS.has(base) ? 1 : 0);
    this.counters.set(base, k + 1);
    return k === 0 ? base : `${base}_${k}`;
  }

  /** `name: "type" = torch.ops.<op>(args, k = v)`; the name is FX's: the op's base name, numbered. */
  op(op: string, type: string | null, args: Arg[], kwargs: Record<string, Arg> = {}, base?: string) {
    const name = this.fresh(base ?? op.split('.').at(-2)!);
    const parts = [...args.map(pyArg), ...Object.entries(kwargs).map(([k, v]) => `${k} = ${pyArg(v)}`)];
    const reads: string[] = [];
    for (const a of [...args, ...Object.values(kwargs)]) refsOf(a, reads);
    this.lines.push({ name, type, call: `torch.ops.${op}(${parts.join(', ')})`, reads, file: this.file });
    return ref(name);
  }

  /** `auto_functionalized(torch.ops.<target>, k = v, …)`, then the getitems asked for. */
  autoFunctionalized(target: string, kwargs: Record<string, Arg>, items: { index: number; type: string }[]) {
    const af = this.op(
      'higher_order.auto_functionalized',
      null,
      [{ kind: 'op', target }],
      kwargs,
      'auto_functionalized',
    );
    return items.map((it) => this.getitem(af, it.index, it.type));
  }

  getitem(of: Arg, index: number, type: string | null) {
    const src = (of as { name: string }).name;
    const name = this.fresh('getitem');
    this.lines.push({ name, type, call: `${src}[${index}]`, reads: [src], file: this.file });
    return ref(name);
  }

  output(...values: Arg[]) {
    this.outputs = values;
  }

  get nodeCount(): number {
    return this.lines.length;
  }

  text(className = 'GraphModule'): string {
    // The last line reading each value frees it (values returned are never freed).
    const returned = new Set<string>();
    for (const o of this.outputs) if (isRef(o)) returned.add(o.name);
    const lastUse = new Map<string, number>();
    this.lines.forEach((l, i) => {
      for (const r of l.reads) lastUse.set(r, i);
    });
    const frees: string[][] = this.lines.map(() => []);
    for (const [name, i] of lastUse) if (!returned.has(name)) frees[i]!.push(name);
    const out: string[] = [];
    out.push(`class ${className}(torch.nn.Module):`);
    out.push(`    def forward(self, ${this.params.map((p) => `${p.name}: "${p.type}"`).join(', ')}):`);
    let file: string | undefined;
    this.lines.forEach((l, i) => {
      if (l.file !== file && l.file !== undefined) {
        if (i > 0) out.push('        ');
        out.push(`         # File: ${l.file}`);
        file = l.file;
      }
      // FX frees in the order the values were read.
      const freed = l.reads.filter((r, k) => frees[i]!.includes(r) && l.reads.indexOf(r) === k);
      const ann = l.type === null ? '' : `: "${l.type}"`;
      out.push(`        ${l.name}${ann} = ${l.call}${freed.length ? `;  ${freed.join(' = ')} = None` : ''}`);
    });
    out.push('        ');
    const outs = this.outputs.map(pyArg);
    out.push(`        return (${outs.join(', ')}${outs.length === 1 ? ',' : ''})`);
    out.push('        ');
    return out.join('\n') + '\n';
  }
}
