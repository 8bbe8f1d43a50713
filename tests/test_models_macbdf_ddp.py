"""MACB-DF running state under DDP: two gloo processes with different local batches end in the same state."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from avforensics.models.macbdf.cluster_weights import ClusterState
from avforensics.models.macbdf.distributed import gather_rows
from avforensics.models.macbdf.macl import AdaptiveTemperature, NegativeQueue, TemperatureStep

ROWS = {0: 3, 1: 2}  # uneven local batches (e.g. the last batch of an epoch)


def _local_rows(rank: int) -> torch.Tensor:
    return torch.nn.functional.normalize(
        torch.arange(1.0, 1 + 4 * ROWS[rank]).reshape(-1, 4) * (-1) ** rank, dim=1
    )


def _worker(rank: int, store: str, out: str) -> None:
    dist.init_process_group("gloo", init_method=f"file://{store}", rank=rank, world_size=2)
    try:
        rows = _local_rows(rank)
        labels = torch.full((ROWS[rank],), rank)
        queue = NegativeQueue(8, 4)
        queue.enqueue(rows, -rows, labels, labels, torch.tensor([True] * ROWS[rank]))
        clusters = ClusterState(4, 4, 0.5)
        for _ in range(2):  # at most one cluster opens per step
            clusters.update(rows)
        temperature = AdaptiveTemperature(0.07, 0.01, 0.5)
        step = TemperatureStep(torch.tensor(0.05 + 0.02 * rank), torch.full((3,), float(rank)))
        temperature.update(step, torch.tensor(2.0 * rank))
        flags = gather_rows(torch.tensor([rank == 0] * ROWS[rank]))
        buffers = {"": queue, "clusters.": clusters, "temperature.": temperature}  # parameters differ by rank
        state = {prefix + k: v for prefix, module in buffers.items() for k, v in module.named_buffers()}
        state["flags"] = flags
        torch.save(state, f"{out}/rank{rank}.pt")
    finally:
        dist.destroy_process_group()


def test_state_updates_are_identical_on_every_rank(tmp_path: Path) -> None:
    mp.spawn(_worker, args=(str(tmp_path / "store"), str(tmp_path)), nprocs=2, join=True)
    first, second = (torch.load(tmp_path / f"rank{r}.pt") for r in (0, 1))
    for key, value in first.items():
        torch.testing.assert_close(value, second[key], atol=0, rtol=0, msg=key)
    every_row = torch.cat([_local_rows(0), _local_rows(1)])
    torch.testing.assert_close(first["video"][:5], every_row)  # all ranks' rows, in rank order
    assert first["video_label"].tolist() == [0, 0, 0, 1, 1, -1, -1, -1]
    assert first["pointer"].item() == 5
    assert first["flags"].tolist() == [True] * 3 + [False] * 2  # bool rows survive the gather
    assert first["temperature.previous_tau"].item() == pytest.approx(0.06, abs=1e-7)  # mean of 0.05 and 0.07
    assert first["temperature.previous_gradient"].item() == 1.0
    assert int((first["clusters.mass"] > 0).sum()) == 2  # rows of opposite signs: two clusters
