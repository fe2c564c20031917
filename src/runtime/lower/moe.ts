// GPT-OSS's MoE (vllm.moe_forward): top-k routing over the router logits, each rank's share of
// the experts' intermediate rows, the padded hidden width its weights have.

import type { View } from '../../graph/opTable.ts';
import { RunError } from '../runError.ts';
import { GPT_OSS, presetDim } from '../presets.ts';
import type { PlanBuilder } from './builder.ts';
import { tensorValue as T, type Lowered, type LoweredOp, type Lowering, type OpCall } from './lowering.ts';

function lowerMoe(b: PlanBuilder, c: OpCall): Lowered {
  const n = c.node;
  const { preset, ranks } = b;
  const hiddenPadded = presetDim(preset, GPT_OSS.hiddenPadded);
  const x = b.rowsOrCopy(
    c.tensor(0, 'hidden_states', { role: 'activation', shape: [b.tokens, hiddenPadded] }),
    n,
  );
  const logits = b.rowsOrCopy(
    c.tensor(1, 'router_logits', { role: 'activation', shape: [x.shape[0], GPT_OSS.experts20b] }),
    n,
  );
  const layer = typeof c.arg(2) === 'string' ? (c.arg(2) as string) : n.name;
  const experts = logits.shape[logits.shape.length - 1];
  if (preset.intermediate % ranks)
    throw new RunError(
      'input',
      `node ${n.name} (${n.op}): the MoE intermediate size ${preset.intermediate} (preset ${preset.name}) does not split over ${ranks} ranks`,
      { node: n.name, op: n.op },
    );
  const step = (input: View, out: View) =>
    b.push(n, {
      kernel: 'moe',
      x: input,
      logits,
      layer,
      experts,
      topK: Math.min(preset.topK, experts),
      intermediate: preset.intermediate,
      out: out.storage,
    });
  // moe-unpad's MoE (vLLM #30647) reads GPT-OSS's unpadded hidden size while its weights keep
  // the padded width: the step pads into the kernel's alignment and hands back the unpadded
  // columns, so the values are the pad → MoE → slice ones, bit for bit.
  const unpadded = presetDim(preset, GPT_OSS.hidden);
  if (x.shape.length === 2 && x.shape[1] === unpadded && hiddenPadded > unpadded) {
    const xp = b.newStorage(`${n.name}.aligned`, x.dtype, [x.shape[0], hiddenPadded]);
    b.push(n, { kernel: 'pad', x, lo: [0, 0], value: 0, out: xp.storage });
    const out = b.newStorage(n.name, x.dtype, xp.shape);
    step(xp, out);
    return T({ ...out, shape: [...x.shape] });
  }
  const out = b.newStorage(n.name, x.dtype, x.shape);
  step(x, out);
  return T(out);
}

export const MOE_LOWERINGS = {
  'vllm.moe_forward.default': {
    // The GEMM computing the router logits holds the router's weights, replicated on every rank.
    roles: { router_logits: 'router-logits' },
    lower: lowerMoe,
  },
} satisfies Partial<Record<LoweredOp, Lowering>>;
