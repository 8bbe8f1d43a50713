"""Training and validation loaders for an experiment, sharded over the DDP processes Lightning started."""

from __future__ import annotations

import pytorch_lightning as pl

from avforensics.experiment.config import DataConfig
from avforensics.experiment.data import ClipDataset, build_dataset, collate_windows
from avforensics.train.sampling import ResumableLoader, ShardedSampler


class NotEnoughDataError(ValueError):
    """The training split cannot fill a single batch, so an epoch would have no step."""


class ClipDataModule(pl.LightningDataModule):
    """Builds the two splits of `DataConfig`; `data.batch_size` is global and divided among processes."""

    def __init__(self, config: DataConfig, seed: int) -> None:
        super().__init__()
        self.config = config
        self.seed = seed
        self.train_set: ClipDataset | None = None
        self.val_set: ClipDataset | None = None

    def setup(self, stage: str) -> None:
        if self.train_set is None and stage == "fit":
            self.train_set = build_dataset(self.config, self.config.train_split, self.config.window_policy)
        if self.val_set is None and stage in ("fit", "validate"):
            self.val_set = build_dataset(self.config, self.config.val_split, self.config.eval_window_policy)

    def train_dataloader(self) -> ResumableLoader:
        assert self.train_set is not None, "setup('fit') builds the training set"
        return self._loader(self.train_set, shuffle=True, drop_last=True)

    def steps_per_epoch(self) -> int:
        """Training batches per epoch (per process); an error saying what to change when there are none."""
        steps = len(self.train_dataloader())
        if steps == 0:
            assert self.train_set is not None
            world_size, _ = self._world()
            processes = f" over {world_size} processes" if world_size > 1 else ""
            raise NotEnoughDataError(
                f"{len(self.train_set)} training windows per epoch (split {self.config.train_split!r}, "
                f"data.window_policy={self.config.window_policy}) cannot fill one batch of "
                f"data.batch_size={self.config.batch_size}{processes}, and incomplete training batches are "
                f"dropped: set data.batch_size to at most {len(self.train_set)} (e.g. --set "
                f"data.batch_size={_largest_batch(len(self.train_set), world_size)}) or add training data"
            )
        return steps

    def val_dataloader(self) -> ResumableLoader:
        assert self.val_set is not None, "setup('fit') builds the validation set"
        return self._loader(self.val_set, shuffle=False, drop_last=False)

    def _loader(self, dataset: ClipDataset, *, shuffle: bool, drop_last: bool) -> ResumableLoader:
        world_size, rank = self._world()
        if self.config.batch_size % world_size:
            raise ValueError(
                f"data.batch_size {self.config.batch_size} is the global batch and must divide evenly over "
                f"{world_size} processes"
            )
        sampler = ShardedSampler(
            len(dataset), shuffle=shuffle, seed=self.seed, rank=rank, world_size=world_size,
            drop_last=drop_last,
        )
        return ResumableLoader(
            dataset,  # type: ignore[arg-type]
            sampler,
            batch_size=self.config.batch_size // world_size,
            drop_last=drop_last,
            num_workers=self.config.workers,
            collate_fn=collate_windows,
            persistent_workers=False,
            # Page-locked batches copy to a GPU asynchronously (Lightning moves them with non_blocking).
            pin_memory=self._on_gpu(),
        )

    def _on_gpu(self) -> bool:
        trainer = self.trainer
        return trainer is not None and trainer.strategy.root_device.type == "cuda"

    def _world(self) -> tuple[int, int]:
        trainer = self.trainer
        if trainer is None:
            return 1, 0
        return trainer.world_size, trainer.global_rank


def _largest_batch(windows: int, world_size: int) -> int:
    """The largest global batch that `windows` fill, divisible over the processes (at least one each)."""
    return max(world_size, windows - windows % world_size)
