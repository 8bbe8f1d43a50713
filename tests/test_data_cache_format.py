"""The cache format: exact mode bit-identical, compact mode close (PSNR >= 40 dB) and deterministic across
processes, the format version recorded and checked."""

from __future__ import annotations

import argparse
import dataclasses
import json
import multiprocessing
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import data_windows_fixtures as wx
import numpy as np
import pytest

from avforensics.data.cache_format import FORMAT_VERSION, CacheFormatError
from avforensics.data.cli import register
from avforensics.data.prepare import (
    PrepareConfigError,
    PreparedStore,
    entry_paths,
    load_frames_and_audio,
    prepare_dataset,
)
from avforensics.media.faces import extract_faces

#: crops at the small configurations' model size, from frames at their decoded size
OPTIONS = dataclasses.replace(wx.OPTIONS, size=112, max_side=None, encoding="compact")


def psnr(reference: np.ndarray, decoded: np.ndarray) -> float:
    error = np.mean((reference.astype(np.float64) - decoded.astype(np.float64)) ** 2)
    return float(10 * np.log10(255.0**2 / error))


def prepare(records, out: Path, encoding: str) -> PreparedStore:
    options = dataclasses.replace(OPTIONS, encoding=encoding)
    prepare_dataset(records, out, options, dataset="synthetic", detector_factory=wx.CentreFaceDetector)
    return PreparedStore(out)


@pytest.fixture(scope="module")
def stores(tmp_path_factory):
    """The fixture corpus prepared in both encodings."""
    root, records, _ = wx.synthetic_corpus(tmp_path_factory)
    records = records[:2]
    return records, prepare(records, root / "exact", "exact"), prepare(records, root / "compact", "compact")


@pytest.fixture(scope="module")
def corpus_root(tmp_path_factory):
    return wx.synthetic_corpus(tmp_path_factory)[0]


def test_exact_mode_stores_the_crops_and_audio_bit_identically(stores):
    records, exact, _ = stores
    for record in records:
        frames, audio, _ = load_frames_and_audio(record, OPTIONS)
        crops = extract_faces(frames, wx.CentreFaceDetector(), OPTIONS.tracker(), source=record.path)
        item = exact.load(record.id)
        assert np.array_equal(item.frames, crops.frames) and np.array_equal(item.audio, audio)
        assert item.audio.dtype == np.float32 and np.array_equal(item.boxes, crops.boxes)


def test_compact_mode_is_close_to_exact_and_much_smaller(stores):
    records, exact, compact = stores
    exact_bytes = compact_bytes = 0
    for record in records:
        reference, item = exact.load(record.id), compact.load(record.id)
        assert item.frames.shape == reference.frames.shape and item.frames.dtype == np.uint8
        assert psnr(reference.frames, item.frames) >= 40.0
        # audio rounded to 16 bits: off by at most half a step of 2^-15
        assert np.abs(item.audio - reference.audio).max() <= 2.0**-16 + 1e-9
        assert item.audio.dtype == np.float32 and len(item.audio) == len(reference.audio)
        assert np.array_equal(item.boxes, reference.boxes) and np.array_equal(item.face_found,
                                                                              reference.face_found)
        exact_bytes += entry_paths(exact.out, record.id)[0].stat().st_size
        compact_bytes += entry_paths(compact.out, record.id)[0].stat().st_size
    assert compact_bytes * 5 < exact_bytes


def _prepare_in_fresh_process(records, out: Path) -> None:
    prepare_dataset(records, out, OPTIONS, dataset="synthetic", detector_factory=wx.CentreFaceDetector)


def test_compact_mode_writes_the_same_bytes_in_another_process(stores, tmp_path):
    records, _, compact = stores
    with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
        pool.submit(_prepare_in_fresh_process, records[:1], tmp_path / "again").result()
    ours, theirs = (entry_paths(out, records[0].id)[0] for out in (compact.out, tmp_path / "again"))
    assert ours.read_bytes() == theirs.read_bytes()


def test_a_newer_format_is_refused_naming_the_file(stores, tmp_path):
    records, _, compact = stores
    settings = compact.out / "prepare.json"
    recorded = json.loads(settings.read_text())
    assert recorded["format"] == FORMAT_VERSION == 2
    future = tmp_path / "future"
    prepare(records[:1], future, "compact")
    (future / "prepare.json").write_text(json.dumps({**recorded, "format": FORMAT_VERSION + 1}))
    with pytest.raises(CacheFormatError, match=r"future/prepare.json: prepared cache format 3.*re-run"):
        PreparedStore(future)
    arrays = entry_paths(compact.out, records[0].id)[0]
    with np.load(arrays) as stored:
        items = {**stored, "format_version": np.int64(FORMAT_VERSION + 1)}
    (future / "prepare.json").write_text(json.dumps(recorded))
    future_arrays = entry_paths(future, records[0].id)[0]
    with open(future_arrays, "wb") as handle:
        np.savez(handle, **items)
    with pytest.raises(CacheFormatError, match=rf"{future_arrays}: prepared cache format 3"):
        PreparedStore(future).load(records[0].id)


def test_a_format_1_cache_is_still_read_but_not_written_into(stores, corpus_root, tmp_path, capsys):
    """Format 1 = the exact layout without a recorded version: read as before, never mixed with format 2."""
    records, exact, _ = stores
    old = tmp_path / "old"
    prepare(records[:1], old, "exact")
    settings = json.loads((old / "prepare.json").read_text())
    del settings["format"], settings["options"]["encoding"]
    (old / "prepare.json").write_text(json.dumps(settings))
    arrays = entry_paths(old, records[0].id)[0]
    with np.load(arrays) as stored:
        items = {key: stored[key] for key in stored.files if key != "format_version"}
    with open(arrays, "wb") as handle:
        np.savez_compressed(handle, **items)
    item = PreparedStore(old).load(records[0].id)
    assert np.array_equal(item.frames, exact.load(records[0].id).frames)
    with pytest.raises(PrepareConfigError, match="format 1; .* writes format 2: prepare into a new --out"):
        prepare(records, old, "exact")
    parser = argparse.ArgumentParser()
    register(parser.add_subparsers())
    args = parser.parse_args(["prepare", "synthetic", str(corpus_root), "--out", str(old), "--exact"])
    assert args.run(args) == 1
    said = capsys.readouterr().err
    assert said.startswith(f"avforensics prepare: {old}/prepare.json: this folder holds a cache of format 1")
