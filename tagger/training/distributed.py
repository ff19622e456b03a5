"""Data parallelism with ``torchrun`` (DistributedDataParallel).

Every rank draws the same global batch indices and the same random numbers (identical seeds
and streams), takes its slice of the batch, and DDP averages the gradients, so N processes
compute what one process computes at the same global batch (up to float summation order).
Normalisation statistics are per rank: LayerNorm is per example anyway, so it is unaffected;
BatchNorm (the reference's batch statistics over groups and batch) then sees only the rank's
slice, i.e. it behaves like the single-process model at batch B / N. We chose this over a
cross-rank (synchronised) batch norm to keep the reference's per-batch semantics and no extra
communication inside the TAG loop; docs/reliability.md states it.
"""
from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist

from ..errors import ConfigError


@dataclass
class Ranks:
    """This process's place: ``rank`` of ``world`` (1 = not distributed)."""

    rank: int = 0
    world: int = 1

    @property
    def main(self) -> bool:
        return self.rank == 0

    def shard(self, batch: int) -> tuple[int, int]:
        """``[start, stop)`` of this rank's slice of a global batch."""
        if batch % self.world:
            raise ConfigError(f"--batch-size {batch} must be divisible by the {self.world} processes")
        size = batch // self.world
        return self.rank * size, (self.rank + 1) * size

    def mean(self, value: torch.Tensor) -> torch.Tensor:
        """Average a tensor over ranks (identity when not distributed)."""
        if self.world > 1:
            value = value.clone()
            dist.all_reduce(value, op=dist.ReduceOp.SUM)
            value /= self.world
        return value

    def maximum(self, value: int, device) -> int:
        """The largest of every rank's ``value`` (identity when not distributed)."""
        if self.world == 1:
            return value
        tensor = torch.tensor([value], dtype=torch.int64, device=device)
        dist.all_reduce(tensor, op=dist.ReduceOp.MAX)
        return int(tensor.item())

    def barrier(self) -> None:
        if self.world > 1:
            dist.barrier()


def setup(device_name: str) -> tuple[Ranks, str]:
    """Join the process group if started by ``torchrun``; returns ranks and the device to use."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return Ranks(), device_name
    rank, local = int(os.environ["RANK"]), int(os.environ.get("LOCAL_RANK", "0"))
    use_cuda = device_name.startswith("cuda") or (device_name == "auto" and torch.cuda.is_available())
    if not dist.is_initialized():
        dist.init_process_group("nccl" if use_cuda else "gloo")
    if use_cuda:
        torch.cuda.set_device(local)
        return Ranks(rank, world), f"cuda:{local}"
    return Ranks(rank, world), "cpu"


def teardown() -> None:
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()
