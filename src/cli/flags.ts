// The command line of `fusionlab rewrite` and `fusionlab run`: `--name value` or `--name=value`,
// read in order, each value checked by its flag's reader as it is read. A command declares its
// flags as a record of readers and gets their values typed; whatever is wrong is a UsageError,
// which the command prints as one line and exits 2 on.

export class UsageError extends Error {}

/** Reads one flag's value (undefined: the command line ended first). */
export type FlagReader<T> = (value: string | undefined, flag: string) => T;
/** A flag that takes no value (`--report`). */
export const SWITCH = true;
export type FlagSpec = Record<string, FlagReader<unknown> | typeof SWITCH>;
/** The values of the flags given; a switch given is `true`. */
export type FlagValues<S extends FlagSpec> = {
  [K in keyof S]?: S[K] extends FlagReader<infer T> ? T : true;
};

export interface ParsedFlags<S extends FlagSpec> {
  values: FlagValues<S>;
  /** Every `--name` on the command line, to refuse the ones a run would not use. */
  given: Set<string>;
}

/**
 * Reads `argv` against `spec`, in order: a later flag overrides an earlier one; an argument that is
 * not a flag goes to `positional` (which may refuse it); an unknown `--name` is refused.
 */
export function parseFlags<S extends FlagSpec>(
  argv: string[],
  spec: S,
  positional: (arg: string) => void,
): ParsedFlags<S> {
  const values: Record<string, unknown> = {};
  const given = new Set<string>();
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    const eq = arg.startsWith('--') ? arg.indexOf('=') : -1;
    const [flag, inline] = eq >= 0 ? [arg.slice(0, eq), arg.slice(eq + 1)] : [arg, undefined];
    if (flag.startsWith('--')) given.add(flag);
    const reader = Object.hasOwn(spec, flag) ? spec[flag] : undefined;
    if (reader === SWITCH) values[flag] = true;
    else if (reader) values[flag] = reader(inline ?? argv[++i], flag);
    else if (arg.startsWith('--')) throw new UsageError(`unknown option '${arg}'`);
    else positional(arg);
  }
  return { values: values as FlagValues<S>, given };
}

const got = (v: string | undefined) => (v === undefined ? 'nothing' : `'${v}'`);

const isInteger = (v: string | undefined, min: number): v is string =>
  v !== undefined && /^\d+$/.test(v) && Number(v) >= min && Number.isSafeInteger(Number(v));

export const positiveInt: FlagReader<number> = (v, flag) => {
  if (!isInteger(v, 1)) throw new UsageError(`${flag} takes a positive integer, got ${got(v)}`);
  return Number(v);
};

export function integerAtLeast(min: number): FlagReader<number> {
  return (v, flag) => {
    if (!isInteger(v, min)) throw new UsageError(`${flag} takes an integer ≥ ${min}, got ${got(v)}`);
    return Number(v);
  };
}

export function oneOf<T extends string>(allowed: readonly T[]): FlagReader<T> {
  return (v, flag) => {
    if (v === undefined || !(allowed as readonly string[]).includes(v))
      throw new UsageError(`${flag} takes ${allowed.join(' | ')}, got ${got(v)}`);
    return v as T;
  };
}

/** A value that may not be empty; `missing` says what the flag takes. */
export function nonEmpty(missing: string): FlagReader<string> {
  return (v) => {
    if (!v) throw new UsageError(missing);
    return v;
  };
}

/** A comma-separated list of names, blanks dropped, each one `known`, else `unknown(name)`. */
export function nameList(
  missing: string,
  known: Record<string, unknown>,
  unknown: (name: string) => string,
): FlagReader<string[]> {
  return (v) => {
    if (!v) throw new UsageError(missing);
    const names = v
      .split(',')
      .map((p) => p.trim())
      .filter((p) => p !== '');
    for (const p of names) if (!(p in known)) throw new UsageError(unknown(p));
    return names;
  };
}
