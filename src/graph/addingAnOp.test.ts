// DESIGN.md "Adding an op" promises that registering an op or a kernel makes `tsc` name every place
// that must handle it. This test holds the promise: it copies the sources, registers a new FX op
// (and, separately, a new kernel) the way the design says, type-checks the copy, and expects an
// error in each of those places — and nowhere else.

import { execFileSync } from 'node:child_process';
import { cpSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';

const root = new URL('../..', import.meta.url).pathname;
const copies: string[] = [];

/** A copy of the type-checked tree with `file`'s `anchor` followed by `insert`; the files tsc reports. */
function filesTscNames(file: string, anchor: string, insert: string): string[] {
  const dir = mkdtempSync(join(tmpdir(), 'fusionlab-adding-an-op-'));
  copies.push(dir);
  for (const p of ['src', 'agent', 'bench', 'tsconfig.json', 'package.json', 'vite.config.ts'])
    cpSync(join(root, p), join(dir, p), { recursive: true, filter: (s) => !s.includes('/native/build') });
  symlinkSync(join(root, 'node_modules'), join(dir, 'node_modules'));
  const text = readFileSync(join(dir, file), 'utf8');
  expect(text, `${file} no longer has '${anchor}'`).toContain(anchor);
  writeFileSync(join(dir, file), text.replace(anchor, `${anchor}${insert}`));
  let out = '';
  try {
    execFileSync(join(dir, 'node_modules', '.bin', 'tsc'), ['-p', 'tsconfig.json', '--noEmit'], {
      cwd: dir,
      encoding: 'utf8',
    });
  } catch (e) {
    out = String((e as { stdout?: string }).stdout ?? '');
  }
  return [
    ...new Set(out.split('\n').flatMap((l) => /^([^(\s]+\.tsx?)\(\d+,\d+\): error/.exec(l)?.[1] ?? [])),
  ].sort();
}

afterAll(() => {
  for (const d of copies) rmSync(d, { recursive: true, force: true });
});

describe('adding an op: tsc names every place that must handle it', { timeout: 180_000 }, () => {
  it('an FX op: its lowering (with its argument roles) and its cost', () => {
    const files = filesTscNames(
      'src/graph/ops.ts',
      'export const FX_OPS = [\n',
      "  defineOp({ name: 'probe.new_op.default', kind: 'compute', returns: 1, args: [T('self')], infer: sameAsFirst, doc: 'probe' }),\n",
    );
    expect(files).toEqual(['src/graph/cost/model.ts', 'src/runtime/lower/table.ts']);
  });

  it('a kernel: its cost, the CPU reference, WebGPU, the agent and the differential check', () => {
    const files = filesTscNames(
      'src/graph/opTable/kernels.ts',
      'export const KERNELS = {\n',
      "  probe: { fields: { x: 'view', out: 'storage' }, worker: ['gather'], rounding: 'exact', collective: false, doc: 'probe' },\n",
    );
    expect(files).toEqual([
      'agent/program.ts',
      'src/graph/opTable/kernelCost.ts',
      'src/runtime/cpuBackend.ts',
      'src/runtime/differential.ts',
      'src/runtime/webgpu/encoders.ts',
    ]);
  });
});
