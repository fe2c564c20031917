"""Llama-like stacks in the forms vLLM's sequence-parallelism / async-TP / all-reduce + norm
passes meet: native or vLLM IR norms (custom ops off), native FP8 quant, FP8 linears through
torch._scaled_mm or _C.cutlass_scaled_mm, a Llama-4-like model fed embeddings (its first layer's
residual is a graph input), a graph with a data-parallel and a tensor-parallel all-reduce, and
GPT-OSS's biased qkv projection after a sequence-parallel all_gather.

Each builds models.Model (or its pieces) and swaps the layers whose form differs, so the graph
keeps the structure of models.py's decoders (2 layers, hidden 96, TP 2, rank 0).
"""

import torch

import models
from layers import Fp8Linear, RMSNorm, all_gather, all_reduce, reduce_scatter

DTYPE = torch.bfloat16


def _swap_norms(model, d, form):
    for layer in model.layers:
        layer.input_layernorm = RMSNorm(d.hidden, d.eps, DTYPE, form)
        layer.post_attention_layernorm = RMSNorm(d.hidden, d.eps, DTYPE, form)
    model.norm = RMSNorm(d.hidden, d.eps, DTYPE, form)


def _swap_fp8_linears(model, quant, gemm):
    """Every projection FP8 (as in RedHatAI/Meta-Llama-3.1-8B-Instruct-FP8): qkv, o_proj,
    gate_up and down each quantize their input with a static per-tensor scale."""
    for layer in model.layers:
        for parent, name in ((layer.attn, "qkv"), (layer.attn, "o_proj"), (layer.mlp, "gate_up"),
                             (layer.mlp, "down")):
            old = getattr(parent, name)
            out_f, in_f = old.weight.shape
            setattr(parent, name, Fp8Linear(in_f, out_f, DTYPE, quant, gemm))


def llama(tp=2, norm="custom", fp8=None):
    """A models.llama() decoder with its norms in `norm` form and, with fp8=(quant, gemm), every
    projection an FP8 linear."""
    d = models.llama()
    model = models.Model(d, tp)
    _swap_norms(model, d, norm)
    if fp8:
        _swap_fp8_linears(model, *fp8)
    return model


class EmbedsModel(models.Model):
    """Llama-4-like: the language model takes `inputs_embeds` (Llama4ForConditionalGeneration
    embeds outside the compiled graph), so the first layer's residual is a graph input and no
    all-reduce feeds its input norm. MoE layers (moe_forward) as in models.MoE; the router is a
    replicated linear."""

    def forward(self, inputs_embeds, positions):
        x, residual = inputs_embeds, None
        for layer in self.layers:
            x, residual = layer(x, positions, residual)
        x, _ = self.norm(x, residual)
        return x


def llama4_embeds(tp=2):
    d = models.Dims("llama4", eps=1e-5)
    return EmbedsModel(d, tp)


class DpTpModel(torch.nn.Module):
    """Two tensor-parallel all-reduces into norms (the residual stream of a decoder) and one
    data-parallel all-reduce, 'dp:0', into an rms_norm of its own: only the first two are the
    TP group's."""

    def __init__(self, hidden=96, eps=1e-5):
        super().__init__()
        torch.manual_seed(0)
        self.norm = torch.nn.ModuleList(RMSNorm(hidden, eps, DTYPE) for _ in range(3))
        self.w = torch.nn.ParameterList(
            torch.nn.Parameter((torch.randn(hidden, hidden) * 0.05).to(DTYPE), requires_grad=False)
            for _ in range(2))

    def forward(self, x):
        a = resid = all_reduce(torch.relu(x))
        y = self.norm[0](a)
        a2 = all_reduce(torch.mm(y, self.w[0]))
        y2, resid = self.norm[1](a2, resid)
        d = all_reduce(torch.mm(y2, self.w[1]), group="dp:0")
        return self.norm[2](d)


class SequenceParallelAttention(torch.nn.Module):
    """GPT-OSS's attention block as sequence parallelism leaves it: the normed token shard is
    all-gathered, the qkv projection (with bias, as GPT-OSS has) reads the gathered tokens, and
    o_proj's partial sums are reduce-scattered back to the shard."""

    def __init__(self, tp=2):
        super().__init__()
        torch.manual_seed(0)
        self.tp = tp
        self.attn = models.Attention(models.gpt_oss(slice_first=True), tp, 0)
        # Shards sized for `tp`; the all-reduce after o_proj is replaced by the reduce_scatter.
        self.attn.tp = 1

    def forward(self, x_shard, positions):
        x = all_gather(x_shard, self.tp)
        return reduce_scatter(self.attn(x, positions), self.tp)
