// The output-code reader on fixtures/trace's real TORCH_COMPILE_DEBUG folders (torch 2.13, CPU: C++
// and extern kernels, provenance mapping; see its README), checked against what the files say,
// read here by plain text search and JSON.parse apart from the reader; and on Triton / custom-op
// forms written as torch/_inductor/utils.py `get_kernel_metadata` writes them.

import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { importGraph } from '../formats.ts';
import type { Graph } from '../ir.ts';
import {
  isOutputCode,
  kernelCounts,
  kernelGroups,
  kernelListChange,
  OutputCodeError,
  parseOutputCode,
  parseProvenance,
} from './outputCode.ts';

const DIR = new URL('../../../fixtures/trace/debug/model__2_inference_2.2/', import.meta.url);
const read = (f: string) => readFileSync(new URL(f, DIR), 'utf8');
const CODE = read('output_code.py');
const MAPPING = read('inductor_provenance_tracking_node_mappings.json');

function postGrad(): Graph {
  const r = importGraph(read('fx_graph_transformed.py'));
  if (!('graph' in r)) throw new Error('fixture graph did not import');
  return r.graph;
}

describe('output_code.py of a real CPU compile', () => {
  const code = parseOutputCode(CODE);

  it("counts the file's kernel definitions and call()'s launches", () => {
    expect(isOutputCode(CODE)).toBe(true);
    const defs = CODE.split('\n').filter((l) => /^\w+ = async_compile\.cpp_pybinding\(/.test(l));
    expect(code.kernels.map((k) => k.name)).toEqual(defs.map((l) => l.split(' ')[0]));
    // Every launch of this debug run carries a provenance handle, `kernel:N`, N counting launches from 1.
    const handles = [...CODE.matchAll(/# \[Provenance debug handles\] (\S+):(\d+)/g)];
    expect(code.launches).toHaveLength(handles.length);
    expect(code.launches.map((l) => `${l.kernel}:${l.index + 1}`)).toEqual(
      handles.map((h) => `${h[1]}:${h[2]}`),
    );
    const counts = kernelCounts(code);
    expect(counts.launches).toBe(12);
    expect(counts.byKind.cpp).toBe(handles.filter((h) => h[1].startsWith('cpp_')).length);
    expect(counts.byKind.extern).toBe(handles.filter((h) => h[1].startsWith('extern_kernels.')).length);
  });

  it('names the profiler record of each C++ kernel (TORCHINDUCTOR_CPP_ENABLE_KERNEL_PROFILE=1)', () => {
    for (const k of code.kernels) expect(k.recordName).toBe(`graph_2_${k.name}`);
  });

  it('maps each launch to the post-grad nodes the provenance mapping names for its handle', () => {
    const graph = postGrad();
    const names = graph.nodes.map((n) => n.name);
    const groups = kernelGroups(code, names, parseProvenance(MAPPING));
    const mapping = JSON.parse(MAPPING) as { cppCodeToPost: Record<string, string[]> };
    for (const g of groups) {
      expect(g.source).toBe('provenance');
      const want = mapping.cppCodeToPost[g.launch.comments.debugHandle!].filter((n) => names.includes(n));
      expect(new Set(g.nodes)).toEqual(new Set(want));
    }
    const first = groups[0];
    expect(first.launch.kernel).toBe('cpp_fused_add_embedding_mean_mul_pow_rsqrt_0');
    expect(first.nodes).toContain('embedding');
    // In graph order.
    expect(first.nodes).toEqual([...first.nodes].sort((a, b) => names.indexOf(a) - names.indexOf(b)));
  });

  it('without the mapping, C++ kernels have no nodes (their launches carry no Source Nodes comment)', () => {
    const groups = kernelGroups(
      code,
      postGrad().nodes.map((n) => n.name),
    );
    for (const g of groups.filter((x) => x.launch.kind === 'cpp')) expect(g.source).toBe('none');
    // Extern kernels carry the sorted comment: Dynamo names, matched by name only.
    expect(groups.some((g) => g.source === 'dynamo-names')).toBe(true);
  });

  it('refuses a truncated copy and a corrupted mapping, naming what is wrong', () => {
    expect(() => parseOutputCode(CODE.slice(0, CODE.indexOf('def call(')))).toThrow(OutputCodeError);
    expect(() => parseProvenance(MAPPING.slice(0, MAPPING.length / 2))).toThrow(/not JSON/);
    expect(() => parseProvenance('{"other": 1}')).toThrow(/neither cppCodeToPost nor preToPost/);
  });
});

// As torch/_inductor/utils.py get_kernel_metadata and the Triton wrapper write them (GPU runs).
const TRITON = `
async_compile = AsyncCompile()

# kernel path: /tmp/torchinductor/ab/cab.py
# Topologically Sorted Source Nodes: [x, y], Original ATen: [aten.add, aten.mul]
# Source node to ATen node mapping:
#   x => add_1
#   y => mul_2, mul_3
# Graph fragment:
#   %add_1 : [num_users=1] = call_function[target=torch.ops.aten.add.Tensor](args = (%arg0_1, 1), kwargs = {})
triton_poi_fused_add_mul_0 = async_compile.triton('triton_poi_fused_add_mul_0', '''
import triton
@triton.jit
def triton_poi_fused_add_mul_0(in_ptr0, out_ptr0, xnumel, XBLOCK : tl.constexpr):
    pass
''', device_str='cuda')

# Source Nodes: [rms], Original ATen: [aten.rsqrt]
triton_red_fused_rsqrt_1 = async_compile.triton('triton_red_fused_rsqrt_1', '''
@triton.jit
def triton_red_fused_rsqrt_1(in_ptr0):
    pass
''', device_str='cuda')

async_compile.wait(globals())

class Runner:
    def call(self, args):
        arg0_1, = args
        with torch.cuda._DeviceGuard(0):
            buf0 = empty_strided_cuda((8, 64), (64, 1), torch.bfloat16)
            # Topologically Sorted Source Nodes: [x, y], Original ATen: [aten.add, aten.mul]
            stream0 = get_raw_stream(0)
            triton_poi_fused_add_mul_0.run(arg0_1, buf0, 512, stream=stream0)
            buf1 = torch.ops.vllm.all_reduce.default(buf0, group_name='tp:0')
            triton_red_fused_rsqrt_1.run(buf1, stream=stream0)
            extern_kernels.mm(buf1, arg0_1, out=buf0)
            buf2 = torch.ops._C.fused_add_rms_norm.default(buf0, buf1)
        return (buf0, )
`;

describe('Triton kernels, extern kernels and custom ops', () => {
  const code = parseOutputCode(TRITON);

  it("reads call()'s launches in order, each of its kind", () => {
    expect(code.launches.map((l) => [l.kernel, l.kind])).toEqual([
      ['triton_poi_fused_add_mul_0', 'triton'],
      ['torch.ops.vllm.all_reduce.default', 'custom'],
      ['triton_red_fused_rsqrt_1', 'triton'],
      ['extern_kernels.mm', 'extern'],
      ['torch.ops._C.fused_add_rms_norm.default', 'custom'],
    ]);
    expect(kernelCounts(code)).toMatchObject({ kernels: 5, launches: 5 });
  });

  it('takes post-grad names from the ATen mapping, then from unsorted Source Nodes', () => {
    const groups = kernelGroups(code, ['add_1', 'mul_2', 'mul_3', 'rms', 'x']);
    expect(groups[0]).toMatchObject({ source: 'aten-mapping', nodes: ['add_1', 'mul_2', 'mul_3'] });
    expect(groups[2]).toMatchObject({ source: 'source-nodes', nodes: ['rms'] });
    expect(groups[1].source).toBe('none');
  });

  it('names the kernels a rewrite removed, added and merged', () => {
    const before = kernelGroups(code, ['add_1', 'mul_2', 'mul_3', 'rms']);
    // After: the norm kernel also does the multiplies; the all-reduce is gone.
    const fused = TRITON.replace('#   y => mul_2, mul_3\n', '')
      .replace(/# Source Nodes: \[rms\]/, '# Source node to ATen node mapping:\n#   r => mul_2, mul_3, rms')
      .replace(/\s+buf1 = torch\.ops\.vllm\.all_reduce\.default\(buf0, group_name='tp:0'\)\n/, '\n');
    const after = kernelGroups(parseOutputCode(fused), ['add_1', 'mul_2', 'mul_3', 'rms']);
    const change = kernelListChange(before, after);
    expect(change.gone).toEqual(['torch.ops.vllm.all_reduce.default']);
    expect(change.merged).toEqual([
      { into: 'triton_red_fused_rsqrt_1', from: ['triton_poi_fused_add_mul_0', 'triton_red_fused_rsqrt_1'] },
    ]);
  });
});
