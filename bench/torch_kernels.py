"""The PyTorch side of `fusionlab bench kernels`: the same ops at the same sizes on the same GPU,
timed with CUDA events (median of repeats). Writes a JSON list of {suite, T, us, note} that
`fusionlab bench kernels --torch FILE` turns into ours/torch ratios.

add + RMSNorm and the gathered all-reduce + RMSNorm are one torch.compile'd function each (a
fused Triton kernel, the fair comparison for a fused WGSL kernel); where compiling fails they
run eagerly and say so. The MoE is the eager reference loop over the experts a batch routes to.
"""
import argparse
import json
import sys

import torch
import torch.nn.functional as F

HIDDEN, HPAD, EXPERTS, TOPK, INTER, EPS = 2880, 3072, 32, 4, 2880, 1e-5


def time_us(fn, iters):
    fn()
    torch.cuda.synchronize()
    out = []
    for _ in range(iters):
        a, b = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        a.record()
        fn()
        b.record()
        b.synchronize()
        out.append(a.elapsed_time(b) * 1000.0)
    out.sort()
    return out[len(out) // 2]


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


def moe(x, logits, w13, b13, w2, b2):
    vals, ids = torch.topk(logits.float(), TOPK, dim=-1)
    wts = torch.softmax(vals, dim=-1)
    out = torch.zeros(x.shape, dtype=torch.float32, device=x.device)
    for e in torch.unique(ids).tolist():
        tok, k = (ids == e).nonzero(as_tuple=True)
        h = x[tok] @ w13[e].t() + b13[e]
        gate, up = h[:, 0::2].clamp(max=7.0), h[:, 1::2].clamp(-7.0, 7.0)
        a = ((up + 1) * gate * torch.sigmoid(1.702 * gate)).to(x.dtype)
        y = a @ w2[e].t() + b2[e]
        out.index_add_(0, tok, (wts[tok, k, None] * y.float()))
    return out.to(x.dtype)


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

    for mib in (64, 256, 1024):
        n = mib * 2 ** 20
        src = torch.empty(n, dtype=torch.uint8, device=dev)
        dst = torch.empty_like(src)
        res.append({'suite': 'copy', 'T': n, 'us': time_us(lambda: dst.copy_(src), iters)})

    compiled = {}
    note = 'eager'
    if not args.no_compile:
        try:
            compiled['add'] = torch.compile(add_rms_norm, dynamic=True)
            compiled['ar'] = torch.compile(allreduce_rms_norm, dynamic=True)
            note = 'torch.compile'
        except Exception as e:  # noqa: BLE001 - report and fall back
            print(f'torch.compile unavailable: {e}', file=sys.stderr)
    f_add = compiled.get('add', add_rms_norm)
    f_ar = compiled.get('ar', allreduce_rms_norm)
    w = (1 + 0.25 * (torch.rand(HIDDEN, device=dev) * 2 - 1)).to(dt)
    for T in (1, 16, 128, 1024, 4096, 16384):
        x = torch.randn(T, HIDDEN, device=dev).to(dt)
        r = torch.randn(T, HIDDEN, device=dev).to(dt)
        g = torch.randn(2, T, HIDDEN, device=dev).to(dt)
        try:
            us = time_us(lambda: f_add(x, r, w), iters)
            us2 = time_us(lambda: f_ar(g, r, w), iters)
            n = note
        except Exception as e:  # noqa: BLE001
            print(f'compiled norm failed at T={T}: {e}', file=sys.stderr)
            us = time_us(lambda: add_rms_norm(x, r, w), iters)
            us2 = time_us(lambda: allreduce_rms_norm(g, r, w), iters)
            n = 'eager'
        res.append({'suite': 'add+rmsnorm', 'T': T, 'us': us, 'note': n})
        res.append({'suite': 'allreduce+rmsnorm (2 ranks gathered)', 'T': T, 'us': us2, 'note': n})

    w13 = (torch.rand(EXPERTS, 2 * INTER, HPAD, device=dev) * 2 - 1).mul_(HPAD ** -0.5).to(dt)
    b13 = (torch.rand(EXPERTS, 2 * INTER, device=dev) * 0.2 - 0.1).to(dt)
    w2 = (torch.rand(EXPERTS, HPAD, INTER, device=dev) * 2 - 1).mul_(INTER ** -0.5).to(dt)
    b2 = (torch.rand(EXPERTS, HPAD, device=dev) * 0.2 - 0.1).to(dt)
    for T in (1, 4, 16, 64, 256, 1024, 4096):
        x = torch.randn(T, HPAD, device=dev).to(dt)
        logits = torch.randn(T, EXPERTS, device=dev).to(dt)
        res.append({'suite': 'moe (expert weights streamed)', 'T': T, 'us': time_us(lambda: moe(x, logits, w13, b13, w2, b2), 10), 'note': 'eager loop over routed experts'})
    del w13, w2

    for M, N, K in ((64, 2880, 2880), (2048, 2880, 2880), (4096, 5120, 2880)):
        a = torch.randn(M, K, device=dev).to(dt)
        b = torch.randn(N, K, device=dev).to(dt)
        res.append({'suite': 'gemm', 'T': M, 'us': time_us(lambda: a @ b.t(), iters), 'note': 'cuBLAS'})

    with open(args.out, 'w') as f:
        json.dump(res, f)
    print(f'torch {torch.__version__} on {torch.cuda.get_device_name()}: {len(res)} timings -> {args.out}')


if __name__ == '__main__':
    main()
