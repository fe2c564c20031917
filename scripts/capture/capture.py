"""Capture post-grad FX graphs of vLLM-like models through a real torch.compile.

    pip install torch            # CPU build is enough; torch is needed only to re-capture
    python scripts/capture/capture.py fixtures/capture

The graphs are taken where vLLM's own passes see them: Inductor's `post_grad_custom_post_pass`
(vLLM's PostGradPassManager sits there), compiled with the Inductor settings vLLM passes
(auto_functionalized v1 unless a capture asks for v2, no FX graph cache) and the token dim
marked dynamic as vLLM's model runner marks it. Each capture is written as print_readable text
(`NAME.py`) and as `str(graph)` (`NAME.graph.txt`); a few more files show the other forms a user
has: TORCH_COMPILE_DEBUG's fx_graph_readable.py / fx_graph_transformed.py, and a vLLM debug dump
folder (one file per pass stage, `graph.python_code(root_module="self", verbose=True)`).

`tp/` holds vLLM's own sequence-parallelism / async-TP test models and Llama-like stacks in each
form vLLM's tests compile them (cases.py), and `expected.json` the match counts vLLM gives for
them. Every capture is checked: the compiled model computes what the eager one does.
"""

import argparse
import copy
import glob
import json
import os
import shutil
import subprocess
import sys
import tempfile

import torch
from torch._inductor.custom_graph_pass import CustomGraphPass

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import cases  # noqa: E402
import models  # noqa: E402

TOKENS = 8
REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SPLITTING_OPS = ("vllm.unified_attention_with_output.default", "vllm.unified_attention_with_output")


def relative_paths(text):
    # `# File:` comments name the model source by its path in this repository.
    return text.replace(REPO_ROOT + "/", "")


def captures():
    """name → (dims, tp, inductor overrides)."""
    out = {}
    for tp in (2, 4, 8):
        out[f"gpt-oss-before-tp{tp}"] = (models.gpt_oss(slice_first=False), tp, {})
        out[f"gpt-oss-after-tp{tp}"] = (models.gpt_oss(slice_first=True), tp, {})
    out["llama-tp2"] = (models.llama(), 2, {})
    out["llama-fp8-tp2"] = (models.llama(fp8=True), 2, {})
    # TP 1: no all-reduce, so every norm → quant and silu_and_mul → quant is a norm-quant /
    # act-quant site.
    out["llama-fp8-tp1"] = (models.llama(fp8=True, fp8_down=True), 1, {})
    # The same at TP 1 with vLLM's other FP8 / FP4 schemes: dynamic per-token, per-token groups of
    # 128 (block FP8), NVFP4.
    for kind in ("dynamic", "group128", "nvfp4"):
        out[f"llama-{'nvfp4' if kind == 'nvfp4' else 'fp8-' + kind}-tp1"] = (
            models.llama(fp8=True, fp8_down=True, fp8_kind=kind), 1, {})
    out["qwen3-moe-tp4"] = (models.qwen3_moe(), 4, {})
    # Qwen3 dense at TP 1: per-head q/k RMSNorm → rotary, the QK-norm + RoPE fusion's sites.
    out["qwen3-qknorm-tp1"] = (models.qwen3(), 1, {})
    out["llama-tp2-v2"] = (models.llama(), 2, {"enable_auto_functionalized_v2": True})
    # vLLM's default piecewise mode: the graph is split at the attention op and each piece
    # compiled on its own.
    out["llama-tp2-piecewise"] = (models.llama(), 2, {"piecewise": True})
    return out


class CapturePass(CustomGraphPass):
    """Records the graph as vLLM's pass manager receives it; changes nothing."""

    def __init__(self, dump_dir=None):
        self.graphs = []
        self.dump_dir = dump_dir

    def __call__(self, graph: torch.fx.Graph):
        gm = graph.owning_module
        self.graphs.append((relative_paths(gm.print_readable(print_output=False)), relative_paths(str(graph))))
        if self.dump_dir:
            dump_stages(gm, self.dump_dir)

    def uuid(self):
        return None


def vllm_dump(graph: torch.fx.Graph) -> str:
    # VllmInductorPass.dump_graph's file body.
    src = graph.python_code(root_module="self", verbose=True).src
    return "import torch; from torch import device\n" + relative_paths(src) + "\n"


def dump_stages(gm, folder):
    """The first and last stage files of vLLM's pass manager: the graph its first pass receives,
    and the graph after fix_functionalization (auto_functionalized turned back into in-place
    calls, which Inductor's decompose_auto_functionalized does the same way)."""
    from torch._inductor.fx_passes.post_grad import decompose_auto_functionalized
    os.makedirs(folder, exist_ok=True)
    with open(os.path.join(folder, "before_noop_elimination-0.py"), "w") as f:
        f.write(vllm_dump(gm.graph))
    fixed = copy.deepcopy(gm)
    decompose_auto_functionalized(fixed.graph)
    fixed.graph.eliminate_dead_code()
    with open(os.path.join(folder, "after_fix_functionalization-0.py"), "w") as f:
        f.write(vllm_dump(fixed.graph))


def compile_and_run(dims, tp, overrides, dump_dir=None):
    torch._dynamo.reset()
    model = models.Model(dims, tp).eval()
    ids = torch.randint(0, dims.vocab, (TOKENS,))
    positions = torch.arange(TOKENS)
    return compile_and_check(model, (ids, positions), True, overrides, dump_dir)


def compile_and_check(model, inputs, dynamic, overrides, dump_dir=None, tolerance=2e-2):
    """Compile `model` as vLLM does, take the post-grad graph(s), and check that the compiled
    model computes what the eager one does (the ops' CPU bodies)."""
    piecewise = overrides.get("piecewise", False)
    capture = CapturePass(dump_dir)
    options = {
        # vLLM's CompilationConfig: auto_functionalized v1 (its passes match on it).
        "enable_auto_functionalized_v2": False,
        "fx_graph_cache": False,
        "post_grad_custom_post_pass": capture,
        **overrides,
    }
    if options.pop("piecewise", False):
        compiled = torch.compile(model, fullgraph=True, backend=piecewise_backend(options))
    else:
        compiled = torch.compile(model, fullgraph=True, backend="inductor", options=options)
    if dynamic:
        # gpu_model_runner: the token dim is dynamic.
        for x in inputs:
            torch._dynamo.mark_dynamic(x, 0)
    with torch.no_grad():
        # Eager first, on copies: a graph may write into its inputs (a residual that enters
        # as one is updated in place by fused_add_rms_norm).
        want = model(*[x.clone() for x in inputs])
        got = compiled(*inputs)
    # A model may return several tensors (q, k, v of the QK-norm + RoPE test model).
    pairs = zip(got, want) if isinstance(got, tuple) else [(got, want)]
    for g, w in pairs:
        torch.testing.assert_close(g.float(), w.float(), rtol=tolerance, atol=tolerance)
    if not piecewise and len(capture.graphs) != 1:
        raise SystemExit(f"expected one post-grad graph, got {len(capture.graphs)} (a graph break?)")
    return capture.graphs


def piecewise_backend(options):
    """vLLM's VllmBackend in brief: split the Dynamo graph at the splitting ops (each one a
    piece of its own, left uncompiled), then compile every other piece through Inductor with
    fake inputs propagated piece to piece (PiecewiseCompileInterpreter)."""
    from torch._inductor.compile_fx import compile_fx
    from torch.fx.passes.split_module import split_module

    def is_split(node):
        return node.op == "call_function" and str(node.target).replace("::", ".") in SPLITTING_OPS

    def backend(gm, example_inputs):
        piece, ids = 0, {}
        for node in gm.graph.nodes:
            if node.op in ("placeholder", "output"):
                continue
            if is_split(node):
                ids[node] = piece + 1
                piece += 2
            else:
                ids[node] = piece
        split = split_module(gm, None, lambda n: ids[n], keep_original_order=True)
        splitting = {name for name, sub in split.named_children()
                     if any(is_split(n) for n in sub.graph.nodes)}
        fake_mode = torch._guards.detect_fake_mode(example_inputs)

        class PieceCompiler(torch.fx.Interpreter):
            def call_module(self, target, args, kwargs):
                out = super().call_module(target, args, kwargs)
                if target not in splitting:
                    sub = self.fetch_attr(target)
                    split.__dict__[target] = compile_fx(sub, list(args), config_patches=options)
                return out

        fake = [fake_mode.from_tensor(t) if isinstance(t, torch.Tensor) else t for t in example_inputs]
        with fake_mode:
            PieceCompiler(split).run(*fake)
        return split

    return backend


def header(name, dims, tp):
    return (f"# Captured by scripts/capture/capture.py: {name}, torch {torch.__version__}, "
            f"{dims.family}, {dims.layers} layers, TP {tp} (rank 0), Inductor post-grad\n")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("out", help="folder for the captured text (fixtures/capture)")
    ap.add_argument("--only", help="capture only this name")
    ap.add_argument("--debug-files", metavar="NAME", help=argparse.SUPPRESS)
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)
    table = captures()

    if args.debug_files:
        # Run under TORCH_COMPILE_DEBUG in a child process (set by the parent below).
        dims, tp, overrides = table[args.debug_files]
        compile_and_run(dims, tp, overrides)
        return

    for name, (dims, tp, overrides) in table.items():
        if args.only and name != args.only:
            continue
        dump = os.path.join(args.out, f"vllm-dump-{name}") if name == "gpt-oss-before-tp2" else None
        graphs = compile_and_run(dims, tp, overrides, dump)
        for i, (readable, text) in enumerate(graphs):
            # A piecewise capture: one file per piece, in execution order.
            stem = name if len(graphs) == 1 else f"{name}.piece{i}"
            with open(os.path.join(args.out, f"{stem}.py"), "w") as f:
                f.write(header(stem, dims, tp) + readable)
            with open(os.path.join(args.out, f"{stem}.graph.txt"), "w") as f:
                f.write(text)
            print(f"captured {stem}")

    for name, case in cases.cases().items():
        if args.only and name != args.only:
            continue
        capture_case(os.path.join(args.out, "tp"), name, case)
    with open(os.path.join(args.out, "expected.json"), "w") as f:
        json.dump(cases.expected_json(), f, indent=2, ensure_ascii=False)
        f.write("\n")

    if not args.only or args.only == "debug":
        debug_files(args.out, "llama-tp2")


def capture_case(out, name, case):
    """fixtures/capture/tp/ files: the print_readable text of the post-grad graph (one per piece)."""
    os.makedirs(out, exist_ok=True)
    torch._dynamo.reset()
    torch.manual_seed(0)
    model, inputs = case.build()
    graphs = compile_and_check(model.eval(), inputs, case.dynamic, case.overrides, tolerance=case.tolerance)
    for i, (readable, _) in enumerate(graphs):
        stem = name if len(graphs) == 1 else f"{name}.piece{i}"
        with open(os.path.join(out, f"{stem}.py"), "w") as f:
            f.write(f"# Captured by scripts/capture/capture.py: {stem}, torch {torch.__version__}, "
                    f"{case.what}, Inductor post-grad\n" + readable)
        print(f"captured tp/{stem}")


def debug_files(out, name):
    with tempfile.TemporaryDirectory() as tmp:
        env = dict(os.environ, TORCH_COMPILE_DEBUG="1", TORCH_COMPILE_DEBUG_DIR=tmp)
        subprocess.run([sys.executable, __file__, out, "--debug-files", name], env=env, check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        for file in ("fx_graph_readable.py", "fx_graph_transformed.py"):
            found = glob.glob(os.path.join(tmp, "**", file), recursive=True)
            if len(found) != 1:
                raise SystemExit(f"TORCH_COMPILE_DEBUG wrote {len(found)} copies of {file}")
            with open(found[0]) as f, open(os.path.join(out, f"{name}.debug.{file}"), "w") as g:
                g.write(relative_paths(f.read()))
            print(f"captured {name}.debug.{file}")


if __name__ == "__main__":
    main()
