"""A sampler and a data loader that can restart in the middle of an epoch, exactly.

Lightning 2.6 saves `state_dict()` of any training dataloader that has one and calls `load_state_dict()`
before iterating again on resume; a plain `torch.utils.data.DataLoader` has neither, so a resumed run would
replay the epoch from its first batch. `ResumableLoader` counts the batches it has handed out and, on resume,
makes its `ShardedSampler` skip them; index order, DDP sharding and worker seeds depend only on
(seed, epoch), never on a running random stream.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import torch
from torch.utils.data import DataLoader, Dataset, Sampler


class ShardedSampler(Sampler[int]):
    """Indices of one epoch, shuffled by (seed, epoch) or in order; rank r of w takes positions r, r+w, ...

    Under DDP, the k-th local batches of all ranks together hold the same windows as the k-th batch of a
    single process with the global batch size, so one and many processes optimise the same objective.
    `drop_last` trims the epoch to a multiple of `world_size` so every rank takes the same number of steps
    (training); without it, ranks may differ by one window (evaluation, where every window counts once).
    """

    def __init__(
        self,
        size: int,
        *,
        shuffle: bool,
        seed: int,
        rank: int = 0,
        world_size: int = 1,
        drop_last: bool = True,
    ) -> None:
        if not 0 <= rank < world_size:
            raise ValueError(f"rank {rank} outside world size {world_size}")
        self.size = size
        self.shuffle = shuffle
        self.seed = seed
        self.rank = rank
        self.world_size = world_size
        self.drop_last = drop_last
        self.epoch = 0
        self._skip = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def skip_next(self, count: int) -> None:
        """Make the next iteration start `count` local indices into the epoch (resume)."""
        self._skip = count

    def __len__(self) -> int:
        if self.drop_last:
            return self.size // self.world_size
        return len(range(self.rank, self.size, self.world_size))

    def __iter__(self) -> Iterator[int]:
        if self.shuffle:
            generator = torch.Generator().manual_seed(_epoch_seed(self.seed, self.epoch))
            order = torch.randperm(self.size, generator=generator).tolist()
        else:
            order = list(range(self.size))
        if self.drop_last:
            order = order[: len(order) - len(order) % self.world_size]
        local = order[self.rank :: self.world_size]
        skip, self._skip = self._skip, 0
        yield from local[skip:]


class ResumableLoader(DataLoader):
    """A DataLoader over a `ShardedSampler` whose position within the epoch is saved and restored.

    The count is taken where batches leave the loader, so batches prefetched by worker processes but not yet
    trained on are not counted. Worker seeds come from a generator reseeded per epoch, so resuming does not
    depend on (or disturb) the global random state.
    """

    def __init__(self, dataset: Dataset, sampler: ShardedSampler, batch_size: int, **kwargs: Any) -> None:
        self._generator = torch.Generator()
        super().__init__(dataset, batch_size=batch_size, sampler=sampler, generator=self._generator, **kwargs)
        self.sharded_sampler = sampler
        self._epoch = 0
        self._batches_done = 0
        self._resuming = False

    def __iter__(self) -> Iterator[Any]:  # type: ignore[override]
        return self._epoch_batches()

    def _epoch_batches(self) -> Iterator[Any]:
        """One pass, set up when its first batch is asked for rather than at `iter()`: resuming from a
        checkpoint written at an epoch's end, Lightning calls `iter()` before it sets the sampler's epoch,
        and the dataset's epoch (its random window choice) and the worker seeds must be those of the
        epoch whose indices the sampler then draws."""
        sampler = self.sharded_sampler
        self._generator.manual_seed(_epoch_seed(sampler.seed + 1, sampler.epoch))
        set_epoch = getattr(self.dataset, "set_epoch", None)
        if callable(set_epoch):
            set_epoch(sampler.epoch)
        # A new pass starts from zero, except the first pass after `load_state_dict`, which continues.
        if not self._resuming:
            self._batches_done = 0
        self._epoch, self._resuming = sampler.epoch, False
        for batch in super().__iter__():
            self._batches_done += 1
            yield batch

    def state_dict(self) -> dict[str, int]:
        return {
            "epoch": self._epoch,
            "batches_done": self._batches_done,
            "batch_size": self.batch_size or 0,
            "world_size": self.sharded_sampler.world_size,
        }

    def load_state_dict(self, state: dict[str, int]) -> None:
        """Position the next iteration right after the last batch handed out before the checkpoint."""
        saved = (state["batch_size"], state["world_size"])
        if saved != (self.batch_size, self.sharded_sampler.world_size):
            raise ValueError(
                f"cannot resume mid-epoch: the checkpoint's loader ran batches of {saved[0]} on {saved[1]} "
                f"processes, this run {self.batch_size} on {self.sharded_sampler.world_size}; change "
                "data.batch_size or the number of processes back"
            )
        epoch, done = state["epoch"], state["batches_done"]
        if done >= len(self):
            epoch, done = epoch + 1, 0
        self.sharded_sampler.set_epoch(epoch)
        self.sharded_sampler.skip_next(done * self.batch_size)
        self._epoch, self._batches_done, self._resuming = epoch, done, True


def _epoch_seed(seed: int, epoch: int) -> int:
    """A seed per (seed, epoch) that does not collide for nearby pairs."""
    return (seed * 1_000_003 + epoch) % (2**63 - 1)
