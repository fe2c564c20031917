import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { GraphImportError } from './errors.ts';
import { FORMATS, importGraph } from './formats.ts';
import { printFx } from './fx/print.ts';
import { graphToJson } from './json.ts';

const FIXTURES = new URL('../../fixtures/fx/', import.meta.url);
const fixture = (path: string): string => readFileSync(new URL(path, FIXTURES), 'utf8');

describe('importGraph picks the format from the text', () => {
  it('print_readable module, fragment, str(graph) and JSON', () => {
    const module = importGraph(fixture('real/qwen2-paral2_layer1-r0.py'), { fileName: 'q.py' });
    expect([module.format, module.graph.form, module.graph.nodes.length]).toEqual(['fx', 'module', 67]);
    expect(module.warnings.length).toBeGreaterThan(0);

    const fragment = importGraph(fixture('seed/pr28841-after.fragment.txt'));
    expect([fragment.format, fragment.graph.form, fragment.graph.nodes.length]).toEqual([
      'fx',
      'fragment',
      4,
    ]);

    const asGraph = printFx({ ...module.graph, form: 'graph', submodules: {} });
    const graph = importGraph(`# printed by str(gm.graph)\n\n${asGraph}`);
    expect([graph.format, graph.graph.form, graph.graph.nodes.length]).toEqual(['fx-graph', 'graph', 67]);

    const json = importGraph(`  ${JSON.stringify(graphToJson(module.graph))}`);
    expect(json.format).toBe('json');
    expect(json.graph).toEqual(module.graph);
    expect(json.warnings).toEqual([]);
  });

  it('lists one importer per format, the catch-all last', () => {
    expect(FORMATS.map((f) => f.id)).toEqual(['json', 'fx-graph', 'fx']);
  });

  it('refuses an oversized paste before looking at it, naming the file', () => {
    let e: unknown;
    try {
      importGraph('{'.repeat(17 * 1024 * 1024), { fileName: 'big.json' });
    } catch (x) {
      e = x;
    }
    expect(e).toBeInstanceOf(GraphImportError);
    expect((e as GraphImportError).format()).toBe(
      'big.json:1:1: input is at least 17.0 MB (17825792 characters), over the limit of 16.0 MB (maxBytes = 16777216); import a smaller dump or raise maxBytes',
    );
  });
});
