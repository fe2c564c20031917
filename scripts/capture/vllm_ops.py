"""vLLM's custom ops, registered with vLLM's schemas and a CPU reference body each.

The schemas are the ones vLLM declares (csrc/torch_bindings.cpp for `_C`, direct_register_custom_op
for `vllm`), so functionalization and Inductor treat the calls exactly as in a vLLM build: the
`Tensor!` arguments come back through auto_functionalized, `moe_forward` mutates its padded
hidden states, the attention op writes into `output`. The bodies compute on the CPU so a capture
also runs end to end; the all-reduce of a single process is the identity (one rank's share).
"""

import torch

_C = torch.library.Library("_C", "FRAGMENT")
_VLLM = torch.library.Library("vllm", "FRAGMENT")

SCHEMAS = {
    "_C": [
        "rms_norm(Tensor! result, Tensor input, Tensor weight, float epsilon) -> ()",
        "fused_add_rms_norm(Tensor! input, Tensor! residual, Tensor weight, float epsilon) -> ()",
        "silu_and_mul(Tensor! result, Tensor input) -> ()",
        "rotary_embedding(Tensor positions, Tensor! query, Tensor!? key, int head_size,"
        " Tensor cos_sin_cache, bool is_neox) -> ()",
        "static_scaled_fp8_quant(Tensor! result, Tensor input, Tensor scale) -> ()",
        "cutlass_scaled_mm(Tensor! out, Tensor a, Tensor b, Tensor a_scales, Tensor b_scales,"
        " Tensor? bias) -> ()",
        "dynamic_per_token_scaled_fp8_quant(Tensor! result, Tensor input, Tensor! scale, Tensor? scale_ub) -> ()",
        "per_token_group_fp8_quant(Tensor input, Tensor! output_q, Tensor! output_s, int group_size,"
        " float eps, float fp8_min, float fp8_max, bool scale_ue8m0, bool dummy_is_scale_transposed,"
        " bool dummy_is_tma_aligned) -> ()",
        "scaled_fp4_quant(Tensor! output, Tensor input, Tensor! output_scale, Tensor input_scale) -> ()",
        "cutlass_scaled_fp4_mm(Tensor! out, Tensor a, Tensor b, Tensor block_scale_a, Tensor block_scale_b,"
        " Tensor alpha) -> ()",
    ],
    "vllm": [
        "all_reduce(Tensor tensor, str group_name) -> Tensor",
        # parallel_state.py: reduce_scatter / all_gather, direct_register_custom_op'd from
        # (tensor, dim: int, world_size: int, group_name: str) -> Tensor.
        "reduce_scatter(Tensor tensor, int dim, int world_size, str group_name) -> Tensor",
        "all_gather(Tensor tensor, int dim, int world_size, str group_name) -> Tensor",
        "moe_forward(Tensor(a0!) hidden_states, Tensor router_logits, str layer_name) -> Tensor",
        "unified_attention_with_output(Tensor query, Tensor key, Tensor value, Tensor(a3!) output,"
        " str layer_name, Tensor? output_scale=None, Tensor(a6!)? output_block_scale=None) -> ()",
        # model_executor/layers/attention/attention.py: the KV-cache write of a backend whose forward
        # does not include it (mutates_args=[]); its empty result orders it before the attention.
        "unified_kv_cache_update(Tensor key, Tensor value, str layer_name) -> Tensor",
    ],
}

for lib, name in ((_C, "_C"), (_VLLM, "vllm")):
    for schema in SCHEMAS[name]:
        lib.define(schema)

# vLLM IR (vllm/ir/ops/layernorm.py, quant.py): functional ops in the `vllm_ir` namespace, their
# schemas inferred from the native Python signatures (vllm/ir/op.py: infer_schema(native, mutates_args=[])):
#   rms_norm(x, weight: Tensor | None, epsilon: float, variance_size: int | None = None) -> Tensor
#   fused_add_rms_norm(x, x_residual, weight, epsilon, variance_size=None) -> (Tensor, Tensor)
#   static_quant_fp8(x, scale, fp8_dtype: torch.dtype, num_token_padding: int | None = None) -> Tensor
_VLLM_IR = torch.library.Library("vllm_ir", "FRAGMENT")
VLLM_IR_SCHEMAS = [
    "rms_norm(Tensor x, Tensor? weight, float epsilon, SymInt? variance_size=None) -> Tensor",
    "fused_add_rms_norm(Tensor x, Tensor x_residual, Tensor? weight, float epsilon,"
    " SymInt? variance_size=None) -> (Tensor, Tensor)",
    "static_quant_fp8(Tensor x, Tensor scale, ScalarType fp8_dtype, SymInt? num_token_padding=None) -> Tensor",
]
for _schema in VLLM_IR_SCHEMAS:
    _VLLM_IR.define(_schema)

# moe_forward reads its weights by layer name, as vLLM's forward context does: they are no
# graph inputs.
MOE_LAYERS: dict = {}
FP8_MAX = 448.0


def _impl(lib, name):
    def wrap(fn):
        lib.impl(name, fn, "CPU")
        return fn
    return wrap


def _fake(qualname):
    return torch.library.register_fake(qualname)


def _rms(x, weight, eps):
    xf = x.float()
    normed = (xf * torch.rsqrt(xf.pow(2).mean(-1, keepdim=True) + eps)).to(x.dtype)
    return normed * weight


@_impl(_C, "rms_norm")
def rms_norm(result, input, weight, epsilon):
    result.copy_(_rms(input, weight, epsilon))


@_impl(_C, "fused_add_rms_norm")
def fused_add_rms_norm(input, residual, weight, epsilon):
    z = (input.float() + residual.float()).to(input.dtype)
    residual.copy_(z)
    input.copy_(_rms(z, weight, epsilon))


@_impl(_C, "silu_and_mul")
def silu_and_mul(result, input):
    d = input.shape[-1] // 2
    gate, up = input[..., :d].float(), input[..., d:].float()
    result.copy_(torch.nn.functional.silu(gate) * up)


@_impl(_C, "rotary_embedding")
def rotary_embedding(positions, query, key, head_size, cos_sin_cache, is_neox):
    rot = cos_sin_cache.shape[-1]
    cos, sin = cos_sin_cache[positions].float().chunk(2, dim=-1)
    for x in (query, key):
        if x is None:
            continue
        heads = x.view(x.shape[0], -1, head_size)
        r = heads[..., :rot].float()
        if is_neox:
            x1, x2 = r[..., : rot // 2], r[..., rot // 2:]
        else:
            x1, x2 = r[..., 0::2], r[..., 1::2]
        c, s = cos[:, None, :], sin[:, None, :]
        o1, o2 = x1 * c - x2 * s, x2 * c + x1 * s
        out = torch.cat((o1, o2), -1) if is_neox else torch.stack((o1, o2), -1).flatten(-2)
        heads[..., :rot] = out.to(x.dtype)


@_impl(_C, "static_scaled_fp8_quant")
def static_scaled_fp8_quant(result, input, scale):
    result.copy_((input.float() / scale).clamp(-FP8_MAX, FP8_MAX).to(result.dtype))


def _block_scales(scales, rows, cols):
    """Per-tensor, per-row / per-column or block scales ([rows / m, cols / n]) spread over [rows, cols]."""
    if scales.dim() == 2 and 1 < scales.shape[0] < rows or 1 < scales.shape[-1] < cols:
        s = scales.reshape(scales.shape[0], -1)
        s = s.repeat_interleave(rows // s.shape[0], 0)
        return s.repeat_interleave(cols // s.shape[1], 1)
    return scales


@_impl(_C, "cutlass_scaled_mm")
def cutlass_scaled_mm(out, a, b, a_scales, b_scales, bias):
    # Per-tensor / per-token / per-channel scales broadcast; block scales (a [M, K/128], b [K/128,
    # N/128], W8A8BlockFp8LinearOp's CUTLASS path) spread over their blocks.
    y = (a.float() * _block_scales(a_scales, *a.shape)) @ (b.float() * _block_scales(b_scales, *b.shape))
    if bias is not None:
        y = y + bias.float()
    out.copy_(y.to(out.dtype))


@_impl(_C, "dynamic_per_token_scaled_fp8_quant")
def dynamic_per_token_scaled_fp8_quant(result, input, scale, scale_ub):
    s = (input.float().abs().amax(-1, keepdim=True) / FP8_MAX).clamp(min=1 / (FP8_MAX * 512))
    scale.copy_(s)
    result.copy_((input.float() / s).clamp(-FP8_MAX, FP8_MAX).to(result.dtype))


@_impl(_C, "per_token_group_fp8_quant")
def per_token_group_fp8_quant(input, output_q, output_s, group_size, eps, fp8_min, fp8_max, scale_ue8m0,
                              dummy_is_scale_transposed, dummy_is_tma_aligned):
    x = input.float().reshape(*input.shape[:-1], -1, group_size)
    s = x.abs().amax(-1, keepdim=True).clamp(min=eps) / fp8_max
    output_q.copy_((x / s).clamp(fp8_min, fp8_max).reshape(input.shape).to(output_q.dtype))
    output_s.copy_(s.squeeze(-1))


E2M1 = (0.0, 0.5, 1.0, 1.5, 2.0, 3.0, 4.0, 6.0)


@_impl(_C, "scaled_fp4_quant")
def scaled_fp4_quant(output, input, output_scale, input_scale):
    # NVFP4 (nvfp4_utils.cuh cvt_warp_fp16_to_fp4): e4m3 scale per 16 values, e2m1 pairs in bytes.
    blocks = input.float().reshape(-1, 16)
    sf = (input_scale * (blocks.abs().amax(-1) * (1 / 6))).clamp(max=FP8_MAX).to(torch.float8_e4m3fn)
    y = blocks * (1 / (sf.float() * (1 / input_scale)))[:, None]
    bounds = torch.tensor([0.25, 0.75, 1.25, 1.75, 2.5, 3.5, 5.0])
    codes = torch.bucketize(y.abs(), bounds).to(torch.uint8) | ((y < 0).to(torch.uint8) << 3)
    output.copy_((codes[:, 0::2] | (codes[:, 1::2] << 4)).reshape(output.shape))
    output_scale.copy_(sf.reshape(output_scale.shape))


def _fp4_values(packed, scales):
    lut = torch.tensor(E2M1 + tuple(-v for v in E2M1))
    v = torch.stack((lut[(packed & 15).long()], lut[(packed >> 4).long()]), -1).reshape(packed.shape[0], -1)
    return v * scales.float().repeat_interleave(16, 1)


@_impl(_C, "cutlass_scaled_fp4_mm")
def cutlass_scaled_fp4_mm(out, a, b, block_scale_a, block_scale_b, alpha):
    y = _fp4_values(a, block_scale_a) @ _fp4_values(b, block_scale_b).T
    out.copy_((y * alpha).to(out.dtype))


@_impl(_VLLM, "all_reduce")
def all_reduce(tensor, group_name):
    return tensor.clone()


# One process stands for rank 0 of a group whose ranks all hold the same tensor: the all-reduce
# above keeps one rank's share, so reduce_scatter keeps rank 0's block of it and all_gather
# concatenates world_size copies. Compiled and eager run the same bodies, which is all the
# capture's check needs.
@_impl(_VLLM, "reduce_scatter")
def reduce_scatter(tensor, dim, world_size, group_name):
    return tensor.chunk(world_size, dim)[0].clone()


@_impl(_VLLM, "all_gather")
def all_gather(tensor, dim, world_size, group_name):
    return torch.cat([tensor] * world_size, dim)


def _ir_rms(x, weight, epsilon, variance_size):
    # vllm/ir/ops/layernorm.py rms_norm's native body.
    orig_dtype = x.dtype
    x = x.to(torch.float32)
    x_var = x if variance_size is None else x[..., :variance_size]
    x = x * torch.rsqrt(x_var.pow(2).mean(dim=-1, keepdim=True) + epsilon)
    x = x.to(orig_dtype)
    return x if weight is None else x * weight


@_impl(_VLLM_IR, "rms_norm")
def ir_rms_norm(x, weight, epsilon, variance_size=None):
    return _ir_rms(x, weight, epsilon, variance_size)


@_impl(_VLLM_IR, "fused_add_rms_norm")
def ir_fused_add_rms_norm(x, x_residual, weight, epsilon, variance_size=None):
    z = (x.to(torch.float32) + x_residual.to(torch.float32))
    return _ir_rms(z.to(x.dtype), weight, epsilon, variance_size), z.to(x.dtype)


@_impl(_VLLM_IR, "static_quant_fp8")
def ir_static_quant_fp8(x, scale, fp8_dtype, num_token_padding=None):
    # vllm/ir/ops/quant.py static_quant_fp8's native body (no padding when compiling).
    fp8_max = torch.finfo(fp8_dtype).max
    out = x.to(torch.float32) * scale.to(torch.float32).reciprocal()
    return out.clamp(-fp8_max, fp8_max).to(fp8_dtype)


@_impl(_VLLM, "moe_forward")
def moe_forward(hidden_states, router_logits, layer_name):
    layer = MOE_LAYERS[layer_name]
    x = hidden_states.float()
    weights, experts = torch.topk(router_logits.float(), layer.top_k, dim=-1)
    weights = torch.softmax(weights, dim=-1)
    out = torch.zeros_like(x)
    for e in range(layer.w13.shape[0]):
        rows, slot = torch.nonzero(experts == e, as_tuple=True)
        if rows.numel() == 0:
            continue
        h = x[rows] @ layer.w13[e].float().t()
        if layer.b13 is not None:
            h = h + layer.b13[e].float()
        y = layer.activation(h) @ layer.w2[e].float().t()
        if layer.b2 is not None:
            y = y + layer.b2[e].float()
        out.index_add_(0, rows, y * weights[rows, slot][:, None])
    return out.to(hidden_states.dtype)


@_impl(_VLLM, "unified_attention_with_output")
def unified_attention_with_output(query, key, value, output, layer_name, output_scale=None,
                                  output_block_scale=None):
    # A prefill of one sequence with no cache: causal attention over the batch's tokens, the
    # query heads grouped onto the kv heads (GQA), scale 1/sqrt(head_size).
    t, h, d = query.shape
    group = h // key.shape[1]
    q = query.float().transpose(0, 1)
    k = key.float().repeat_interleave(group, dim=1).transpose(0, 1)
    v = value.float().repeat_interleave(group, dim=1).transpose(0, 1)
    scores = (q @ k.transpose(1, 2)) * d ** -0.5
    causal = torch.ones(t, t, dtype=torch.bool).triu(1)
    probs = torch.softmax(scores.masked_fill(causal, float("-inf")), dim=-1)
    output.copy_((probs @ v).transpose(0, 1).to(output.dtype))


@_impl(_VLLM, "unified_kv_cache_update")
def unified_kv_cache_update(key, value, layer_name):
    # No paged cache here: the write has no observable value; the result is the empty ordering token.
    return torch.empty(0, dtype=key.dtype)


_fake("vllm::unified_kv_cache_update")(lambda key, value, layer_name: torch.empty(0, dtype=key.dtype))


for _name in ("rms_norm", "fused_add_rms_norm", "silu_and_mul", "rotary_embedding",
              "static_scaled_fp8_quant", "cutlass_scaled_mm"):
    _fake(f"_C::{_name}")(lambda *args, **kwargs: None)
_fake("vllm::unified_attention_with_output")(lambda *args, **kwargs: None)


@_fake("vllm::all_reduce")
def _all_reduce_fake(tensor, group_name):
    return torch.empty_like(tensor)


@_fake("vllm::reduce_scatter")
def _reduce_scatter_fake(tensor, dim, world_size, group_name):
    shape = list(tensor.shape)
    shape[dim] = shape[dim] // world_size
    return tensor.new_empty(shape)


@_fake("vllm::all_gather")
def _all_gather_fake(tensor, dim, world_size, group_name):
    shape = list(tensor.shape)
    shape[dim] = shape[dim] * world_size
    return tensor.new_empty(shape)


@_fake("vllm_ir::rms_norm")
def _ir_rms_norm_fake(x, weight, epsilon, variance_size=None):
    return torch.empty_like(x)


@_fake("vllm_ir::fused_add_rms_norm")
def _ir_fused_add_rms_norm_fake(x, x_residual, weight, epsilon, variance_size=None):
    return torch.empty_like(x), torch.empty_like(x)


@_fake("vllm_ir::static_quant_fp8")
def _ir_static_quant_fp8_fake(x, scale, fp8_dtype, num_token_padding=None):
    return torch.empty_like(x, dtype=fp8_dtype)


@_fake("vllm::moe_forward")
def _moe_forward_fake(hidden_states, router_logits, layer_name):
    return torch.empty_like(hidden_states)


# vLLM's fused norm / activation + quant ops, the replacements of RMSNormQuantFusionPass and
# ActivationQuantFusionPass (schemas as csrc/torch_bindings.cpp declares them). Each body is the
# unfused pair it stands for, so a capture with them computes what the unfused model does.
FUSED_SCHEMAS = [
    "rms_norm_static_fp8_quant(Tensor! result, Tensor input, Tensor weight, Tensor scale, float epsilon) -> ()",
    "fused_add_rms_norm_static_fp8_quant(Tensor! result, Tensor input, Tensor! residual, Tensor weight,"
    " Tensor scale, float epsilon) -> ()",
    "silu_and_mul_quant(Tensor! result, Tensor input, Tensor scale) -> ()",
]
for _schema in FUSED_SCHEMAS:
    _C.define(_schema)


@_impl(_C, "rms_norm_static_fp8_quant")
def rms_norm_static_fp8_quant(result, input, weight, scale, epsilon):
    static_scaled_fp8_quant(result, _rms(input, weight, epsilon), scale)


@_impl(_C, "fused_add_rms_norm_static_fp8_quant")
def fused_add_rms_norm_static_fp8_quant(result, input, residual, weight, scale, epsilon):
    residual.copy_((input.float() + residual.float()).to(input.dtype))
    static_scaled_fp8_quant(result, _rms(residual, weight, epsilon), scale)


@_impl(_C, "silu_and_mul_quant")
def silu_and_mul_quant(result, input, scale):
    d = input.shape[-1] // 2
    act = (torch.nn.functional.silu(input[..., :d].float()) * input[..., d:].float()).to(input.dtype)
    static_scaled_fp8_quant(result, act, scale)


for _name in ("rms_norm_static_fp8_quant", "fused_add_rms_norm_static_fp8_quant", "silu_and_mul_quant"):
    _fake(f"_C::{_name}")(lambda *args, **kwargs: None)
