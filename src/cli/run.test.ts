import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, mkdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { readNpy, writeNpy } from '../runtime/tensorio.ts';
import { bitwiseEqual, toHostTensor } from '../runtime/hostTensor.ts';
import { diffFromReference } from '../runtime/referenceCheck.ts';

const BIN = join(import.meta.dirname, '../../bin/fusionlab.js');
const run = (args: string[]) => {
  const r = spawnSync('node', [BIN, 'run', ...args], { encoding: 'utf8', maxBuffer: 64 << 20 });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
};
const SEED = new URL('../../fixtures/fx/seed/pr28841-before.fragment.txt', import.meta.url).pathname;
const dir = mkdtempSync(join(tmpdir(), 'fusionlab-run-'));

describe('fusionlab run', { timeout: 180_000 }, () => {
  it('--compare slice-hoist,allreduce-rmsnorm --report on WebGPU: per-output errors and a trace per rank per node', () => {
    const r = run([
      SEED,
      '--backend',
      'webgpu',
      '--ranks',
      '2',
      '--preset',
      'tiny',
      '--dtype',
      'bf16',
      '--allreduce',
      'ring',
      '--compare',
      'slice-hoist,allreduce-rmsnorm',
      '--report',
    ]);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const rep = JSON.parse(r.stdout);
    expect(rep.compare.passes).toEqual(['slice-hoist', 'allreduce-rmsnorm']);
    expect(rep.compare.ok).toBe(true);
    expect(rep.compare.outputs.map((o: { name: string }) => o.name)).toEqual([
      'rank 0: auto_functionalized_2[1] → auto_functionalized[1]',
      'rank 0: auto_functionalized_2[2] → auto_functionalized[2]',
      'rank 1: auto_functionalized_2[1] → auto_functionalized[1]',
      'rank 1: auto_functionalized_2[2] → auto_functionalized[2]',
    ]);
    for (const o of rep.compare.outputs) {
      expect(Object.keys(o)).toEqual([
        'name',
        'maxAbs',
        'maxRel',
        'bitwiseEqual',
        'ulps',
        'tolerance',
        'pass',
        'fedFrom',
        'proven',
      ]);
      expect(o.ulps).toBeLessThanOrEqual(2);
      expect(o.fedFrom).toEqual([]);
    }
    // The fragment has a kernel for every node: nothing fed, so the comparison proves it.
    expect(rep.compare.fedOnComparedPaths).toEqual([]);
    expect(rep.compare.verdict).toBe('proven');
    expect(rep.before.ranks).toHaveLength(2);
    const moe = rep.before.ranks[1].nodes.find((n: { node: string }) => n.node === 'auto_functionalized_1');
    expect(moe.kernel_us).toBeGreaterThan(0);
    expect(moe.bytesRead).toBeGreaterThan(0);
    const ar = rep.before.ranks[0].nodes.find((n: { node: string }) => n.node === 'all_reduce_1');
    expect(ar.transfer_us).toBeGreaterThan(0);
    expect(rep.before.timing).toEqual(['timestamp-query']);
    expect(
      rep.after.ranks[0].nodes.some(
        (n: { op: string; node: string }) =>
          n.node === 'auto_functionalized_1' && n.op === 'higher_order.auto_functionalized',
      ),
    ).toBe(true);
  });

  it('--dump-outputs writes .npy per rank; --inputs reads them back as inputs', () => {
    const out = join(dir, 'out');
    const r = run([SEED, '--backend', 'cpu', '--ranks', '2', '--seed', '11', '--dump-outputs', out]);
    expect(r.code).toBe(0);
    expect(readdirSync(join(out, 'rank1')).sort()).toEqual([
      'auto_functionalized_2.1.npy',
      'auto_functionalized_2.2.npy',
    ]);
    const res = readNpy(readFileSync(join(out, 'rank0', 'auto_functionalized_2.2.npy')));
    expect(res.shape).toEqual([7, 40]);
    // Feed a residual of our own: the new residual output changes, and equals the one from another backend.
    const inputs = join(dir, 'inputs');
    mkdirSync(inputs, { recursive: true });
    writeFileSync(
      join(inputs, 'getitem_18.npy'),
      writeNpy(
        toHostTensor(
          'f32',
          [7, 40],
          Array.from({ length: 280 }, (_, i) => ((i % 13) - 6) / 8),
        ),
      ),
    );
    // The same f32 run on 2 ranks, dumped to `out`, on `backend` with the given extra flags.
    const dumped = (backend: string, out: string, ...flags: string[]) =>
      run([
        SEED,
        '--backend',
        backend,
        '--ranks',
        '2',
        '--seed',
        '11',
        '--dtype',
        'f32',
        ...flags,
        '--dump-outputs',
        out,
      ]).code;
    const a = join(dir, 'a'),
      b = join(dir, 'b');
    expect(dumped('cpu', a, '--inputs', inputs)).toBe(0);
    expect(dumped('cpu', b)).toBe(0);
    const withInput = readNpy(readFileSync(join(a, 'rank0', 'auto_functionalized_2.2.npy')));
    const seeded = readNpy(readFileSync(join(b, 'rank0', 'auto_functionalized_2.2.npy')));
    expect(bitwiseEqual(withInput, seeded)).toBe(false);
    // The same input through WebGPU gives the reference's result (Node Buffers read as data, not as a pooled view).
    const c = join(dir, 'c');
    expect(dumped('webgpu', c, '--inputs', inputs)).toBe(0);
    const onGpu = readNpy(readFileSync(join(c, 'rank0', 'auto_functionalized_2.2.npy')));
    expect(diffFromReference(onGpu, withInput, { terms: 480, scale: 8, ulps: 4 })).toBeNull();
  });

  it('--dump-outputs with --compare writes before/ and after/ per rank', () => {
    const out = join(dir, 'compare');
    const r = run([
      SEED,
      '--backend',
      'cpu',
      '--ranks',
      '2',
      '--compare',
      'slice-hoist',
      '--dump-outputs',
      out,
    ]);
    expect(r.code).toBe(0);
    for (const side of ['before', 'after'])
      expect(readdirSync(join(out, side)).sort()).toEqual(['rank0', 'rank1']);
    expect(readdirSync(join(out, 'before', 'rank1')).sort()).toEqual([
      'auto_functionalized_2.1.npy',
      'auto_functionalized_2.2.npy',
    ]);
    // slice-hoist keeps the sums and their order: the outputs are bitwise equal.
    const a = readNpy(readFileSync(join(out, 'before', 'rank0', 'auto_functionalized_2.1.npy')));
    const b = readNpy(
      readFileSync(join(out, 'after', 'rank0', readdirSync(join(out, 'after', 'rank0')).sort()[0])),
    );
    expect(bitwiseEqual(a, b)).toBe(true);
  });

  it('bad input exits 2 with one line naming what is wrong', () => {
    const badSlice = join(dir, 'bad-slice.txt');
    writeFileSync(
      badSlice,
      readFileSync(SEED, 'utf8').replace('(all_reduce_1, 1, 0, 2880)', '(all_reduce_1, 1, 0, 20)'),
    );
    const cases: [string[], RegExp][] = [
      [['nothere.txt', '--backend', 'cpu'], /^fusionlab run: cannot read nothere\.txt: ENOENT\n/],
      [[SEED, '--ranks', 'two'], /^fusionlab run: --ranks takes an integer ≥ 1, got 'two'\n/],
      [[SEED, '--compare', 'slice-hoist,fuse-all'], /^fusionlab run: unknown pass 'fuse-all' in --compare/],
      [
        [SEED, '--backend', 'cpu', '--ranks', '7'],
        /^fusionlab run: node auto_functionalized_1 \(higher_order.auto_functionalized\): the MoE intermediate size 120 \(preset tiny\) does not split over 7 ranks\n$/,
      ],
      // A graph the plan refuses (RunError 'validation': a slice whose result disagrees with its
      // annotation) is bad input too, with or without --compare, whose exit 1 means only that outputs differ.
      [
        [badSlice, '--backend', 'cpu'],
        /^fusionlab run: node slice_1 \(aten\.slice\.Tensor\): computed shape \[7,20\] but the graph says \[7,40\]/,
      ],
      [
        [badSlice, '--backend', 'cpu', '--ranks', '2', '--compare', 'slice-hoist'],
        /^fusionlab run: node slice_1 \(aten\.slice\.Tensor\): computed shape/,
      ],
      [['sample:gpt-oss-21b'], /^fusionlab run: unknown sample 'gpt-oss-21b'/],
      // Flags the run would not use are refused, not ignored.
      [
        [SEED, '--backend', 'cpu', '--workers'],
        /^fusionlab run: --workers runs WebGPU ranks in workers; --backend cpu has none\n/,
      ],
      [
        [SEED, '--backend', 'cpu', '--allreduce', 'ring'],
        /^fusionlab run: --allreduce has no effect on --backend cpu/,
      ],
      [
        [SEED, '--backend', 'agent', '--allreduce', 'ring', '--token', 't'],
        /^fusionlab run: --allreduce has no effect on --backend agent/,
      ],
      [
        [SEED, '--backend', 'webgpu', '--agent', 'ws://127.0.0.1:1'],
        /^fusionlab run: --agent is for --backend agent \(the backend is webgpu\)\n/,
      ],
      [[SEED, '--backend', 'cpu', '--token', 'abc'], /^fusionlab run: --token is for --backend agent/],
      [
        [SEED, '--backend', 'cpu', '--layers', '2'],
        /^fusionlab run: --layers sets the layers of a generated sample/,
      ],
      [
        [SEED, '--backend', 'agent', '--agent', 'ws://example.com:80', '--token', 't'],
        /^fusionlab run: --agent takes ws:\/\/127\.0\.0\.1:PORT/,
      ],
    ];
    for (const [args, want] of cases) {
      const r = run(args);
      expect(r.code, args.join(' ')).toBe(2);
      expect(r.stderr).toMatch(want);
    }
  });
});
