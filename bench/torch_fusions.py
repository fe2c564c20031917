"""The PyTorch side of `fusionlab bench fusions`: each vLLM fusion's unfused pair written in torch ops
(as vLLM's own torch-native forms compute them), `torch.compile`d (Inductor fuses the pair into its
own kernels, as vLLM relies on where a side is not a custom kernel) and eager, at the same sizes on
the same GPU. Writes {torch, device, results: [{fusion, T, us, graph_us, compile, kernels}], checks}
that `fusionlab bench fusions --torch FILE` (or `--table OURS FILE`) sets beside ours.

Timing is bench/torch_kernels.py's `time_us` (its add + RMSNorm treatment): CUPTI kernel time over
CUDA-graph replays, and replay time of a graph of 20 calls ÷ 20. Compiles: the token count dynamic
(as vLLM compiles) and static (one compile per T), caches off so each compile autotunes afresh; the
bench takes the best of them. `copy` is torch's copy_ (the ceiling is the better of it and ours).

--check FILE (written by the bench on the same host): our inputs and the fused op's outputs at one
T; each compiled and eager pair runs on those inputs and its outputs are compared with ours.
Outputs are compared as values: FP8 as floats, NVFP4 as its decoded e2m1 codes and e4m3 scales.
"""
import argparse
import json
import os
import sys
import time

import torch_kernels  # noqa: F401  (sets TORCHINDUCTOR_FORCE_DISABLE_CACHES before torch loads)
from torch_kernels import time_us

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

FP8 = torch.float8_e4m3fn
FP8_MAX = 448.0
MIN_SCALE = 1.0 / (448.0 * 512.0)
E2M1 = (0.0, 0.5, 1.0, 1.5, 2.0, 3.0, 4.0, 6.0)


def rms_norm(x, w, eps):
    # vLLM's rms_norm: (scalar_t)(x · rsqrt(mean x² + eps)) · w
    xf = x.float()
    return (xf * torch.rsqrt(xf.pow(2).mean(-1, keepdim=True) + eps)).to(x.dtype) * w


def static_fp8(y, scale):
    return (y.float() * (1.0 / scale)).clamp(-FP8_MAX, FP8_MAX).to(FP8)


def rmsnorm_static(x, weight, scale):
    return (static_fp8(rms_norm(x, weight, 1e-5), scale),)


def add_rmsnorm_static(x, residual, weight, scale):
    z = x + residual
    return static_fp8(rms_norm(z, weight, 1e-5), scale), z


def rmsnorm_dynamic(x, weight):
    y = rms_norm(x, weight, 1e-5).float()
    s = (y.abs().amax(-1, keepdim=True) / FP8_MAX).clamp_min(MIN_SCALE)
    return (y / s).clamp(-FP8_MAX, FP8_MAX).to(FP8), s


def rmsnorm_group128(x, weight):
    y = rms_norm(x, weight, 1e-5).float()
    g = y.view(y.shape[0], -1, 128)
    s = g.abs().amax(-1, keepdim=True).clamp_min(1e-10) / FP8_MAX
    return (g / s).clamp(-FP8_MAX, FP8_MAX).to(FP8).view(y.shape), s.view(y.shape[0], -1)


def silu_and_mul(x):
    a, b = x.chunk(2, dim=-1)
    return F.silu(a) * b


def silu_static(x, scale):
    return (static_fp8(silu_and_mul(x), scale),)


def silu_nvfp4(x, global_scale):
    # vLLM's cvt_warp_fp16_to_fp4: a block of 16, its scale e4m3(global · amax / 6), the values
    # x · global / scale rounded to e2m1 (nearest, ties to the even code), two codes a byte.
    y = silu_and_mul(x).float()
    T, K = y.shape
    blocks = y.view(T, K // 16, 16)
    sf = (global_scale * (blocks.abs().amax(-1, keepdim=True) / 6.0)).to(FP8)
    sff = sf.float()
    out_scale = torch.where(sff != 0, 1.0 / (sff / global_scale), torch.zeros_like(sff))
    v = (blocks * out_scale).clamp(-6.0, 6.0)
    a = v.abs()
    code = ((a > 0.25).int() + (a >= 0.75).int() + (a > 1.25).int() + (a >= 1.75).int()
            + (a > 2.5).int() + (a >= 3.5).int() + (a > 5.0).int())
    code = (code | torch.where(v < 0, 8, 0)).view(T, K).to(torch.uint8)
    packed = code[:, 0::2] | (code[:, 1::2] << 4)
    return packed, sf.view(T, K // 16)


def make_qk_norm_rope(heads, kv_heads, d):
    def qk_norm_rope(qkv, q_weight, k_weight, cos_sin_cache, positions):
        T = qkv.shape[0]
        q, k, v = qkv.split([heads * d, kv_heads * d, kv_heads * d], dim=-1)
        cos, sin = cos_sin_cache[positions].chunk(2, dim=-1)
        cos, sin = cos[:, None, :], sin[:, None, :]

        def rope(x, n):
            x = x.view(T, n, d)
            x1, x2 = x[..., : d // 2], x[..., d // 2:]
            return torch.cat((x1 * cos - x2 * sin, x2 * cos + x1 * sin), dim=-1).view(T, n * d)

        qn = rms_norm(q.view(T, heads, d), q_weight, 1e-6).view(T, heads * d)
        kn = rms_norm(k.view(T, kv_heads, d), k_weight, 1e-6).view(T, kv_heads * d)
        return rope(qn, heads), rope(kn, kv_heads), v
    return qk_norm_rope


def fusions(sizes):
    """name → (function, its inputs at T as {name: (dtype, shape, kind)}, output kinds)."""
    H, I = sizes['hidden'], sizes['intermediate']
    hq, hk, d, rows = sizes['heads'], sizes['kvHeads'], sizes['headDim'], sizes['ropeRows']
    act = lambda T, s=1.0: ('bf16', (T, H), s)  # noqa: E731
    gamma = lambda n: ('gamma', (n,), 0)  # noqa: E731
    return {
        'rmsnorm+fp8 static': (rmsnorm_static, lambda T: {'x': act(T), 'weight': gamma(H), 'scale': ('f32', 1 / 64, 0)}, ['fp8']),
        'fused_add_rmsnorm+fp8 static': (add_rmsnorm_static, lambda T: {'x': act(T), 'residual': act(T), 'weight': gamma(H), 'scale': ('f32', 1 / 64, 0)}, ['fp8', 'bf16']),
        'rmsnorm+fp8 dynamic per-token': (rmsnorm_dynamic, lambda T: {'x': act(T), 'weight': gamma(H)}, ['fp8', 'f32']),
        'rmsnorm+fp8 per-token-group 128': (rmsnorm_group128, lambda T: {'x': act(T), 'weight': gamma(H)}, ['fp8', 'f32']),
        'silu_and_mul+fp8 static': (silu_static, lambda T: {'x': ('bf16', (T, 2 * I), 4.0), 'scale': ('f32', 1 / 16, 0)}, ['fp8']),
        'silu_and_mul+nvfp4 (emulated)': (silu_nvfp4, lambda T: {'x': ('bf16', (T, 2 * I), 4.0), 'global_scale': ('f32', 448 * 6 / 16, 0)}, ['fp4', 'fp8']),
        'qk-norm+rope': (make_qk_norm_rope(hq, hk, d), lambda T: {
            'qkv': ('bf16', (T, (hq + 2 * hk) * d), 1.0), 'q_weight': gamma(d), 'k_weight': gamma(d),
            'cos_sin_cache': ('bf16', (rows, d), 1.0), 'positions': ('pos', (T,), rows)}, ['bf16', 'bf16', 'bf16']),
    }


def random_inputs(spec, dev):
    out = {}
    for name, (kind, shape, s) in spec.items():
        if kind == 'bf16':
            out[name] = ((torch.rand(shape, device=dev) * 2 - 1) * s).to(torch.bfloat16)
        elif kind == 'gamma':
            out[name] = (1 + 0.25 * (torch.rand(shape, device=dev) * 2 - 1)).to(torch.bfloat16)
        elif kind == 'f32':
            out[name] = torch.tensor([shape], dtype=torch.float32, device=dev)
        elif kind == 'pos':
            out[name] = torch.randint(0, s, shape, device=dev)
    return out


def given_inputs(given, dev):
    dt = {'bf16': torch.bfloat16, 'f32': torch.float32, 'i32': torch.int64}
    return {k: torch.tensor(v['data'], dtype=torch.float64).to(dt[v['dtype']]).view(v['shape']).to(dev)
            for k, v in given.items()}


def decoded(t, kind):
    """Output values as float64 on the CPU: e2m1 codes decoded (two a byte, low nibble first)."""
    t = t.detach().cpu()
    if kind == 'fp4':
        b = t.to(torch.int64)
        codes = torch.stack((b & 15, b >> 4), dim=-1).flatten(-2)
        table = torch.tensor(E2M1 + tuple(-x for x in E2M1), dtype=torch.float64)
        return table[codes]
    return t.to(torch.float64) if t.dtype != FP8 else t.float().to(torch.float64)


def compare(fusion, compile_name, mine, ours, kinds):
    """Per output: elements that differ, the largest |Δ| and |Δ| / max(|ours|, 2⁻⁹)."""
    outs = []
    for m, o, kind in zip(mine, ours, kinds):
        a = decoded(m, kind).flatten()
        if kind == 'fp4':
            want = torch.tensor(o['data'], dtype=torch.int64)
            b = decoded(want.to(torch.uint8), 'fp4').flatten()
        else:
            b = torch.tensor(o['data'], dtype=torch.float64)
        diff = (a - b).abs()
        outs.append({'kind': kind, 'n': int(b.numel()), 'differ': int((diff > 0).sum()),
                     'max_abs': float(diff.max()) if diff.numel() else 0.0,
                     'max_rel': float((diff / b.abs().clamp_min(2 ** -9)).max()) if diff.numel() else 0.0})
    return {'fusion': fusion, 'compile': compile_name, 'outputs': outs}


def kernels_per_call(fn, args):
    """CUDA kernels one call launches (torch.profiler); None if the profiler cannot say."""
    try:
        with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CUDA]) as prof:
            fn(**args)
            torch.cuda.synchronize()
        return sum(1 for e in prof.events() if e.device_type == torch.autograd.DeviceType.CUDA)
    except Exception as e:  # noqa: BLE001 - the count is a note, the timing stands without it
        print(f'kernel count failed: {e}', file=sys.stderr)
        return None


def main():
    p = argparse.ArgumentParser()
    p.add_argument('--out', required=True)
    p.add_argument('--check', help="the bench's --check file: our inputs and outputs at one T")
    p.add_argument('--quick', action='store_true', help='the small sizes of bench fusions --quick')
    p.add_argument('--budget', type=float, default=200.0, help='seconds; static compiles stop past it')
    p.add_argument('--device', default='cuda')
    args = p.parse_args()
    t0 = time.time()
    dev = args.device
    check = json.load(open(args.check)) if args.check and os.path.exists(args.check) else None
    sizes = check['sizes'] if check else (
        dict(hidden=256, intermediate=384, heads=4, kvHeads=2, headDim=64, ropeRows=64) if args.quick else
        dict(hidden=4096, intermediate=14336, heads=32, kvHeads=8, headDim=128, ropeRows=4096))
    ts = (1, 5) if args.quick else (1, 16, 256, 4096)
    table = fusions(sizes)
    torch.manual_seed(0)
    torch._dynamo.config.recompile_limit = 64
    res, checks = [], []
    gpu = dev == 'cuda'

    def timed(fusion, T, fn, args_, name):
        if not gpu:
            return
        us, graph_us, _ = time_us(lambda: fn(**args_), 20)
        res.append({'fusion': fusion, 'T': T, 'us': us, 'graph_us': graph_us, 'compile': name,
                    'kernels': kernels_per_call(fn, args_)})

    if gpu:
        for mib in (256, 1024):
            n = mib * 2 ** 20
            src = torch.empty(n, dtype=torch.uint8, device=dev).random_()
            dst = torch.empty_like(src)
            us, graph_us, _ = time_us(lambda: dst.copy_(src), 10)
            res.append({'fusion': 'copy', 'T': n, 'us': us, 'graph_us': graph_us, 'compile': 'copy_'})
        del src, dst

    for fusion, (fn, spec, kinds) in table.items():
        data = {T: random_inputs(spec(T), dev) for T in ts}
        variants = [('eager', fn)]
        torch._dynamo.reset()
        variants.append(('torch.compile, dynamic T', torch.compile(fn, dynamic=None)))
        for T in ts:
            # The token dim of the activations only: a weight as long as T (γ of 4096 at T = 4096) stays static.
            tokens = [k for k, (kind, shape, _) in spec(T).items() if kind in ('bf16', 'pos') and k != 'cos_sin_cache']
            if T > 1:  # dynamo specializes sizes 0 and 1 whatever is marked
                for k in tokens:
                    torch._dynamo.mark_dynamic(data[T][k], 0)
        for name, f in variants:
            for T in ts:
                try:
                    timed(fusion, T, f, data[T], name)
                except Exception as e:  # noqa: BLE001 - report and go on with the next
                    print(f'{fusion} {name} T={T} failed: {e}', file=sys.stderr)
            if check and fusion in check['fusions']:
                given = check['fusions'][fusion]
                try:
                    mine = f(**given_inputs(given['inputs'], dev))
                    checks.append(compare(fusion, name, mine, given['outputs'], kinds))
                except Exception as e:  # noqa: BLE001
                    print(f'{fusion} {name} check failed: {e}', file=sys.stderr)
        print(f'{fusion}: done at {time.time() - t0:.0f} s', file=sys.stderr, flush=True)
    # Static compiles (one per T) while the budget lasts: the best of the two modes is what the table takes.
    for fusion, (fn, spec, kinds) in table.items():
        for T in ts:
            if time.time() - t0 > args.budget:
                print(f'budget spent: no static compile of {fusion} at T={T}', file=sys.stderr)
                continue
            torch._dynamo.reset()
            f = torch.compile(fn, dynamic=False)
            a = random_inputs(spec(T), dev)
            try:
                timed(fusion, T, f, a, 'torch.compile, static T')
            except Exception as e:  # noqa: BLE001
                print(f'{fusion} static T={T} failed: {e}', file=sys.stderr)
    info = {'torch': torch.__version__, 'device': torch.cuda.get_device_name() if gpu else 'cpu',
            'sizes': sizes, 'seconds': time.time() - t0, 'results': res, 'checks': checks}
    with open(args.out, 'w') as fh:
        json.dump(info, fh)
    print(f'torch {torch.__version__} on {info["device"]}: {len(res)} timings, {len(checks)} checks, '
          f'{info["seconds"]:.0f} s -> {args.out}')


if __name__ == '__main__':
    main()
