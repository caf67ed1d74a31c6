"""Distributed data parallel under `torchrun` (PyTorch DDP, Li et al. 2020, "PyTorch Distributed").

`torchrun --nproc_per_node=N -m probe train ...` sets RANK / WORLD_SIZE / LOCAL_RANK; `init()` then joins the
process group (nccl on CUDA, gloo on CPU) and the Trainer wraps the model in DistributedDataParallel. Each rank
reads its slice of the same global batch (see `probe.train.batches.BatchStream`), DDP averages gradients, so N
processes follow the loss curve of one process with the whole batch.
"""

from __future__ import annotations

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
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def enabled(self) -> bool:
        return self.world > 1


def init(device_type: str = "cpu") -> DistInfo:
    """Join the process group described by torchrun's environment; single-process when WORLD_SIZE is unset or 1."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return DistInfo()
    rank, local_rank = int(os.environ["RANK"]), int(os.environ.get("LOCAL_RANK", "0"))
    if not dist.is_initialized():
        backend = "nccl" if device_type == "cuda" else "gloo"
        if device_type == "cuda":
            torch.cuda.set_device(local_rank)
        dist.init_process_group(backend=backend, rank=rank, world_size=world)
    return DistInfo(rank, world, local_rank)


def mean_across(value: torch.Tensor, info: DistInfo) -> torch.Tensor:
    """Average a tensor over ranks (a no-op in one process)."""
    if info.enabled:
        value = value.detach().clone()
        dist.all_reduce(value, op=dist.ReduceOp.SUM)
        value /= info.world
    return value


def barrier(info: DistInfo) -> None:
    if info.enabled:
        dist.barrier()


def cleanup() -> None:
    if dist.is_initialized():
        dist.destroy_process_group()
