"""Small stand-ins for vLLM's GPT-OSS, Llama, Qwen3 and Qwen3-MoE, written as vLLM's layers call the
ops (vllm/model_executor/layers/*, models/gpt_oss.py, llama.py, qwen3.py, qwen3_moe.py) so the post-grad
graph has the same structure as a real model's: vocab-parallel embedding, an all-reduce after
every row-parallel layer, rms_norm / fused_add_rms_norm, split qkv with in-place rotary, the
attention op writing into a fresh buffer, SwiGLU through silu_and_mul, and GPT-OSS's MoE padded
to a wider hidden size and sliced back (before PR #28841 after the all-reduce, after it before).

Sizes are small so the captured text stays readable and runs on a CPU; each rank holds the
shards of rank 0 of a tensor-parallel group of `tp`.
"""

from dataclasses import dataclass, field

import torch
import torch.nn.functional as F

import vllm_ops

TP_GROUP = "tp:0"


@dataclass
class Dims:
    family: str
    layers: int = 2
    vocab: int = 512
    hidden: int = 96
    heads: int = 16
    kv_heads: int = 8
    head_dim: int = 16
    intermediate: int = 64
    experts: int = 4
    top_k: int = 2
    eps: float = 1e-5
    max_positions: int = 256
    # GPT-OSS's MoE runs on a hidden size padded to a multiple of the kernel's tile
    # (2880 → 3072 in gpt-oss-20b); here 96 → 128.
    moe_hidden: int = 0
    bias: bool = False
    qk_norm: bool = False
    fp8: bool = False
    # The MLP's down projection in FP8 too (its input quant reads silu_and_mul's output), as in a
    # checkpoint that quantizes every linear.
    fp8_down: bool = False
    # How an FP8 linear quantizes its input (vLLM's schemes): "static" per-tensor (Fp8LinearOp),
    # "dynamic" per-token, "group128" per-token groups of 128 (W8A8BlockFp8LinearOp), "nvfp4"
    # (ModelOpt NVFP4: scaled_fp4_quant and cutlass_scaled_fp4_mm, Blackwell).
    fp8_kind: str = "static"
    # PR #28841: slice before the all-reduce.
    slice_first: bool = False


def gpt_oss(slice_first: bool, layers: int = 2) -> Dims:
    return Dims("gpt_oss", layers=layers, moe_hidden=128, bias=True, slice_first=slice_first)


def llama(layers: int = 2, fp8: bool = False, fp8_down: bool = False, fp8_kind: str = "static") -> Dims:
    # Groups of 128 need a hidden and an intermediate size they divide.
    wide = {"hidden": 128, "intermediate": 128} if fp8_kind == "group128" else {}
    return Dims("llama", layers=layers, eps=1e-5, fp8=fp8, fp8_down=fp8_down, fp8_kind=fp8_kind, **wide)


def qwen3_moe(layers: int = 2) -> Dims:
    return Dims("qwen3_moe", layers=layers, eps=1e-6, qk_norm=True)


def qwen3(layers: int = 2) -> Dims:
    # Qwen3 dense (qwen3.py): Llama's layer with per-head q/k RMSNorm; head_dim 64, one of the sizes
    # vLLM's fused_qk_norm_rope kernel is built for (64, 128, 256).
    return Dims("qwen3", layers=layers, hidden=128, heads=4, kv_heads=2, head_dim=64, eps=1e-6, qk_norm=True)


def _param(*shape, scale=0.05):
    return torch.nn.Parameter((torch.randn(*shape) * scale).to(torch.bfloat16), requires_grad=False)


def all_reduce(x):
    # parallel_state.py: tensor_model_parallel_all_reduce → torch.ops.vllm.all_reduce(input_, group_name=...)
    return torch.ops.vllm.all_reduce(x, group_name=TP_GROUP)


class RMSNorm(torch.nn.Module):
    """layernorm.py RMSNorm.forward_cuda: rms_norm into a new buffer, or fused_add_rms_norm in place."""

    def __init__(self, size, eps):
        super().__init__()
        self.weight = torch.nn.Parameter(torch.ones(size, dtype=torch.bfloat16) + _param(size).data,
                                         requires_grad=False)
        self.eps = eps

    def forward(self, x, residual=None):
        if residual is not None:
            torch.ops._C.fused_add_rms_norm(x, residual, self.weight, self.eps)
            return x, residual
        out = torch.empty_like(x)
        torch.ops._C.rms_norm(out, x, self.weight, self.eps)
        return out


class Linear(torch.nn.Module):
    """UnquantizedLinearMethod.apply: F.linear(x, weight, bias); with `fp8` (a Dims.fp8_kind), the
    input's quant and the scaled GEMM of that scheme: static_scaled_fp8_quant / dynamic per-token /
    per_token_group_fp8_quant (128, column-major scales) then cutlass_scaled_mm; NVFP4's
    scaled_fp4_quant then cutlass_scaled_fp4_mm."""

    def __init__(self, in_f, out_f, bias, fp8=False):
        super().__init__()
        self.kind = fp8 or None
        self.bias = _param(out_f) if bias else None
        fixed = lambda t: torch.nn.Parameter(t, requires_grad=False)  # noqa: E731
        if self.kind == "nvfp4":
            self.weight = fixed(torch.randint(0, 256, (out_f, in_f // 2), dtype=torch.uint8))
            self.weight_scale = fixed(torch.full((out_f, in_f // 16), 0.5).to(torch.float8_e4m3fn))
            self.input_scale = fixed(torch.tensor([448.0 * 6 / 4]))
            self.alpha = fixed(torch.tensor([1 / (448.0 * 6 / 4) / 0.5]))
        elif self.kind:
            self.weight = fixed((torch.randn(in_f, out_f) * 8).clamp(-448, 448).to(torch.float8_e4m3fn))
            self.input_scale = fixed(torch.tensor([0.02]))
            self.weight_scale = fixed({"static": torch.tensor([0.01]),
                                       "dynamic": torch.full((1, out_f), 0.01),
                                       "group128": torch.full((in_f // 128, out_f // 128), 0.01)}[self.kind])
        else:
            self.weight = _param(out_f, in_f)

    def forward(self, x):
        if not self.kind:
            return F.linear(x, self.weight, self.bias)
        if self.kind == "nvfp4":
            q = torch.empty(x.shape[:-1] + (x.shape[-1] // 2,), dtype=torch.uint8)
            sf = torch.empty(x.shape[:-1] + (x.shape[-1] // 16,), dtype=torch.float8_e4m3fn)
            torch.ops._C.scaled_fp4_quant(q, x, sf, self.input_scale)
            out = torch.empty((x.shape[0], self.weight.shape[0]), dtype=torch.bfloat16)
            torch.ops._C.cutlass_scaled_fp4_mm(out, q, self.weight, sf, self.weight_scale, self.alpha)
            return out
        q = torch.empty(x.shape, dtype=torch.float8_e4m3fn)
        if self.kind == "static":
            scale = self.input_scale
            torch.ops._C.static_scaled_fp8_quant(q, x, scale)
        elif self.kind == "dynamic":
            scale = torch.empty((x.shape[0], 1), dtype=torch.float32)
            torch.ops._C.dynamic_per_token_scaled_fp8_quant(q, x, scale, None)
        else:
            # fp8_utils.py per_token_group_quant_fp8(column_major_scales=True): [G, T] permuted to [T, G].
            scale = torch.empty((x.shape[-1] // 128, x.shape[0]), dtype=torch.float32).permute(-1, -2)
            torch.ops._C.per_token_group_fp8_quant(x, q, scale, 128, 1e-10, -448.0, 448.0, False, True, False)
        out = torch.empty((x.shape[0], self.weight.shape[1]), dtype=torch.bfloat16)
        torch.ops._C.cutlass_scaled_mm(out, q, self.weight, scale, self.weight_scale, self.bias)
        return out


class VocabParallelEmbedding(torch.nn.Module):
    def __init__(self, d: Dims, tp: int):
        super().__init__()
        self.tp = tp
        self.shard = d.vocab // tp
        self.weight = _param(self.shard, d.hidden, scale=1.0)

    def forward(self, ids):
        if self.tp == 1:
            return F.embedding(ids, self.weight)
        # get_masked_input_and_mask for rank 0: ids outside [0, shard) read row 0 and are zeroed.
        mask = (ids >= 0) & (ids < self.shard)
        masked = mask * ids
        out = F.embedding(masked, self.weight)
        out.masked_fill_((~mask).unsqueeze(-1), 0)
        return all_reduce(out)


def rope_cache(d: Dims):
    inv = 1.0 / (10000 ** (torch.arange(0, d.head_dim, 2).float() / d.head_dim))
    freqs = torch.outer(torch.arange(d.max_positions).float(), inv)
    return torch.cat((freqs.cos(), freqs.sin()), -1).to(torch.bfloat16)


class Attention(torch.nn.Module):
    def __init__(self, d: Dims, tp: int, layer: int):
        super().__init__()
        self.d = d
        self.heads = d.heads // tp
        self.kv_heads = max(1, d.kv_heads // tp)
        self.q_size, self.kv_size = self.heads * d.head_dim, self.kv_heads * d.head_dim
        self.tp = tp
        self.qkv = Linear(d.hidden, self.q_size + 2 * self.kv_size, d.bias, d.fp8 and d.fp8_kind)
        # RowParallelLinear: the bias is added on rank 0 only, before the all-reduce.
        self.o_proj = Linear(self.q_size, d.hidden, d.bias)
        self.cos_sin_cache = torch.nn.Parameter(rope_cache(d), requires_grad=False)
        if d.qk_norm:
            self.q_norm = RMSNorm(d.head_dim, d.eps)
            self.k_norm = RMSNorm(d.head_dim, d.eps)
        self.layer_name = f"model.layers.{layer}.self_attn.attn"

    def forward(self, x, positions):
        hd = self.d.head_dim
        qkv = self.qkv(x)
        q, k, v = qkv.split([self.q_size, self.kv_size, self.kv_size], dim=-1)
        if self.d.qk_norm:
            # qwen3.py / qwen3_moe.py: per-head RMSNorm of q and k before the rotary embedding.
            q = self.q_norm(q.view(*q.shape[:-1], q.shape[-1] // hd, hd)).view(q.shape)
            k = self.k_norm(k.view(*k.shape[:-1], k.shape[-1] // hd, hd)).view(k.shape)
        # rotary_embedding.py forward_cuda: in place on the query and key views.
        torch.ops._C.rotary_embedding(positions, q, k, hd, self.cos_sin_cache, True)
        v = v.contiguous()
        # attention/layer.py Attention.forward with an output buffer.
        out = torch.empty(q.shape, dtype=q.dtype, device=q.device)
        qh = q.view(-1, self.heads, hd)
        outh = out.view(-1, self.heads, hd)
        kh = k.view(-1, self.kv_heads, hd)
        vh = v.view(-1, self.kv_heads, hd)
        torch.ops.vllm.unified_attention_with_output(qh, kh, vh, outh, self.layer_name)
        o = self.o_proj(outh.view(-1, self.q_size))
        return all_reduce(o) if self.tp > 1 else o


def swigluoai(h):
    # GPT-OSS: gate/up rows interleaved; gate ≤ 7, up in [−7, 7]; (up + 1)·gate·σ(1.702·gate).
    gate, up = h[..., 0::2].clamp(max=7.0), h[..., 1::2].clamp(-7.0, 7.0)
    return (up + 1) * gate * torch.sigmoid(1.702 * gate)


def silu_glu(h):
    d = h.shape[-1] // 2
    return F.silu(h[..., :d]) * h[..., d:]


@dataclass
class MoeWeights:
    w13: torch.Tensor
    w2: torch.Tensor
    b13: torch.Tensor = None
    b2: torch.Tensor = None
    top_k: int = 2
    activation: object = field(default=silu_glu)


class MoE(torch.nn.Module):
    """FusedMoE.forward: pad to the kernel's hidden size, moe_forward, all-reduce, slice back."""

    def __init__(self, d: Dims, tp: int, layer: int):
        super().__init__()
        self.d, self.tp = d, tp
        inter = d.intermediate // tp
        width = d.moe_hidden or d.hidden
        self.router = Linear(d.hidden, d.experts, d.bias)
        self.layer_name = f"model.layers.{layer}.mlp.experts"
        w = MoeWeights(
            w13=(torch.randn(d.experts, 2 * inter, width) * 0.05).to(torch.bfloat16),
            w2=(torch.randn(d.experts, width, inter) * 0.05).to(torch.bfloat16),
            top_k=d.top_k, activation=swigluoai if d.family == "gpt_oss" else silu_glu)
        if d.bias:
            w.b13 = (torch.randn(d.experts, 2 * inter) * 0.05).to(torch.bfloat16)
            w.b2 = (torch.randn(d.experts, width) * 0.05).to(torch.bfloat16)
        vllm_ops.MOE_LAYERS[self.layer_name] = w

    def forward(self, x):
        og = x.shape[-1]
        logits = self.router(x)
        h = F.pad(x, (0, self.d.moe_hidden - og), mode="constant", value=0.0) if self.d.moe_hidden else x
        out = torch.ops.vllm.moe_forward(h, logits, self.layer_name)
        if self.tp == 1:
            return out[..., :og]
        if self.d.slice_first:
            return all_reduce(out[..., :og])
        return all_reduce(out)[..., :og]


class MLP(torch.nn.Module):
    """Llama's MLP: merged gate/up projection, SiluAndMul.forward_cuda, down projection."""

    def __init__(self, d: Dims, tp: int):
        super().__init__()
        self.tp = tp
        inter = d.intermediate // tp
        self.gate_up = Linear(d.hidden, 2 * inter, False, d.fp8 and d.fp8_kind)
        self.down = Linear(inter, d.hidden, False, d.fp8_down and d.fp8_kind)

    def forward(self, x):
        gu = self.gate_up(x)
        half = gu.shape[-1] // 2
        out = torch.empty(gu.shape[:-1] + (half,), dtype=gu.dtype, device=gu.device)
        torch.ops._C.silu_and_mul(out, gu)
        y = self.down(out)
        return all_reduce(y) if self.tp > 1 else y


class DecoderLayer(torch.nn.Module):
    def __init__(self, d: Dims, tp: int, layer: int):
        super().__init__()
        self.input_layernorm = RMSNorm(d.hidden, d.eps)
        self.attn = Attention(d, tp, layer)
        self.post_attention_layernorm = RMSNorm(d.hidden, d.eps)
        self.mlp = MLP(d, tp) if d.family in ("llama", "qwen3") else MoE(d, tp, layer)

    def forward(self, x, positions, residual):
        if residual is None:
            residual = x
            x = self.input_layernorm(x)
        else:
            x, residual = self.input_layernorm(x, residual)
        x = self.attn(x, positions)
        x, residual = self.post_attention_layernorm(x, residual)
        return self.mlp(x), residual


class Model(torch.nn.Module):
    def __init__(self, d: Dims, tp: int):
        super().__init__()
        torch.manual_seed(0)
        self.embed = VocabParallelEmbedding(d, tp)
        self.layers = torch.nn.ModuleList(DecoderLayer(d, tp, i) for i in range(d.layers))
        self.norm = RMSNorm(d.hidden, d.eps)

    def forward(self, input_ids, positions):
        x = self.embed(input_ids)
        residual = None
        for layer in self.layers:
            x, residual = layer(x, positions, residual)
        x, _ = self.norm(x, residual)
        return x
