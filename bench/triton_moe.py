"""A grouped-GEMM MoE in Triton, written for `fusionlab bench kernels` as the baseline a user would
run: the shape of vLLM's fused MoE (vllm/model_executor/layers/fused_moe/fused_moe.py,
`fused_moe_kernel` and `moe_align_block_size`). The (token, k) pairs are sorted by expert and each
expert's group padded to BLOCK_M rows; one program per (M block, N tile) streams its expert's weight
tile once per block. GPT-OSS's SwiGLU (gate/up interleaved, clamp 7, alpha 1.702) is the first GEMM's
epilogue, the routing weight the second's, and a sum over the top-k closes it (vLLM's moe_sum).

The routing here is torch ops (topk, softmax, a counting sort), so the whole step is one CUDA graph;
vLLM does the alignment in one CUDA kernel, so this routing is slower than vLLM's, and the bench
prints the grouped-GEMM kernels' time apart from it.
"""
import torch
import triton
import triton.language as tl


@triton.jit
def _moe_gemm(a_ptr, b_ptr, bias_ptr, c_ptr, sorted_ptr, expert_ptr, wts_ptr, npad_ptr,
              N, K, num_valid, a_div, stride_am, stride_be, stride_bn, stride_bias, stride_cm,
              BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_K: tl.constexpr,
              SWIGLU: tl.constexpr, MUL_WEIGHT: tl.constexpr):
    pid_m = tl.program_id(0)
    pid_n = tl.program_id(1)
    if pid_m * BLOCK_M >= tl.load(npad_ptr):
        return
    offs_m = pid_m * BLOCK_M + tl.arange(0, BLOCK_M)
    tok = tl.load(sorted_ptr + offs_m)
    tmask = tok < num_valid
    e = tl.load(expert_ptr + pid_m).to(tl.int64)
    offs_n = pid_n * BLOCK_N + tl.arange(0, BLOCK_N)
    nmask = offs_n < N
    offs_k = tl.arange(0, BLOCK_K)
    a_rows = (tok // a_div).to(tl.int64)
    a_ptrs = a_ptr + a_rows[:, None] * stride_am + offs_k[None, :]
    b_ptrs = b_ptr + e * stride_be + offs_n[None, :].to(tl.int64) * stride_bn + offs_k[:, None]
    acc = tl.zeros((BLOCK_M, BLOCK_N), dtype=tl.float32)
    for k0 in range(0, K, BLOCK_K):
        kmask = offs_k < K - k0
        a = tl.load(a_ptrs, mask=tmask[:, None] & kmask[None, :], other=0.0)
        b = tl.load(b_ptrs, mask=kmask[:, None] & nmask[None, :], other=0.0)
        acc += tl.dot(a, b)
        a_ptrs += BLOCK_K
        b_ptrs += BLOCK_K
    acc += tl.load(bias_ptr + e * stride_bias + offs_n, mask=nmask, other=0.0).to(tl.float32)[None, :]
    if MUL_WEIGHT:
        acc = acc * tl.load(wts_ptr + tok, mask=tmask, other=0.0)[:, None]
    if SWIGLU:
        g, u = tl.split(tl.reshape(acc, (BLOCK_M, BLOCK_N // 2, 2)))
        g = tl.minimum(g, 7.0)
        u = tl.minimum(tl.maximum(u, -7.0), 7.0)
        out = (u + 1.0) * g * tl.sigmoid(1.702 * g)
        offs_o = pid_n * (BLOCK_N // 2) + tl.arange(0, BLOCK_N // 2)
        c_ptrs = c_ptr + tok.to(tl.int64)[:, None] * stride_cm + offs_o[None, :]
        tl.store(c_ptrs, out.to(c_ptr.dtype.element_ty), mask=tmask[:, None] & (offs_o[None, :] < N // 2))
    else:
        c_ptrs = c_ptr + tok.to(tl.int64)[:, None] * stride_cm + offs_n[None, :]
        tl.store(c_ptrs, acc.to(c_ptr.dtype.element_ty), mask=tmask[:, None] & nmask[None, :])


def align(logits, topk, block_m):
    """(sorted pair ids padded per expert with num_valid, the expert of each block, routing weights, padded total): graph-capturable."""
    T, E = logits.shape
    n = T * topk
    vals, ids = torch.topk(logits.float(), topk, dim=-1)
    wts = torch.softmax(vals, dim=-1).flatten()
    flat = ids.flatten()
    counts = torch.zeros(E, dtype=torch.int64, device=logits.device).scatter_add_(0, flat, torch.ones_like(flat))
    padded = (counts + block_m - 1) // block_m * block_m
    pend = torch.cumsum(padded, 0)
    ustart = torch.cumsum(counts, 0) - counts
    order = torch.argsort(flat, stable=True)
    es = flat[order]
    dest = pend[es] - padded[es] + torch.arange(n, device=logits.device) - ustart[es]
    cap = n + min(E, n) * (block_m - 1)
    sorted_ids = torch.full((cap,), n, dtype=torch.int32, device=logits.device)
    sorted_ids[dest] = order.to(torch.int32)
    blocks = torch.arange(cap // block_m, device=logits.device) * block_m
    expert_ids = torch.searchsorted(pend, blocks, right=True).clamp_(max=E - 1).to(torch.int32)
    return sorted_ids, expert_ids, wts, pend[-1:].to(torch.int32)


def fused_moe_step(x, logits, w13, b13, w2, b2, topk, cfg):
    """The MoE step, routing included, for one config {BLOCK_M, BLOCK_N, BLOCK_K, num_warps, num_stages}."""
    T, H = x.shape
    E, I2, _ = w13.shape
    I = I2 // 2
    n = T * topk
    act = torch.empty(n, I, dtype=x.dtype, device=x.device)
    y = torch.empty(n, H, dtype=torch.float32, device=x.device)
    bm, bn, bk = cfg['BLOCK_M'], cfg['BLOCK_N'], cfg['BLOCK_K']
    kw = dict(num_warps=cfg['num_warps'], num_stages=cfg['num_stages'])

    def step():
        sorted_ids, expert_ids, wts, npad = align(logits, topk, bm)
        blocks = sorted_ids.numel() // bm
        _moe_gemm[(blocks, triton.cdiv(I2, bn))](
            x, w13, b13, act, sorted_ids, expert_ids, wts, npad, I2, H, n, topk,
            x.stride(0), w13.stride(0), w13.stride(1), b13.stride(0), act.stride(0),
            BLOCK_M=bm, BLOCK_N=bn, BLOCK_K=bk, SWIGLU=True, MUL_WEIGHT=False, **kw)
        _moe_gemm[(blocks, triton.cdiv(H, bn))](
            act, w2, b2, y, sorted_ids, expert_ids, wts, npad, H, I, n, 1,
            act.stride(0), w2.stride(0), w2.stride(1), b2.stride(0), y.stride(0),
            BLOCK_M=bm, BLOCK_N=bn, BLOCK_K=bk, SWIGLU=False, MUL_WEIGHT=True, **kw)
        return y.view(T, topk, H).sum(1).to(x.dtype)
    return step


def reference(x, logits, w13, b13, w2, b2, topk):
    """The same step in plain torch (f32), to check the kernels against."""
    vals, ids = torch.topk(logits.float(), topk, dim=-1)
    wts = torch.softmax(vals, dim=-1)
    out = torch.zeros(x.shape, dtype=torch.float32, device=x.device)
    for t in range(x.shape[0]):
        for k in range(topk):
            e = int(ids[t, k])
            h = x[t].float() @ w13[e].float().t() + b13[e].float()
            g, u = h[0::2].clamp(max=7.0), h[1::2].clamp(-7.0, 7.0)
            a = ((u + 1) * g * torch.sigmoid(1.702 * g)).to(x.dtype).float()
            out[t] += wts[t, k] * (a @ w2[e].float().t() + b2[e].float())
    return out


CONFIGS = [
    dict(BLOCK_M=16, BLOCK_N=64, BLOCK_K=128, num_warps=4, num_stages=4),
    dict(BLOCK_M=16, BLOCK_N=128, BLOCK_K=128, num_warps=4, num_stages=3),
    dict(BLOCK_M=16, BLOCK_N=64, BLOCK_K=256, num_warps=4, num_stages=3),
    dict(BLOCK_M=16, BLOCK_N=32, BLOCK_K=256, num_warps=4, num_stages=4),
    dict(BLOCK_M=32, BLOCK_N=64, BLOCK_K=128, num_warps=4, num_stages=4),
    dict(BLOCK_M=64, BLOCK_N=128, BLOCK_K=64, num_warps=8, num_stages=4),
]


def config_name(c):
    return f"M{c['BLOCK_M']} N{c['BLOCK_N']} K{c['BLOCK_K']} w{c['num_warps']} s{c['num_stages']}"
