"""What the engine needs from datasets: the `ClipDataset` interface, a dataset registry, collation.

The data room implements `ClipDataset` per corpus; the engine only sees window dicts, so any source of clips
(prepared cache, synthetic corpus, in-memory tensors) trains the same way.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Protocol, runtime_checkable

import torch
from torch import Tensor

from avforensics.experiment.config import DataConfig


@runtime_checkable
class ClipDataset(Protocol):
    """A map-style dataset of clip windows.

    `__getitem__` returns one window as a dict: `video_id` (str) and `window` (int, index of the window in
    its video) always; the Batch tensors of DESIGN.md without the batch dimension (`frames` (T,3,H,W),
    `audio` (N,) or `mel` (80,F), `audio_present`, `label`, `video_label`, `audio_label`, `frame_labels`
    (T,)); optionally `category` and `method` strings. Random choices (e.g. which window of a video to
    return under the "random" policy) must depend only on the index and the epoch given to the optional
    `set_epoch(epoch)`, never on a running random stream: that is what makes mid-epoch resume exact and
    DDP shards reproducible.
    """

    def __len__(self) -> int: ...

    def __getitem__(self, index: int) -> dict[str, Any]: ...


DatasetFactory = Callable[[DataConfig, str, str], ClipDataset]
_DATASETS: dict[str, DatasetFactory] = {}


def register_dataset(name: str) -> Callable[[DatasetFactory], DatasetFactory]:
    """Decorator: make `factory(data_config, split, window_policy) -> ClipDataset` buildable by name."""

    def decorator(factory: DatasetFactory) -> DatasetFactory:
        if name in _DATASETS and _DATASETS[name] is not factory:
            raise ValueError(f"a dataset named {name!r} is already registered")
        _DATASETS[name] = factory
        return factory

    return decorator


def build_dataset(config: DataConfig, split: str, window_policy: str) -> ClipDataset:
    """The dataset of one split, checked against the `ClipDataset` interface."""
    _register_adapter_datasets()
    if config.dataset not in _DATASETS:
        known = ", ".join(sorted(_DATASETS)) or "none"
        raise KeyError(f"unknown dataset {config.dataset!r}; registered datasets: {known}")
    dataset = _DATASETS[config.dataset](config, split, window_policy)
    if not isinstance(dataset, ClipDataset):
        raise TypeError(f"dataset {config.dataset!r} ({type(dataset).__name__}) lacks __len__/__getitem__")
    if len(dataset) == 0:
        raise ValueError(f"dataset {config.dataset!r} split {split!r} under {config.root!r} has no windows")
    return dataset


def collate_windows(windows: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Stack window dicts into a Batch: tensors stacked, numbers to tensors, strings kept as lists."""
    if not windows:
        raise ValueError("cannot collate an empty list of windows")
    keys = windows[0].keys()
    for window in windows[1:]:
        if window.keys() != keys:
            difference = sorted(set(keys) ^ set(window.keys()))
            raise ValueError(
                f"window {window.get('video_id')!r}/{window.get('window')!r} has different keys from "
                f"{windows[0].get('video_id')!r}: {difference}"
            )
    batch: dict[str, Any] = {}
    for key in keys:
        values = [window[key] for window in windows]
        first = values[0]
        if isinstance(first, str):
            batch[key] = list(values)
        elif isinstance(first, Tensor):
            batch[key] = _stack(key, values, windows)
        elif isinstance(first, bool | int | float):
            batch[key] = torch.tensor(values)
        else:
            raise TypeError(f"window key {key!r} has unsupported type {type(first).__name__}")
    return batch


def _stack(key: str, values: list[Tensor], windows: Sequence[dict[str, Any]]) -> Tensor:
    shapes = {tuple(value.shape) for value in values}
    if len(shapes) > 1:
        detail = ", ".join(f"{w.get('video_id')}/{w.get('window')}: {tuple(v.shape)}" for w, v in zip(
            windows, values, strict=True))
        raise ValueError(f"cannot batch {key!r}: shapes differ ({detail})")
    return torch.stack(values)


def _register_adapter_datasets() -> None:
    """The one place the built-in datasets (one per data adapter) register: on first use, since importing
    them loads the adapters and PyAV, which the config schema alone does not need."""
    import avforensics.experiment.datasets  # noqa: F401
