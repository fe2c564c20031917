// Python's repr of the literals FX prints, so exported text reads like PyTorch's own output
// (`1e-05`, `1.0`, `'tp:0'`) and imports back to the same values.

/** repr(float): shortest round-trip digits; exponent form below 1e-4 and from 1e16 on. */
export function pyFloatRepr(v: number): string {
  if (Number.isNaN(v)) return 'nan';
  if (v === Infinity) return 'inf';
  if (v === -Infinity) return '-inf';
  if (v === 0) return Object.is(v, -0) ? '-0.0' : '0.0';
  const sign = v < 0 ? '-' : '';
  const [mant, expText] = Math.abs(v).toExponential().split('e');
  const digits = mant.replace('.', '');
  const exp = Number(expText);
  if (exp < -4 || exp >= 16) {
    const frac = digits.length > 1 ? `.${digits.slice(1)}` : '';
    const e = Math.abs(exp) < 10 ? `0${Math.abs(exp)}` : `${Math.abs(exp)}`;
    return `${sign}${digits[0]}${frac}e${exp < 0 ? '-' : '+'}${e}`;
  }
  if (exp < 0) return `${sign}0.${'0'.repeat(-exp - 1)}${digits}`;
  const intPart =
    digits.length > exp + 1 ? digits.slice(0, exp + 1) : digits + '0'.repeat(exp + 1 - digits.length);
  const fracPart = digits.length > exp + 1 ? digits.slice(exp + 1) : '0';
  return `${sign}${intPart}.${fracPart}`;
}

const INT64_MAX_AS_DOUBLE = 2 ** 63;

/** repr(int). Ints past 2^53 keep the nearest double; 2^63 is how sys.maxsize (a slice end) arrives. */
export function pyIntRepr(v: number): string {
  if (Number.isSafeInteger(v)) return String(v);
  if (v === INT64_MAX_AS_DOUBLE) return '9223372036854775807';
  if (Number.isInteger(v)) return BigInt(v).toString();
  return pyFloatRepr(v);
}

/** repr(str): single quotes unless the text holds a single quote and no double quote. */
export function pyStrRepr(s: string): string {
  const q = s.includes("'") && !s.includes('"') ? '"' : "'";
  let out = q;
  for (const ch of s) {
    const c = ch.charCodeAt(0);
    if (ch === '\\') out += '\\\\';
    else if (ch === q) out += '\\' + q;
    else if (ch === '\n') out += '\\n';
    else if (ch === '\r') out += '\\r';
    else if (ch === '\t') out += '\\t';
    else if (c < 32 || c === 127) out += '\\x' + c.toString(16).padStart(2, '0');
    else out += ch;
  }
  return out + q;
}
