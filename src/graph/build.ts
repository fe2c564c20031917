// The one builder of graphs: for graphs written in code (tests, passes that add nodes), spelled
// the way FX prints them — `b.node('slice_1', 'aten.slice.Tensor', [ref('x'), 1, 0, 2880], {}, 'bf16[s72, 2880]')` —
// and for the FX importer and the sample writer, which hand it nodes they have read or made.

import { AnnotationError, parseTypeAnnotation } from './fx/typeAnnotation.ts';
import type { Arg, Graph, GraphForm, Input, Node, Provenance, Ref, ValueType } from './ir.ts';
import { ref } from './ir.ts';
import { AUTO_FUNCTIONALIZED } from './call.ts';

/** An FX type annotation written in code: `"bf16[s72, 3072]"`, `"f32[]"`, `"Sym(s72)"`. */
export function parseType(text: string): ValueType {
  let type: ValueType | null = null;
  try {
    type = parseTypeAnnotation(text.trim()).type;
  } catch (e) {
    if (!(e instanceof AnnotationError)) throw e;
  }
  if (!type)
    throw new Error(`not a type annotation: "${text}" (expected like "bf16[s72, 2880]" or "Sym(s72)")`);
  return type;
}

/** A type as code writes it (annotation text) or as an importer has already read it. */
export type TypeSpec = ValueType | string | null;

const typeOf = (t: TypeSpec): ValueType | null => (typeof t === 'string' ? parseType(t) : t);

export class GraphBuilder {
  private readonly inputs: Input[] = [];
  private readonly nodes: Node[] = [];
  private outputs: Arg[] | null = null;
  private readonly submodules: Record<string, Graph> = {};
  private readonly names = new Set<string>();
  readonly name: string;
  readonly form: GraphForm;

  constructor(name = 'GraphModule', form: GraphForm = 'module') {
    this.name = name;
    this.form = form;
  }

  input(name: string, type: TypeSpec, meta: Provenance = {}): Ref {
    this.claim(name);
    this.inputs.push({ name, type: typeOf(type), meta });
    return ref(name);
  }

  node(
    name: string,
    op: string,
    args: Arg[],
    kwargs: Record<string, Arg> = {},
    type: TypeSpec = null,
    file?: string,
  ): Ref {
    this.claim(name);
    const n: Node = { name, op, args, kwargs, type: typeOf(type), meta: {} };
    if (file !== undefined) n.meta.file = file;
    this.nodes.push(n);
    return ref(name);
  }

  /** `auto_functionalized(target, **kwargs)`, as torch.compile writes a call of an op that mutates its arguments. */
  functionalized(name: string, target: string, kwargs: Record<string, Arg>) {
    return this.node(name, AUTO_FUNCTIONALIZED, [{ kind: 'op', target }], kwargs);
  }

  /**
   * A node made whole elsewhere, whose name the caller has already checked is new: the FX
   * reader checks every name as it reads it, to report a duplicate with the line of the first.
   */
  add(n: Node): void {
    this.nodes.push(n);
  }

  output(...values: Arg[]): this {
    return this.setOutputs(values);
  }

  /** The returned values, as a list (a return of thousands of values is no spread argument list). */
  setOutputs(values: Arg[]): this {
    this.outputs = values;
    return this;
  }

  submodule(g: Graph): void {
    this.submodules[g.name] = g;
  }

  hasSubmodule(name: string): boolean {
    return name in this.submodules;
  }

  get nodeCount(): number {
    return this.nodes.length;
  }

  get hasOutputs(): boolean {
    return this.outputs !== null;
  }

  build(): Graph {
    return {
      name: this.name,
      form: this.form,
      inputs: this.inputs,
      nodes: this.nodes,
      outputs: this.outputs,
      submodules: this.submodules,
    };
  }

  private claim(name: string): void {
    if (this.names.has(name)) throw new Error(`duplicate name '${name}' in graph being built`);
    this.names.add(name);
  }
}
