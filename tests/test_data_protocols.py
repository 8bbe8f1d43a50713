"""Protocols on fixture datasets: the published splits, determinism, and verified split files."""

from __future__ import annotations

import logging
from collections import Counter
from pathlib import Path

import data_fixtures as fx
import pytest

from avforensics.data.adapters import get_adapter
from avforensics.data.protocols import (
    ProtocolError,
    cross_dataset,
    get_protocol,
    list_protocols,
    make_split,
    modality_class,
)
from avforensics.data.records import VideoRecord
from avforensics.data.splits import Split, SplitIntegrityError, load_split

LOCO_CATEGORIES = {
    "RVFA": "rtvc",
    "FVRA-WL": "wav2lip",
    "FVFA-FS": "faceswap-wav2lip",
    "FVFA-GAN": "fsgan-wav2lip",
    "FVFA-WL": "wav2lip",
}


@pytest.fixture(scope="module")
def fakeavceleb(tmp_path_factory):
    return get_adapter("fakeavceleb").records(fx.write_fakeavceleb(tmp_path_factory.mktemp("favc")))


@pytest.fixture(scope="module")
def datasets(tmp_path_factory, fakeavceleb) -> dict[str, list[VideoRecord]]:
    """Records of every dataset a cross-dataset protocol reads, by adapter name, from fixture trees."""
    base = tmp_path_factory.mktemp("cross")
    trees = {
        "dfdc": fx.write_dfdc,
        "kodf": fx.write_kodf,
        "idforge-v2": fx.write_idforge_v2,
        "faceforensics": fx.write_faceforensics,
        "celebdf": fx.write_celebdf,
        "defakeavmit": lambda root: fx.write_manifest(
            root, [{"path": "real.mp4", "label": 0}, {"path": "fake.mp4", "label": 1, "method": "x"}]
        ),
    }
    loaded = {name: get_adapter(name).records(write(base / name)) for name, write in trees.items()}
    return {"fakeavceleb": fakeavceleb, **loaded}


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory):
    root = fx.write_manifest(tmp_path_factory.mktemp("synth"), fx.synthetic_rows(identities=10))
    return get_adapter("synthetic").records(root)


def parts_of(split: Split, records: list[VideoRecord]) -> dict[str, list[VideoRecord]]:
    return split.select(records)


@pytest.mark.parametrize("held_out", sorted(LOCO_CATEGORIES))
def test_leave_one_category_out(fakeavceleb, held_out):
    parts = parts_of(
        make_split("leave-one-category-out", fakeavceleb, seed=3, held_out=held_out), fakeavceleb
    )
    method = LOCO_CATEGORIES[held_out]
    for part in ("train", "val"):
        assert all(r.method != method and r.category != held_out for r in parts[part])
    assert {r.category for r in parts["test"]} == {held_out, "RVRA"}
    assert Counter(r.category for r in parts["test"]) == {held_out: 10, "RVRA": 3}
    remaining_fakes = sum(r.label == 1 and r.method != method for r in fakeavceleb)
    assert sum(r.label for part in ("train", "val") for r in parts[part]) == remaining_fakes
    assert len(parts["train"]) + len(parts["val"]) == remaining_fakes + 7


def test_leave_one_category_out_can_keep_the_other_category_of_the_same_method(fakeavceleb):
    split = make_split("leave-one-category-out", fakeavceleb, held_out="FVRA-WL", exclude_method=False)
    train = split.select(fakeavceleb)["train"] + split.select(fakeavceleb)["val"]
    assert sum(r.category == "FVFA-WL" for r in train) == 10
    with pytest.raises(ProtocolError, match="no fake video with category 'FVRA-XX'; available"):
        make_split("leave-one-category-out", fakeavceleb, held_out="FVRA-XX")


def test_leave_one_method_out_on_the_synthetic_corpus(synthetic):
    parts = parts_of(make_split("leave-one-method-out", synthetic, seed=1, held_out="tts"), synthetic)
    assert Counter(r.category for r in parts["test"]) == {"RVFA": 10, "FVFA": 10, "RVRA": 3}
    assert {r.category for r in parts["train"] + parts["val"]} == {"RVRA", "FVRA"}


def test_leave_one_out_with_disjoint_identities_tests_each_identity_whole(fakeavceleb):
    split = make_split("leave-one-category-out", fakeavceleb, seed=3, held_out="FVRA-WL",
                       disjoint_identities=True)
    parts = parts_of(split, fakeavceleb)
    tested = {r.identity for r in parts["test"] if r.label == 1}
    assert {r.identity for r in parts["test"]} == tested  # every test real is of a held-out fake's identity
    assert not tested & {r.identity for r in parts["train"] + parts["val"]}
    assert Counter(r.category for r in parts["test"]) == {
        "FVRA-WL": 10, "RVRA": sum(r.label == 0 and r.identity in tested for r in fakeavceleb)}
    assert split.params["disjoint_identities"] is True
    assert "disjoint_identities" not in make_split("leave-one-category-out", fakeavceleb,
                                                   held_out="FVRA-WL").params


def test_ethnicity_split_has_no_identity_across_parts(fakeavceleb):
    parts = parts_of(make_split("ethnicity", fakeavceleb), fakeavceleb)
    assert {part: {r.ethnicity for r in records} for part, records in parts.items()} == {
        "train": {"Asian (South)", "Asian (East)", "Caucasian (American)"},
        "val": {"African"},
        "test": {"Caucasian (European)"},
    }
    assert [len(parts[p]) for p in ("train", "val", "test")] == [48, 16, 16]
    identities = [{r.identity for r in records} for records in parts.values()]
    assert all(not (a & b) for i, a in enumerate(identities) for b in identities[i + 1 :])


def test_ethnicity_split_drops_an_identity_that_would_cross_parts(fakeavceleb, caplog):
    crossing = VideoRecord(id="x/1.mp4", path="", label=1, identity="id00004", ethnicity="African")
    with caplog.at_level(logging.WARNING):
        split = make_split("ethnicity", [*fakeavceleb, crossing])
    assert "x/1.mp4" not in split.val and "dropped 1 video" in caplog.text


def test_identity_kfold_is_disjoint_and_balanced(synthetic):
    test_union = []
    for fold in range(5):
        parts = parts_of(make_split("identity-kfold", synthetic, seed=7, k=5, fold=fold), synthetic)
        assert not ({r.identity for r in parts["train"]} & {r.identity for r in parts["test"]})
        assert Counter(modality_class(r) for r in parts["test"]) == {
            "RVRA": 2,
            "RVFA": 2,
            "FVRA": 2,
            "FVFA": 2,
        }
        test_union += [r.id for r in parts["test"]]
    assert sorted(test_union) == sorted(r.id for r in synthetic)
    # `{k:5}` in YAML flow style is the key "k:5"; the error says so instead of a TypeError
    with pytest.raises(ProtocolError, match=r"identity-kfold: unknown parameter\(s\) \['k:5'\]; it takes \["):
        make_split("identity-kfold", synthetic, seed=7, **{"k:5": None})


def test_mrdf_balanced_folds_draw_per_category(fakeavceleb):
    split = make_split("mrdf-5fold", fakeavceleb, seed=0, per_category=10, fold=2, val_fold=True)
    parts = split.select(fakeavceleb)
    chosen = parts["train"] + parts["val"] + parts["test"]
    assert Counter(modality_class(r) for r in chosen) == {"RVRA": 10, "RVFA": 10, "FVRA": 10, "FVFA": 10}
    identity_sets = [{r.identity for r in records} for records in parts.values()]
    assert all(not (a & b) for i, a in enumerate(identity_sets) for b in identity_sets[i + 1 :])
    with pytest.raises(ProtocolError, match="some classes have fewer videos"):
        make_split("mrdf-5fold", fakeavceleb, per_category=11)


def test_random_ratio_splits(fakeavceleb):
    split = make_split("fakeavceleb-70-30", fakeavceleb, seed=0)
    assert (len(split.train), len(split.val), len(split.test)) == (56, 0, 24)
    parts = make_split("macbdf-80-20", fakeavceleb, seed=0).select(fakeavceleb)
    assert Counter(r.label for r in parts["test"]) == {0: 2, 1: 14}
    assert make_split("random", fakeavceleb, seed=1).train != split.train


def test_cross_dataset_pairs(datasets, fakeavceleb):
    dfdc = datasets["dfdc"]
    split = make_split("dfdc-to-fakeavceleb", dfdc + fakeavceleb)
    assert (len(split.train), len(split.val), len(split.test)) == (6, 2, 80)
    kodf = datasets["kodf"]
    parts = make_split("fakeavceleb-to-kodf", fakeavceleb + kodf).select(fakeavceleb + kodf)
    assert Counter(r.method for r in parts["test"]) == {"real": 3, "wav2lip": 2}
    assert len(parts["train"]) + len(parts["val"]) == 80
    idforge, ffpp = datasets["idforge-v2"], datasets["faceforensics"]
    parts = make_split("idforge-to-faceshifter", idforge + ffpp).select(idforge + ffpp)
    assert Counter((r.method, r.split) for r in parts["test"]) == {
        ("real", "test"): 2,
        ("FaceShifter", "test"): 2,
    }
    assert {r.dataset for r in parts["train"]} == {"idforge-v2"}
    celebdf = datasets["celebdf"]
    assert len(make_split("idforge-to-celebdf", idforge + celebdf).test) == 4
    with pytest.raises(ProtocolError, match="no records of dataset 'defakeavmit'"):
        make_split("dfdc-to-defakeavmit", dfdc)


PARAMS = {
    "leave-one-category-out": {"held_out": "RVFA"},
    "leave-one-method-out": {"held_out": "wav2lip"},
    "mrdf-5fold": {"per_category": 5},
}
#: Every cross-dataset protocol: (parameters, whether the seed decides anything on the fixtures). The seed
#: only draws a validation share from a training set without its own val split (FakeAVCeleb, IDForge v2:
#: `val_fraction` 0.5 gives its two training shots something to draw) and a per-class test subset; DFDC
#: brings its own train/val split, and a test set is taken whole, so the dfdc-to-* splits ignore it.
CROSS_DATASET = {
    "cross-dataset": ({"train_dataset": "fakeavceleb", "test_dataset": "kodf", "test_per_class": 2}, True),
    "dfdc-to-fakeavceleb": ({}, False),
    "dfdc-to-defakeavmit": ({}, False),
    "fakeavceleb-to-kodf": ({}, True),
    "idforge-to-faceshifter": ({"val_fraction": 0.5}, True),
    "idforge-to-celebdf": ({"val_fraction": 0.5}, True),
}


def assert_deterministic_and_round_trips(
    name: str, records: list[VideoRecord], params: dict, tmp_path: Path
) -> Split:
    """The split of seed 5 twice (same hash), then written as JSON and CSV and read back equal."""
    first = make_split(name, records, seed=5, **params)
    assert first.sha256 == make_split(name, records, seed=5, **params).sha256
    assert first.protocol == name and get_protocol(name).description
    for suffix in (".json", ".csv"):
        loaded = load_split(first.save(tmp_path / f"split{suffix}"), expected_sha256=first.sha256)
        assert loaded == first and loaded.sha256 == first.sha256
    return first


@pytest.mark.parametrize("name", sorted(set(list_protocols()) - set(CROSS_DATASET)))
def test_every_single_dataset_protocol_is_deterministic_and_round_trips(name, datasets, tmp_path):
    # the official splits read the records' own parts, which FakeAVCeleb lacks and IDForge has
    records = datasets["idforge-v2" if name in OFFICIAL else "fakeavceleb"]
    assert_deterministic_and_round_trips(name, records, PARAMS.get(name, {}), tmp_path)


OFFICIAL = ("official", "idforge-official")


@pytest.mark.parametrize("name", OFFICIAL)
def test_official_split_keeps_the_dataset_parts_and_leaves_the_reference_set_out(name, datasets):
    parts = make_split(name, datasets["idforge-v2"]).select(datasets["idforge-v2"])
    assert {part: sorted(r.split for r in chosen) for part, chosen in parts.items()} == {
        "train": ["train", "train"], "val": [], "test": ["test"]}
    with pytest.raises(ProtocolError, match="lacks a train or test part"):
        make_split(name, datasets["fakeavceleb"])


def test_the_cross_dataset_table_lists_every_cross_dataset_protocol():
    assert {name for name, p in list_protocols().items() if p.build is cross_dataset} == set(CROSS_DATASET)


@pytest.mark.parametrize("name", sorted(CROSS_DATASET))
def test_every_cross_dataset_protocol_is_deterministic_and_round_trips(name, datasets, tmp_path):
    params, seeded = CROSS_DATASET[name]
    records = [record for records in datasets.values() for record in records]
    parts = assert_deterministic_and_round_trips(name, records, params, tmp_path).select(records)
    chosen = {**get_protocol(name).defaults, **params}
    assert {r.dataset for r in parts["train"] + parts["val"]} == {chosen["train_dataset"]}
    assert {r.dataset for r in parts["test"]} == {chosen["test_dataset"]}
    drawn = {tuple(make_split(name, records, seed=seed, **params).parts().values()) for seed in range(6)}
    assert (len(drawn) > 1) is seeded  # seeds 0-5 give different splits iff the protocol draws anything


def test_a_tampered_split_file_is_rejected(fakeavceleb, tmp_path):
    split = make_split("fakeavceleb-70-30", fakeavceleb, seed=0)
    path = split.save(tmp_path / "s.csv")
    moved = split.test[0]
    path.write_text(path.read_text().replace(f"test,{moved}", f"train,{moved}"))
    with pytest.raises(SplitIntegrityError, match=r"s\.csv: content hash .* does not match the recorded"):
        load_split(path)
    json_path = split.save(tmp_path / "s.json")
    json_path.write_text(json_path.read_text().replace('"seed": 0', '"seed": 1'))
    with pytest.raises(SplitIntegrityError, match="does not match the recorded"):
        load_split(json_path)
    with pytest.raises(SplitIntegrityError, match="is not the expected"):
        load_split(split.save(tmp_path / "ok.json"), expected_sha256="0" * 64)
    with pytest.raises(ValueError, match="is in both train and test"):
        Split("x", train=("a",), test=("a",))
