"""vLLM's own pass-test models, re-expressed with the capture's op shims (layers.py).

From vLLM main (spring 2026):
  tests/compile/passes/distributed/test_sequence_parallelism.py
    TestAllReduceRMSNormModel, TestAllReduceRMSNormStaticQuantFP8Model: relu → all_reduce → norm,
    then three times (linear → all_reduce → fused-add norm); hidden 16, eps 1e-6, 8 × 16 tokens,
    TP 2; parametrized over custom_ops (+/-rms_norm, +/-quant_fp8), fp16/bf16, dynamic or not;
    asserts sequence_parallelism_pass.matched_count == 4.
  tests/compile/passes/distributed/test_async_tp.py
    TestMMRSModel, TestAGMMModel, TestScaledMMRSModel, TestAGScaledMMModel,
    TestCutlassScaledMMRSModel, TestAGCutlassScaledMMModel: one GEMM beside one reduce_scatter
    or all_gather (already sequence-parallel), hidden 16, 8 × 16 tokens, TP 2; the FP8 models
    in bf16 only (the test skips fp16); asserts async_tp_pass.matched_count == 1.

  tests/compile/passes/test_fuse_act_padding.py
    TestModel (here TestActPaddingModel): relu, then per layer x[:, :hidden] → AITER's fused add +
    RMSNorm (custom_ops '+rms_norm' on ROCm with AITER: rocm_aiter_ops.get_rmsnorm_fused_add_op())
    → the router's rocm_unquantized_gemm → F.pad(x, (0, pad_dim)); hidden 2880, 3 layers, 128
    experts, x_pad_to_multiple 256, bf16, token dim dynamic; asserts
    RocmAiterTritonAddRMSNormPadFusionPass.matched_count == num_layers. AITER's two ops are
    registered below with vLLM's schemas (vllm/_aiter_ops.py, vllm/model_executor/layers/utils.py),
    as vllm_ops.py registers vLLM's.

Differences, each needed to run on one CPU: weights the test leaves `torch.empty` are random
(uninitialized fp8 can hold NaN, which would fail the compiled == eager check), and the
TestFP8Layer GEMM is `_C.cutlass_scaled_mm` (the CUTLASS kernel vLLM picks for static per-tensor
FP8 on Hopper).
"""

import torch

import vllm_ops  # noqa: F401  (registers the `vllm` library this file adds AITER's ops to)
from layers import FP8, Fp8Linear, RMSNorm, all_gather, all_reduce, reduce_scatter, scaled_mm

HIDDEN = 16
TOKENS = 8 * 16
TP = 2
EPS = 1e-6


class TestAllReduceRMSNormModel(torch.nn.Module):
    def __init__(self, dtype, norm="custom", hidden_size=HIDDEN, eps=EPS):
        super().__init__()
        self.norm = torch.nn.ModuleList(RMSNorm(hidden_size, eps, dtype, norm) for _ in range(4))
        self.w = [torch.rand(hidden_size, hidden_size, dtype=dtype) for _ in range(3)]

    def forward(self, x):
        z = torch.relu(x)
        x = resid = all_reduce(z)
        y = self.norm[0](x)

        z2 = torch.mm(y, self.w[0])
        x2 = all_reduce(z2)
        y2, resid = self.norm[1](x2, resid)

        z3 = torch.mm(y2, self.w[1])
        x3 = all_reduce(z3)
        y3, resid = self.norm[2](x3, resid)

        z4 = torch.mm(y3, self.w[2])
        x4 = all_reduce(z4)
        y4, resid = self.norm[3](x4, resid)
        return y4


class TestAllReduceRMSNormStaticQuantFP8Model(torch.nn.Module):
    def __init__(self, dtype, norm="custom", quant="custom", hidden_size=HIDDEN, eps=EPS):
        super().__init__()
        self.norm = torch.nn.ModuleList(RMSNorm(hidden_size, eps, dtype, norm) for _ in range(4))
        self.fp8_linear_layers = torch.nn.ModuleList(
            Fp8Linear(hidden_size, hidden_size, dtype, quant, "cutlass") for _ in range(3))

    def forward(self, hidden_states):
        z = torch.relu(hidden_states)
        x = resid = all_reduce(z)
        y = self.norm[0](x)

        z2 = self.fp8_linear_layers[0](y)
        x2 = all_reduce(z2)
        y2, resid = self.norm[1](x2, resid)

        z3 = self.fp8_linear_layers[1](y2)
        x3 = all_reduce(z3)
        y3, resid = self.norm[2](x3, resid)

        z4 = self.fp8_linear_layers[2](y3)
        x4 = all_reduce(z4)
        y4, resid = self.norm[3](x4, resid)
        return y4


class TestMMRSModel(torch.nn.Module):
    def __init__(self, dtype, hidden_size=HIDDEN):
        super().__init__()
        self.hidden_size = hidden_size
        self.gate_proj = torch.nn.Parameter(
            (torch.randn(hidden_size * 2, hidden_size) * 0.02).to(dtype), requires_grad=False)

    def forward(self, hidden_states):
        view = hidden_states.reshape(-1, self.hidden_size)
        permute = self.gate_proj.permute(1, 0)
        mm = torch.mm(view, permute)
        return reduce_scatter(mm, TP, dim=0)


class TestAGMMModel(torch.nn.Module):
    def __init__(self, dtype, hidden_size=HIDDEN):
        super().__init__()
        self.hidden_size = hidden_size
        self.weight = torch.nn.Parameter(
            (torch.randn(hidden_size, hidden_size) * 0.02).to(dtype), requires_grad=False)

    def forward(self, hidden_states):
        view = hidden_states.reshape(-1, self.hidden_size)
        gathered = all_gather(view, TP, dim=0)
        permute = self.weight.permute(1, 0)
        return torch.mm(gathered, permute)


class _BaseScaledMMModel(torch.nn.Module):
    def __init__(self, dtype, hidden_size=HIDDEN):
        super().__init__()
        self.hidden_size = hidden_size
        self.dtype = dtype
        self.weight = torch.randn(hidden_size, hidden_size).to(FP8).contiguous().transpose(0, 1)
        self.scale_b = torch.ones(1, hidden_size, dtype=torch.float32)


class TestScaledMMRSModel(_BaseScaledMMModel):
    gemm = "scaled_mm"

    def forward(self, input):
        fp8_input = input.to(FP8)
        scale_a = torch.ones(input.shape[0], 1, dtype=torch.float32)
        mm = scaled_mm(fp8_input, self.weight, scale_a, self.scale_b, self.dtype, form=self.gemm)
        return reduce_scatter(mm, TP, dim=0)


class TestAGScaledMMModel(_BaseScaledMMModel):
    gemm = "scaled_mm"

    def forward(self, input):
        fp8_input = input.to(FP8)
        gathered = all_gather(fp8_input, TP, dim=0)
        scale_a = torch.ones(gathered.shape[0], 1, dtype=torch.float32)
        return scaled_mm(gathered, self.weight, scale_a, self.scale_b, self.dtype, form=self.gemm)


class TestCutlassScaledMMRSModel(TestScaledMMRSModel):
    gemm = "cutlass"


class TestAGCutlassScaledMMModel(TestAGScaledMMModel):
    gemm = "cutlass"


# vllm/_aiter_ops.py (direct_register_custom_op, mutates_args=[]):
#   rocm_aiter_rmsnorm2d_fwd_with_add(x, residual, weight, variance_epsilon) -> (out, residual_out)
# vllm/model_executor/layers/utils.py: rocm_unquantized_gemm(x, weight, bias=None) -> Tensor
_AITER = torch.library.Library("vllm", "FRAGMENT")
_AITER.define("rocm_aiter_rmsnorm2d_fwd_with_add(Tensor x, Tensor residual, Tensor weight,"
              " float variance_epsilon) -> (Tensor, Tensor)")
_AITER.define("rocm_unquantized_gemm(Tensor x, Tensor weight, Tensor? bias=None) -> Tensor")


def _rocm_aiter_rmsnorm2d_fwd_with_add(x, residual, weight, variance_epsilon):
    # AITER's rmsnorm2d_fwd_with_add: residual_out = x + residual, out = RMSNorm(residual_out) · weight.
    z = (x.float() + residual.float()).to(x.dtype)
    zf = z.float()
    normed = (zf * torch.rsqrt(zf.pow(2).mean(-1, keepdim=True) + variance_epsilon)).to(x.dtype)
    return normed * weight, z


def _rocm_unquantized_gemm(x, weight, bias=None):
    return torch.nn.functional.linear(x, weight, bias)


_AITER.impl("rocm_aiter_rmsnorm2d_fwd_with_add", _rocm_aiter_rmsnorm2d_fwd_with_add, "CPU")
_AITER.impl("rocm_unquantized_gemm", _rocm_unquantized_gemm, "CPU")
torch.library.register_fake("vllm::rocm_aiter_rmsnorm2d_fwd_with_add")(
    lambda x, residual, weight, variance_epsilon: (torch.empty_like(x), torch.empty_like(residual)))
torch.library.register_fake("vllm::rocm_unquantized_gemm")(
    lambda x, weight, bias=None: x.new_empty((*x.shape[:-1], weight.shape[0])))

ACT_PADDING_HIDDEN = 2880
ACT_PADDING_LAYERS = 3
ACT_PADDING_EXPERTS = 128
ACT_PADDING_MULTIPLE = 256
ACT_PADDING_EPS = 1e-5


class AiterRMSNorm(torch.nn.Module):
    """RMSNorm.forward_hip with AITER on (custom_ops '+rms_norm'): the fused add through AITER's op."""

    def __init__(self, size, eps, dtype):
        super().__init__()
        self.weight = torch.nn.Parameter(1 + 0.05 * torch.randn(size).to(dtype), requires_grad=False)
        self.eps = eps

    def forward(self, x, residual):
        return torch.ops.vllm.rocm_aiter_rmsnorm2d_fwd_with_add(x, residual, self.weight, self.eps)


class TestActPaddingModel(torch.nn.Module):
    def __init__(self, dtype, num_layers=ACT_PADDING_LAYERS, hidden_size=ACT_PADDING_HIDDEN,
                 num_local_experts=ACT_PADDING_EXPERTS, x_pad_to_multiple=ACT_PADDING_MULTIPLE):
        super().__init__()
        self.num_layers = num_layers
        self.hidden_size = hidden_size
        self.pad_dim = x_pad_to_multiple - (hidden_size % x_pad_to_multiple)
        self.norm = torch.nn.ModuleList(AiterRMSNorm(hidden_size, ACT_PADDING_EPS, dtype) for _ in range(num_layers))
        # The test builds four routers (range(4)) and uses one per layer.
        self.router = torch.nn.ModuleList(torch.nn.Linear(hidden_size, num_local_experts, dtype=dtype)
                                          for _ in range(4))

    def forward(self, x):
        # avoid having graph input be an arg to a pattern directly
        x = resid = torch.relu(x)
        all_router_logits = []
        for layer in range(self.num_layers):
            x = x[:, : self.hidden_size]
            x, resid = self.norm[layer](x, resid)
            router_logits = torch.ops.vllm.rocm_unquantized_gemm(
                x, self.router[layer].weight, self.router[layer].bias)
            x = torch.nn.functional.pad(x, (0, self.pad_dim), mode="constant", value=0.0)
            all_router_logits.append(router_logits)
        return x, resid, *all_router_logits
