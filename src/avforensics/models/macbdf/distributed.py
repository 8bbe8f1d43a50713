"""Keeping MACB-DF's running state identical on every DDP process.

The negatives queue, the temperature history and the cluster state are buffers. DDP broadcasts buffers
from rank 0 before each forward pass, which would silently throw away what the other ranks saw; instead,
every update is computed from values shared by all ranks (all-gathered embeddings, all-reduced
statistics), so all ranks hold the same state and the broadcast changes nothing. Single-process runs pass
through unchanged.
"""

from __future__ import annotations

import torch
import torch.distributed as dist
from torch import Tensor


def _world_size() -> int:
    return dist.get_world_size() if dist.is_available() and dist.is_initialized() else 1


def gather_rows(x: Tensor) -> Tensor:
    """Rows of `x` from every process, concatenated in rank order (ranks may hold different row counts)."""
    world = _world_size()
    if world == 1:
        return x
    if x.dtype == torch.bool:  # not every backend (gloo) reduces or gathers bool tensors
        return gather_rows(x.to(torch.uint8)).to(torch.bool)
    count = torch.tensor([x.shape[0]], device=x.device)
    counts = [torch.zeros_like(count) for _ in range(world)]
    dist.all_gather(counts, count)
    longest = int(max(c.item() for c in counts))
    padded = torch.zeros((longest, *x.shape[1:]), dtype=x.dtype, device=x.device)
    padded[: x.shape[0]] = x
    parts = [torch.zeros_like(padded) for _ in range(world)]
    dist.all_gather(parts, padded)
    return torch.cat([part[: int(c.item())] for part, c in zip(parts, counts, strict=True)])


def mean_over_processes(x: Tensor) -> Tensor:
    """The mean of `x` over all processes (a copy; `x` itself is unchanged)."""
    world = _world_size()
    if world == 1:
        return x
    total = x.detach().clone()
    dist.all_reduce(total)
    return total / world
