// Types of functionLengths.mjs (a plain script: it loads TypeScript 5 from tools/lint at run time).
export interface FunctionLength {
  name: string;
  /** 1-based line of the function's first token. */
  line: number;
  /** Lines from the first token to the closing one, both counted. */
  lines: number;
}
export function isGenerated(fileName: string, text: string): boolean;
export function functionLengths(fileName: string, text: string): FunctionLength[];
