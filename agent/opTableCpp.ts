// Generates agent/native/op_table.gen.hpp from the op table (src/graph/opTable.ts): the worker's
// step ops and their wire names, each op's arguments as a struct read from the step's `i` and `f`
// (WORKER_OPS[op].i / .f, the layout agent/program.ts writes through agent/workerArgs.ts), the map
// functions' codes and bodies. `npm run agent` writes it before building the worker;
// agent/opTableCpp.test.ts fails when the committed file is stale.
//   node --import tsx agent/opTableCpp.ts [--check]

import { readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  MAP_FN_CODES,
  MAP_FNS,
  MAP_HELPERS,
  WORKER_OP_CODES,
  WORKER_OPS,
  type MapHelper,
  type WorkerOp,
} from '../src/graph/opTable.ts';
import { argFields } from './workerArgs.ts';

export const OP_TABLE_HEADER = join(dirname(fileURLToPath(import.meta.url)), 'native', 'op_table.gen.hpp');

const camel = (s: string) => s.replace(/(^|_)([a-z])/g, (_m, _u, c: string) => c.toUpperCase());

const layoutKey = (op: WorkerOp) => JSON.stringify([WORKER_OPS[op].i, WORKER_OPS[op].f]);

/**
 * One op's argument struct (its fields in declared order, consecutive ones of a type on one line)
 * and its `read` (agent/native/step_args.hpp argsOf calls it). An op laid out as an earlier one
 * reads into that one's struct, so code can treat the two alike.
 */
function renderArgs(op: WorkerOp): string[] {
  const def = WORKER_OPS[op];
  const ints = argFields(def.i);
  const reals = argFields(def.f);
  for (const r of reals)
    if (r.count) throw new Error(`worker op ${op}: float argument '${r.name}' cannot be a list`);
  for (const [k, { name, count }] of ints.entries())
    if (count && count !== 'world' && !ints.slice(0, k).some((e) => e.name === count && !e.count))
      throw new Error(
        `worker op ${op}: the length of '${name}' is '${count}', not an earlier integer argument`,
      );
  const struct = `${def.cpp}Args`;
  const doc = `/** ${op}: ${def.doc}. */`;
  const same = (
    ints.length || reals.length ? WORKER_OP_CODES.slice(0, WORKER_OP_CODES.indexOf(op)) : []
  ).find((o) => layoutKey(o) === layoutKey(op));
  if (same) return [doc, `using ${struct} = ${WORKER_OPS[same].cpp}Args;`, ''];
  const fields = [
    ...ints.map((e) => ({ type: e.count ? 'IntList' : 'int64_t', name: e.name })),
    ...reals.map((e) => ({ type: 'double', name: e.name })),
  ];
  const decls: string[] = [];
  fields.forEach((f, k) => {
    if (k > 0 && fields[k - 1].type === f.type) decls[decls.length - 1] += `, ${f.name}`;
    else decls.push(`  ${f.type} ${f.name}`);
  });
  const reads = [
    ...ints.map((e) =>
      e.count === 'world'
        ? `${e.name} = r.perRank("${e.name}");`
        : e.count
          ? `${e.name} = r.list("${e.name}", ${e.count});`
          : `${e.name} = r.integer("${e.name}");`,
    ),
    ...reals.map((e) => `${e.name} = r.real("${e.name}");`),
  ];
  return [
    doc,
    `struct ${struct} {`,
    ...decls.map((d) => `${d};`),
    reads.length ? `  void read(ArgReader& r) { ${reads.join(' ')} }` : '  void read(ArgReader&) {}',
    '};',
    '',
  ];
}

export function renderOpTableHeader(): string {
  const ops = WORKER_OP_CODES.map((op) => WORKER_OPS[op].cpp);
  const lines = [
    '// Generated from src/graph/opTable.ts by agent/opTableCpp.ts (npm run agent). Do not edit.',
    '#pragma once',
    '#include <cmath>',
    '#include <cstdint>',
    '#include <cstring>',
    '#include <stdexcept>',
    '#include <string>',
    '#include <utility>',
    '',
    '#include "step_args.hpp"',
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
    "// Each op's arguments (WORKER_OPS[op].i, then .f): argsOf<MoeArgs>(st) reads a step's `i` and `f`.",
    '',
    ...WORKER_OP_CODES.flatMap(renderArgs),
    "/** Checks a step's arguments against its op's layout (parseProgram runs it on every step). */",
    'template <class S>',
    'void checkArgs(const S& st, int64_t world) {',
    '  switch (st.op) {',
    ...WORKER_OP_CODES.map(
      (op) => `    case OpCode::${WORKER_OPS[op].cpp}: argsOf<${WORKER_OPS[op].cpp}Args>(st, world); return;`,
    ),
    '  }',
    '}',
    '',
    '/** Map functions (MAP_FNS), by wire code. */',
    `enum MapFn { ${MAP_FN_CODES.map((fn, i) => `Map${camel(fn)} = ${i}`).join(', ')}, MapFnCount };`,
    '',
    '/** Functions the map bodies call (MAP_HELPERS). */',
    ...(Object.keys(MAP_HELPERS) as MapHelper[]).map((h) => `${MAP_HELPERS[h].cpp}\n`),
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
