import { describe, expect, it } from 'vitest';
import { functionLengths, isGenerated } from './functionLengths.mjs';

/** A function declaration spanning exactly `lines` lines, its header to its closing brace. */
function functionOf(name: string, lines: number): string {
  return [`function ${name}() {`, ...Array.from({ length: lines - 2 }, (_, i) => `  void ${i};`), '}'].join(
    '\n',
  );
}

describe('functionLengths (npm run health)', () => {
  const source = ['// a fixture', functionOf('exactly200', 200), '', functionOf('over200', 201), ''].join(
    '\n',
  );
  const found = functionLengths('fixture.ts', source);

  it('counts a function from its first line to its closing brace, both included', () => {
    expect(found).toEqual([
      { name: 'exactly200', line: 2, lines: 200 },
      { name: 'over200', line: 203, lines: 201 },
    ]);
  });

  it('reports a 201-line function as over 200 and a 200-line one not', () => {
    expect(found.filter((f) => f.lines > 200).map((f) => f.name)).toEqual(['over200']);
  });

  it('names arrows by their binding, methods by their class, callbacks by their call', () => {
    const names = functionLengths(
      'names.tsx',
      [
        'const fromBinding = () => 1;',
        'class Box { area() { return 1; } constructor() {} }',
        "describe('a suite', () => {});",
        'const view = { render: function () { return <b />; } };',
      ].join('\n'),
    ).map((f) => f.name);
    expect(names).toEqual([
      'fromBinding',
      'Box.area',
      'Box.constructor',
      "describe('a suite') callback",
      'render',
    ]);
  });

  it('knows a generated file by its header, not by a string that mentions generation', () => {
    expect(
      isGenerated('op_table.ts', '// Generated from src/graph/opTable.ts. Do not edit.\nexport {};\n'),
    ).toBe(true);
    expect(isGenerated('x.gen.ts', 'export {};\n')).toBe(true);
    expect(isGenerated('writer.ts', "// Writes a header.\nconst h = '// Generated. Do not edit.';\n")).toBe(
      false,
    );
  });
});
