"""torch.distributed (NCCL) all-reduce bus bandwidth: the comparator for `npm run bench -- agent`.

One process per local GPU (mp.spawn), bf16 sum over 1 MiB .. 1 GiB (×4 steps, as the native
worker's bench), timed with CUDA events after warm-ups; the slowest rank's time counts. Prints
one JSON object per size on stdout.
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


if __name__ == "__main__":
    world = int(sys.argv[1]) if len(sys.argv) > 1 else torch.cuda.device_count()
    if world < 1:
        print("torch_allreduce.py: no CUDA device", file=sys.stderr)
        sys.exit(2)
    mp.spawn(worker, args=(world, 29500 + os.getpid() % 1000), nprocs=world, join=True)
