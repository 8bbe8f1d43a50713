"""Real datasets for the engine: every dataset adapter is a buildable dataset of clip windows.

`data.dataset` names an adapter (e.g. `synthetic`, `fakeavceleb`), `data.root` its folder; the part of a
split (`data.split_file`, or `data.protocol` computed on the fly) picks the videos; with
`data.options.prepared` they are read from that prepared cache, otherwise decoded and face-cropped on first
use; the training part is augmented as `data.augment` says. Importing this module registers the factories.

`data.options` keys:
    prepared          folder written by `avforensics prepare` (fast path); without it, decode on the fly
    protocol_params   mapping of parameters for `data.protocol` (e.g. {k: 5, fold: 0})
    seed              seed of the protocol and of the random windows (default 0)
    image_size        side of the CLIP-normalised frames (default 224)
    stride            frames between windows under the "sliding" policy (default half a window)
    trim_silence      cut each video's leading silence, video kept in step (default false)
    cache_mb          in-memory LRU cache of decoded videos per process, in MiB (default 512)
    adapter_options   keyword options of the adapter (e.g. {compression: c40} for faceforensics)
    prepare_options   PrepareOptions fields for on-the-fly decoding (crop size defaults to image_size)
"""

from __future__ import annotations

import dataclasses
from typing import Any

from avforensics.data.adapters import get_adapter, list_adapters
from avforensics.data.prepare import PreparedStore, PrepareOptions
from avforensics.data.protocols import make_split
from avforensics.data.records import VideoRecord
from avforensics.data.splits import PARTS, Split, load_split
from avforensics.data.windows import DecodedVideos, PreparedVideos, VideoSource, WindowDataset
from avforensics.experiment.config import ConfigError, DataConfig
from avforensics.experiment.data import register_dataset

OPTION_KEYS = (
    "prepared", "protocol_params", "seed", "image_size", "stride", "trim_silence", "cache_mb",
    "adapter_options", "prepare_options",
)


def adapter_windows(config: DataConfig, split: str, window_policy: str) -> WindowDataset:
    """The windows of part `split` ("train", "val" or "test") of the configured dataset and split."""
    options = dict(config.options)
    unknown = sorted(set(options) - set(OPTION_KEYS))
    if unknown:
        raise ConfigError(f"data.options.{unknown[0]}: unknown option; allowed: {list(OPTION_KEYS)}")
    if split not in PARTS:
        raise ConfigError(f"data split part {split!r}: expected one of {list(PARTS)}")
    seed = int(options.get("seed", 0))
    image_size = int(options.get("image_size", 224))
    store = PreparedStore(options["prepared"]) if options.get("prepared") else None
    records = _records(config, store, options.get("adapter_options") or {})
    ids = getattr(_split(config, records, seed, options.get("protocol_params") or {}), split)
    source: VideoSource
    if store is not None:
        source = PreparedVideos(store, ids)
    else:
        by_id = {record.id: record for record in records}
        prepare_options = {"size": image_size, **(options.get("prepare_options") or {})}
        source = DecodedVideos([by_id[record_id] for record_id in ids], _prepare_options(prepare_options))
    stride = options.get("stride")
    return WindowDataset(
        source,
        window_policy,  # type: ignore[arg-type]
        config.clip_frames,
        image_size,
        stride=int(stride) if stride is not None else None,
        seed=seed,
        trim_silence=bool(options.get("trim_silence", False)),
        cache_bytes=int(float(options.get("cache_mb", 512)) * 2**20),
        augment=_augmenter(config) if split == config.train_split else None,
    )


def _augmenter(config: DataConfig) -> Any:
    """The training augmenter `data.augment` asks for (None: none); its libraries load only then."""
    if not config.augment:
        return None
    from avforensics.data.augment import ClipAugmenter

    return ClipAugmenter(config.augment)


def _records(config: DataConfig, store: PreparedStore | None, adapter_options: dict) -> list[VideoRecord]:
    """The dataset's records: read by the adapter from `data.root`, else those recorded in the cache."""
    if config.root:
        return get_adapter(config.dataset, **adapter_options).records(config.root)
    if store is None:
        raise ConfigError(f"dataset {config.dataset!r}: set data.root, or data.options.prepared to a cache")
    return [VideoRecord.from_dict(entry["record"]) for entry in store.entries]


def _split(config: DataConfig, records: list[VideoRecord], seed: int, params: dict[str, Any]) -> Split:
    if config.split_file:
        split = load_split(config.split_file)
        split.select(records)  # every id it names must be a record of this dataset
        return split
    if config.protocol:
        return make_split(config.protocol, records, seed, **params)
    raise ConfigError(f"dataset {config.dataset!r}: set data.split_file (a saved split) or data.protocol")


def _prepare_options(values: dict[str, Any]) -> PrepareOptions:
    fields = {field.name for field in dataclasses.fields(PrepareOptions)}
    unknown = sorted(set(values) - fields)
    if unknown:
        raise ConfigError(f"data.options.prepare_options.{unknown[0]}: unknown; allowed: {sorted(fields)}")
    return PrepareOptions(**values)


for _name in list_adapters():
    register_dataset(_name)(adapter_windows)
