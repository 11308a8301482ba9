"""torchrun support: one process per device, DistributedDataParallel, rank 0 logs and saves.

Launched by ``torchrun`` (RANK / WORLD_SIZE / LOCAL_RANK in the environment)
the training uses nccl on GPUs and gloo on CPUs; launched plainly it is a
single process and every helper here is a no-op.
"""
from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass

import torch
import torch.distributed as dist


@dataclass(frozen=True)
class DistInfo:
    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @property
    def main(self) -> bool:
        return self.rank == 0

    @property
    def enabled(self) -> bool:
        return self.world > 1


def init_distributed(device: torch.device) -> tuple[DistInfo, torch.device]:
    """Join the torchrun process group if there is one; return this process's rank info and device."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world == 1:
        return DistInfo(), device
    info = DistInfo(int(os.environ["RANK"]), world, int(os.environ.get("LOCAL_RANK", "0")))
    if device.type == "cuda":
        device = torch.device("cuda", info.local_rank)
        torch.cuda.set_device(device)
    if not dist.is_initialized():
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    return info, device


@contextlib.contextmanager
def main_process_first(info: DistInfo):
    """Rank 0 runs the block first (simulating, building the crop cache); the others then reuse its work."""
    if info.enabled and not info.main:
        dist.barrier()
    yield
    if info.enabled and info.main:
        dist.barrier()


def wrap_model(model: torch.nn.Module, device: torch.device, info: DistInfo) -> torch.nn.Module:
    """DDP with SyncBatchNorm on GPUs (batch statistics over the global batch). On CPU BatchNorm stays
    per process, since PyTorch's SyncBatchNorm runs only on accelerators."""
    if not info.enabled:
        return model
    if device.type == "cuda":
        model = torch.nn.SyncBatchNorm.convert_sync_batchnorm(model)
    return torch.nn.parallel.DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None)


def unwrap(model: torch.nn.Module) -> torch.nn.Module:
    return model.module if isinstance(model, torch.nn.parallel.DistributedDataParallel) else model


def sync_buffers(model: torch.nn.Module, info: DistInfo) -> None:
    """Give every process rank 0's BatchNorm running statistics, so all evaluate (and save) one model."""
    if info.enabled:
        for buf in model.buffers():
            dist.broadcast(buf, 0)


def all_sum(values: list[float], device: torch.device, info: DistInfo) -> list[float]:
    if not info.enabled:
        return values
    t = torch.tensor(values, dtype=torch.float64, device=device)
    dist.all_reduce(t)
    return t.tolist()


def gather_shards(local, n: int, info: DistInfo):
    """Reassemble an array predicted as shards ``items[rank::world]`` into all ``n`` items, in order.

    Every item is predicted exactly once, so metrics carry none of the padding
    bias of DistributedSampler.
    """
    if not info.enabled:
        return local
    shards = [None] * info.world
    dist.all_gather_object(shards, local)
    out = [None] * n
    for rank, shard in enumerate(shards):
        out[rank::info.world] = list(shard)
    return out
