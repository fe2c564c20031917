"""The PyTorch side of `fusionlab bench kernels`: the same ops at the same sizes on the same GPU.
Writes a JSON list of {suite, T, us, graph_us, note} that `fusionlab bench kernels --torch FILE`
turns into ours/torch ratios.

Timing is PyTorch at its best, as vLLM runs it: each op is captured `iters` times in one CUDA
graph and replayed (graph_us: median replay time / iters, CUDA events), and `us` is the GPU time
of the op's kernels alone, from torch.profiler over replays (the number to set beside our
timestamp-query kernel times, which contain no launch either).

add + RMSNorm and the gathered all-reduce + RMSNorm are one torch.compile'd function each (a fused
Triton kernel); where compiling fails they run eagerly and say so. `copy` is torch's copy_ (the
bandwidth ceiling is the better of it and our copy kernel). The MoE baseline is per-expert cuBLAS
with the routing precomputed outside the graph (token lists per expert), the graph holding only
the expert GEMMs, activation and combine: the weight stream a decode step must pay.
"""
import argparse
import json
import sys

import torch
import torch.nn.functional as F

HIDDEN, HPAD, EXPERTS, TOPK, INTER, EPS = 2880, 3072, 32, 4, 2880, 1e-5


def time_us(fn, iters):
    """(kernel µs per call from torch.profiler, graph replay µs per call) of `fn` captured `iters` times."""
    s = torch.cuda.Stream()
    s.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(s):
        for _ in range(3):
            fn()
    torch.cuda.current_stream().wait_stream(s)
    torch.cuda.synchronize()
    g = torch.cuda.CUDAGraph()
    with torch.cuda.graph(g):
        for _ in range(iters):
            fn()
    g.replay()
    torch.cuda.synchronize()
    reps = []
    for _ in range(15):
        a, b = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        a.record()
        g.replay()
        b.record()
        b.synchronize()
        reps.append(a.elapsed_time(b) * 1000.0 / iters)
    reps.sort()
    prof_reps = 3
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CUDA]) as prof:
        for _ in range(prof_reps):
            g.replay()
        torch.cuda.synchronize()
    kernel_us = sum(e.device_time_total for e in prof.key_averages() if e.device_type == torch.autograd.DeviceType.CUDA)
    del g
    return kernel_us / (prof_reps * iters), reps[len(reps) // 2]


def add_rms_norm(x, res, w):
    z = x + res
    zf = z.float()
    y = (zf * torch.rsqrt(zf.pow(2).mean(-1, keepdim=True) + EPS)).to(x.dtype) * w
    return y, z


def allreduce_rms_norm(g, res, w):
    ar = (g[0].float() + g[1].float()).to(res.dtype)
    z = (ar.float() + res.float()).to(res.dtype)
    zf = z.float()
    return (zf * torch.rsqrt(zf.pow(2).mean(-1, keepdim=True) + EPS) * w.float()).to(res.dtype), z


def moe_routed(x, logits, w13, b13, w2, b2):
    """Per-expert cuBLAS with the routing done here, once: returns the graph-capturable step."""
    vals, ids = torch.topk(logits.float(), TOPK, dim=-1)
    wts = torch.softmax(vals, dim=-1)
    plan = []
    for e in torch.unique(ids).tolist():
        tok, k = (ids == e).nonzero(as_tuple=True)
        plan.append((e, tok, wts[tok, k, None].contiguous()))
    out = torch.zeros(x.shape, dtype=torch.float32, device=x.device)

    def step():
        out.zero_()
        for e, tok, wk in plan:
            h = torch.addmm(b13[e], x[tok], w13[e].t())
            gate, up = h[:, 0::2].clamp(max=7.0), h[:, 1::2].clamp(-7.0, 7.0)
            a = ((up + 1) * gate * torch.sigmoid(1.702 * gate)).to(x.dtype)
            y = torch.addmm(b2[e], a, w2[e].t())
            out.index_add_(0, tok, wk * y.float())
        return out
    return step


def main():
    p = argparse.ArgumentParser()
    p.add_argument('--dtype', default='bf16', choices=['bf16', 'f32'])
    p.add_argument('--out', required=True)
    p.add_argument('--no-compile', action='store_true')
    args = p.parse_args()
    dt = torch.bfloat16 if args.dtype == 'bf16' else torch.float32
    dev = 'cuda'
    torch.manual_seed(0)
    res = []
    iters = 20

    def timed(suite, T, fn, note, n_iters=iters):
        us, graph_us = time_us(fn, n_iters)
        res.append({'suite': suite, 'T': T, 'us': us, 'graph_us': graph_us, 'note': note})

    for mib in (64, 256, 1024):
        n = mib * 2 ** 20
        src = torch.empty(n, dtype=torch.uint8, device=dev).random_()
        dst = torch.empty_like(src)
        timed('copy', n, lambda: dst.copy_(src), 'copy_', 10)
    del src, dst

    compiled = {}
    note = 'eager'
    if not args.no_compile:
        try:
            # As vLLM compiles: the token count dynamic, the hidden size static (a dynamic
            # hidden size makes Inductor loop the row reduction and read each row twice).
            torch._dynamo.config.recompile_limit = 64
            compiled['add'] = torch.compile(add_rms_norm)
            compiled['ar'] = torch.compile(allreduce_rms_norm)
            note = 'torch.compile, dynamic T'
        except Exception as e:  # noqa: BLE001 - report and fall back
            print(f'torch.compile unavailable: {e}', file=sys.stderr)
    f_add = compiled.get('add', add_rms_norm)
    f_ar = compiled.get('ar', allreduce_rms_norm)
    w = (1 + 0.25 * (torch.rand(HIDDEN, device=dev) * 2 - 1)).to(dt)
    for T in (1, 16, 128, 1024, 4096, 16384):
        x = torch.randn(T, HIDDEN, device=dev).to(dt)
        r = torch.randn(T, HIDDEN, device=dev).to(dt)
        g = torch.randn(2, T, HIDDEN, device=dev).to(dt)
        if T > 1:  # dynamo specializes sizes 0 and 1 whatever is marked
            for t, dim in ((x, 0), (r, 0), (g, 1)):
                torch._dynamo.mark_dynamic(t, dim)
        try:
            timed('add+rmsnorm', T, lambda: f_add(x, r, w), note)
            timed('allreduce+rmsnorm (2 ranks gathered)', T, lambda: f_ar(g, r, w), note)
        except Exception as e:  # noqa: BLE001
            print(f'compiled norm failed at T={T}: {e}', file=sys.stderr)
            timed('add+rmsnorm', T, lambda: add_rms_norm(x, r, w), 'eager')
            timed('allreduce+rmsnorm (2 ranks gathered)', T, lambda: allreduce_rms_norm(g, r, w), 'eager')

    w13 = (torch.rand(EXPERTS, 2 * INTER, HPAD, device=dev) * 2 - 1).mul_(HPAD ** -0.5).to(dt)
    b13 = (torch.rand(EXPERTS, 2 * INTER, device=dev) * 0.2 - 0.1).to(dt)
    w2 = (torch.rand(EXPERTS, HPAD, INTER, device=dev) * 2 - 1).mul_(INTER ** -0.5).to(dt)
    b2 = (torch.rand(EXPERTS, HPAD, device=dev) * 0.2 - 0.1).to(dt)
    for T in (1, 4, 16, 64, 256, 1024, 4096):
        x = torch.randn(T, HPAD, device=dev).to(dt)
        logits = torch.randn(T, EXPERTS, device=dev).to(dt)
        timed('moe (expert weights streamed)', T, moe_routed(x, logits, w13, b13, w2, b2), 'per-expert cuBLAS, routing precomputed, CUDA graph', 3 if T >= 1024 else 10)
    del w13, w2

    for M, N, K in ((64, 2880, 2880), (2048, 2880, 2880), (4096, 5120, 2880)):
        a = torch.randn(M, K, device=dev).to(dt)
        b = torch.randn(N, K, device=dev).to(dt)
        timed('gemm', M, lambda: a @ b.t(), 'cuBLAS')

    with open(args.out, 'w') as f:
        json.dump(res, f)
    print(f'torch {torch.__version__} on {torch.cuda.get_device_name()}: {len(res)} timings -> {args.out}')


if __name__ == '__main__':
    main()
