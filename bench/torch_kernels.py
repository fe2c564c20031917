"""The PyTorch side of `fusionlab bench kernels`: the same ops at the same sizes on the same GPU.
Writes a JSON list of {suite, T, us, graph_us, compile, ...} that `fusionlab bench kernels --torch
FILE` sets beside our times.

Every op is timed two ways, as ours is: `us` is the GPU time of its kernels alone (torch.profiler,
CUPTI, over CUDA-graph replays; beside our timestamps around the kernel), `graph_us` the replay time
of a CUDA graph holding `iters` back-to-back calls, divided by `iters` (beside our N dispatches in one
submit / N).

add + RMSNorm is compiled several times (caches off, so every compile autotunes afresh), with the
token count dynamic (as vLLM compiles) and static, each compile its own entry named in `compile`;
the gathered all-reduce + RMSNorm once, dynamic. `copy` is torch's copy_ (the ceiling is the better
of it and our copy kernel). MoE, on the logits ours routes (--logits, written by the bench): a
grouped GEMM in Triton (bench/triton_moe.py, the shape of vLLM's fused MoE; routing in the graph,
every config of its list timed and named) and per-expert cuBLAS (routing precomputed outside the
graph: it cannot be captured), each entry with the experts it touched.
"""
import argparse
import json
import os
import sys

# Every compile autotunes anew (a cached compile would only repeat the first one's picks).
os.environ.setdefault('TORCHINDUCTOR_FORCE_DISABLE_CACHES', '1')

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402,F401

HIDDEN, HPAD, EXPERTS, TOPK, INTER, EPS = 2880, 3072, 32, 4, 2880, 1e-5


def time_us(fn, iters, kernel_filter=None):
    """(kernel µs per call from torch.profiler, graph replay µs per call, µs per call of the kernels whose name holds kernel_filter) of `fn` captured `iters` times."""
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
    cuda = [e for e in prof.key_averages() if e.device_type == torch.autograd.DeviceType.CUDA]
    kernel_us = sum(e.device_time_total for e in cuda)
    part_us = sum(e.device_time_total for e in cuda if kernel_filter and kernel_filter in e.key)
    del g
    n = prof_reps * iters
    return kernel_us / n, reps[len(reps) // 2], part_us / n


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
    p.add_argument('--logits', help='JSON {T: [T*32 floats]}: the logits our MoE routes (bench kernels --dump-logits)')
    p.add_argument('--compiles', type=int, default=2, help='compiles of add + RMSNorm per token mode')
    p.add_argument('--no-compile', action='store_true')
    args = p.parse_args()
    dt = torch.bfloat16 if args.dtype == 'bf16' else torch.float32
    dev = 'cuda'
    torch.manual_seed(0)
    res = []
    iters = 20

    def timed(suite, T, fn, compile_name, n_iters=iters, **extra):
        us, graph_us, _ = time_us(fn, n_iters)
        res.append({'suite': suite, 'T': T, 'us': us, 'graph_us': graph_us, 'compile': compile_name, **extra})

    for mib in (64, 256, 1024):
        n = mib * 2 ** 20
        src = torch.empty(n, dtype=torch.uint8, device=dev).random_()
        dst = torch.empty_like(src)
        timed('copy', n, lambda: dst.copy_(src), 'copy_', 10)
    del src, dst

    w = (1 + 0.25 * (torch.rand(HIDDEN, device=dev) * 2 - 1)).to(dt)
    norm_ts = (1, 16, 128, 1024, 4096, 16384)
    data = {}
    for T in norm_ts:
        x = torch.randn(T, HIDDEN, device=dev).to(dt)
        r = torch.randn(T, HIDDEN, device=dev).to(dt)
        g = torch.randn(2, T, HIDDEN, device=dev).to(dt)
        dyn = (x.clone(), r.clone(), g.clone())
        if T > 1:  # dynamo specializes sizes 0 and 1 whatever is marked
            for t, dim in zip(dyn, (0, 0, 1)):
                torch._dynamo.mark_dynamic(t, dim)
        data[T] = ((x, r, g), dyn)
    # As vLLM compiles: the token count dynamic, the hidden size static (a dynamic hidden size makes
    # Inductor loop the row reduction and read each row twice); and static, one compile per T.
    torch._dynamo.config.recompile_limit = 64
    modes = [('dynamic T', None), ('static T', False)] if not args.no_compile else []
    for mode, dynamic in modes:
        for c in range(args.compiles):
            name = f'torch.compile, {mode}, compile {c + 1}'
            torch._dynamo.reset()
            f_add = torch.compile(add_rms_norm, dynamic=dynamic)
            f_ar = torch.compile(allreduce_rms_norm, dynamic=dynamic)
            for T in norm_ts:
                x, r, g = data[T][0 if dynamic is False else 1]
                try:
                    timed('add+rmsnorm', T, lambda: f_add(x, r, w), name)
                    if c == 0 and dynamic is None:
                        timed('allreduce+rmsnorm (2 ranks gathered)', T, lambda: f_ar(g, r, w), name)
                except Exception as e:  # noqa: BLE001 - report and go on with the next
                    print(f'{name} failed at T={T}: {e}', file=sys.stderr)
    if not modes:
        for T in norm_ts:
            x, r, g = data[T][0]
            timed('add+rmsnorm', T, lambda: add_rms_norm(x, r, w), 'eager')
            timed('allreduce+rmsnorm (2 ranks gathered)', T, lambda: allreduce_rms_norm(g, r, w), 'eager')
    del data

    w13 = (torch.rand(EXPERTS, 2 * INTER, HPAD, device=dev) * 2 - 1).mul_(HPAD ** -0.5).to(dt)
    b13 = (torch.rand(EXPERTS, 2 * INTER, device=dev) * 0.2 - 0.1).to(dt)
    w2 = (torch.rand(EXPERTS, HPAD, INTER, device=dev) * 2 - 1).mul_(INTER ** -0.5).to(dt)
    b2 = (torch.rand(EXPERTS, HPAD, device=dev) * 0.2 - 0.1).to(dt)
    given = json.load(open(args.logits)) if args.logits else {}
    try:
        import triton_moe
    except Exception as e:  # noqa: BLE001
        print(f'triton grouped GEMM unavailable: {e}', file=sys.stderr)
        triton_moe = None
    for T in (1, 4, 16, 64, 256, 1024, 4096):
        x = torch.randn(T, HPAD, device=dev).to(dt)
        if str(T) in given:
            logits = torch.tensor(given[str(T)], dtype=torch.float32, device=dev).view(T, EXPERTS).to(dt)
            source = 'the bench\'s logits'
        else:
            logits = torch.randn(T, EXPERTS, device=dev).to(dt)
            source = 'torch.randn logits'
        experts = int(torch.unique(torch.topk(logits.float(), TOPK, dim=-1).indices).numel())
        n_iters = 3 if T >= 1024 else 10
        timed('moe per-expert cuBLAS', T, moe_routed(x, logits, w13, b13, w2, b2),
              'per-expert cuBLAS addmm + activation + index_add, routing precomputed outside the graph', n_iters,
              experts=experts, logits=source)
        if triton_moe is None:
            continue
        if T <= 16:
            want = triton_moe.reference(x, logits, w13, b13, w2, b2, TOPK)
        for cfg in triton_moe.CONFIGS:
            name = f'triton grouped GEMM {triton_moe.config_name(cfg)}'
            try:
                step = triton_moe.fused_moe_step(x, logits, w13, b13, w2, b2, TOPK, cfg)
                err = None
                if T <= 16:
                    err = float((step().float() - want).abs().max())
                us, graph_us, gemm_us = time_us(step, n_iters, '_moe_gemm')
                res.append({'suite': 'moe triton grouped GEMM', 'T': T, 'us': us, 'graph_us': graph_us,
                            'gemm_us': gemm_us, 'compile': name, 'experts': experts, 'logits': source,
                            'max_abs_vs_ref': err})
            except Exception as e:  # noqa: BLE001
                print(f'{name} failed at T={T}: {e}', file=sys.stderr)
    del w13, w2

    for M, N, K in ((64, 2880, 2880), (2048, 2880, 2880), (4096, 5120, 2880)):
        a = torch.randn(M, K, device=dev).to(dt)
        b = torch.randn(N, K, device=dev).to(dt)
        timed('gemm', M, lambda: a @ b.t(), 'cuBLAS')

    with open(args.out, 'w') as f:
        json.dump({'torch': torch.__version__, 'device': torch.cuda.get_device_name(), 'results': res}, f)
    print(f'torch {torch.__version__} on {torch.cuda.get_device_name()}: {len(res)} timings -> {args.out}')


if __name__ == '__main__':
    main()
