// What the bench suites share: command-line flags (`--name value` or `--name=value`) and the median.

export function flagValue(argv: string[], name: string): string | undefined {
  const i = argv.findIndex((a) => a === name || a.startsWith(`${name}=`));
  if (i < 0) return undefined;
  return argv[i].includes('=') ? argv[i].slice(name.length + 1) : argv[i + 1];
}

/** A positive integer flag, `def` when absent; a RangeError naming the flag otherwise. */
export function positiveIntFlag(argv: string[], name: string, def: number): number {
  const raw = flagValue(argv, name);
  if (raw === undefined) return def;
  const v = Number(raw);
  if (!Number.isInteger(v) || v < 1) throw new RangeError(`${name} takes a positive integer`);
  return v;
}

export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}
