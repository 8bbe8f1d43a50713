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

With `data.test` (a second dataset, its own root and `prepared` cache) the protocol splits the records of
both datasets together: the training and validation parts must come from `data.dataset`, the test part
from `data.test.dataset` (e.g. `idforge-to-celebdf`).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from avforensics.data.adapters import get_adapter, list_adapters
from avforensics.data.prepare import PreparedStore, PrepareOptions
from avforensics.data.protocols import ProtocolError, carve_validation, list_protocols, make_split
from avforensics.data.records import VideoRecord
from avforensics.data.splits import PARTS, Split, load_split
from avforensics.data.windows import DecodedVideos, PreparedVideos, VideoSource, WindowDataset
from avforensics.experiment.config import ConfigError, DataConfig
from avforensics.experiment.data import register_dataset

OPTION_KEYS = (
    "prepared", "protocol_params", "seed", "image_size", "stride", "trim_silence", "cache_mb",
    "adapter_options", "prepare_options",
)
TEST_OPTION_KEYS = ("prepared", "adapter_options")


@dataclass(frozen=True)
class _Corpus:
    """One dataset of a run: its records and, when prepared, its cache."""

    name: str
    records: list[VideoRecord]
    store: PreparedStore | None


def adapter_windows(config: DataConfig, split: str, window_policy: str) -> WindowDataset:
    """The windows of part `split` ("train", "val" or "test") of the configured dataset(s) and split."""
    options = dict(config.options)
    _check_keys("data.options", options, OPTION_KEYS)
    if split not in PARTS:
        raise ConfigError(f"data split part {split!r}: expected one of {list(PARTS)}")
    seed = int(options.get("seed", 0))
    image_size = int(options.get("image_size", 224))
    corpora = [_corpus("data", config.dataset, config.root, options)]
    if config.test.dataset:
        _check_keys("data.test.options", config.test.options, TEST_OPTION_KEYS)
        corpora.append(_corpus("data.test", config.test.dataset, config.test.root, config.test.options))
    records = [record for corpus in corpora for record in corpus.records]
    ids = getattr(_split(config, records, seed, options.get("protocol_params") or {}), split)
    corpus = corpora[-1] if split == "test" else corpora[0]
    by_id = {record.id: record for record in corpus.records}
    strays = [record_id for record_id in ids if record_id not in by_id]
    if strays:
        raise ConfigError(
            f"part {split!r} of the split ({config.protocol or config.split_file}) holds videos that are not "
            f"{corpus.name}'s, e.g. {strays[0]}: with data.test the training and validation parts come from "
            "data.dataset, the test part from data.test.dataset"
        )
    source: VideoSource
    if corpus.store is not None:
        source = PreparedVideos(corpus.store, ids)
    else:
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


def _check_keys(where: str, options: dict[str, Any], allowed: tuple[str, ...]) -> None:
    unknown = sorted(set(options) - set(allowed))
    if unknown:
        raise ConfigError(f"{where}.{unknown[0]}: unknown option; allowed: {list(allowed)}")


def _corpus(where: str, dataset: str, root: str, options: dict[str, Any]) -> _Corpus:
    """A dataset's records: read by the adapter from its root, else those recorded in its cache."""
    store = PreparedStore(options["prepared"]) if options.get("prepared") else None
    if root:
        records = get_adapter(dataset, **(options.get("adapter_options") or {})).records(root)
    elif store is not None:
        records = [VideoRecord.from_dict(entry["record"]) for entry in store.entries]
    else:
        raise ConfigError(f"dataset {dataset!r}: set {where}.root, or {where}.options.prepared to a cache")
    return _Corpus(where, records, store)


def _augmenter(config: DataConfig) -> Any:
    """The training augmenter `data.augment` asks for (None: none); its libraries load only then."""
    if not config.augment:
        return None
    from avforensics.data.augment import ClipAugmenter

    return ClipAugmenter(config.augment)



def _split(config: DataConfig, records: list[VideoRecord], seed: int, params: dict[str, Any]) -> Split:
    if config.split_file:
        split = load_split(config.split_file)
        split.select(records)  # every id it names must be a record of this dataset
    elif config.protocol:
        split = _protocol_split(config, records, seed, params)
    else:
        raise ConfigError(f"dataset {config.dataset!r}: set data.split_file (a saved split) or data.protocol")
    if not config.val_from_train:
        return split
    protocols = list_protocols()
    by_identity = split.protocol in protocols and protocols[split.protocol].identity_disjoint
    try:
        return carve_validation(split, records, config.val_from_train, seed, by_identity=by_identity)
    except ProtocolError as error:
        raise ConfigError(f"data.val_from_train={config.val_from_train}: {error}") from None


def _protocol_split(config: DataConfig, records: list[VideoRecord], seed: int,
                    params: dict[str, Any]) -> Split:
    """The protocol's split; a cross-dataset protocol run without its second dataset says how to name it."""
    try:
        return make_split(config.protocol, records, seed, **params)
    except ProtocolError as error:
        needed = list_protocols().get(config.protocol)
        if config.test.dataset or needed is None or len(needed.datasets) < 2:
            raise
        train_on, test_on = needed.datasets[:2]
        raise ConfigError(
            f"data.protocol={config.protocol} trains on {train_on} and tests on {test_on}: name the test "
            f"dataset with data.test.dataset={test_on} and data.test.root (or data.test.options.prepared), "
            f"or evaluate with --data {test_on}=ROOT ({error})"
        ) from None


def _prepare_options(values: dict[str, Any]) -> PrepareOptions:
    fields = {field.name for field in dataclasses.fields(PrepareOptions)}
    unknown = sorted(set(values) - fields)
    if unknown:
        raise ConfigError(f"data.options.prepare_options.{unknown[0]}: unknown; allowed: {sorted(fields)}")
    return PrepareOptions(**values)


for _name in list_adapters():
    register_dataset(_name)(adapter_windows)
