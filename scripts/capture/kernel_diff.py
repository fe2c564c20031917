"""Inductor's output code of one small FP8 model twice: before and after vLLM's fusion passes.

    pip install torch            # CPU build is enough; torch is needed only to re-capture
    python scripts/capture/kernel_diff.py fixtures/kernels-diff

A Llama-like stack (embedding, 2 layers of norm → FP8 linear → add-norm → FP8 gate_up → SiLU-mul
→ FP8 down, a final add-norm; bf16, static per-tensor FP8 scales) is compiled with Inductor on the
CPU (C++ kernels) in two forms:
  - `before/`: the norms and quants in their torch-native forms (vLLM's default under Inductor,
    custom ops off: RMSNorm.forward_native, QuantFP8.forward_native, SiluAndMul.forward_native),
    the GEMM as `_C.cutlass_scaled_mm`. Inductor fuses the native ops into its own C++ kernels.
  - `after/`: the same model with vLLM's fused ops where RMSNormQuantFusionPass and
    ActivationQuantFusionPass put them (vllm/compilation/passes/fusion/rms_quant_fusion.py,
    act_quant_fusion.py): `_C.rms_norm_static_fp8_quant`, `_C.fused_add_rms_norm_static_fp8_quant`,
    `_C.silu_and_mul_quant`. They are custom-op launches in the output code; the C++ kernels that
    held those ops are gone or smaller.
Each folder keeps TORCH_COMPILE_DEBUG's fx_graph_transformed.py (the post-grad graph), output_code.py
and the provenance mapping (`provenance_tracking_level = 1`). The two compiled models are checked
to compute what the eager unfused one does.
"""

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

HIDDEN = 64
INTERMEDIATE = 128
VOCAB = 256
LAYERS = 2
TOKENS = 8
EPS = 1e-6
FORMS = ("before", "after")


def child(out, form):
    import torch
    import torch._inductor.config as inductor_config

    import layers

    inductor_config.trace.provenance_tracking_level = 1
    inductor_config.fx_graph_cache = False
    torch.manual_seed(0)
    dtype = torch.bfloat16
    fp8 = layers.FP8

    def scale():
        return torch.nn.Parameter(torch.tensor([0.02]), requires_grad=False)

    class Linear(torch.nn.Module):
        """The FP8 GEMM of a static per-tensor FP8 linear, on an input already quantized."""

        def __init__(self, in_f, out_f):
            super().__init__()
            w = (torch.randn(out_f, in_f) * 8).clamp(-448, 448).to(fp8)
            self.weight = torch.nn.Parameter(w, requires_grad=False)
            self.input_scale, self.weight_scale = scale(), scale()

        def forward(self, q):
            return layers.scaled_mm(q, self.weight.t(), self.input_scale, self.weight_scale, dtype, form="cutlass")

    class Block(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.input_norm = layers.RMSNorm(HIDDEN, EPS, dtype, form="native")
            self.o_proj = Linear(HIDDEN, HIDDEN)
            self.post_norm = layers.RMSNorm(HIDDEN, EPS, dtype, form="native")
            self.gate_up = Linear(HIDDEN, 2 * INTERMEDIATE)
            self.down = Linear(INTERMEDIATE, HIDDEN)
            self.form = form

        def norm_quant(self, norm, x, residual, s):
            if self.form == "before":
                if residual is None:
                    return layers.quant_fp8_static(norm(x), s, "native"), None
                h, residual = norm(x, residual)
                return layers.quant_fp8_static(h, s, "native"), residual
            q = torch.empty(x.shape, dtype=fp8)
            if residual is None:
                torch.ops._C.rms_norm_static_fp8_quant(q, x, norm.weight, s, norm.eps)
                return q, x
            torch.ops._C.fused_add_rms_norm_static_fp8_quant(q, x, residual, norm.weight, s, norm.eps)
            return q, residual

        def silu_mul_quant(self, gu, s):
            if self.form == "before":
                d = gu.shape[-1] // 2
                return layers.quant_fp8_static(torch.nn.functional.silu(gu[..., :d]) * gu[..., d:], s, "native")
            q = torch.empty((*gu.shape[:-1], gu.shape[-1] // 2), dtype=fp8)
            torch.ops._C.silu_and_mul_quant(q, gu, s)
            return q

        def forward(self, x, residual):
            q, residual = self.norm_quant(self.input_norm, x, residual, self.o_proj.input_scale)
            residual = x if residual is None else residual
            h = self.o_proj(q)
            q, residual = self.norm_quant(self.post_norm, h, residual, self.gate_up.input_scale)
            return self.down(self.silu_mul_quant(self.gate_up(q), self.down.input_scale)), residual

    class Model(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.embed = torch.nn.Embedding(VOCAB, HIDDEN).to(dtype)
            self.blocks = torch.nn.ModuleList(Block() for _ in range(LAYERS))
            self.norm = layers.RMSNorm(HIDDEN, EPS, dtype, form="native")

        def forward(self, tokens):
            x, residual = self.embed(tokens), None
            for b in self.blocks:
                x, residual = b(x, residual)
            return self.norm(x, residual)[0]

    model = Model().eval()
    compiled = torch.compile(model)
    with torch.no_grad():
        tokens = torch.randint(0, VOCAB, (TOKENS,))
        got = compiled(tokens)
        # The reference: the same weights, eager and unfused (the fused ops' bodies are the pairs,
        # vllm_ops.py); an FP8 rounding may differ from the compiled kernels' by a step.
        for b in model.blocks:
            b.form = "before"
        ref = model(tokens)
        torch.testing.assert_close(got.float(), ref.float(), atol=0.5, rtol=0.05)
    return torch.__version__


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("out")
    parser.add_argument("--child", choices=FORMS, help=argparse.SUPPRESS)
    args = parser.parse_args()
    out = os.path.abspath(args.out)
    if args.child:
        print(child(out, args.child))
        return
    from torch_trace import keep_debug

    kept, version = {}, None
    for form in FORMS:
        work = tempfile.mkdtemp(prefix=f"kernel_diff_{form}_")
        env = dict(os.environ)
        env.update(
            TORCH_COMPILE_DEBUG="1",
            TORCH_COMPILE_DEBUG_DIR=os.path.join(work, "debug"),
            TORCHINDUCTOR_CACHE_DIR=os.path.join(work, "cache"),
            TORCHINDUCTOR_FX_GRAPH_CACHE="0",
        )
        res = subprocess.run(
            [sys.executable, os.path.abspath(__file__), out, "--child", form],
            env=env, check=False, capture_output=True, text=True, cwd=work,
        )
        if res.returncode:
            sys.exit(f"{form}: compile failed\n{res.stderr[-4000:]}")
        version = res.stdout.strip().splitlines()[-1]
        side = os.path.join(out, form)
        shutil.rmtree(side, ignore_errors=True)
        os.makedirs(side)
        files = keep_debug(os.path.join(work, "debug"), side, ["0"])
        # One compile: its folder's files straight under before/ or after/.
        for f in files:
            os.replace(os.path.join(side, f), os.path.join(side, os.path.basename(f)))
        shutil.rmtree(os.path.join(side, "debug"), ignore_errors=True)
        for drop in ("fx_graph_readable.py",):
            if os.path.exists(os.path.join(side, drop)):
                os.remove(os.path.join(side, drop))
        kept[form] = sorted(os.listdir(side))
    print(json.dumps({"torch": version, "kept": kept}, indent=1))


if __name__ == "__main__":
    main()
