import { readdirSync, readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { GraphImportError } from './errors.ts';
import { parseFx } from './fx/parse.ts';
import { printFx } from './fx/print.ts';
import { float, ref, type Graph } from './ir.ts';
import { GRAPH_SCHEMA, graphFromJson, graphFromJsonText, graphToJson, jsonSyntaxError } from './json.ts';

const FIXTURES = new URL('../../fixtures/fx/', import.meta.url);
const FILES = ['real', 'seed'].flatMap((d) =>
  readdirSync(new URL(`${d}/`, FIXTURES)).map((f) => `${d}/${f}`),
);
const fixture = (path: string): string => readFileSync(new URL(path, FIXTURES), 'utf8');

function jsonError(x: unknown): GraphImportError {
  try {
    graphFromJson(x);
  } catch (e) {
    if (e instanceof GraphImportError) return e;
    throw e;
  }
  throw new Error('expected a GraphImportError');
}

const tiny = (): Graph => ({
  name: 'M',
  form: 'module',
  inputs: [{ name: 'x', type: { kind: 'tensor', dtype: 'bf16', shape: ['s0', 8] }, meta: { line: 2 } }],
  nodes: [
    {
      name: 'a',
      op: 'aten.clamp.default',
      args: [ref('x'), float(-Infinity), float(NaN)],
      kwargs: { z: float(-0) },
      type: null,
      meta: { line: 3, file: 'f.py:1' },
    },
    {
      name: 'b',
      op: 'call_module',
      module: 'sub',
      args: [ref('a')],
      kwargs: {},
      type: { kind: 'sym', expr: 's0' },
      meta: { madeBy: { pass: 'slice-hoist', from: ['a'] } },
    },
  ],
  outputs: [{ kind: 'tuple', items: [ref('b'), null] }],
  submodules: {
    sub: {
      name: 'sub',
      form: 'module',
      inputs: [{ name: 'p', type: null, meta: {} }],
      nodes: [],
      outputs: [ref('p')],
      submodules: {},
    },
  },
});

describe('graph JSON round trip', () => {
  for (const file of FILES) {
    it(file, () => {
      const g = parseFx(fixture(file)).graph;
      const text = JSON.stringify(graphToJson(g));
      const back = graphFromJsonText(text);
      expect(back).toEqual(g);
      // JSON → FX text → import is the same graph too (up to source lines).
      expect(printFx(parseFx(printFx(back)).graph)).toBe(printFx(g));
    });
  }

  it('keeps non-finite floats, negative zero, submodules and provenance', () => {
    const g = tiny();
    const doc = JSON.parse(JSON.stringify(graphToJson(g)));
    expect(doc.schema).toBe(GRAPH_SCHEMA);
    expect(doc.graph.nodes[0].args[1]).toEqual({ kind: 'float', value: '-inf' });
    expect(doc.graph.nodes[0].args[2]).toEqual({ kind: 'float', value: 'nan' });
    expect(doc.graph.nodes[0].kwargs.z).toEqual({ kind: 'float', value: '-0.0' });
    const back = graphFromJson(doc);
    expect(back).toEqual(g);
    expect(Object.is((back.nodes[0].kwargs.z as { value: number }).value, -0)).toBe(true);
    // The input graph is not changed by encoding.
    expect((g.nodes[0].args[1] as { value: number }).value).toBe(-Infinity);
  });
});

describe('graphFromJson validates every field and names the JSON path', () => {
  const doc = () => JSON.parse(JSON.stringify(graphToJson(tiny())));

  it('schema', () => {
    expect(jsonError({ schema: 'fusionlab.graph/2', graph: tiny() }).message).toBe(
      'line 1, col 1: $.schema: expected \'fusionlab.graph/1\', found "fusionlab.graph/2"',
    );
    expect(jsonError([]).message).toBe('line 1, col 1: $: expected an object, found []');
  });

  it('fields, kinds, dtypes and shapes', () => {
    const cases: [(d: any) => void, string][] = [
      [
        (d) => {
          delete d.graph.nodes[0].op;
        },
        '$.graph.nodes[0].op: missing',
      ],
      [
        (d) => {
          d.graph.nodes[1].extra = 1;
        },
        '$.graph.nodes[1].extra: unknown field',
      ],
      [
        (d) => {
          d.graph.form = 'tree';
        },
        '$.graph.form: expected one of module, fragment, graph, found "tree"',
      ],
      [
        (d) => {
          d.graph.inputs[0].type.dtype = 'c64';
        },
        '$.graph.inputs[0].type.dtype: expected one of bf16',
      ],
      [
        (d) => {
          d.graph.inputs[0].type.shape[1] = -1;
        },
        '$.graph.inputs[0].type.shape[1]: expected a size (integer ≥ 0) or a symbol, found -1',
      ],
      [
        (d) => {
          d.graph.nodes[0].args[0] = { kind: 'ref', name: 'nope' };
        },
        "$.graph.nodes[0].args[0].name: 'nope' is neither an input nor a node of this graph",
      ],
      [
        (d) => {
          d.graph.nodes[0].args[1] = { kind: 'float', value: 'Infinity' };
        },
        "$.graph.nodes[0].args[1].value: expected a finite number or one of 'inf', '-inf', 'nan', '-0.0', found \"Infinity\"",
      ],
      [
        (d) => {
          d.graph.nodes[0].kwargs.z = { kind: 'lambda' };
        },
        '$.graph.nodes[0].kwargs.z.kind: expected an argument',
      ],
      [
        (d) => {
          d.graph.nodes[1].name = 'a';
        },
        "$.graph.nodes[1].name: duplicate name 'a'",
      ],
      [
        (d) => {
          d.graph.nodes[1].name = 'x.y';
        },
        '$.graph.nodes[1].name: "x.y" is not a name FX text can hold (an ASCII identifier, not a Python keyword)',
      ],
      [
        (d) => {
          d.graph.inputs[0].name = 'None';
        },
        '$.graph.inputs[0].name: "None" is not a name FX text can hold',
      ],
      [
        (d) => {
          delete d.graph.nodes[1].module;
        },
        '$.graph.nodes[1].module: missing: a call_module node names its submodule',
      ],
      [
        (d) => {
          d.graph.nodes[1].module = 'other';
        },
        "$.graph.nodes[1].module: no submodule 'other' in this graph",
      ],
      [
        (d) => {
          d.graph.nodes[0].meta.line = 0;
        },
        '$.graph.nodes[0].meta.line: expected a line number ≥ 1, found 0',
      ],
      [
        (d) => {
          d.graph.submodules.sub.outputs[0] = { kind: 'ref', name: 'q' };
        },
        "$.graph.submodules.sub.outputs[0].name: 'q' is neither an input nor a node",
      ],
      [
        (d) => {
          d.graph.outputs = 'x';
        },
        '$.graph.outputs: expected an array, found "x"',
      ],
    ];
    for (const [mutate, message] of cases) {
      const d = doc();
      mutate(d);
      expect(jsonError(d).message).toContain(`line 1, col 1: ${message}`);
    }
  });

  it('deep nesting is refused, not a stack overflow', () => {
    const d = doc();
    let deep: unknown = 1;
    for (let i = 0; i < 100_000; i++) deep = [deep];
    d.graph.nodes[0].args = [deep];
    expect(jsonError(d).message).toContain('arguments nested deeper than 64 levels');
  });

  it('deep provenance and deep submodules are refused with their path', () => {
    const text = JSON.stringify(graphToJson(tiny())).replace(
      '"meta":{"line":3',
      `"meta":{"x":${'['.repeat(200_000)}${']'.repeat(200_000)},"line":3`,
    );
    expect(() => graphFromJsonText(text)).toThrow('$.graph.nodes[0].meta.x: nested deeper than 64 levels');
    let sub = '{"name":"s","form":"module","inputs":[],"nodes":[],"outputs":null,"submodules":{}}';
    for (let i = 0; i < 20_000; i++)
      sub = `{"name":"s","form":"module","inputs":[],"nodes":[],"outputs":null,"submodules":{"s":${sub}}}`;
    const e = (() => {
      try {
        graphFromJsonText(`{"schema":"${GRAPH_SCHEMA}","graph":${sub}}`);
      } catch (x) {
        return x as GraphImportError;
      }
    })();
    expect(e).toBeInstanceOf(GraphImportError);
    expect(e!.detail).toMatch(
      /^\$\.graph(\.submodules\.s)+\.?…[a-z.]*(\.submodules\.s)+: submodules nested deeper than 32 levels$/,
    );
  });

  it('names are defined before use, as in FX text: a cycle is refused where it closes', () => {
    const d = doc();
    // a reads b, and b (the call_module) reads a.
    d.graph.nodes[0].args[0] = { kind: 'ref', name: 'b' };
    expect(jsonError(d).message).toBe(
      "line 1, col 1: $.graph.nodes[0].args[0].name: 'b' is used before it is defined (at $.graph.nodes[1]): a node must follow the nodes it reads, so no cycle can form",
    );
    const self = doc();
    self.graph.nodes[1].args[0] = { kind: 'ref', name: 'b' };
    expect(jsonError(self).message).toContain(
      "$.graph.nodes[1].args[0].name: 'b' is used before it is defined (at $.graph.nodes[1])",
    );
  });

  it('JSON syntax errors carry line and column', () => {
    const text = '{\n  "schema": "fusionlab.graph/1",\n  "graph": {"name": "M",, }\n}';
    let e: unknown;
    try {
      graphFromJsonText(text, { fileName: 'g.json' });
    } catch (x) {
      e = x;
    }
    expect(e).toBeInstanceOf(GraphImportError);
    const err = e as GraphImportError;
    expect([err.line, err.col]).toEqual([3, 25]);
    expect(err.format().split('\n')[0]).toBe(
      'g.json:3:25: invalid JSON: expected a property name in double quotes, found ","',
    );
  });

  it('a schema error in JSON text points at the value its path names (a missing field: its object)', () => {
    const text = JSON.stringify(graphToJson(tiny()), null, 2);
    const at = (edit: (t: string) => string) => {
      try {
        graphFromJsonText(edit(text), { fileName: 'g.json' });
      } catch (e) {
        return (e as GraphImportError).format().split('\n').slice(0, 2);
      }
      return null;
    };
    const lines = text.split('\n');
    const form = lines.findIndex((l) => l.includes('"form": "module"'));
    expect(at((t) => t.replace('"form": "module"', '"form": "tree"'))).toEqual([
      `g.json:${form + 1}:13: $.graph.form: expected one of module, fragment, graph, found "tree"`,
      '    "form": "tree",',
    ]);
    const clamp = lines.findIndex((l) => l.includes('"aten.clamp.default"'));
    expect(at((t) => t.replace('"op": "aten.clamp.default"', '"op": 7'))![0]).toBe(
      `g.json:${clamp + 1}:${lines[clamp].indexOf('"aten') + 1}: $.graph.nodes[0].op: expected a non-empty string, found 7`,
    );
    // b's module field deleted: the error points at node 1's object.
    const b = lines.findIndex((l) => l.includes('"name": "b"'));
    expect(at((t) => t.replace('"module": "sub",', ''))![0]).toMatch(
      new RegExp(`^g\\.json:${b}:\\d+: \\$\\.graph\\.nodes\\[1\\]\\.module: missing`),
    );
  });

  it('a syntax error is one line with its place, whatever the engine quotes', () => {
    const cases: [string, number, number, string][] = [
      ['{\n  "schema": x\n}', 2, 13, 'expected a value, found "x"'],
      ['{"a": "b\nc"}', 1, 9, 'a control character inside a string (escape it)'],
      ['{"a": [1, 2', 1, 12, "expected ',' or ']', found end of input"],
      ['{"a": 1} x', 1, 10, 'expected the end of the document, found "x"'],
      ['{"a": "\\q"}', 1, 8, 'unknown escape \\q'],
      ['{"a": "open', 1, 7, 'a string that is never closed'],
    ];
    for (const [text, line, col, what] of cases) {
      let e: unknown;
      try {
        graphFromJsonText(text);
      } catch (x) {
        e = x;
      }
      expect(e).toBeInstanceOf(GraphImportError);
      expect([
        (e as GraphImportError).line,
        (e as GraphImportError).col,
        (e as GraphImportError).detail,
      ]).toEqual([line, col, `invalid JSON: ${what}`]);
      expect((e as GraphImportError).detail).not.toContain('\n');
    }
  });

  it('the syntax scanner agrees with JSON.parse on cut and garbled real documents', () => {
    const text = JSON.stringify(
      graphToJson(parseFx(fixture('seed/pr28841-before.fragment.txt')).graph),
      null,
      1,
    );
    expect(jsonSyntaxError(text)).toBeNull();
    let seed = 7;
    const rnd = () => (seed = (seed * 1103515245 + 12345) >>> 0) / 2 ** 32;
    for (let k = 0; k < 300; k++) {
      const at = Math.floor(rnd() * text.length);
      const garbled =
        k % 2
          ? text.slice(0, at)
          : text.slice(0, at) + '{}[],:"\\ex0'[Math.floor(rnd() * 12)] + text.slice(at + 1);
      let parses = true;
      try {
        JSON.parse(garbled);
      } catch {
        parses = false;
      }
      expect(jsonSyntaxError(garbled) === null, `case ${k}`).toBe(parses);
    }
  });
});
