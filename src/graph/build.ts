// A small builder for graphs written in code (tests, passes that add nodes), so a graph can be
// spelled the way FX prints it: `b.node('slice_1', 'aten.slice.Tensor', [ref('x'), 1, 0, 2880], {}, 'bf16[s72, 2880]')`.

import type { Arg, DType, Graph, Input, Node, ValueType } from './ir.ts';
import { DTYPE_BYTES, ref } from './ir.ts';
import { AUTO_FUNCTIONALIZED } from './call.ts';

const DTYPES = new Set(Object.keys(DTYPE_BYTES));

/** Parses an FX type annotation: `"bf16[s72, 3072]"`, `"f32[]"`, `"Sym(s72)"`. */
export function parseType(text: string): ValueType {
  const s = text.trim();
  const sym = /^Sym\((.+)\)$/.exec(s);
  if (sym) return { kind: 'sym', expr: sym[1]! };
  const m = /^([a-z0-9]+)\[(.*)\]$/.exec(s);
  if (!m || !DTYPES.has(m[1]!))
    throw new Error(`not a type annotation: "${text}" (expected like "bf16[s72, 2880]" or "Sym(s72)")`);
  const body = m[2]!.trim();
  const shape =
    body === ''
      ? []
      : body.split(',').map((d) => {
          const t = d.trim();
          return /^-?\d+$/.test(t) ? Number(t) : t;
        });
  return { kind: 'tensor', dtype: m[1] as DType, shape };
}

export class GraphBuilder {
  private inputs: Input[] = [];
  private nodes: Node[] = [];
  private outputs: Arg[] | null = null;
  private names = new Set<string>();

  constructor(
    private name = 'GraphModule',
    private form: Graph['form'] = 'module',
  ) {}

  input(name: string, type: string | null) {
    this.claim(name);
    this.inputs.push({ name, type: type === null ? null : parseType(type), meta: {} });
    return ref(name);
  }

  node(
    name: string,
    op: string,
    args: Arg[],
    kwargs: Record<string, Arg> = {},
    type: string | null = null,
    file?: string,
  ) {
    this.claim(name);
    const n: Node = { name, op, args, kwargs, type: type === null ? null : parseType(type), meta: {} };
    if (file !== undefined) n.meta.file = file;
    this.nodes.push(n);
    return ref(name);
  }

  /** `auto_functionalized(target, **kwargs)`, as torch.compile writes a call of an op that mutates its arguments. */
  functionalized(name: string, target: string, kwargs: Record<string, Arg>) {
    return this.node(name, AUTO_FUNCTIONALIZED, [{ kind: 'op', target }], kwargs);
  }

  output(...values: Arg[]) {
    this.outputs = values;
    return this;
  }

  build(): Graph {
    return {
      name: this.name,
      form: this.form,
      inputs: this.inputs,
      nodes: this.nodes,
      outputs: this.outputs,
      submodules: {},
    };
  }

  private claim(name: string) {
    if (this.names.has(name)) throw new Error(`duplicate name '${name}' in graph being built`);
    this.names.add(name);
  }
}
