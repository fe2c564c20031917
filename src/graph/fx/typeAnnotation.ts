// The type strings FX puts on placeholders and nodes: `"bf16[s72, 3072]"`, `"f32[]"`,
// `"Sym(s72)"`, and the longer `"f32[8, 3][3, 1]cuda:0"` (strides and device, which the IR does
// not keep).

import { DTYPE_BYTES, type DType, type Dim, type ValueType } from '../ir.ts';

export class AnnotationError {
  /** Offset inside the annotation's text. */
  offset: number;
  message: string;
  expected?: string;
  constructor(offset: number, message: string, expected?: string) {
    this.offset = offset;
    this.message = message;
    if (expected !== undefined) this.expected = expected;
  }
}

export interface ParsedAnnotation {
  type: ValueType | null;
  /** Why the type was dropped (a dtype the IR has no name for). */
  warning?: string;
}

const DIM_CHAR = /^[A-Za-z0-9_ +\-*/()%.]+$/;

function isNameChar(c: number): boolean {
  return (c >= 97 && c <= 122) || (c >= 65 && c <= 90) || c === 95 || (c >= 48 && c <= 57);
}

/** Parses an annotation; throws AnnotationError with an offset into `s`. */
export function parseTypeAnnotation(s: string): ParsedAnnotation {
  if (s.startsWith('Sym(')) {
    const close = matchingParen(s, 3);
    if (close < 0) throw new AnnotationError(s.length, `expected ')' to close 'Sym(' in type "${s}"`, "')'");
    const expr = s.slice(4, close).trim();
    if (!expr || !DIM_CHAR.test(expr))
      throw new AnnotationError(4, `bad symbolic expression in "${s}"`, 'a symbol like s0');
    if (close !== s.length - 1)
      throw new AnnotationError(close + 1, `unexpected text after 'Sym(...)' in "${s}"`);
    return { type: { kind: 'sym', expr } };
  }
  let i = 0;
  while (i < s.length && isNameChar(s.charCodeAt(i))) i++;
  const dtype = s.slice(0, i);
  if (!dtype)
    throw new AnnotationError(0, `expected a dtype like bf16 at the start of type "${s}"`, 'a dtype');
  if (s[i] !== '[') throw new AnnotationError(i, `expected '[' after dtype '${dtype}' in type "${s}"`, "'['");
  const close = s.indexOf(']', i);
  if (close < 0) throw new AnnotationError(s.length, `expected ']' to close the shape in type "${s}"`, "']'");
  const shape: Dim[] = [];
  const body = s.slice(i + 1, close);
  if (body.trim() !== '') {
    let depth = 0;
    let from = 0;
    for (let k = 0; k <= body.length; k++) {
      const ch = body[k];
      if (ch === '(') depth++;
      else if (ch === ')') depth--;
      if (k === body.length || (ch === ',' && depth === 0)) {
        const text = body.slice(from, k).trim();
        const at = i + 1 + from;
        if (!text) throw new AnnotationError(at, `empty dimension in type "${s}"`, 'a size or symbol');
        if (isDigits(text)) shape.push(Number(text));
        else if (DIM_CHAR.test(text)) shape.push(text);
        else throw new AnnotationError(at, `bad dimension '${text}' in type "${s}"`, 'a size or symbol');
        from = k + 1;
      }
    }
    if (depth !== 0) throw new AnnotationError(i + 1, `unbalanced parentheses in the shape of type "${s}"`);
  }
  // Anything after the shape (strides, device) is accepted and not kept.
  const rest = s.slice(close + 1);
  if (rest && !/^\[[0-9, ]*\][A-Za-z0-9:]*$/.test(rest) && !/^[A-Za-z0-9:]+$/.test(rest)) {
    // Symbolic strides are possible too; accept any bracketed list followed by a device.
    if (!(rest.startsWith('[') && rest.indexOf(']') > 0)) {
      throw new AnnotationError(close + 1, `unexpected text '${rest}' after the shape in type "${s}"`);
    }
  }
  if (!(dtype in DTYPE_BYTES)) {
    return {
      type: null,
      warning: `dtype '${dtype}' is not one the IR knows (${Object.keys(DTYPE_BYTES).join(', ')}); the type is dropped`,
    };
  }
  return { type: { kind: 'tensor', dtype: dtype as DType, shape } };
}

function isDigits(s: string): boolean {
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 48 || c > 57) return false;
  }
  return s.length > 0;
}

function matchingParen(s: string, open: number): number {
  let depth = 0;
  for (let k = open; k < s.length; k++) {
    if (s[k] === '(') depth++;
    else if (s[k] === ')' && --depth === 0) return k;
  }
  return -1;
}

export function printTypeAnnotation(t: ValueType): string {
  return t.kind === 'sym' ? `Sym(${t.expr})` : `${t.dtype}[${t.shape.join(', ')}]`;
}
