// A kernel's parameters by name: one field list gives the WGSL struct the kernel reads
// (`prm.cols`, not `prm[1]`) and the words the host writes for it, so the two cannot drift.

export type ParamType = 'u32' | 'f32';
export type ParamValues<F extends Record<string, ParamType>> = { [K in keyof F]: number };

export interface ParamStruct<F extends Record<string, ParamType>> {
  /** `struct Name { a: u32, … }` and the binding-0 declaration `prm` of it. */
  wgsl: string;
  /** The buffer's words in field order (f32 fields as their bits). */
  words(p: ParamValues<F>): Uint32Array;
}

export function paramStruct<F extends Record<string, ParamType>>(name: string, fields: F): ParamStruct<F> {
  const entries = Object.entries(fields) as [keyof F & string, ParamType][];
  return {
    wgsl: `struct ${name} { ${entries.map(([k, t]) => `${k}: ${t}`).join(', ')} }\n@group(0) @binding(0) var<storage, read> prm: ${name};`,
    words(p) {
      const words = new Uint32Array(entries.length);
      const f32 = new Float32Array(words.buffer);
      entries.forEach(([k, t], i) => {
        if (t === 'f32') f32[i] = p[k];
        else words[i] = p[k] >>> 0;
      });
      return words;
    },
  };
}
