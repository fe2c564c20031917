// Generates agent/native/op_table.gen.hpp from the op table (src/graph/opTable.ts): the worker's
// step ops and their wire names, the map functions' codes and bodies. `npm run agent` writes it
// before building the worker; agent/opTableCpp.test.ts fails when the committed file is stale.
//   node --import tsx agent/opTableCpp.ts [--check]

import { readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { MAP_FN_CODES, MAP_FNS, WORKER_OP_CODES, WORKER_OPS } from '../src/graph/opTable.ts';

export const OP_TABLE_HEADER = join(dirname(fileURLToPath(import.meta.url)), 'native', 'op_table.gen.hpp');

const camel = (s: string) => s.replace(/(^|_)([a-z])/g, (_m, _u, c: string) => c.toUpperCase());

export function renderOpTableHeader(): string {
  const ops = WORKER_OP_CODES.map((op) => WORKER_OPS[op].cpp);
  const lines = [
    '// Generated from src/graph/opTable.ts by agent/opTableCpp.ts (npm run agent). Do not edit.',
    '#pragma once',
    '#include <stdexcept>',
    '#include <string>',
    '#include <utility>',
    '',
    '#ifdef __CUDACC__',
    '#define FL_HOST_DEVICE __host__ __device__',
    '#else',
    '#define FL_HOST_DEVICE',
    '#endif',
    '',
    'namespace fl {',
    '',
    "/** The worker's step ops (WORKER_OPS), in wire order. */",
    `enum class OpCode { ${ops.join(', ')} };`,
    '',
    'inline OpCode parseOp(const std::string& s) {',
    '  static const std::pair<const char*, OpCode> table[] = {',
    ...WORKER_OP_CODES.map((op) => `      {"${op}", OpCode::${WORKER_OPS[op].cpp}},`),
    '  };',
    '  for (auto& [n, c] : table) if (s == n) return c;',
    '  throw std::runtime_error("unknown step op \'" + s + "\'");',
    '}',
    '',
    '/** Map functions (MAP_FNS), by wire code. */',
    `enum MapFn { ${MAP_FN_CODES.map((fn, i) => `Map${camel(fn)} = ${i}`).join(', ')}, MapFnCount };`,
    '',
    '/** One map function at one element; a = in0, b = in1 (0 when absent), s = the scalar. */',
    'FL_HOST_DEVICE inline float mapValue(int fn, float a, float b, float s) {',
    '  switch (fn) {',
    ...MAP_FN_CODES.map(
      (fn) => `    case Map${camel(fn)}: return ${MAP_FNS[fn].cpp};  // ${MAP_FNS[fn].doc}`,
    ),
    '    default: return a;  // unreachable: parseProgram refuses codes outside MapFn',
    '  }',
    '}',
    '',
    '}  // namespace fl',
    '',
  ];
  return lines.join('\n');
}

/** Writes the header when its text changed; returns whether it did. */
export function writeOpTableHeader(path = OP_TABLE_HEADER): boolean {
  const text = renderOpTableHeader();
  let old = '';
  try {
    old = readFileSync(path, 'utf8');
  } catch {
    /* not there yet */
  }
  if (old === text) return false;
  writeFileSync(path, text);
  return true;
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  if (process.argv.includes('--check')) {
    if (readFileSync(OP_TABLE_HEADER, 'utf8') !== renderOpTableHeader()) {
      process.stderr.write(
        `${OP_TABLE_HEADER} is stale: run npm run agent (or node --import tsx agent/opTableCpp.ts)\n`,
      );
      process.exit(1);
    }
  } else if (writeOpTableHeader()) process.stdout.write(`wrote ${OP_TABLE_HEADER}\n`);
}
