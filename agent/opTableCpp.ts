// Generates agent/native/op_table.gen.hpp from the op table (src/graph/opTable.ts): the worker's
// step ops and their wire names, each op's arguments as a struct read from the step's `i` and `f`
// (WORKER_OPS[op].i / .f, the layout agent/program.ts writes through agent/workerArgs.ts), the map
// functions' codes and bodies. `npm run agent` writes it before building the worker;
// agent/opTableCpp.test.ts fails when the committed file is stale.
//   node --import tsx agent/opTableCpp.ts [--check]

import { readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { MAP_FN_CODES, MAP_FNS, WORKER_OP_CODES, WORKER_OPS, type WorkerOp } from '../src/graph/opTable.ts';
import { argFields } from './workerArgs.ts';

export const OP_TABLE_HEADER = join(dirname(fileURLToPath(import.meta.url)), 'native', 'op_table.gen.hpp');

const camel = (s: string) => s.replace(/(^|_)([a-z])/g, (_m, _u, c: string) => c.toUpperCase());

/** Whether an op takes a list of one value per rank (its reader then takes the world size). */
const takesWorld = (op: WorkerOp) => argFields(WORKER_OPS[op].i).some((e) => e.count === 'world');
/** `moeArgs(st)`, `seedArgs(st, world)`: the call of an op's generated reader. */
const readerCall = (op: WorkerOp, st: string) =>
  `${WORKER_OPS[op].cpp.replace(/^./, (c) => c.toLowerCase())}Args(${st}${takesWorld(op) ? ', world' : ''})`;

/** What every generated reader uses: a list inside `i`, and the reader that walks `i` and `f` in order. */
const ARG_READER =
  String.raw`/** Integers inside a step's ${'`i`'}: per-dim shapes and strides, one value per rank. */
struct IntList {
  const int64_t* data = nullptr;
  int64_t size = 0;
  int64_t operator[](int64_t k) const { return data[k]; }
};

/** Reads a step's ${'`i`'} and ${'`f`'} in its op's declared order; throws naming what is missing or left over. */
class ArgReader {
 public:
  ArgReader(const std::vector<int64_t>& i, const std::vector<double>& f, const char* op) : i_(i), f_(f), op_(op) {}
  int64_t integer(const char* name) {
    if (ni_ >= i_.size()) fail(std::string("is missing its argument '") + name + "'");
    return i_[ni_++];
  }
  IntList list(const char* name, int64_t n) {
    if (n < 0 || (uint64_t)n > i_.size() - ni_)
      fail("needs " + std::to_string(n) + " values of '" + name + "', has " + std::to_string(i_.size() - ni_) + " left");
    IntList l{i_.data() + ni_, n};
    ni_ += (size_t)n;
    return l;
  }
  double real(const char* name) {
    if (nf_ >= f_.size()) fail(std::string("is missing its argument '") + name + "'");
    return f_[nf_++];
  }
  void end() const {
    if (ni_ != i_.size() || nf_ != f_.size())
      fail("takes " + std::to_string(ni_) + " integer and " + std::to_string(nf_) + " float arguments, not " + std::to_string(i_.size()) + " and " +
           std::to_string(f_.size()));
  }

 private:
  [[noreturn]] void fail(const std::string& what) const { throw std::runtime_error(std::string("step op '") + op_ + "' " + what); }
  const std::vector<int64_t>& i_;
  const std::vector<double>& f_;
  const char* op_;
  size_t ni_ = 0, nf_ = 0;
};`.split('\n');

const layoutKey = (op: WorkerOp) => JSON.stringify([WORKER_OPS[op].i, WORKER_OPS[op].f]);

/** One op's argument struct and its reader, e.g. `template <class S> MoeArgs moeArgs(const S& st)`. */
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
  // An op laid out as an earlier one reads into that one's struct, so code can treat the two alike.
  const same = (
    ints.length || reals.length ? WORKER_OP_CODES.slice(0, WORKER_OP_CODES.indexOf(op)) : []
  ).find((o) => layoutKey(o) === layoutKey(op));
  const fields = [
    ...ints.map((e) => `  ${e.count ? 'IntList' : 'int64_t'} ${e.name};`),
    ...reals.map((e) => `  double ${e.name};`),
  ];
  const reads = [
    ...ints.map((e) =>
      e.count
        ? `  a.${e.name} = r.list("${e.name}", ${e.count === 'world' ? 'world' : `a.${e.count}`});`
        : `  a.${e.name} = r.integer("${e.name}");`,
    ),
    ...reals.map((e) => `  a.${e.name} = r.real("${e.name}");`),
  ];
  return [
    `/** ${op}: ${def.doc}. */`,
    ...(same
      ? [`using ${struct} = ${WORKER_OPS[same].cpp}Args;`]
      : fields.length
        ? [`struct ${struct} {`, ...fields, '};']
        : [`struct ${struct} {};`]),
    'template <class S>',
    `${struct} ${readerCall(op, 'const S& st').replace(', world)', ', int64_t world)')} {`,
    `  ArgReader r(st.i, st.f, "${op}");`,
    `  ${struct} a${fields.length ? '' : '{}'};`,
    ...reads,
    '  r.end();',
    '  return a;',
    '}',
    '',
  ];
}

export function renderOpTableHeader(): string {
  const ops = WORKER_OP_CODES.map((op) => WORKER_OPS[op].cpp);
  const lines = [
    '// Generated from src/graph/opTable.ts by agent/opTableCpp.ts (npm run agent). Do not edit.',
    '#pragma once',
    '#include <cstdint>',
    '#include <stdexcept>',
    '#include <string>',
    '#include <utility>',
    '#include <vector>',
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
    ...ARG_READER,
    '',
    "// Each op's arguments (WORKER_OPS[op].i, then .f), read from a step's `i` and `f`.",
    '',
    ...WORKER_OP_CODES.flatMap(renderArgs),
    "/** Checks a step's arguments against its op's layout (parseProgram runs it on every step). */",
    'template <class S>',
    'void checkArgs(const S& st, int64_t world) {',
    '  switch (st.op) {',
    ...WORKER_OP_CODES.map(
      (op) => `    case OpCode::${WORKER_OPS[op].cpp}: ${readerCall(op, 'st')}; return;`,
    ),
    '  }',
    '  (void)world;',
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
