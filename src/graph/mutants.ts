// Seeded mutations of real graph dumps, for the fuzz tests of the importers and the CLI: text
// edits (lines deleted, duplicated, swapped, cut; characters garbled) and structural edits of a
// fusionlab.graph/1 document (nodes reordered into a cycle, wrong field types, hostile nesting,
// names no FX text can hold). The same seed gives the same mutants everywhere.

/** The mutants' seeded generator (its home is seededRandom.ts; the fuzz tests import it from here). */
export { prng } from './seededRandom.ts';

export interface Mutant {
  text: string;
  steps: string[];
}

const NASTY = [
  '(',
  ')',
  '[',
  ']',
  '{',
  '}',
  "'",
  '"',
  ',',
  ':',
  '=',
  '#',
  '%',
  '\0',
  '\uFFFD',
  'é',
  '\t',
  '\n',
  '-',
  '.',
  '*',
  ';',
  ' ',
  '\\',
  '0',
  'x',
];

/** One to three line-level or character-level edits of a text. */
export function mutateText(text: string, rnd: () => number): Mutant {
  const pick = (n: number) => Math.floor(rnd() * n);
  let lines = text.split('\n');
  const steps: string[] = [];
  const rounds = 1 + pick(3);
  for (let r = 0; r < rounds; r++) {
    if (lines.length === 0) lines = [''];
    const i = pick(lines.length);
    switch (pick(8)) {
      case 0:
        steps.push(`delete line ${i + 1}`);
        lines.splice(i, 1);
        break;
      case 1:
        steps.push(`duplicate line ${i + 1}`);
        lines.splice(i, 0, lines[i]);
        break;
      case 2: {
        const j = pick(lines.length);
        steps.push(`swap lines ${i + 1} and ${j + 1}`);
        [lines[i], lines[j]] = [lines[j], lines[i]];
        break;
      }
      case 3: {
        const at = pick(lines[i].length + 1);
        steps.push(`cut line ${i + 1} at ${at}`);
        lines[i] = lines[i].slice(0, at);
        break;
      }
      case 4: {
        const all = lines.join('\n');
        const at = pick(all.length + 1);
        steps.push(`cut text at ${at}`);
        lines = all.slice(0, at).split('\n');
        break;
      }
      case 5:
      case 6:
      case 7: {
        const line = lines[i];
        const at = pick(line.length + 1);
        const ch = NASTY[pick(NASTY.length)];
        const kind = ['replace', 'delete', 'insert'][pick(3)];
        steps.push(`${kind} ${JSON.stringify(ch)} at line ${i + 1}:${at + 1}`);
        if (kind === 'replace') lines[i] = line.slice(0, at) + ch + line.slice(at + 1);
        else if (kind === 'delete') lines[i] = line.slice(0, at) + line.slice(at + 1);
        else lines[i] = line.slice(0, at) + ch + line.slice(at);
        break;
      }
    }
  }
  return { text: lines.join('\n'), steps };
}

type Doc = {
  graph: {
    nodes: Record<string, unknown>[];
    inputs: Record<string, unknown>[];
    submodules: Record<string, unknown>;
    [k: string]: unknown;
  };
  [k: string]: unknown;
};

const ODD_NAMES = ['a b', '1x', 'x.y', 'x-y', 'def', 'None', 'é', 'x"y', "x'y", 'x\ny', 'x:y', 'x=y', '(x)'];
const ODD_VALUES: unknown[] = [null, true, -1, 1e308, 0.5, '', 'x', [], {}, [[[]]], { kind: 'ref' }, 2 ** 53];
const DEEP = 5000;

/** Nests `inner` `depth` times in lists, built as text so no recursion is needed to write it. */
function deepList(depth: number): string {
  return '['.repeat(depth) + ']'.repeat(depth);
}

/**
 * One to three structural edits of a fusionlab.graph/1 document (as text). Most keep the JSON
 * well formed, so they reach the validator and the passes rather than the syntax check.
 */
export function mutateGraphJson(text: string, rnd: () => number): Mutant {
  const pick = (n: number) => Math.floor(rnd() * n);
  const doc = JSON.parse(text) as Doc;
  const nodes = doc.graph.nodes;
  const steps: string[] = [];
  const splices: [string, string][] = [];
  const rounds = 1 + pick(3);
  for (let r = 0; r < rounds && nodes.length > 0; r++) {
    const i = pick(nodes.length);
    const n = nodes[i];
    switch (pick(9)) {
      case 0: {
        // A later node moved before one it reads: a use before definition (often a cycle).
        const j = pick(nodes.length);
        steps.push(`move node ${i} to ${j}`);
        nodes.splice(j, 0, ...nodes.splice(i, 1));
        break;
      }
      case 1: {
        const j = pick(nodes.length);
        steps.push(`node ${i} reads node ${j} (${String(nodes[j].name)})`);
        n.args = [...(Array.isArray(n.args) ? n.args : []), { kind: 'ref', name: nodes[j].name }];
        break;
      }
      case 2: {
        const name = ODD_NAMES[pick(ODD_NAMES.length)];
        steps.push(`rename node ${i} to ${JSON.stringify(name)} and its readers`);
        const old = JSON.stringify({ kind: 'ref', name: n.name });
        const renamed = JSON.stringify({ kind: 'ref', name });
        n.name = name;
        nodes.splice(0, nodes.length, ...JSON.parse(JSON.stringify(nodes).split(old).join(renamed)));
        break;
      }
      case 3: {
        const keys = Object.keys(n);
        const k = keys[pick(keys.length)];
        const v = ODD_VALUES[pick(ODD_VALUES.length)];
        steps.push(`node ${i}.${k} = ${JSON.stringify(v)}`);
        n[k] = v;
        break;
      }
      case 4: {
        const keys = Object.keys(n);
        const k = keys[pick(keys.length)];
        steps.push(`delete node ${i}.${k}`);
        delete n[k];
        break;
      }
      case 5: {
        const where = ['args', 'meta', 'submodules', 'type'][pick(4)];
        steps.push(`nest ${DEEP} levels into ${where} of node ${i}`);
        const mark = `"@@deep${r}@@"`;
        if (where === 'args') n.args = [...(Array.isArray(n.args) ? n.args : []), `@@deep${r}@@`];
        else if (where === 'meta')
          n.meta = { ...(typeof n.meta === 'object' ? n.meta : {}), deep: `@@deep${r}@@` };
        else if (where === 'type') n.type = `@@deep${r}@@`;
        else {
          doc.graph.submodules.deep = `@@deep${r}@@`;
          splices.push([mark, deepSubmodules(DEEP / 10)]);
          break;
        }
        splices.push([mark, deepList(DEEP)]);
        break;
      }
      case 6: {
        const t = n.type as { shape?: unknown[] } | null;
        const v = [-1, 2 ** 60, 's0+', '', 1.5][pick(5)];
        steps.push(`node ${i} shape dim = ${JSON.stringify(v)}`);
        if (t && Array.isArray(t.shape)) t.shape.push(v);
        else n.type = { kind: 'tensor', dtype: 'bf16', shape: [v] };
        break;
      }
      case 7: {
        steps.push(`duplicate node ${i}`);
        nodes.splice(i, 0, JSON.parse(JSON.stringify(n)));
        break;
      }
      case 8: {
        const ops = [
          'vllm.all_reduce.default',
          'aten.slice.Tensor',
          '_C.fused_add_rms_norm.default',
          'higher_order.auto_functionalized',
          'getitem',
          'call_module',
          'x',
        ];
        const op = ops[pick(ops.length)];
        steps.push(`node ${i}.op = ${op}`);
        n.op = op;
        break;
      }
    }
  }
  let out = JSON.stringify(doc);
  for (const [mark, deep] of splices) out = out.replace(mark, deep);
  return { text: out, steps };
}

function deepSubmodules(depth: number): string {
  const open = '{"name":"s","form":"module","inputs":[],"nodes":[],"outputs":null,"submodules":{"s":';
  return (
    open.repeat(depth) +
    '{"name":"s","form":"module","inputs":[],"nodes":[],"outputs":null,"submodules":{}}' +
    '}}'.repeat(depth)
  );
}
