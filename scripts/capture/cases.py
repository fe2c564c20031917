"""The captures of fixtures/capture/tp/: vLLM's sequence-parallelism and async-TP test models in
every form vLLM's tests run them, and the Llama-like stacks of stacks.py.

Each case: (what it is, a builder returning (model, example inputs), whether the token dim is
dynamic). Names spell the form: `rms_norm-on` / `rms_norm-off` for custom_ops '+rms_norm' /
'-rms_norm', `ir` for vLLM IR norms, `quant_fp8-on` / `-off`, the dtype, and `static` /
`dynamic` (torch._dynamo.mark_dynamic on the token dim, as the tests' `dynamic` parameter).
"""

from dataclasses import dataclass, field
from typing import Callable

import torch

import rope
import stacks
import vllm_test_models as vt

DTYPES = {"bf16": torch.bfloat16, "f16": torch.float16}
SHAPES = {"static": False, "dynamic": True}
ON_OFF = {"on": "custom", "off": "native"}


# vLLM's pass orders the counts are given for: sequence parallelism with async TP after it
# (PostGradPassManager: noop elimination, then SequenceParallelismPass, then AsyncTPPass), and
# the all-reduce + RMSNorm fusion on its own.
SP_ORDER = "noop-elimination,sequence-parallelism,async-tp"
AR_ORDER = "allreduce-rmsnorm"

VLLM = "vllm-project/vllm"
SP_TEST = (f"{VLLM} tests/compile/passes/distributed/test_sequence_parallelism.py @03e83107: "
           "sequence_parallelism_pass_on_test_model asserts sequence_parallelism_pass.matched_count == 4")
AR_TEST = (f"{VLLM} tests/compile/passes/distributed/test_fusion_all_reduce.py @01ae9536: the same "
           "two models; all_reduce_fusion_pass_on_test_model asserts all_reduce_fusion_pass.matched_count == 4")
ATP_TEST = (f"{VLLM} tests/compile/passes/distributed/test_async_tp.py @01065c02: "
            "async_tp_pass_on_test_model asserts async_tp_pass.matched_count == 1")
ONE_PER_GEMM = ("AsyncTPPass (collective_fusion.py) rewrites each GEMM once: Inductor's PatternMatcherPass "
                "visits nodes last-first, so GEMMReduceScatterPattern (rooted at the reduce_scatter) takes a "
                "GEMM before AllGatherGEMMPattern (rooted at the GEMM) can; the 3 GEMMs here each sit between "
                "the all_gather and the reduce_scatter sequence parallelism leaves")
E2E = f"{VLLM} tests/compile/fusions_e2e/models.py @050544d1"
SP_PASS = f"{VLLM} vllm/compilation/passes/fusion/sequence_parallelism.py @007b5e0b"
SP_FP8 = (f"{SP_PASS}: First/MiddleAllReduceRMSNormStaticFP8Pattern all-gather the quantized norm output, "
          "so each FP8 GEMM reads the all_gather")
SP_RESIDUAL_SLICE = (f"{SP_PASS}: MiddleAllReduceRMSNormPattern's replacement slices a full-size residual "
                     "(residual[0 : reduce_scatter.size(0), ...]), so a residual that enters as a graph input "
                     "is split as well")
NO_ALL_REDUCE = "no all_reduce in the graph"


@dataclass
class Case:
    what: str
    build: Callable[[], tuple]
    dynamic: bool
    # pass order → ({pass: count}, where vLLM says so); a piecewise case: one such dict per piece
    expected: dict | list
    world_size: int = 2
    tolerance: float = 2e-2
    # Inductor options over vLLM's; {"piecewise": True} splits the graph at the attention op
    overrides: dict = field(default_factory=dict)
    # The platform vLLM compiles for where a pass depends on it (fusionlab's `platform` option)
    platform: str | None = None
    # ROCm with AITER enabled (VLLM_ROCM_USE_AITER=1; fusionlab's `aiter` option)
    aiter: bool = False


# Compiled and eager round an FP8 linear's input the same way only if they compute it the same
# way; Inductor fuses the native norm's float32 arithmetic, so a value next to a rounding boundary
# may land on the neighbouring e4m3 value: one step, 2^-3 relative, in either direction.
FP8_TOLERANCE = 0.125


ATP_PASS = f"{VLLM} vllm/compilation/passes/fusion/collective_fusion.py @0378a18d"
FP8_BF16_ONLY = (f"{ATP_PASS}: AsyncTPPass registers the scaled-GEMM patterns (ScaledMM / CutlassScaledMM "
                 "ReduceScatter, AllGather…ScaledMM) only when model_dtype == torch.bfloat16")


def sp_test_expected(fp8=False, dtype=torch.bfloat16):
    if fp8 and dtype is not torch.bfloat16:
        async_tp = (0, f"async-tp 0: {FP8_BF16_ONLY}")
    else:
        async_tp = (3, f"async-tp 3: {ONE_PER_GEMM}" + (f"; {FP8_BF16_ONLY}" if fp8 else ""))
    return {
        SP_ORDER: ({"sequence-parallelism": 4, "async-tp": async_tp[0]}, f"{SP_TEST}; {async_tp[1]}"),
        AR_ORDER: ({"allreduce-rmsnorm": 4}, AR_TEST),
    }


def async_tp_test_expected():
    return {
        SP_ORDER: ({"sequence-parallelism": 0, "async-tp": 1}, f"{ATP_TEST}; sequence-parallelism: {NO_ALL_REDUCE}"),
        AR_ORDER: ({"allreduce-rmsnorm": 0}, NO_ALL_REDUCE),
    }


def llama_expected(layers=2, fp8=False):
    name = "llama3_8b_fp8" if fp8 else "llama3_8b"
    row = (f"{E2E} {name}: ar_rms_fusion = sequence_parallel = n_layers * 2 + 1, async_tp = n_layers * 4 "
           f"(test_tp2_ar_rms.py / test_tp2_async_tp.py, every custom_ops_combos form), n_layers = {layers}"
           + (f"; {SP_FP8}" if fp8 else ""))
    return {
        SP_ORDER: ({"sequence-parallelism": 2 * layers + 1, "async-tp": 4 * layers}, row),
        AR_ORDER: ({"allreduce-rmsnorm": 2 * layers + 1}, row),
    }


def _hidden(dtype, tokens=vt.TOKENS, hidden=vt.HIDDEN):
    return (torch.randn(tokens, hidden, dtype=dtype),)


def sequence_parallelism_cases():
    out = {}
    for dt, dtype in DTYPES.items():
        for shape, dynamic in SHAPES.items():
            for rms, norm in ON_OFF.items():
                out[f"sp-allreduce-rmsnorm.rms_norm-{rms}.{dt}.{shape}"] = Case(
                    f"TestAllReduceRMSNormModel, custom_ops '{'+' if rms == 'on' else '-'}rms_norm', {dt}, {shape}",
                    lambda dtype=dtype, norm=norm: (vt.TestAllReduceRMSNormModel(dtype, norm), _hidden(dtype)),
                    dynamic, sp_test_expected())
                for qon, quant in ON_OFF.items():
                    ops = f"{'+' if rms == 'on' else '-'}rms_norm,{'+' if qon == 'on' else '-'}quant_fp8"
                    out[f"sp-allreduce-rmsnorm-fp8.rms_norm-{rms}.quant_fp8-{qon}.{dt}.{shape}"] = Case(
                        f"TestAllReduceRMSNormStaticQuantFP8Model, custom_ops '{ops}', {dt}, {shape}",
                        lambda dtype=dtype, norm=norm, quant=quant: (
                            vt.TestAllReduceRMSNormStaticQuantFP8Model(dtype, norm, quant), _hidden(dtype)),
                        dynamic, sp_test_expected(fp8=True, dtype=dtype), tolerance=FP8_TOLERANCE)
    # vLLM IR: the norms as the functional vllm_ir ops the current test's ops_in_model names.
    out["sp-allreduce-rmsnorm.ir.bf16.dynamic"] = Case(
        "TestAllReduceRMSNormModel with vLLM IR norms (vllm_ir.rms_norm / fused_add_rms_norm), bf16, dynamic",
        lambda: (vt.TestAllReduceRMSNormModel(torch.bfloat16, "ir"), _hidden(torch.bfloat16)), True,
        sp_test_expected())
    out["sp-allreduce-rmsnorm-fp8.ir.bf16.dynamic"] = Case(
        "TestAllReduceRMSNormStaticQuantFP8Model with vLLM IR norms and quant (vllm_ir.static_quant_fp8), bf16, dynamic",
        lambda: (vt.TestAllReduceRMSNormStaticQuantFP8Model(torch.bfloat16, "ir", "ir"), _hidden(torch.bfloat16)),
        True, sp_test_expected(fp8=True), tolerance=FP8_TOLERANCE)
    return out


ASYNC_TP_MODELS = {
    "mm-rs": vt.TestMMRSModel,
    "ag-mm": vt.TestAGMMModel,
    "scaled-mm-rs": vt.TestScaledMMRSModel,
    "ag-scaled-mm": vt.TestAGScaledMMModel,
    "cutlass-scaled-mm-rs": vt.TestCutlassScaledMMRSModel,
    "ag-cutlass-scaled-mm": vt.TestAGCutlassScaledMMModel,
}
FP8_ASYNC_TP = {"scaled-mm-rs", "ag-scaled-mm", "cutlass-scaled-mm-rs", "ag-cutlass-scaled-mm"}


def async_tp_cases():
    out = {}
    for key, cls in ASYNC_TP_MODELS.items():
        for dt, dtype in DTYPES.items():
            if key in FP8_ASYNC_TP and dtype is torch.float16:
                continue  # test_async_tp.py skips fp16 for the FP8 models
            for shape, dynamic in SHAPES.items():
                out[f"async-tp-{key}.{dt}.{shape}"] = Case(
                    f"{cls.__name__}, {dt}, {shape}",
                    lambda cls=cls, dtype=dtype: (cls(dtype), _hidden(dtype)), dynamic,
                    async_tp_test_expected())
    return out


def _tokens_and_positions(model_input, tokens=8, hidden=96, vocab=512):
    if model_input == "ids":
        return (torch.randint(0, vocab, (tokens,)), torch.arange(tokens))
    return (torch.randn(tokens, hidden, dtype=torch.bfloat16), torch.arange(tokens))


LLAMA4_ROW = (f"{E2E} llama4_scout_fp8: ar_rms_fusion = sequence_parallel = n_layers * 2, "
              "async_tp = n_layers * 2 - 1, n_layers = 2 (the first layer's norm reads the embeddings, a graph "
              "input, so no all-reduce feeds it and its qkv GEMM gets no all_gather; MoE GEMMs are hidden in "
              f"moe_forward, and the router shares the all_gather with it); {SP_RESIDUAL_SLICE}")
LLAMA4_EXPECTED = {
    SP_ORDER: ({"sequence-parallelism": 4, "async-tp": 3}, LLAMA4_ROW),
    AR_ORDER: ({"allreduce-rmsnorm": 4}, LLAMA4_ROW),
}
# Piecewise: SequenceParallelismPass and AsyncTPPass require full-graph compilation (their
# is_applicable_for_range asserts it: test_sequence_parallelism.py / test_async_tp.py
# *_requires_full_graph_compilation), so only the all-reduce + norm fusion runs on pieces.
LLAMA4_PIECE_ROW = (f"{LLAMA4_ROW}; split at the 2 attention ops: piece 0 (embeddings → first norm → qkv) "
                    "has no all-reduce, pieces 1 and 2 each fuse o_proj's all-reduce into the post-attention "
                    "norm (piece 1's residual is the embeddings, a graph input) and the MoE's into the next norm")
LLAMA4_PIECES_EXPECTED = [
    {AR_ORDER: ({"allreduce-rmsnorm": n}, LLAMA4_PIECE_ROW)} for n in (0, 2, 2)
]
TP_GROUP_ONLY = (f"{VLLM} vllm/compilation/passes/fusion/allreduce_rms_fusion.py and sequence_parallelism.py "
                 "trace their patterns through tensor_model_parallel_all_reduce, whose group_name is the TP "
                 "group's unique_name ('tp:0'): a literal of the pattern, so the 'dp:0' all-reduce never matches")
DP_TP_EXPECTED = {
    SP_ORDER: ({"sequence-parallelism": 2, "async-tp": 2},
               f"{TP_GROUP_ONLY}; async-tp: mm → reduce_scatter before the second norm, all_gather → mm after it "
               "(the mm feeding the dp all-reduce)"),
    AR_ORDER: ({"allreduce-rmsnorm": 2}, TP_GROUP_ONLY),
}
GPT_OSS_QKV_EXPECTED = {
    SP_ORDER: ({"sequence-parallelism": 0, "async-tp": 0},
               f"{VLLM} vllm/compilation/passes/fusion/collective_fusion.py: AllGatherGEMMPattern and "
               "GEMMReduceScatterPattern match aten.mm only; Inductor leaves the biased projections as aten.addmm "
               "(see README)"),
    AR_ORDER: ({"allreduce-rmsnorm": 0}, NO_ALL_REDUCE),
}

# The top-level captures under vLLM's sequence-parallel order (their all-reduce + norm counts are
# pinned by src/graph/passes/captures.test.ts and vllmFidelity.test.ts).
QWEN3_ROW = (f"{E2E} qwen3_a3b: sequence_parallel = n_layers * 2 + 1, async_tp = n_layers * 2 (MoE GEMMs hidden), "
             "n_layers = 2")
QKNR_ORDER = "noop-elimination,qk-norm-rope"
QKNR_TEST = (f"{VLLM} tests/compile/passes/test_qk_norm_rope_fusion.py @ca06e08f: test_qk_norm_rope_fusion "
             "asserts fusion_pass.matched_count == 1 (one split → per-head q/k RMSNorm → rotary block)")
QKNR_ROPE_CUSTOM = (f"{VLLM} vllm/config/compilation.py: enable_qk_norm_rope_fusion appends '+rotary_embedding' "
                    "to custom_ops (issue #28042: the native rope is not matched), so QkNormRopePattern traces "
                    "the custom rotary op and a graph with the native rotary has no site")


def qk_norm_rope_cases():
    """vLLM's QKNormRoPETestModel (16 heads, 4 KV heads, head_dim 128, 5 tokens, dynamic) in the
    forms its test runs: custom or native RMSNorm, neox or not, bf16 or f16 (eps 1e-6 and 1e-5),
    the custom rotary; and the native rotary, which vLLM never compiles under this flag."""
    out = {}

    def case(what, norm, rope_form, neox, eps, dtype, expected):
        def build():
            model = rope.QKNormRoPETestModel(16, 4, 128, eps, neox, norm, rope_form, dtype)
            return model, (torch.randn(5, model.q_size + 2 * model.kv_size, dtype=dtype), torch.arange(5))
        return Case(what, build, True, expected, world_size=1)

    for dt, dtype in DTYPES.items():
        eps = 1e-6 if dt == "bf16" else 1e-5
        for rms, norm in ON_OFF.items():
            for style, neox in (("neox", True), ("gptj", False)):
                out[f"qk-norm-rope.rms_norm-{rms}.{style}.{dt}"] = case(
                    f"QKNormRoPETestModel, custom_ops '{'+' if rms == 'on' else '-'}rms_norm,+rotary_embedding', "
                    f"is_neox {neox}, eps {eps}, {dt}, dynamic",
                    norm, "custom", neox, eps, dtype, {QKNR_ORDER: ({"qk-norm-rope": 1}, QKNR_TEST)})
    for style, neox in (("neox", True), ("gptj", False)):
        out[f"qk-norm-rope.rotary_embedding-off.{style}.bf16"] = case(
            f"QKNormRoPETestModel, custom_ops '+rms_norm,-rotary_embedding', is_neox {neox}, bf16, dynamic",
            "custom", "native", neox, 1e-6, torch.bfloat16, {QKNR_ORDER: ({"qk-norm-rope": 0}, QKNR_ROPE_CUSTOM)})
    return out


RKV_ORDER = "noop-elimination,rope-kvcache"
RKV_TEST = (f"{VLLM} tests/compile/passes/test_rope_kvcache_fusion.py @6872cb28: test_rope_kvcache_fusion "
            "asserts fusion_pass.matched_count == 1 (ROCm with AITER; the rotary, then the KV-cache update of k "
            "and v)")


def rope_kvcache_cases():
    """vLLM's QKRoPEKVCacheTestModel (64 heads, 8 KV heads, head 64, 5 tokens, dynamic, bf16,
    '+rotary_embedding'), neox or not, compiled for ROCm."""
    out = {}
    for style, neox in (("neox", True), ("gptj", False)):
        def build(neox=neox):
            model = rope.QKRoPEKVCacheTestModel(64, 8, 64, neox)
            return model, (torch.randn(5, model.q_size + 2 * model.kv_size, dtype=torch.bfloat16), torch.arange(5))
        out[f"rope-kvcache.{style}.bf16"] = Case(
            f"QKRoPEKVCacheTestModel, custom_ops '+rotary_embedding', is_neox {neox}, bf16, dynamic, ROCm",
            build, True, {RKV_ORDER: ({"rope-kvcache": 1}, RKV_TEST)}, world_size=1, platform="rocm")
    return out


AP_ORDER = "noop-elimination,act-padding"
AP_TEST = (f"{VLLM} tests/compile/passes/test_fuse_act_padding.py @e2054e12: test_fuse_act_padding asserts "
           "fusion_pass.matched_count == num_layers = 3 (ROCm with AITER; each layer's AITER fused add + RMSNorm "
           "padded 2880 → 3072 after the router GEMM reads it)")


def act_padding_cases():
    """vLLM's act-padding TestModel (hidden 2880, 3 layers, 128 experts, pad to 256, bf16, one token,
    dynamic, '+rms_norm' on ROCm with AITER)."""
    def build():
        return vt.TestActPaddingModel(torch.bfloat16), (torch.rand(1, vt.ACT_PADDING_HIDDEN, dtype=torch.bfloat16),)
    return {"act-padding.bf16": Case(
        "act-padding TestModel, AITER rmsnorm2d_fwd_with_add and rocm_unquantized_gemm, x_pad_to_multiple 256, "
        "bf16, dynamic, ROCm with AITER",
        build, True, {AP_ORDER: ({"act-padding": vt.ACT_PADDING_LAYERS}, AP_TEST)}, world_size=1, platform="rocm",
        aiter=True)}


TOP_LEVEL_EXPECTED = {
    "llama-tp2.py": (2, {SP_ORDER: llama_expected()[SP_ORDER]}),
    "qwen3-moe-tp4.py": (4, {SP_ORDER: ({"sequence-parallelism": 5, "async-tp": 4}, QWEN3_ROW)}),
    "qwen3-qknorm-tp1.py": (1, {QKNR_ORDER: ({"qk-norm-rope": 2}, f"{QKNR_TEST}; one block per attention layer, "
                                                                  "n_layers = 2")}),
}


def stack_cases():
    ids = lambda: _tokens_and_positions("ids")  # noqa: E731
    return {
        "llama-rms_norm-off-tp2": Case(
            "Llama-like, custom_ops '-rms_norm' (RMSNorm.forward_native), bf16 linears",
            lambda: (stacks.llama(norm="native"), ids()), True, llama_expected()),
        "llama-ir-tp2": Case(
            "Llama-like with vLLM IR norms, bf16 linears",
            lambda: (stacks.llama(norm="ir"), ids()), True, llama_expected()),
        "llama-fp8-quant_fp8-off-tp2": Case(
            "Llama-like, every projection FP8, custom_ops '-quant_fp8' (QuantFP8.forward_native), cutlass_scaled_mm",
            lambda: (stacks.llama(fp8=("native", "cutlass")), ids()), True, llama_expected(fp8=True),
            tolerance=FP8_TOLERANCE),
        "llama-fp8-scaled-mm-tp2": Case(
            "Llama-like, every projection FP8, static_scaled_fp8_quant, torch._scaled_mm",
            lambda: (stacks.llama(fp8=("custom", "scaled_mm")), ids()), True, llama_expected(fp8=True),
            tolerance=FP8_TOLERANCE),
        "llama-fp8-cutlass-tp2": Case(
            "Llama-like, every projection FP8, static_scaled_fp8_quant, _C.cutlass_scaled_mm",
            lambda: (stacks.llama(fp8=("custom", "cutlass")), ids()), True, llama_expected(fp8=True),
            tolerance=FP8_TOLERANCE),
        "llama4-embeds-tp2": Case(
            "Llama-4-like: inputs_embeds in, the first layer's residual a graph input, MoE layers",
            lambda: (stacks.llama4_embeds(), _tokens_and_positions("embeds")), True, LLAMA4_EXPECTED),
        "llama4-embeds-tp2-piecewise": Case(
            "llama4-embeds-tp2 in vLLM's piecewise mode: split at the attention op, each piece compiled alone",
            lambda: (stacks.llama4_embeds(), _tokens_and_positions("embeds")), True, LLAMA4_PIECES_EXPECTED,
            overrides={"piecewise": True}),
        "dp-tp-allreduce": Case(
            "two all-reduces over 'tp:0' and one over 'dp:0', each into an rms_norm",
            lambda: (stacks.DpTpModel(), (torch.randn(8, 96, dtype=torch.bfloat16),)), True, DP_TP_EXPECTED),
        "gpt-oss-qkv-bias-sp-tp2": Case(
            "GPT-OSS attention, sequence-parallel: all_gather → qkv linear with bias → … → o_proj → reduce_scatter",
            lambda: (stacks.SequenceParallelAttention(), (torch.randn(4, 96, dtype=torch.bfloat16), torch.arange(8))),
            True, GPT_OSS_QKV_EXPECTED),
    }


def cases():
    return {**sequence_parallelism_cases(), **async_tp_cases(), **stack_cases(), **qk_norm_rope_cases(),
            **rope_kvcache_cases(), **act_padding_cases()}


def expected_json():
    """fixtures/capture/expected.json: file → {worldSize, pass order → {counts, source}}."""
    def entry(world_size, expected, platform=None, aiter=False):
        return {"worldSize": world_size, **({"platform": platform} if platform else {}),
                **({"aiter": True} if aiter else {}),
                **{order: {"counts": counts, "source": source} for order, (counts, source) in expected.items()}}

    out = {}
    for name, c in cases().items():
        if isinstance(c.expected, list):
            for i, expected in enumerate(c.expected):
                out[f"tp/{name}.piece{i}.py"] = entry(c.world_size, expected)
        else:
            out[f"tp/{name}.py"] = entry(c.world_size, c.expected, c.platform, c.aiter)
    for file, (world_size, expected) in TOP_LEVEL_EXPECTED.items():
        out[file] = entry(world_size, expected)
    return out
