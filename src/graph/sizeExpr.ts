// The one evaluator of symbolic sizes (`s72`, `2*s0`, `s0//3*3`, `Max(1, s0 - 8)`), with Python's
// semantics: `//` floors toward −∞, `%` takes the divisor's sign, `**` raises to a non-negative
// integer power, `+ - *`, unary minus and parentheses; and the functions sympy prints in FX sizes
// (Max, Min, FloorDiv, Mod, CeilDiv). A recursive-descent parser: no Function() or eval, so the
// app runs under a Content-Security-Policy without 'unsafe-eval'.

export class SizeExprError extends Error {
  /** 1-based column in the expression. */
  col: number;
  constructor(
    readonly expr: string,
    col: number,
    detail: string,
  ) {
    super(`size '${expr}', col ${col}: ${detail}`);
    this.name = 'SizeExprError';
    this.col = col;
  }
}

/** Python's floor division (integers). */
export function floorDiv(a: number, b: number): number {
  return Math.floor(a / b);
}

/** Python's modulo: the result takes the divisor's sign. */
export function pyMod(a: number, b: number): number {
  const r = a % b;
  return r !== 0 && r < 0 !== b < 0 ? r + b : r;
}

type Tok =
  | { t: 'num'; v: number; at: number }
  | { t: 'sym'; v: string; at: number }
  | { t: 'op'; v: string; at: number };

const FUNCTIONS: Record<string, { arity: number | 'many'; apply: (xs: number[]) => number }> = {
  Max: { arity: 'many', apply: (xs) => Math.max(...xs) },
  Min: { arity: 'many', apply: (xs) => Math.min(...xs) },
  max: { arity: 'many', apply: (xs) => Math.max(...xs) },
  min: { arity: 'many', apply: (xs) => Math.min(...xs) },
  FloorDiv: { arity: 2, apply: ([a, b]) => floorDiv(a, b) },
  CeilDiv: { arity: 2, apply: ([a, b]) => -floorDiv(-a, b) },
  Mod: { arity: 2, apply: ([a, b]) => pyMod(a, b) },
  PythonMod: { arity: 2, apply: ([a, b]) => pyMod(a, b) },
};

function tokenize(expr: string): Tok[] {
  const toks: Tok[] = [];
  const re = /\s*(?:(\d+)|([A-Za-z_][A-Za-z0-9_]*)|(\/\/|\*\*|[-+*%(),]))/y;
  let i = 0;
  while (i < expr.length) {
    if (/^\s*$/.test(expr.slice(i))) break;
    re.lastIndex = i;
    const m = re.exec(expr);
    if (!m) {
      const at = i + (expr.slice(i).length - expr.slice(i).trimStart().length);
      throw new SizeExprError(expr, at + 1, `unexpected '${expr[at]}'`);
    }
    const at = m.index + m[0].length - (m[1] ?? m[2] ?? m[3]).length;
    if (m[1] !== undefined) toks.push({ t: 'num', v: Number(m[1]), at });
    else if (m[2] !== undefined) toks.push({ t: 'sym', v: m[2], at });
    else toks.push({ t: 'op', v: m[3], at });
    i = re.lastIndex;
  }
  return toks;
}

/**
 * The value of a size expression; `bind` gives each symbol's value (throw from it to refuse one).
 * Integers stay exact up to 2⁵³; a division by zero or a result past that is an error.
 */
export function evalSize(expr: string, bind: (symbol: string) => number): number {
  const toks = tokenize(expr);
  let i = 0;
  const fail = (detail: string, at = toks[i]?.at ?? expr.length): never => {
    throw new SizeExprError(expr, at + 1, detail);
  };
  const peek = (v: string) => toks[i]?.t === 'op' && toks[i].v === v;
  const expect = (v: string) => {
    if (!peek(v)) fail(`expected '${v}'`);
    i++;
  };
  const checked = (x: number, at: number) =>
    Number.isSafeInteger(x) ? x : fail(`value ${x} is not an integer the size can hold`, at);

  const atom = (): number => {
    const t = toks[i];
    if (!t) return fail('unexpected end');
    i++;
    if (t.t === 'num') return t.v;
    if (t.t === 'sym') {
      const fn = FUNCTIONS[t.v];
      if (fn && peek('(')) {
        i++;
        const xs = [sum()];
        while (peek(',')) {
          i++;
          xs.push(sum());
        }
        expect(')');
        if (fn.arity !== 'many' && xs.length !== fn.arity)
          fail(`${t.v} takes ${fn.arity} arguments, got ${xs.length}`, t.at);
        if ((t.v === 'FloorDiv' || t.v === 'CeilDiv' || t.v.endsWith('Mod')) && xs[1] === 0)
          fail('division by zero', t.at);
        return checked(fn.apply(xs), t.at);
      }
      return bind(t.v);
    }
    if (t.v === '(') {
      const v = sum();
      expect(')');
      return v;
    }
    return fail(`unexpected '${t.v}'`, t.at);
  };
  // Python binds ** tighter than unary minus on its left: -2**2 is -4.
  const power = (): number => {
    const base = atom();
    if (!peek('**')) return base;
    const at = toks[i].at;
    i++;
    const e = unary();
    if (e < 0) fail('a negative power is not a size', at);
    return checked(base ** e, at);
  };
  const unary = (): number => {
    if (peek('-')) {
      i++;
      return -unary();
    }
    if (peek('+')) {
      i++;
      return unary();
    }
    return power();
  };
  const product = (): number => {
    let v = unary();
    while (peek('*') || peek('//') || peek('%')) {
      const op = toks[i].v,
        at = toks[i].at;
      i++;
      const r = unary();
      if (op !== '*' && r === 0) fail('division by zero', at);
      v = checked(op === '*' ? v * r : op === '//' ? floorDiv(v, r) : pyMod(v, r), at);
    }
    return v;
  };
  const sum = (): number => {
    let v = product();
    while (peek('+') || peek('-')) {
      const op = toks[i].v,
        at = toks[i].at;
      i++;
      const r = product();
      v = checked(op === '+' ? v + r : v - r, at);
    }
    return v;
  };
  if (!toks.length) fail('empty size', 0);
  const v = sum();
  if (i < toks.length) fail(`unexpected '${toks[i].v}'`);
  return v;
}

/** A dim's value with every symbol bound to `tokens` (how the runtime and the cost model bind sizes). */
export function dimValue(d: number | string, tokens: number): number {
  return typeof d === 'number' ? d : evalSize(d, () => tokens);
}
