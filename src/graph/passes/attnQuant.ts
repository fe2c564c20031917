// attn-quant, after vLLM's AttnQuantFusionPass (vllm/compilation/passes/fusion/attn_quant_fusion.py,
// vLLM main of spring 2026): the attention whose output only a quant reads writes the quantized
// output itself. The patterns, one per attention layer (AttnQuantFusionPass.__init__, lines 248-270):
//
//   FP8 static   AttnFp8StaticQuantPattern (lines 37-122)
//                at1 = auto_functionalized(unified_attention_with_output, query, key, value, output,
//                      layer_name, output_scale = None, output_block_scale = None)
//                static_quant_fp8(reshape(at1[1], [T, heads · head_size]), scale)
//             →  auto_functionalized(unified_attention_with_output, …, output = empty([T, heads,
//                head_size], dtype = fp8), output_scale = scale); reshape(at1[1], [-1, heads · head_size])
//   NVFP4        AttnNvfp4QuantPattern (lines 125-232): the same attention then _C.scaled_fp4_quant
//                (custom op only) → output = empty([T, heads, head_size // 2], uint8), output_scale =
//                the global input scale, output_block_scale = the quant's block-scale buffer
//
// A pattern is registered only where the layer's attention backend says
// fused_output_quant_supported(quant_key) (the NVFP4 one also only on CUDA builds with
// scaled_fp4_quant), so the backend is a gate; fusionlab's graphs do not name one, so the option
// `attentionBackend` does, defaulting to vLLM's choice on the platform (DEFAULT_ATTENTION_BACKEND),
// and every verdict names the backend it assumed. The quant is found through the matcher layer
// (custom and native static FP8); a pattern returns only the quant's output, so a second reader of
// the attention output (or of its reshape) leaves the site as it is.
//
// In vLLM's pass order (pass_manager.py) AttnQuantFusionPass runs after the norm / activation +
// quant passes; they never claim a quant an attention feeds, so the order changes no count here.

import type { Arg, DType, Node, TensorType } from '../ir.ts';
import { isRef, ref } from '../ir.ts';
import type { GraphIndex } from '../match.ts';
import { indexGraph, tensorOf, usersOfValue } from '../match.ts';
import { AUTO_FUNCTIONALIZED, functionalizedArg, mutatedResultIndex } from '../call.ts';
import type { Diagnostic, Match, Pass, PassOptions, PassResult } from './pipeline.ts';
import { diagnostic } from './options.ts';
import { GraphEdit } from './graphEdit.ts';
import type { AnyQuant } from './normQuant.ts';
import { QUANT_LABEL, emptyBuffer, quantsByInput, readerName } from './normQuant.ts';
import type { VllmPlatform } from './vllmConfig.ts';
import { inGraphOrder } from './matchers/occurrence.ts';
import type { QuantOccurrence } from './matchers/index.ts';

export const PASS = 'attn-quant';

export const UNIFIED_ATTENTION = 'vllm.unified_attention_with_output.default';
const RESHAPES = ['aten.reshape.default', 'aten.view.default'];

/** vLLM's attention backends for a decoder layer (vllm/v1/attention/backends/registry.py names). */
export const ATTENTION_BACKENDS = [
  'FLASH_ATTN',
  'FLASHINFER',
  'TRITON_ATTN',
  'FLEX_ATTENTION',
  'ROCM_ATTN',
  'ROCM_AITER_FA',
  'ROCM_AITER_UNIFIED_ATTN',
] as const;
export type AttentionBackend = (typeof ATTENTION_BACKENDS)[number];

/**
 * The backend vLLM picks when none is given: the first valid one of _get_backend_priorities —
 * vllm/platforms/cuda.py (FLASHINFER first on compute capability 10.x, else FLASH_ATTN) and
 * vllm/platforms/rocm.py (ROCM_ATTN first).
 */
export const DEFAULT_ATTENTION_BACKEND: Record<VllmPlatform, AttentionBackend> = {
  sm80: 'FLASH_ATTN',
  sm89: 'FLASH_ATTN',
  sm90: 'FLASH_ATTN',
  sm100: 'FLASHINFER',
  rocm: 'ROCM_ATTN',
};

/** The quant keys the passes know: FP8 static per-tensor (kFp8StaticTensorSym) and NVFP4 (kNvfp4Dynamic). */
type OutputQuant = 'fp8' | 'nvfp4';

interface AttentionSetting {
  backend: AttentionBackend;
  platform: VllmPlatform;
  kvCacheDtype: 'auto' | 'fp8';
  /** Whether the backend came from the option or is the platform's default: the verdict says which. */
  assumed: string;
}

/**
 * Each backend's fused_output_quant_supported(quant_key): null where it holds, else why not. The
 * base class returns False (vllm/v1/attention/backend.py); the backends that override it:
 * TritonAttentionImpl, RocmAttentionImpl, RocmAiterUnifiedAttentionImpl (FP8 static only) and
 * FlashInferImpl (FP8 static and NVFP4, with TRT-LLM attention — Blackwell — and an FP8 KV cache).
 */
const FUSED_OUTPUT_QUANT: Record<AttentionBackend, (q: OutputQuant, s: AttentionSetting) => string | null> = {
  FLASH_ATTN: () =>
    'FlashAttentionImpl does not fuse an output quant (fused_output_quant_supported is False)',
  FLEX_ATTENTION: () =>
    'FlexAttentionImpl does not fuse an output quant (fused_output_quant_supported is False)',
  ROCM_AITER_FA: () =>
    'AiterFlashAttentionImpl does not fuse an output quant (fused_output_quant_supported is False)',
  TRITON_ATTN: (q) => (q === 'fp8' ? null : 'TritonAttentionImpl fuses a static per-tensor FP8 quant only'),
  ROCM_ATTN: (q) => (q === 'fp8' ? null : 'RocmAttentionImpl fuses a static per-tensor FP8 quant only'),
  ROCM_AITER_UNIFIED_ATTN: (q) =>
    q === 'fp8' ? null : 'RocmAiterUnifiedAttentionImpl fuses a static per-tensor FP8 quant only',
  FLASHINFER: (_q, s) =>
    s.platform !== 'sm100'
      ? `FlashInferImpl fuses an output quant only through TRT-LLM attention (Blackwell, sm100), not on ${s.platform}`
      : s.kvCacheDtype !== 'fp8'
        ? 'FlashInferImpl fuses an output quant only with a quantized KV cache (is_quantized_kv_cache; --kv-cache-dtype fp8)'
        : null,
};

/** Each backend's supported_dtypes (the dtype the attention's query and output are in). */
const BACKEND_DTYPES: Record<AttentionBackend, readonly DType[]> = {
  FLASH_ATTN: ['f16', 'bf16'],
  FLASHINFER: ['f16', 'bf16'],
  TRITON_ATTN: ['f16', 'bf16', 'f32'],
  FLEX_ATTENTION: ['f16', 'bf16', 'f32'],
  ROCM_ATTN: ['f16', 'bf16', 'f32'],
  ROCM_AITER_FA: ['f16', 'bf16'],
  ROCM_AITER_UNIFIED_ATTN: ['f16', 'bf16'],
};

export function attentionSetting(opts: PassOptions): AttentionSetting {
  const platform = opts.platform ?? 'sm90';
  const backend = opts.attentionBackend ?? DEFAULT_ATTENTION_BACKEND[platform];
  return {
    backend,
    platform,
    kvCacheDtype: opts.kvCacheDtype ?? 'auto',
    assumed:
      opts.attentionBackend === undefined
        ? `the ${backend} attention backend (vLLM's default on ${platform}; the graph names none)`
        : `the ${backend} attention backend (as given)`,
  };
}

/** One attention call and the quant that reads its reshaped output. */
interface AttnSite {
  attn: Node;
  /** getitem [1]: the output the attention wrote. */
  out: Node;
  reshape: Node;
  quant: AnyQuant;
  /** The output buffer's own producers (its view and empty), read by nothing else: they go too. */
  buffer: string[];
}

/** The output buffer's chain (a view of an empty) that only the attention reads. */
function bufferChain(ix: GraphIndex, attn: Node): string[] {
  const chain: string[] = [];
  let a = functionalizedArg(attn, 'output');
  let reader = attn.name;
  while (a && isRef(a)) {
    const p = ix.byName.get(a.name);
    const users = usersOfValue(ix, a.name);
    if (!p || users.length !== 1 || users[0] !== reader) break;
    if (!RESHAPES.includes(p.op) && !p.op.startsWith('aten.empty')) break;
    chain.push(p.name);
    reader = p.name;
    a = RESHAPES.includes(p.op) ? p.args[0] : undefined;
  }
  return chain;
}

const quantOf = (q: AnyQuant): OutputQuant | null =>
  q.op === 'fp8_static_tensor' ? 'fp8' : q.op === 'nvfp4' ? 'nvfp4' : null;

/** Why `site` cannot fuse, or null: the reader, quant, backend and dtype gates, in vLLM's terms. */
function attnQuantRefusal(ix: GraphIndex, s: AttnSite, set: AttentionSetting): string | null {
  const { attn, out, reshape, quant: q } = s;
  const outReader = usersOfValue(ix, out.name).find((u) => u !== reshape.name);
  if (outReader !== undefined)
    return `${out.name}, the output of the attention at ${attn.name}, is also read by ${readerName(outReader)}: vLLM's pattern returns only the quant's output, so Inductor's matcher refuses it`;
  const viewReader = usersOfValue(ix, reshape.name).find((u) => !q.nodes.includes(u));
  if (viewReader !== undefined)
    return `${reshape.name}, the attention output of ${attn.name} as [tokens, heads · head_size], is also read by ${readerName(viewReader)}: vLLM's pattern returns only the quant's output`;
  const key = quantOf(q);
  if (key === null)
    return `the ${QUANT_LABEL[q.op]} at ${q.anchor} computes its scale at run time: vLLM fuses attention with a static per-tensor FP8 or an NVFP4 quant only (attn_quant_fusion.py registers no dynamic pattern)`;
  if (key === 'nvfp4') {
    if (q.form !== 'custom')
      return `vLLM's NVFP4 pattern is written against the custom scaled_fp4_quant; the ${q.form} form at ${q.anchor} is not matched`;
    if (set.platform === 'rocm')
      return 'the NVFP4 pattern is registered on CUDA only (current_platform.is_cuda() and _C.scaled_fp4_quant)';
  }
  const backendRefusal = FUSED_OUTPUT_QUANT[set.backend](key, set);
  if (backendRefusal)
    return `with ${set.assumed}: ${backendRefusal}, so no pattern is registered for ${attn.name}`;
  const dtype = tensorOf(ix, ref(out.name))?.dtype;
  if (dtype !== undefined && !BACKEND_DTYPES[set.backend].includes(dtype))
    return `the attention at ${attn.name} is ${dtype}: ${set.backend} runs ${BACKEND_DTYPES[set.backend].join(' or ')} only`;
  if (key === 'nvfp4' && dtype !== undefined && dtype !== 'bf16')
    return `the attention at ${attn.name} is ${dtype}: AttnNvfp4QuantPattern is traced with bf16 inputs (get_inputs), so it matches bf16 only`;
  return null;
}

/** The attention calls whose output feeds (through its reshape) a quant. */
function sites(ix: GraphIndex): AttnSite[] {
  const { byInput } = quantsByInput(ix);
  const found: AttnSite[] = [];
  for (const attn of ix.byKey.get(`${AUTO_FUNCTIONALIZED}:${UNIFIED_ATTENTION}`) ?? []) {
    // Already fused (a graph after this pass, or vLLM's own after-dump).
    const scale = functionalizedArg(attn, 'output_scale');
    if (scale !== undefined && scale !== null) continue;
    const index = mutatedResultIndex(attn, 'output');
    const outs = usersOfValue(ix, attn.name)
      .map((u) => ix.byName.get(u)!)
      .filter((u) => u.op === 'getitem' && u.args[1] === index);
    for (const out of outs) {
      for (const r of usersOfValue(ix, out.name)) {
        const reshape = ix.byName.get(r);
        if (!reshape || !RESHAPES.includes(reshape.op)) continue;
        const quant = byInput.get(reshape.name)?.[0];
        if (quant) found.push({ attn, out, reshape, quant, buffer: bufferChain(ix, attn) });
      }
    }
  }
  return found;
}

function fuse(edit: GraphEdit, ix: GraphIndex, s: AttnSite, q: QuantOccurrence): Match {
  const { attn, out, reshape } = s;
  const from = [attn.name, q.anchor];
  const made: Node[] = [];
  const outType = tensorOf(ix, ref(out.name));
  const nvfp4 = q.op === 'nvfp4';
  // The replacement's output buffer: empty([T, heads, head_size], fp8) — NVFP4: [T, heads,
  // head_size // 2] of uint8 (two e2m1 values a byte).
  const bufferType: TensorType | undefined = outType && {
    kind: 'tensor',
    dtype: nvfp4 ? 'u8' : 'f8e4m3fn',
    shape: nvfp4
      ? [...outType.shape.slice(0, -1), (outType.shape[outType.shape.length - 1] as number) / 2]
      : outType.shape,
  };
  const buffer = bufferType ? emptyBuffer(edit, ix, bufferType, from) : undefined;
  if (buffer) made.push(buffer);
  const fused = edit.make(
    edit.fresh('auto_functionalized'),
    AUTO_FUNCTIONALIZED,
    [{ kind: 'op', target: UNIFIED_ATTENTION }],
    {
      query: functionalizedArg(attn, 'query') ?? null,
      key: functionalizedArg(attn, 'key') ?? null,
      value: functionalizedArg(attn, 'value') ?? null,
      output: buffer ? ref(buffer.name) : (functionalizedArg(attn, 'output') ?? null),
      layer_name: functionalizedArg(attn, 'layer_name') ?? null,
      output_scale: q.scale,
      // vLLM passes view.dtype(output_scale, fp8): the same bytes as the quant's block-scale buffer,
      // which is passed as it is: the runtime quantizes into it as scaled_fp4_quant does.
      output_block_scale: nvfp4 ? (q.buffers.scale ?? null) : null,
      ...(attn.kwargs['kv_cache_dummy_dep'] !== undefined
        ? { kv_cache_dummy_dep: attn.kwargs['kv_cache_dummy_dep'] }
        : {}),
    },
    from,
    null,
  );
  made.push(fused);
  const written = edit.make(
    edit.fresh('getitem'),
    'getitem',
    [ref(fused.name), 1],
    {},
    from,
    bufferType ?? null,
  );
  made.push(written);
  const quantType = q.outputs.quant ? edit.typeOf(ref(q.outputs.quant)) : undefined;
  const width =
    quantType && quantType.kind === 'tensor' ? quantType.shape[quantType.shape.length - 1] : undefined;
  const flat = edit.make(
    edit.fresh('reshape'),
    'aten.reshape.default',
    [ref(written.name), [-1, typeof width === 'number' ? width : (reshape.args[1] as Arg[]).at(-1)!]],
    {},
    from,
    quantType ?? null,
  );
  made.push(flat);
  if (q.outputs.quant) edit.replaceUses(q.outputs.quant, ref(flat.name));
  if (nvfp4 && q.outputs.scale) {
    const blockScale = edit.make(edit.fresh('getitem'), 'getitem', [ref(fused.name), 2], {}, from);
    made.push(blockScale);
    edit.replaceUses(q.outputs.scale, ref(blockScale.name));
  }
  // NVFP4's output buffers are the pattern's inputs: the block scales are written in place, kept.
  const keep = nvfp4 && q.buffers.scale && isRef(q.buffers.scale) ? [q.buffers.scale.name] : [];
  const nodes = [...s.buffer, attn.name, out.name, reshape.name, ...q.nodes];
  const consumed = inGraphOrder(ix, nodes).filter((n) => !keep.includes(n));
  edit.insertBefore(inGraphOrder(ix, nodes)[0]!, ...made);
  edit.remove(...consumed);
  return { pass: PASS, site: attn.name, consumed, produced: made.map((n) => n.name) };
}

export const attnQuant: Pass = (g, opts): PassResult => {
  const ix = indexGraph(g);
  const edit = new GraphEdit(ix, PASS);
  const set = attentionSetting(opts);
  const matches: Match[] = [];
  const diagnostics: Diagnostic[] = [];
  for (const s of sites(ix)) {
    const why = attnQuantRefusal(ix, s, set);
    if (why) {
      diagnostics.push(diagnostic(PASS, s.attn.name, why, blockerOf(ix, s, why, set)));
      continue;
    }
    if (!edit.claim(s.attn.name, s.out.name, s.reshape.name, ...s.quant.nodes)) continue;
    // The refusals leave static FP8 and NVFP4, the matcher layer's own quants.
    if (s.quant.op === 'fp8_group') continue;
    // The graph cannot tell the backend: the verdict says which one it assumed (UnevaluatedGates, --report).
    matches.push({
      ...fuse(edit, ix, s, s.quant),
      unevaluated: [`fused_output_quant_supported of ${set.assumed}`],
    });
  }
  return { graph: edit.commit(), matches, diagnostics };
};

/** The node or gate a refusal names: the second reader, the quant, or the backend. */
function blockerOf(ix: GraphIndex, s: AttnSite, why: string, set: AttentionSetting): string {
  const reader =
    usersOfValue(ix, s.out.name).find((u) => u !== s.reshape.name) ??
    usersOfValue(ix, s.reshape.name).find((u) => !s.quant.nodes.includes(u));
  if (reader !== undefined) return reader;
  return why.startsWith('with ') ? `attention backend ${set.backend}` : s.quant.anchor;
}
