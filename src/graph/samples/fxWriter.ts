// Writes a graph as `GraphModule.print_readable()` prints a vLLM post-grad graph: annotated
// placeholders in `def forward`, one node per line with its result annotation, `# File:`
// comments before each source line's group, and `;  a = b = None` freeing each value at its last use.
// The graph is built with the one GraphBuilder; its nodes print as printFx prints them.

import { GraphBuilder } from '../build.ts';
import { forEachInput } from '../call.ts';
import type { Arg, Graph, Node } from '../ir.ts';
import { isRef, ref } from '../ir.ts';
import { nodeExpression, printOutputs, typeString } from '../fx/print.ts';

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

export class FxWriter {
  private readonly graph = new GraphBuilder();
  private params = 0;
  private counters = new Map<string, number>();
  private file: string | undefined;

  /** A new placeholder, named as Dynamo names lifted inputs: arg0_1, arg1_1, … */
  param(type: string) {
    return this.graph.input(`arg${this.params++}_1`, type);
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
    return this.graph.node(this.fresh(base ?? op.split('.').at(-2)!), op, args, kwargs, type, this.file);
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
    return this.graph.node(this.fresh('getitem'), 'getitem', [ref(src), index], {}, type, this.file);
  }

  output(...values: Arg[]) {
    this.graph.setOutputs(values);
  }

  get nodeCount(): number {
    return this.graph.nodeCount;
  }

  text(className = 'GraphModule'): string {
    const g = this.graph.build();
    const frees = freedAfter(g);
    const out: string[] = [];
    out.push(`class ${className}(torch.nn.Module):`);
    out.push(
      `    def forward(self, ${g.inputs.map((p) => `${p.name}: ${typeString(p.type!)}`).join(', ')}):`,
    );
    let file: string | undefined;
    g.nodes.forEach((n, i) => {
      if (n.meta.file !== file && n.meta.file !== undefined) {
        if (i > 0) out.push('        ');
        out.push(`         # File: ${n.meta.file}`);
        file = n.meta.file;
      }
      const ann = n.type === null ? '' : `: ${typeString(n.type)}`;
      const freed = frees[i]!.length ? `;  ${frees[i]!.join(' = ')} = None` : '';
      out.push(`        ${n.name}${ann} = ${nodeExpression(n)}${freed}`);
    });
    out.push('        ');
    out.push(`        return ${printOutputs(g.outputs ?? [])}`);
    out.push('        ');
    return out.join('\n') + '\n';
  }
}

/** What each node's line frees: the values it is the last to read, in the order it reads them (returned values never). */
function freedAfter(g: Graph): string[][] {
  const reads = g.nodes.map(readsOf);
  const returned = new Set<string>();
  for (const o of g.outputs ?? []) if (isRef(o)) returned.add(o.name);
  const lastUse = new Map<string, number>();
  reads.forEach((names, i) => {
    for (const r of names) lastUse.set(r, i);
  });
  const frees: string[][] = reads.map(() => []);
  for (const [name, i] of lastUse) if (!returned.has(name)) frees[i]!.push(name);
  // FX frees in the order the values were read.
  return reads.map((names, i) => names.filter((r, k) => frees[i]!.includes(r) && names.indexOf(r) === k));
}

function readsOf(n: Node): string[] {
  const names: string[] = [];
  forEachInput(n, (name) => names.push(name));
  return names;
}
