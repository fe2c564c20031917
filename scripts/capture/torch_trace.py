"""Capture a TORCH_TRACE log, a TORCH_COMPILE_DEBUG folder and a profiler trace of one run.

    pip install torch            # CPU build is enough; torch is needed only to re-capture
    python scripts/capture/torch_trace.py fixtures/trace            # CPU: C++ kernels
    python scripts/capture/torch_trace.py OUT --device cuda          # GPU host: Triton kernels

A small Llama-like model (2 layers, RMSNorm, rotary, SiLU-mul MLP) is compiled with Inductor
and run so that the log shows what real runs show:
  - one graph break (`torch._dynamo.graph_break()` between the layers: two frames' graphs),
  - one recompile (the second call changes the token count, a static shape guard fails and the
    frame is compiled again with the token dim dynamic).
Everything is written into OUT:
  - `torch_trace/dedicated_log_torch_trace_*.log`: TORCH_TRACE's structured log (what tlparse reads),
  - `debug/`: TORCH_COMPILE_DEBUG's folders of the graphs the profiled call ran
    (fx_graph_readable.py, fx_graph_transformed.py, output_code.py, provenance mappings),
  - `profile.json.gz`: a torch.profiler Chrome trace of the compiled model's run, with
    TORCHINDUCTOR_CPP_ENABLE_KERNEL_PROFILE=1 so Inductor's C++ kernels appear in it.
"""

import argparse
import glob
import gzip
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile

HIDDEN = 64
HEADS = 4
HEAD_DIM = HIDDEN // HEADS
INTERMEDIATE = 128
VOCAB = 256
LAYERS = 2


def child(out, device):
    # Set before torch is imported: the structured log and the debug folder are configured at import.
    import torch
    import torch._inductor.config as inductor_config

    inductor_config.trace.provenance_tracking_level = 1
    inductor_config.fx_graph_cache = False
    torch.manual_seed(0)

    class RMSNorm(torch.nn.Module):
        def __init__(self, dim, eps=1e-6):
            super().__init__()
            self.weight = torch.nn.Parameter(torch.ones(dim))
            self.eps = eps

        def forward(self, x):
            variance = x.pow(2).mean(-1, keepdim=True)
            return x * torch.rsqrt(variance + self.eps) * self.weight

    def rotate_half(x):
        x1, x2 = x.chunk(2, dim=-1)
        return torch.cat((-x2, x1), dim=-1)

    class Layer(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.input_norm = RMSNorm(HIDDEN)
            self.qkv_proj = torch.nn.Linear(HIDDEN, 3 * HIDDEN, bias=False)
            self.o_proj = torch.nn.Linear(HIDDEN, HIDDEN, bias=False)
            self.post_norm = RMSNorm(HIDDEN)
            self.gate_up_proj = torch.nn.Linear(HIDDEN, 2 * INTERMEDIATE, bias=False)
            self.down_proj = torch.nn.Linear(INTERMEDIATE, HIDDEN, bias=False)

        def forward(self, x, cos, sin):
            t = x.shape[0]
            h = self.input_norm(x)
            q, k, v = self.qkv_proj(h).view(t, 3, HEADS, HEAD_DIM).unbind(1)
            q = q * cos + rotate_half(q) * sin
            k = k * cos + rotate_half(k) * sin
            attn = torch.nn.functional.scaled_dot_product_attention(
                q.transpose(0, 1), k.transpose(0, 1), v.transpose(0, 1), is_causal=True
            )
            x = x + self.o_proj(attn.transpose(0, 1).reshape(t, HIDDEN))
            gate, up = self.gate_up_proj(self.post_norm(x)).chunk(2, dim=-1)
            return x + self.down_proj(torch.nn.functional.silu(gate) * up)

    class Model(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.embed = torch.nn.Embedding(VOCAB, HIDDEN)
            self.layers = torch.nn.ModuleList(Layer() for _ in range(LAYERS))
            self.norm = RMSNorm(HIDDEN)
            inv_freq = 1.0 / (10000 ** (torch.arange(0, HEAD_DIM, 2).float() / HEAD_DIM))
            self.register_buffer("inv_freq", inv_freq)

        def forward(self, tokens):
            positions = torch.arange(tokens.shape[0], device=tokens.device).float()
            freqs = torch.outer(positions, self.inv_freq)
            emb = torch.cat((freqs, freqs), dim=-1)
            cos, sin = emb.cos()[:, None, :], emb.sin()[:, None, :]
            x = self.layers[0](self.embed(tokens), cos, sin)
            # The graph break the log shows: the frame is split here into two graphs (the second
            # in Dynamo's resume function). Not inside a loop: a break there skips the whole frame.
            torch._dynamo.graph_break()
            x = self.layers[1](x, cos, sin)
            return self.norm(x)

    model = Model().to(device).eval()
    compiled = torch.compile(model)
    with torch.no_grad():
        first = torch.randint(0, VOCAB, (8,), device=device)
        torch.testing.assert_close(compiled(first), model(first))
        # A new token count fails the static-shape guard: the recompile the log shows.
        second = torch.randint(0, VOCAB, (12,), device=device)
        torch.testing.assert_close(compiled(second), model(second))
        from torch.profiler import ProfilerActivity, profile

        activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if device == "cuda" else [])
        with profile(activities=activities, record_shapes=True) as prof:
            compiled(second)
            if device == "cuda":
                torch.cuda.synchronize()
        trace = os.path.join(out, "profile.json")
        prof.export_chrome_trace(trace)
    return torch.__version__


def profiled_graphs(debug_root, trace_text):
    """The N of each `model__N_inference_N.N` folder whose kernels the profiled call ran. C++ kernels
    carry the graph's number (`graph_N_cpp_fused_…`); Triton kernels do not (`triton_poi_fused_…_0`),
    so a folder counts when every Triton kernel its output code defines appears in the trace."""
    numbered = set(re.findall(r'"graph_(\d+)_', trace_text))
    if numbered:
        return sorted(numbered)
    launched = set(re.findall(r'"name":\s*"(triton_\w+)"', trace_text))
    found = set()
    for code in glob.glob(os.path.join(debug_root, "**", "torchinductor", "*", "output_code.py"), recursive=True):
        with open(code) as f:
            defined = set(re.findall(r"async_compile\.triton\('(\w+)'", f.read()))
        m = re.match(r"model__(\d+)_", os.path.basename(os.path.dirname(code)))
        if m and defined and defined <= launched:
            found.add(m.group(1))
    return sorted(found)


def keep_debug(debug_root, out, profiled):
    """Copy the files a reader needs from the TORCH_COMPILE_DEBUG folders of the graphs the profiled
    call ran (`profiled_graphs`); the log holds every graph's output code and provenance mappings
    anyway."""
    wanted = (
        "fx_graph_readable.py",
        "fx_graph_transformed.py",
        "output_code.py",
        "inductor_provenance_tracking_node_mappings.json",
    )
    kept = []
    for src in sorted(glob.glob(os.path.join(debug_root, "**", "torchinductor", "*"), recursive=True)):
        if not os.path.isdir(src):
            continue
        name = os.path.basename(src)
        if not any(name.startswith(f"model__{n}_") for n in profiled):
            continue
        for f in wanted:
            path = os.path.join(src, f)
            if os.path.exists(path):
                dst = os.path.join(out, "debug", name, f)
                os.makedirs(os.path.dirname(dst), exist_ok=True)
                shutil.copy(path, dst)
                kept.append(os.path.relpath(dst, out))
    return kept


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("out")
    parser.add_argument("--device", default="cpu", choices=("cpu", "cuda"))
    parser.add_argument(
        "--keep-work", action="store_true", help="also write OUT/work.tar.gz: Inductor's whole work folder"
    )
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    out = os.path.abspath(args.out)
    if args.child:
        print(child(out, args.device))
        return
    os.makedirs(out, exist_ok=True)
    work = tempfile.mkdtemp(prefix="torch_trace_")
    env = dict(os.environ)
    env.update(
        TORCH_TRACE=os.path.join(work, "torch_trace"),
        TORCH_COMPILE_DEBUG="1",
        TORCH_COMPILE_DEBUG_DIR=os.path.join(work, "debug"),
        TORCHINDUCTOR_CPP_ENABLE_KERNEL_PROFILE="1",
        TORCHINDUCTOR_CACHE_DIR=os.path.join(work, "cache"),
        TORCHINDUCTOR_FX_GRAPH_CACHE="0",
    )
    res = subprocess.run(
        [sys.executable, __file__, out, "--device", args.device, "--child"],
        env=env,
        capture_output=True,
        text=True,
        cwd=work,
    )
    if args.keep_work:
        # Everything Inductor wrote but its cache (compiled binaries), for a run that cannot be repeated.
        shutil.rmtree(os.path.join(work, "cache"), ignore_errors=True)
        shutil.make_archive(os.path.join(out, "work"), "gztar", work)
    if res.returncode:
        # The child's own error, not only its exit status: on a lent GPU host there is no second try.
        print(res.stdout[-4000:], res.stderr[-8000:], file=sys.stderr)
        sys.exit(res.returncode)
    version = res.stdout.strip().splitlines()[-1]
    shutil.rmtree(os.path.join(out, "torch_trace"), ignore_errors=True)
    shutil.rmtree(os.path.join(out, "debug"), ignore_errors=True)
    shutil.copytree(os.path.join(work, "torch_trace"), os.path.join(out, "torch_trace"))
    trace = os.path.join(out, "profile.json")
    with open(trace) as f:
        profiled = profiled_graphs(os.path.join(work, "debug"), f.read())
    kept = keep_debug(os.path.join(work, "debug"), out, profiled)
    with open(trace, "rb") as src, gzip.open(trace + ".gz", "wb") as dst:
        dst.write(src.read())
    os.remove(trace)
    print(json.dumps({"torch": version, "debug": kept}, indent=1))


if __name__ == "__main__":
    main()
