// The names of one graph being read (the top level, or a nested submodule): where each is
// defined and where it is used. Names are resolved after the whole body is read, so a use
// before a later definition is told apart from a name that is never defined.

import { GraphBuilder } from '../build.ts';
import type { GraphForm, Node, Ref } from '../ir.ts';
import type { SourceText, Token } from './lexer.ts';

interface Use {
  name: string;
  line: number;
  col: number;
  /** Index of the node that reads it; Infinity for the return. */
  order: number;
}

interface Definition {
  line: number;
  /** -1 for inputs, else the node's index. */
  order: number;
}

/** A `self.submod_N(…)` call, checked against the classes once the module is read. */
export interface ModuleCall {
  node: Node;
  line: number;
  col: number;
}

/** The order of an input among the definitions: before every node. */
export const INPUT_ORDER = -1;

export class Scope {
  readonly graph: GraphBuilder;
  readonly form: GraphForm;
  private readonly defs = new Map<string, Definition>();
  private readonly uses: Use[] = [];
  readonly moduleCalls: ModuleCall[] = [];
  /** The `# File:` comment in force: FX prints it once for a run of nodes from one source line. */
  file: string | undefined;

  constructor(name: string, form: GraphForm) {
    this.graph = new GraphBuilder(name, form);
    this.form = form;
  }

  /** Claims `t`'s name for a definition at `order`; a name defined twice is an error at `t`. */
  define(src: SourceText, t: Token, order: number): void {
    const prev = this.defs.get(t.text);
    if (prev)
      throw src.error(`duplicate name '${t.text}': already defined at line ${prev.line}`, t.line, t.col);
    this.defs.set(t.text, { line: t.line, order });
  }

  /** Whether `name` is defined so far (an input or a node above). */
  defines(name: string): boolean {
    return this.defs.has(name);
  }

  /** A read of `t`'s name by the node at `order` (Infinity: the return). */
  use(t: Token, order: number): Ref {
    // Most names are already defined; only the rest wait for resolve().
    const d = this.defs.get(t.text);
    if (!d || d.order >= order) this.uses.push({ name: t.text, line: t.line, col: t.col, order });
    return { kind: 'ref', name: t.text };
  }

  /** The uses just recorded for the node at `order` were the return's (str(graph)'s output node). */
  usesAreReturns(order: number): void {
    const uses = this.uses;
    for (let i = uses.length - 1; i >= 0 && uses[i].order === order; i--) uses[i].order = Infinity;
  }

  /**
   * Checks every use against the definitions. In a module every name must be defined above its
   * use; in a fragment a name defined nowhere is one of the fragment's inputs.
   */
  resolve(src: SourceText): void {
    for (const u of this.uses) {
      const d = this.defs.get(u.name);
      if (d && d.order < u.order) continue;
      if (d) {
        throw src.error(
          `'${u.name}' is used before its definition at line ${d.line}`,
          u.line,
          u.col,
          `a name defined above line ${u.line}`,
        );
      }
      if (this.form === 'fragment') {
        this.defs.set(u.name, { line: u.line, order: INPUT_ORDER });
        this.graph.input(u.name, null, { line: u.line });
        continue;
      }
      const where =
        this.form === 'graph'
          ? 'a placeholder nor a node above this line'
          : 'an input of forward() nor a node above this line';
      throw src.error(
        `name '${u.name}' is not defined: it is neither ${where}`,
        u.line,
        u.col,
        'a defined name',
      );
    }
  }
}
