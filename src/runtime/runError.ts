// The one error type a run throws: what went wrong, where (node, op), and what the user can do.

export type RunErrorKind = 'unsupported-ops' | 'limits' | 'validation' | 'device-lost' | 'input';

export class RunError extends Error {
  node?: string;
  op?: string;
  kind: RunErrorKind;
  constructor(kind: RunErrorKind, message: string, where: { node?: string; op?: string } = {}) {
    super(message);
    this.name = 'RunError';
    this.kind = kind;
    this.node = where.node;
    this.op = where.op;
  }
}
