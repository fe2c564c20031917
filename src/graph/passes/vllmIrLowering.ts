// vllm-ir-lowering, after vLLM's VllmIRLoweringPass (vllm/compilation/passes/ir/lowering_pass.py):
// each vLLM IR op left in the graph (vllm_ir.rms_norm, vllm_ir.fused_add_rms_norm; vllm/ir/ops/
// layernorm.py) becomes the implementation vLLM's dispatch picks, traced into the graph by
// `replace_by_example`. It runs after the fusion passes, which match the IR ops themselves.
//
//   irLowering 'custom' (vLLM's `vllm_c` provider, its pick on CUDA):
//       rms_norm(x, w, eps)             → auto_functionalized(_C.rms_norm, result = empty_like(x), input = x, …)[1]
//       fused_add_rms_norm(x, r, w, eps) → auto_functionalized(_C.fused_add_rms_norm, input = x, residual = r, …)[1], [2]
//   irLowering 'native' (the op's torch body, as RMSNorm.forward_native):
//       convert(x, f32) [+ convert(r, f32) = z, new residual convert(z, dtype)] → pow 2 → mean [-1]
//       → + eps → rsqrt → · → convert(dtype) → · w
//
// Every value the IR op's readers read keeps its name, so the stage reads as a lowering.

import type { Arg, DType, Node, TensorType, ValueType } from '../ir.ts';
import { float, ref } from '../ir.ts';
import type { GraphIndex } from '../match.ts';
import { tensorOf } from '../match.ts';
import { AUTO_FUNCTIONALIZED } from '../call.ts';
import type { Pass, PassOptions } from './pipeline.ts';
import { resolveOptions } from './options.ts';
import type { GraphEdit } from './graphEdit.ts';
import type { Claims, Rule } from './rules.ts';
import { runRules } from './rules.ts';
import type { NormOccurrence } from './matchers/index.ts';
import { findNorms } from './matchers/index.ts';
import { NORM_SPELLINGS } from './matchers/norm.ts';
import { TORCH_DTYPE_NAMES } from '../ir.ts';
import { ADD, CONVERT_ELEMENT_TYPE, EMPTY_LIKE, MEAN_DIM, MUL, POW, RSQRT } from './patternOps.ts';

export const PASS = 'vllm-ir-lowering';

export type IrLowering = NonNullable<PassOptions['irLowering']>;

interface IrSite extends Claims {
  norm: NormOccurrence;
}

function irSites(ix: GraphIndex): IrSite[] {
  return findNorms(ix)
    .occurrences.filter((o) => o.form === 'vllm-ir')
    .map((norm) => ({ norm, nodes: Object.fromEntries(norm.nodes.map((n) => [n, ix.byName.get(n)!])) }));
}

/** Makes the lowered nodes, each named `name` where an output keeps its value's name, else fresh. */
class Emitter {
  readonly made: Node[] = [];
  constructor(
    private edit: GraphEdit,
    private from: string[],
  ) {}
  node(
    name: string | undefined,
    base: string,
    op: string,
    args: Arg[],
    kwargs: Record<string, Arg>,
    type?: ValueType | null,
  ) {
    const n = this.edit.make(name ?? this.edit.fresh(base), op, args, kwargs, this.from, type);
    this.made.push(n);
    return ref(n.name);
  }
}

function lowerCustom(norm: NormOccurrence, e: Emitter, ix: GraphIndex) {
  const w = { weight: norm.weight, epsilon: norm.epsilon };
  const getitem = (af: Arg, role: 'normed' | 'residual', index: number) => {
    const name = norm.outputs[role];
    if (name !== undefined) e.node(name, 'getitem', 'getitem', [af, index], {}, ix.byName.get(name)?.type);
  };
  if (norm.op === 'rms_norm') {
    const buf = e.node(undefined, 'empty_like', EMPTY_LIKE, [norm.input], { pin_memory: false });
    const af = e.node(
      undefined,
      'auto_functionalized',
      AUTO_FUNCTIONALIZED,
      [{ kind: 'op', target: NORM_SPELLINGS.rms_norm.custom }],
      {
        result: buf,
        input: norm.input,
        ...w,
      },
      null,
    );
    getitem(af, 'normed', 1);
    return;
  }
  const af = e.node(
    undefined,
    'auto_functionalized',
    AUTO_FUNCTIONALIZED,
    [{ kind: 'op', target: NORM_SPELLINGS.fused_add_rms_norm.custom }],
    {
      input: norm.input,
      residual: norm.residual ?? null,
      ...w,
    },
    null,
  );
  getitem(af, 'normed', 1);
  getitem(af, 'residual', 2);
}

function lowerNative(norm: NormOccurrence, e: Emitter, ix: GraphIndex) {
  const xt = tensorOf(ix, norm.input);
  const dtype: DType | undefined = xt?.dtype;
  const typed = (d: DType, shape?: TensorType['shape']): ValueType | null =>
    xt ? { kind: 'tensor', dtype: d, shape: shape ?? xt.shape } : null;
  const convert = (v: Arg, d: DType, name?: string) =>
    dtype === 'f32'
      ? v
      : e.node(
          name,
          'convert_element_type',
          CONVERT_ELEMENT_TYPE,
          [v, { kind: 'expr', text: TORCH_DTYPE_NAMES[d] }],
          {},
          typed(d),
        );
  // An unknown dtype converts both ways, as forward_native does for any model dtype but f32.
  const model: DType = dtype ?? 'bf16';
  let v = convert(norm.input, 'f32');
  if (norm.op === 'fused_add_rms_norm') {
    const r = convert(norm.residual ?? null, 'f32');
    const residualName = norm.outputs.residual;
    v = e.node(dtype === 'f32' ? residualName : undefined, 'add', ADD, [v, r], {}, typed('f32'));
    if (dtype !== 'f32' && residualName !== undefined) convert(v, model, residualName);
  }
  const reduced = xt ? [...xt.shape.slice(0, -1), 1] : undefined;
  const sq = e.node(undefined, 'pow', POW, [v, 2], {}, typed('f32'));
  const mean = e.node(undefined, 'mean', MEAN_DIM, [sq, [-1], true], {}, typed('f32', reduced));
  const eps = typeof norm.epsilon === 'number' ? float(norm.epsilon) : norm.epsilon;
  const plusEps = e.node(undefined, 'add', ADD, [mean, eps], {}, typed('f32', reduced));
  const rs = e.node(undefined, 'rsqrt', RSQRT, [plusEps], {}, typed('f32', reduced));
  const normedName = norm.outputs.normed;
  const last = norm.weight === null ? normedName : undefined;
  const scaled = e.node(dtype === 'f32' ? last : undefined, 'mul', MUL, [v, rs], {}, typed('f32'));
  const back = dtype === 'f32' ? scaled : convert(scaled, model, last);
  if (norm.weight !== null) e.node(normedName, 'mul', MUL, [back, norm.weight], {}, typed(model));
}

const LOWERINGS: Record<IrLowering, (norm: NormOccurrence, e: Emitter, ix: GraphIndex) => void> = {
  custom: lowerCustom,
  native: lowerNative,
};

function loweringRule(lowering: IrLowering): Rule<IrSite> {
  return {
    name: 'vllm_ir.(fused_add_)rms_norm → implementation',
    pattern: irSites,
    site: (s) => s.norm.anchor,
    check: () => null,
    rewrite: (s, edit, { ix }) => {
      const e = new Emitter(edit, [s.norm.anchor]);
      LOWERINGS[lowering](s.norm, e, ix);
      edit.insertBefore(s.norm.anchor, ...e.made);
      const consumed = [...s.norm.nodes];
      edit.remove(...consumed);
      return { consumed, produced: e.made.map((n) => n.name) };
    },
  };
}

/** vLLM's dispatch picks the `vllm_c` kernels on CUDA: the custom ops are the default. */
export const DEFAULT_IR_LOWERING: IrLowering = 'custom';

export const vllmIrLowering: Pass = (g, opts, only) =>
  runRules(PASS, [loweringRule(opts.irLowering ?? DEFAULT_IR_LOWERING)], g, resolveOptions(g, opts), only);
