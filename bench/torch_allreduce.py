"""The PyTorch side of `npm run bench -- agent`, one process per local GPU (mp.spawn).

`torch_allreduce.py [WORLD]`: torch.distributed (NCCL) all-reduce bus bandwidth, bf16 sum over
1 MiB .. 1 GiB (×4 steps, as the native worker's bench), timed with CUDA events after warm-ups;
the slowest rank's time counts.

`torch_allreduce.py [WORLD] --fused`: the unfused all-reduce + residual + RMSNorm as vLLM runs it
at decode, hidden 2880 bf16: the all-reduce, then a torch.compile'd add + RMSNorm (dynamic token
count, rounded before γ as vLLM's fused_add_rms_norm), the pair captured `iters` times in one
CUDA graph and replayed. All-reduces: NCCL (out of place, as vLLM's pynccl), torch symmetric
memory one-shot, and symmetric memory two-shot (in place); multicast stays off (the host's
TORCH_SYMM_MEM_DISABLE_MULTICAST). Per replay the slowest rank's time / iters, median of replays.

Prints one JSON object per measurement on stdout.
"""
import json
import os
import sys

import torch
import torch.distributed as dist
import torch.multiprocessing as mp


def worker(rank: int, world: int, port: int) -> None:
    os.environ["MASTER_ADDR"] = "127.0.0.1"
    os.environ["MASTER_PORT"] = str(port)
    torch.cuda.set_device(rank)
    dist.init_process_group("nccl", rank=rank, world_size=world, device_id=torch.device("cuda", rank))
    size = 1 << 20
    while size <= 1 << 30:
        x = torch.empty(size // 2, dtype=torch.bfloat16, device="cuda").uniform_(-1, 1)
        iters = 10 if size >= 256 << 20 else 40
        for _ in range(5):
            dist.all_reduce(x)
        torch.cuda.synchronize()
        dist.barrier()
        a = torch.cuda.Event(enable_timing=True)
        b = torch.cuda.Event(enable_timing=True)
        a.record()
        for _ in range(iters):
            dist.all_reduce(x)
        b.record()
        b.synchronize()
        us = torch.tensor([a.elapsed_time(b) * 1000.0 / iters], device="cuda")
        dist.all_reduce(us, op=dist.ReduceOp.MAX)
        if rank == 0:
            algbw = size / us.item() / 1e3
            print(json.dumps({"section": "torch_allreduce", "bytes": size, "us": round(us.item(), 3),
                              "busbw_GBps": round(algbw * 2 * (world - 1) / world, 3)}), flush=True)
        del x
        size <<= 2
    dist.destroy_process_group()


HIDDEN, EPS = 2880, 1e-5
TOKENS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096, 8192, 16384)


def add_rms_norm(ar, res, w):
    """vLLM's fused_add_rms_norm: z = bf16(ar + res); y = bf16(bf16(z · rsqrt(mean z² + eps)) · γ)."""
    z = ar + res
    zf = z.float()
    return (zf * torch.rsqrt(zf.pow(2).mean(-1, keepdim=True) + EPS)).to(ar.dtype) * w, z


def fused_worker(rank: int, world: int, port: int) -> None:
    os.environ["MASTER_ADDR"] = "127.0.0.1"
    os.environ["MASTER_PORT"] = str(port)
    torch.cuda.set_device(rank)
    dist.init_process_group("nccl", rank=rank, world_size=world, device_id=torch.device("cuda", rank))
    cpu = dist.new_group(backend="gloo")
    group = dist.group.WORLD.group_name
    # As vLLM compiles: the token count dynamic (marked), the hidden size static.
    torch._dynamo.config.recompile_limit = 64
    compiled = torch.compile(add_rms_norm)

    def norm(ar, res, w):
        if ar.shape[0] > 1:  # dynamo specializes sizes 0 and 1 whatever is marked
            torch._dynamo.mark_dynamic(ar, 0)
            torch._dynamo.mark_dynamic(res, 0)
        return compiled(ar, res, w)
    symm = None
    try:
        import torch.distributed._symmetric_memory as symm_mem
        symm = symm_mem
        symm_mem.enable_symm_mem_for_group(group)
    except Exception as e:  # noqa: BLE001 - reported, the NCCL rows still run
        print(json.dumps({"section": "torch_fused_error", "what": "symmetric memory", "error": str(e)}), flush=True)
    for T in TOKENS:
        g = torch.Generator(device="cuda").manual_seed(11 + rank)
        x = (torch.rand(T, HIDDEN, device="cuda", generator=g) * 2 - 1).to(torch.bfloat16)
        g.manual_seed(101)
        res = (torch.rand(T, HIDDEN, device="cuda", generator=g) * 2 - 1).to(torch.bfloat16)
        w = (torch.rand(HIDDEN, device="cuda", generator=g) * 2 - 1).to(torch.bfloat16)
        iters = 50 if T <= 256 else 20 if T <= 2048 else 8
        variants = {}

        def nccl_pair():
            ar = torch.ops._c10d_functional.wait_tensor(torch.ops._c10d_functional.all_reduce(x, "sum", group))
            return norm(ar, res, w)
        variants["nccl"] = nccl_pair
        if symm is not None:
            buf = symm.empty(T, HIDDEN, dtype=torch.bfloat16, device="cuda")
            symm.rendezvous(buf, group)
            buf.copy_(x)
            variants["symm_one_shot"] = lambda: norm(torch.ops.symm_mem.one_shot_all_reduce(buf, "sum", group), res, w)
            buf2 = symm.empty(T, HIDDEN, dtype=torch.bfloat16, device="cuda")
            symm.rendezvous(buf2, group)
            buf2.copy_(x)

            def two_shot():
                torch.ops.symm_mem.two_shot_all_reduce_(buf2, "sum", group)
                return norm(buf2, res, w)
            variants["symm_two_shot"] = two_shot
        for name, fn in variants.items():
            row = {"section": "torch_fused", "tokens": T, "hidden": HIDDEN, "allreduce": name}
            try:
                s = torch.cuda.Stream()
                s.wait_stream(torch.cuda.current_stream())
                with torch.cuda.stream(s):
                    for _ in range(3):
                        fn()
                torch.cuda.current_stream().wait_stream(s)
                torch.cuda.synchronize()
                dist.barrier(group=cpu)
                graph = torch.cuda.CUDAGraph()
                with torch.cuda.graph(graph):
                    for _ in range(iters):
                        fn()
                torch.cuda.synchronize()
                times = []
                a, b = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
                for rep in range(18):
                    dist.barrier(group=cpu)
                    a.record()
                    graph.replay()
                    b.record()
                    b.synchronize()
                    if rep >= 3:
                        times.append(a.elapsed_time(b) * 1000.0 / iters)
                gathered = [None] * world
                dist.all_gather_object(gathered, times, group=cpu)
                worst = sorted(max(t[i] for t in gathered) for i in range(len(times)))
                row["us"] = round(worst[len(worst) // 2], 3)
                del graph
            except Exception as e:  # noqa: BLE001 - one failing variant must not hide the others
                row["error"] = str(e).splitlines()[0][:300]
            if rank == 0:
                print(json.dumps(row), flush=True)
        dist.barrier(group=cpu)
    dist.destroy_process_group()


if __name__ == "__main__":
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    world = int(args[0]) if args else torch.cuda.device_count()
    if world < 1:
        print("torch_allreduce.py: no CUDA device", file=sys.stderr)
        sys.exit(2)
    target = fused_worker if "--fused" in sys.argv else worker
    mp.spawn(target, args=(world, 29500 + os.getpid() % 1000), nprocs=world, join=True)
