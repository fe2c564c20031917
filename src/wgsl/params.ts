// A kernel's parameters by name: one field list gives the WGSL struct the kernel reads
// (`prm.cols`, not a word by its index) and the words the host writes for it, so the two cannot drift.
// Fields are u32, f32 or a fixed array of u32 (per-dim shapes and strides). The struct lives in a
// storage buffer, where all three have 4-byte alignment and an array's stride is 4: the fields are
// consecutive words in declaration order, with no padding, and the host's words follow that order.

export type ParamType = 'u32' | 'f32' | `array<u32, ${number}>`;
type ParamValue<T extends ParamType> = T extends 'u32' | 'f32' ? number : readonly number[];
export type ParamValues<F extends Record<string, ParamType>> = { [K in keyof F]: ParamValue<F[K]> };
/** The values a struct's host side takes: `ParamsOf<typeof GEMM_PARAMS>`. */
export type ParamsOf<S> = S extends ParamStruct<infer F> ? ParamValues<F> : never;

export interface ParamStruct<F extends Record<string, ParamType>> {
  /** `struct Name { a: u32, … }` and the binding-0 declaration `prm` of it. */
  wgsl: string;
  /** The buffer's words in field order (f32 fields as their bits). */
  words(p: ParamValues<F>): Uint32Array;
}

/** Words a field takes: 1, or an array's length. */
function fieldWords(t: ParamType): number {
  const m = /^array<u32, (\d+)>$/.exec(t);
  return m ? Number(m[1]) : 1;
}

export function paramStruct<F extends Record<string, ParamType>>(name: string, fields: F): ParamStruct<F> {
  const entries = Object.entries(fields) as [keyof F & string, ParamType][];
  const total = entries.reduce((a, [, t]) => a + fieldWords(t), 0);
  return {
    wgsl: `struct ${name} { ${entries.map(([k, t]) => `${k}: ${t}`).join(', ')} }\n@group(0) @binding(0) var<storage, read> prm: ${name};`,
    words(p) {
      const words = new Uint32Array(total);
      const f32 = new Float32Array(words.buffer);
      let at = 0;
      for (const [k, t] of entries) {
        const v = p[k];
        if (typeof v === 'number') {
          if (t === 'f32') f32[at] = v;
          else words[at] = v >>> 0;
          at++;
          continue;
        }
        const n = fieldWords(t);
        if (v.length !== n) throw new Error(`${name}.${k}: ${v.length} values for ${t}`);
        v.forEach((x, i) => (words[at + i] = x >>> 0));
        at += n;
      }
      return words;
    },
  };
}
