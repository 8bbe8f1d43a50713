"""Evaluation protocols: functions from records (+ seed, parameters) to a Split, and a registry of the
published ones so `--protocol NAME` works from the command line.

Every protocol is deterministic for a seed: records are sorted by id before any shuffling, and each
random choice uses its own `random.Random` seeded from the seed, so the same records and seed always give
the same split (and the same sha256) on any machine. See docs/datasets.md for which paper uses which.
"""

from __future__ import annotations

import inspect
import logging
import random
import re
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from avforensics.data.adapters.base import modality_category
from avforensics.data.adapters.manifest import split_methods
from avforensics.data.records import REAL, VideoRecord
from avforensics.data.splits import PARTS, Split

log = logging.getLogger(__name__)


class ProtocolError(ValueError):
    """The records cannot be split by this protocol (no identities, no video of the held-out kind, ...)."""


def _sorted(records: Iterable[VideoRecord]) -> list[VideoRecord]:
    records = sorted(records, key=lambda record: record.id)
    duplicates = [a.id for a, b in zip(records, records[1:], strict=False) if a.id == b.id]
    if duplicates:
        raise ProtocolError(f"record ids must be unique; {duplicates[0]} occurs more than once")
    return records


def _shuffled(items: Sequence, seed: int, salt: str) -> list:
    items = list(items)
    random.Random(f"{seed}:{salt}").shuffle(items)
    return items


def _names(value: str | Sequence[str]) -> tuple[str, ...]:
    """A list parameter given as a sequence or, from the command line, as a comma-separated string."""
    if isinstance(value, str):
        return tuple(part.strip() for part in value.split(",") if part.strip())
    return tuple(value)


def _ratio_parts(ids: Sequence[str], ratios: dict[str, float]) -> dict[str, list[str]]:
    """Cut an (already shuffled) id list by ratios; the last part takes the rounding remainder."""
    parts, start = {}, 0
    names = [name for name in PARTS if ratios.get(name, 0) > 0]
    for index, name in enumerate(names):
        end = len(ids) if index == len(names) - 1 else start + round(len(ids) * ratios[name])
        parts[name], start = list(ids[start:end]), end
    return parts


def _check_ratios(train: float, val: float, test: float) -> dict[str, float]:
    ratios = {"train": float(train), "val": float(val), "test": float(test)}
    if any(value < 0 for value in ratios.values()) or abs(sum(ratios.values()) - 1) > 1e-6:
        raise ProtocolError(f"ratios must be non-negative and sum to 1, got {ratios}")
    return ratios


def _make(name: str, params: dict[str, Any], seed: int, parts: dict[str, Iterable[str]]) -> Split:
    return Split(
        protocol=name, params=params, seed=seed, **{part: tuple(parts.get(part, ())) for part in PARTS}
    )


# --- protocol functions ---------------------------------------------------------------------------------


def random_split(
    records: Sequence[VideoRecord],
    seed: int = 0,
    *,
    train: float = 0.7,
    val: float = 0.0,
    test: float = 0.3,
    stratify: bool = False,
    name: str = "random",
) -> Split:
    """Random ratio split; `stratify` keeps each label's proportion in every part."""
    ratios = _check_ratios(train, val, test)
    records = _sorted(records)
    groups: dict[Any, list[str]] = defaultdict(list)
    for record in records:
        groups[record.label if stratify else None].append(record.id)
    parts: dict[str, list[str]] = defaultdict(list)
    for key in sorted(groups, key=str):
        for part, ids in _ratio_parts(_shuffled(groups[key], seed, f"random:{key}"), ratios).items():
            parts[part].extend(ids)
    params = {"train": train, "val": val, "test": test, "stratify": bool(stratify)}
    return _make(name, params, seed, parts)


def modality_class(record: VideoRecord) -> str:
    """RVRA/RVFA/FVRA/FVFA from the per-modality labels, else the category's prefix, else the label."""
    return (
        modality_category(record.video_label, record.audio_label) or record.category[:4] or str(record.label)
    )


def identity_kfold(
    records: Sequence[VideoRecord],
    seed: int = 0,
    *,
    k: int = 5,
    fold: int = 0,
    per_category: int | None = None,
    val_fold: bool = False,
    name: str = "identity-kfold",
) -> Split:
    """Subject-independent k-fold: fold `fold` is test (the next fold is val if `val_fold`), the rest train.

    With `per_category`, first draw that many videos per modality class (MRDF: 500 each of RVRA, RVFA,
    FVRA, FVFA). Identities are dealt to folds largest first, each to the fold where it least unbalances the
    per-class counts, so every fold holds about 1/k of every class (MRDF: 400 train / 100 test per class).
    """
    if not 0 <= fold < k or k < 2:
        raise ProtocolError(f"need k >= 2 and 0 <= fold < k, got k={k}, fold={fold}")
    records = _sorted(records)
    unnamed = [record.id for record in records if not record.identity]
    if unnamed:
        raise ProtocolError(
            f"identity-disjoint folds need identities; {len(unnamed)} record(s) have none, e.g. {unnamed[0]}"
        )
    if per_category is not None:
        records = _per_class_sample(records, int(per_category), seed)
    classes = sorted({modality_class(record) for record in records})
    by_identity: dict[str, list[VideoRecord]] = defaultdict(list)
    for record in records:
        by_identity[record.identity].append(record)
    if len(by_identity) < k:
        raise ProtocolError(f"{len(by_identity)} identities cannot fill {k} identity-disjoint folds")
    identities = _shuffled(sorted(by_identity), seed, "kfold")
    identities.sort(key=lambda identity: -len(by_identity[identity]))  # stable: ties keep the shuffle
    counts = [dict.fromkeys(classes, 0) for _ in range(k)]
    folds: list[list[str]] = [[] for _ in range(k)]
    for identity in identities:
        added = defaultdict(int)
        for record in by_identity[identity]:
            added[modality_class(record)] += 1
        best = min(range(k), key=lambda f: (sum((counts[f][c] + added[c]) ** 2 for c in classes), f))
        folds[best].extend(record.id for record in by_identity[identity])
        for cls, number in added.items():
            counts[best][cls] += number
    val_index = (fold + 1) % k if val_fold else None
    parts = {
        "test": folds[fold],
        "val": folds[val_index] if val_index is not None else [],
        "train": [rid for f in range(k) if f not in (fold, val_index) for rid in folds[f]],
    }
    params = {"k": k, "fold": fold, "per_category": per_category, "val_fold": bool(val_fold)}
    return _make(name, params, seed, parts)


def _per_class_sample(records: list[VideoRecord], number: int, seed: int) -> list[VideoRecord]:
    groups: dict[str, list[VideoRecord]] = defaultdict(list)
    for record in records:
        groups[modality_class(record)].append(record)
    short = {cls: len(group) for cls, group in groups.items() if len(group) < number}
    if short:
        raise ProtocolError(f"per_category={number} but some classes have fewer videos: {short}")
    return [
        record for cls in sorted(groups) for record in _shuffled(groups[cls], seed, f"sample:{cls}")[:number]
    ]


def _ethnicity_key(name: str) -> str:
    return re.sub(r"[^a-z0-9]", "", name.lower())


def ethnicity_split(
    records: Sequence[VideoRecord],
    seed: int = 0,
    *,
    train: str | Sequence[str] = ("Asian (South)", "Asian (East)", "Caucasian (American)"),
    val: str | Sequence[str] = ("African",),
    test: str | Sequence[str] = ("Caucasian (European)",),
    name: str = "ethnicity",
) -> Split:
    """Parts by ethnicity (names compared ignoring case, spaces and punctuation, so `Asian_East` matches).

    An identity whose videos fall in two parts (a face swap files a video under the source's folder but
    shows the target) is removed from the later parts, with a warning, so no identity crosses parts.
    """
    groups = {
        part: {_ethnicity_key(value) for value in _names(value)}
        for part, value in (("train", train), ("val", val), ("test", test))
    }
    records = _sorted(records)
    if not any(record.ethnicity for record in records):
        raise ProtocolError("the ethnicity split needs records with `ethnicity` (FakeAVCeleb's race column)")
    parts: dict[str, list[VideoRecord]] = {part: [] for part in PARTS}
    for record in records:
        key = _ethnicity_key(record.ethnicity)
        for part, keys in groups.items():
            if key in keys:
                parts[part].append(record)
    seen: set[str] = set()
    dropped = 0
    for part in PARTS:
        kept = [record for record in parts[part] if not record.identity or record.identity not in seen]
        dropped += len(parts[part]) - len(kept)
        parts[part] = kept
        seen |= {record.identity for record in kept}
    if dropped:
        log.warning(
            "ethnicity split: dropped %d video(s) whose identity already appears in an earlier part", dropped
        )
    params = {"train": list(_names(train)), "val": list(_names(val)), "test": list(_names(test))}
    return _make(name, params, seed, {part: [record.id for record in kept] for part, kept in parts.items()})


def _methods(record: VideoRecord) -> set[str]:
    return set(split_methods(record.method))


def leave_one_out(
    records: Sequence[VideoRecord],
    seed: int = 0,
    *,
    held_out: str,
    by: str = "category",
    real_test_fraction: float = 0.3,
    val_fraction: float = 0.1,
    exclude_method: bool = True,
    disjoint_identities: bool = False,
    name: str = "leave-one-out",
) -> Split:
    """Train without one category (or method), test on it plus a share of the real videos.

    by="category": the held-out fakes are those whose `category` equals `held_out`; with `exclude_method`
    (default) training also drops every fake made with the same method(s), so e.g. holding out FVFA-WL
    leaves no Wav2Lip video in training. by="method": the held-out fakes are those made with `held_out`
    (a compound method such as `lipsync+tts` counts for each part). `real_test_fraction` of the reals go to
    test; `val_fraction` of the remaining training videos (per label) go to val.
    `disjoint_identities`: every identity with a held-out fake is tested whole (its reals are the test's
    reals, its other fakes are left out), so no test identity is seen in training. Without it, a test
    real's identity is often seen in training as a fake of another method and a held-out fake's identity
    as real, and a detector that recognises identities (or, in the synthetic corpus, scenes) scores the
    held-out method below chance (docs/robustness.md).
    """
    if by not in ("category", "method"):
        raise ProtocolError(f"by must be 'category' or 'method', got {by!r}")
    records = _sorted(records)
    fakes = [record for record in records if record.label != REAL]
    reals = [record.id for record in records if record.label == REAL]

    def held(record: VideoRecord) -> bool:
        return record.category == held_out if by == "category" else held_out in _methods(record)

    test_fakes = [record for record in fakes if held(record)]
    if not test_fakes:
        available = sorted(
            {
                value
                for record in fakes
                for value in ([record.category] if by == "category" else _methods(record))
            }
        )
        raise ProtocolError(f"no fake video with {by} {held_out!r}; available: {available}")
    if by == "method":
        excluded_methods = {held_out}
    elif exclude_method:
        excluded_methods = set().union(*(_methods(record) for record in test_fakes))
    else:
        excluded_methods = set()
    tested = {record.identity for record in test_fakes} if disjoint_identities else set()
    if "" in tested:
        raise ProtocolError("disjoint_identities needs every held-out fake to name its identity")
    train_fakes = [
        record.id for record in fakes
        if not held(record) and not (_methods(record) & excluded_methods) and record.identity not in tested
    ]
    if disjoint_identities:
        test_reals = [record.id for record in records if record.label == REAL and record.identity in tested]
        train_reals = [record_id for record_id in reals if record_id not in set(test_reals)]
    else:
        shuffled_reals = _shuffled(reals, seed, "loo:real")
        n_test_reals = round(len(reals) * real_test_fraction)
        test_reals, train_reals = shuffled_reals[:n_test_reals], shuffled_reals[n_test_reals:]
    test = [record.id for record in test_fakes] + test_reals
    val: list[str] = []
    train: list[str] = []
    for salt, ids in (("real", train_reals), ("fake", train_fakes)):
        ids = _shuffled(sorted(ids), seed, f"loo:val:{salt}")
        n_val = round(len(ids) * val_fraction)
        val += ids[:n_val]
        train += ids[n_val:]
    params = {
        "held_out": held_out,
        "by": by,
        "real_test_fraction": real_test_fraction,
        "val_fraction": val_fraction,
        "exclude_method": bool(exclude_method),
    }
    if disjoint_identities:
        params["disjoint_identities"] = True
    return _make(name, params, seed, {"train": train, "val": val, "test": test})


def cross_dataset(
    records: Sequence[VideoRecord],
    seed: int = 0,
    *,
    train_dataset: str,
    test_dataset: str,
    test_methods: str | Sequence[str] = (),
    test_per_class: int | None = None,
    val_fraction: float = 0.1,
    name: str = "cross-dataset",
) -> Split:
    """Train on one dataset, test on another.

    Train/val: the training dataset's own `train`/`val` splits where it has them; otherwise all of it, with
    `val_fraction` drawn at random. Test: the test dataset's own `test` split where it has one (else all
    of it), restricted to real videos plus `test_methods` if given, and to `test_per_class` videos per label
    if given (a seeded draw, for a balanced subset such as KoDF's).
    """
    records = _sorted(records)
    source = [record for record in records if record.dataset == train_dataset]
    target = [record for record in records if record.dataset == test_dataset]
    for dataset, chosen in ((train_dataset, source), (test_dataset, target)):
        if not chosen:
            present = sorted({record.dataset for record in records})
            raise ProtocolError(f"no records of dataset {dataset!r}; records are from {present}")
    train, val = _training_parts(source, seed, val_fraction)
    if any(record.split == "test" for record in target):
        target = [record for record in target if record.split == "test"]
    methods = set(_names(test_methods))
    if methods:
        target = [record for record in target if record.label == REAL or _methods(record) & methods]
    test = [record.id for record in target]
    if test_per_class is not None:
        test = [
            record_id
            for label in sorted({record.label for record in target})
            for record_id in _shuffled([r.id for r in target if r.label == label], seed, f"cross:{label}")[
                : int(test_per_class)
            ]
        ]
    params = {
        "train_dataset": train_dataset,
        "test_dataset": test_dataset,
        "test_methods": sorted(methods),
        "test_per_class": test_per_class,
        "val_fraction": val_fraction,
    }
    return _make(name, params, seed, {"train": train, "val": val, "test": test})


def _training_parts(source: list[VideoRecord], seed: int, val_fraction: float) -> tuple[list[str], list[str]]:
    if any(record.split == "train" for record in source):
        train = [record.id for record in source if record.split == "train"]
        val = [record.id for record in source if record.split == "val"]
        if val:
            return train, val
    else:
        train = [record.id for record in source]
    shuffled = _shuffled(train, seed, "cross:val")
    n_val = round(len(shuffled) * val_fraction)
    return shuffled[n_val:], shuffled[:n_val]


def official_split(records: Sequence[VideoRecord], seed: int = 0, *, name: str = "official") -> Split:
    """The dataset's own train / val / test parts, as its adapter read them (records of no part, such as
    IDForge's reference set, are left out)."""
    records = _sorted(records)
    parts = {part: [record.id for record in records if record.split == part] for part in PARTS}
    if not parts["train"] or not parts["test"]:
        counts = {part: len(ids) for part, ids in parts.items()}
        raise ProtocolError(f"protocol {name}: the records' own split lacks a train or test part ({counts})")
    return _make(name, {}, seed, parts)


def carve_validation(
    split: Split, records: Sequence[VideoRecord], fraction: float, seed: int, *, by_identity: bool
) -> Split:
    """`split` with a seeded `fraction` of its training part moved to a new validation part.

    For protocols that publish only train and test: a checkpoint can then be selected without looking at
    the test part. With `by_identity` whole identities move (the protocol keeps identities apart, so must
    its validation part); otherwise each label gives its share (at least one video when it has two), so
    the validation AUC is defined.
    """
    if not 0 < fraction < 1:
        raise ProtocolError(f"validation fraction must be in (0, 1), got {fraction}")
    if split.val:
        raise ProtocolError(f"protocol {split.protocol} already has a validation part ({len(split.val)} "
                            "videos); carving another off the training part would replace it")
    by_id = {record.id: record for record in records}
    train = [by_id[record_id] for record_id in split.train]
    if by_identity:
        nameless = [record.id for record in train if not record.identity]
        if nameless:
            raise ProtocolError(f"an identity-disjoint validation needs identities: {nameless[0]} has none")
        identities = _shuffled(sorted({record.identity for record in train}), seed, "val-from-train")
        count = max(1, round(len(identities) * fraction))
        if count >= len(identities):
            raise ProtocolError(f"{len(identities)} training identities cannot give a validation part "
                                f"({fraction:.0%}) and keep one for training")
        chosen = set(identities[:count])
        val = [record.id for record in train if record.identity in chosen]
    else:
        val = []
        for label in sorted({record.label for record in train}):
            ids = _shuffled([record.id for record in train if record.label == label], seed, f"val:{label}")
            val += ids[: max(1 if len(ids) > 1 else 0, round(len(ids) * fraction))]
        if not val or len(val) == len(train):
            raise ProtocolError(f"{len(train)} training videos cannot give a validation part ({fraction})")
    moved = set(val)
    params = {**split.params, "val_from_train": fraction, "val_by_identity": by_identity}
    return _make(split.protocol, params, seed, {
        "train": [record_id for record_id in split.train if record_id not in moved], "val": val,
        "test": split.test,
    })


# --- the registry ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Protocol:
    """A named protocol: the function, its default parameters, the datasets it reads and who uses it."""

    name: str
    build: Callable[..., Split]
    defaults: dict[str, Any] = field(default_factory=dict)
    datasets: tuple[str, ...] = ()  # adapter names whose records it needs; () = any one dataset
    paper: str = ""
    description: str = ""
    identity_disjoint: bool = False  # its parts share no identity (so must a validation part carved later)

    def __call__(self, records: Sequence[VideoRecord], seed: int = 0, **params: Any) -> Split:
        accepted = inspect.signature(self.build).parameters
        unknown = sorted(set(params) - set(accepted) - {"records", "seed", "name"})
        if unknown:
            known = sorted(set(accepted) - {"records", "seed", "name"})
            raise ProtocolError(
                f"protocol {self.name}: unknown parameter(s) {unknown}; it takes {known}"
                " (in YAML flow style write `{k: 5}`, with a space after the colon)"
            )
        return self.build(records, seed, **{**self.defaults, **params, "name": self.name})


_AVPL = "AV prompt learning (Miao et al. AAAI 2025)"
_MACB = "MACB-DF (Xiong et al. ICMR 2025)"
_CAD = "CAD (Du et al. 2025)"
_PROTOCOLS = (
    Protocol("random", random_split, description="random ratio split (train/val/test, optional stratify)"),
    Protocol("fakeavceleb-70-30", random_split, {"train": 0.7, "val": 0.0, "test": 0.3}, ("fakeavceleb",),
             f"AVoiD-DF (Yang et al. 2023); AVFF (Oorloff et al. CVPR 2024); {_CAD}",
             "random 70/30 train/test of FakeAVCeleb"),
    Protocol("macbdf-80-20", random_split, {"train": 0.8, "val": 0.0, "test": 0.2, "stratify": True}, (),
             _MACB, "stratified random 80/20 train/test (FakeAVCeleb, DFDC, DefakeAVMiT)"),
    Protocol("identity-kfold", identity_kfold, description="identity-disjoint k-fold: k, fold, per_category",
             identity_disjoint=True),
    Protocol("mrdf-5fold", identity_kfold, {"k": 5, "per_category": 500}, ("fakeavceleb",),
             "MRDF (Zou et al. ICASSP 2024)", "balanced (500 per class) identity-disjoint 5-fold",
             identity_disjoint=True),
    Protocol("ethnicity", ethnicity_split, {}, ("fakeavceleb",), _AVPL,
             "train Asian (South/East) + Caucasian (American), val African, test Caucasian (European)",
             identity_disjoint=True),
    Protocol("official", official_split, description="the dataset's own train / val / test parts"),
    Protocol("idforge-official", official_split, {}, ("idforge-v2",), _CAD,
             "IDForge-v2's own train / val / test folders (identity-disjoint; reference set left out)",
             identity_disjoint=True),
    Protocol("leave-one-category-out", leave_one_out, {"by": "category"}, ("fakeavceleb",),
             f"AVAD (Feng et al. CVPR 2023); AVFF; {_AVPL}; {_CAD}",
             "hold out one of RVFA, FVRA-WL, FVFA-FS, FVFA-GAN, FVFA-WL; test on it plus real videos"),
    Protocol("leave-one-method-out", leave_one_out, {"by": "method"},
             description="hold out one forgery method (e.g. of the synthetic corpus); test on it plus reals"),
    Protocol("cross-dataset", cross_dataset, description="train on train_dataset, test on test_dataset"),
    Protocol("dfdc-to-fakeavceleb", cross_dataset, {"train_dataset": "dfdc", "test_dataset": "fakeavceleb"},
             ("dfdc", "fakeavceleb"), _MACB, "train DFDC, test FakeAVCeleb"),
    Protocol("dfdc-to-defakeavmit", cross_dataset, {"train_dataset": "dfdc", "test_dataset": "defakeavmit"},
             ("dfdc", "defakeavmit"), _MACB, "train DFDC, test DefakeAVMiT"),
    Protocol("fakeavceleb-to-kodf", cross_dataset,
             {"train_dataset": "fakeavceleb", "test_dataset": "kodf", "test_methods": ["atfhp", "wav2lip"]},
             ("fakeavceleb", "kodf"), f"AVAD; AVFF; {_AVPL}",
             "train FakeAVCeleb, test KoDF reals + audio-driven fakes (subset assumed, see docs)"),
    Protocol("idforge-to-faceshifter", cross_dataset,
             {"train_dataset": "idforge-v2", "test_dataset": "faceforensics",
              "test_methods": ["FaceShifter"]},
             ("idforge-v2", "faceforensics"), _CAD, "train IDForge, test FF++ test reals + FaceShifter"),
    Protocol("idforge-to-celebdf", cross_dataset, {"train_dataset": "idforge-v2", "test_dataset": "celebdf"},
             ("idforge-v2", "celebdf"), _CAD, "train IDForge, test the Celeb-DF v2 test list"),
)
_REGISTRY: dict[str, Protocol] = {protocol.name: protocol for protocol in _PROTOCOLS}


def list_protocols() -> dict[str, Protocol]:
    return dict(_REGISTRY)


def get_protocol(name: str) -> Protocol:
    if name not in _REGISTRY:
        raise KeyError(f"unknown protocol {name!r}; known: {', '.join(sorted(_REGISTRY))}")
    return _REGISTRY[name]


def make_split(name: str, records: Sequence[VideoRecord], seed: int = 0, **params: Any) -> Split:
    """Run the registered protocol `name` on `records`."""
    return get_protocol(name)(records, seed, **params)
