"""The forms one vLLM layer takes in a graph, chosen as vLLM's `custom_ops` chooses them.

`+rms_norm` / `+quant_fp8` call the `_C` kernels (CustomOp.forward_cuda); `-rms_norm` /
`-quant_fp8` trace the PyTorch-native bodies (forward_native); with vLLM IR the norm and the
quant are functional `vllm_ir` ops. The FP8 GEMM is `torch._scaled_mm` (the torch kernels of
vllm/model_executor/layers/quantization/kernels/scaled_mm) or `_C.cutlass_scaled_mm`.
"""

import torch

import vllm_ops  # noqa: F401  (registers the ops)

FP8 = torch.float8_e4m3fn
FP8_MAX = torch.finfo(FP8).max
NORM_FORMS = ("custom", "native", "ir")
QUANT_FORMS = ("custom", "native", "ir")
GEMM_FORMS = ("scaled_mm", "cutlass")


def all_reduce(x, group="tp:0"):
    # parallel_state.py GroupCoordinator.all_reduce: torch.ops.vllm.all_reduce(input_, group_name=self.unique_name)
    return torch.ops.vllm.all_reduce(x, group_name=group)


def reduce_scatter(x, world_size, dim=0, group="tp:0"):
    # GroupCoordinator.reduce_scatter: torch.ops.vllm.reduce_scatter(input_, dim, world_size, group_name=...)
    return torch.ops.vllm.reduce_scatter(x, dim, world_size, group_name=group)


def all_gather(x, world_size, dim=0, group="tp:0"):
    # GroupCoordinator.all_gather: torch.ops.vllm.all_gather(input_, dim, world_size, group_name=...)
    return torch.ops.vllm.all_gather(x, dim, world_size, group_name=group)


class RMSNorm(torch.nn.Module):
    """vllm/model_executor/layers/layernorm.py RMSNorm in one of its three forms."""

    def __init__(self, size, eps, dtype, form="custom"):
        super().__init__()
        assert form in NORM_FORMS
        self.weight = torch.nn.Parameter(1 + 0.05 * torch.randn(size).to(dtype), requires_grad=False)
        self.eps, self.form = eps, form

    def forward(self, x, residual=None):
        return getattr(self, f"forward_{self.form}")(x, residual)

    def forward_custom(self, x, residual):
        # forward_cuda: rms_norm into a fresh buffer, fused_add_rms_norm in place.
        if residual is not None:
            torch.ops._C.fused_add_rms_norm(x, residual, self.weight, self.eps)
            return x, residual
        out = torch.empty_like(x)
        torch.ops._C.rms_norm(out, x, self.weight, self.eps)
        return out

    def forward_native(self, x, residual):
        # forward_native (forward_static): the add and the statistics in float32.
        orig_dtype = x.dtype
        x = x.to(torch.float32)
        if residual is not None:
            x = x + residual.to(torch.float32)
            residual = x.to(orig_dtype)
        variance = x.pow(2).mean(dim=-1, keepdim=True)
        x = x * torch.rsqrt(variance + self.eps)
        x = x.to(orig_dtype) * self.weight
        return x if residual is None else (x, residual)

    def forward_ir(self, x, residual):
        # vLLM IR: ir.ops.rms_norm / ir.ops.fused_add_rms_norm, lowered after the fusion passes.
        if residual is not None:
            return torch.ops.vllm_ir.fused_add_rms_norm(x, residual, self.weight, self.eps)
        return torch.ops.vllm_ir.rms_norm(x, self.weight, self.eps)


def quant_fp8_static(x, scale, form="custom"):
    """QuantFP8 with a static per-tensor scale (input_quant_fp8.py)."""
    assert form in QUANT_FORMS
    if form == "custom":
        # forward_cuda → ops.scaled_fp8_quant → _C.static_scaled_fp8_quant(out, x, scale)
        out = torch.empty(x.shape, dtype=FP8, device=x.device)
        torch.ops._C.static_scaled_fp8_quant(out, x, scale)
        return out
    if form == "ir":
        # vLLM IR: ir.ops.static_quant_fp8, what sequence_parallelism.py's FP8 patterns match.
        return torch.ops.vllm_ir.static_quant_fp8(x, scale, FP8)
    # forward_native: a multiply by the reciprocal, clamped to the fp8 range.
    return (x.to(torch.float32) * scale.reciprocal()).clamp(-FP8_MAX, FP8_MAX).to(FP8)


def scaled_mm(a, b, scale_a, scale_b, out_dtype, bias=None, form="scaled_mm"):
    """The FP8 GEMM: torch._scaled_mm, or _C.cutlass_scaled_mm into an empty output."""
    if form == "scaled_mm":
        return torch._scaled_mm(a, b, scale_a=scale_a, scale_b=scale_b, bias=bias, out_dtype=out_dtype)
    out = torch.empty((a.shape[0], b.shape[1]), dtype=out_dtype, device=a.device)
    torch.ops._C.cutlass_scaled_mm(out, a, b, scale_a, scale_b, bias)
    return out


class Fp8Linear(torch.nn.Module):
    """A static per-tensor FP8 linear (Fp8LinearOp / TestFP8Layer, kFp8StaticTensorSym): quantize
    the input with its static scale, then the FP8 GEMM. The weight is stored [out, in] and passed
    transposed (column-major), as torch._scaled_mm and CUTLASS take it."""

    def __init__(self, in_f, out_f, dtype, quant="custom", gemm="cutlass"):
        super().__init__()
        self.weight = torch.nn.Parameter((torch.randn(out_f, in_f) * 8).clamp(-448, 448).to(FP8),
                                         requires_grad=False)
        self.input_scale = torch.nn.Parameter(torch.tensor([0.02]), requires_grad=False)
        self.weight_scale = torch.nn.Parameter(torch.tensor([0.01]), requires_grad=False)
        self.dtype, self.quant, self.gemm = dtype, quant, gemm

    def forward(self, x):
        q = quant_fp8_static(x, self.input_scale, self.quant)
        return scaled_mm(q, self.weight.t(), self.input_scale, self.weight_scale, self.dtype, form=self.gemm)
