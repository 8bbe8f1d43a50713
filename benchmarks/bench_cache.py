"""The prepared cache's encodings compared on one corpus: bytes against the source videos, what the compact
encoding loses (crop PSNR, audio error, Whisper log-mel error), encode time, cold load time, and one
data-only training epoch (random windows, as the small configurations draw them) cold and from memory.

It starts from an exact cache (`avforensics prepare ... --exact`) and writes the compact one from the same
crops and audio, which is what `prepare` without --exact writes (the face work is the same; only the
encoding differs), so the face detector runs once:

    .venv/bin/python benchmarks/bench_cache.py --exact PREPARED_EXACT [--compact OUT] [--image-size 112]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from avforensics.data.cache_format import ItemArrays, write_item
from avforensics.data.prepare import PreparedStore, PrepareOptions, entry_paths
from avforensics.data.windows import PreparedVideos, WindowDataset
from avforensics.features.logmel import log_mel_spectrogram


def folder_bytes(folder: Path) -> int:
    return sum(path.stat().st_size for path in folder.rglob("*") if path.is_file())


def psnr(reference: np.ndarray, decoded: np.ndarray) -> float:
    error = np.mean((reference.astype(np.float64) - decoded.astype(np.float64)) ** 2)
    return float("inf") if error == 0 else float(10 * np.log10(255.0**2 / error))


def write_compact(exact: PreparedStore, out: Path) -> list[float]:
    """The compact cache of `exact`'s crops and audio in `out`; seconds spent encoding each video."""
    settings = json.loads((exact.out / "prepare.json").read_text(encoding="utf-8"))
    options = dataclasses.replace(PrepareOptions(**settings["options"]), encoding="compact")
    (out / "items").mkdir(parents=True, exist_ok=True)
    settings["options"] = dataclasses.asdict(options)
    (out / "prepare.json").write_text(json.dumps(settings, sort_keys=True), encoding="utf-8")
    shutil.copyfile(exact.out / "manifest.jsonl", out / "manifest.jsonl")
    seconds = []
    for entry in exact.ok():
        item = exact.load(entry["id"])
        arrays, entry_file = entry_paths(out, entry["id"])
        arrays.parent.mkdir(exist_ok=True)
        start = time.perf_counter()
        with open(arrays, "wb") as handle:
            write_item(handle, ItemArrays(item.frames, item.audio, item.boxes, item.face_found, item.fps,
                                          item.sample_rate), "compact")
        seconds.append(time.perf_counter() - start)
        shutil.copyfile(entry_paths(exact.out, entry["id"])[1], entry_file)
    return seconds


def losses(exact: PreparedStore, compact: PreparedStore) -> dict[str, float]:
    """What the compact encoding loses, over every video."""
    psnrs, audio_errors, mel_errors, mel_means = [], [], [], []
    for entry in exact.ok():
        reference, item = exact.load(entry["id"]), compact.load(entry["id"])
        psnrs.append(psnr(reference.frames, item.frames))
        if reference.audio is not None and len(reference.audio) > 400:
            audio_errors.append(float(np.abs(reference.audio - item.audio).max()))
            mel = log_mel_spectrogram(reference.audio), log_mel_spectrogram(item.audio)
            mel_errors.append(float((mel[0] - mel[1]).abs().max()))
            mel_means.append(float((mel[0] - mel[1]).abs().mean()))
    return {"psnr_min": min(psnrs), "psnr_mean": float(np.mean(psnrs)),
            "audio_max_error": max(audio_errors), "logmel_max_error": max(mel_errors),
            "logmel_mean_error": float(np.mean(mel_means))}


def cold_load_ms(store: PreparedStore) -> float:
    ids = [entry["id"] for entry in store.ok()]
    start = time.perf_counter()
    for record_id in ids:
        store.load(record_id)
    return 1000 * (time.perf_counter() - start) / len(ids)


def epoch_seconds(store: PreparedStore, clip_frames: int, image_size: int) -> tuple[float, float, float]:
    """(first epoch, second epoch) of one random window per video, the second from the in-memory cache
    (large enough for every video here), and ms per window of the second."""
    dataset = WindowDataset(PreparedVideos(store), "random", clip_frames, image_size, seed=0,
                            cache_bytes=8 * 2**30)
    times = []
    for epoch in (0, 1):
        dataset.set_epoch(epoch)
        start = time.perf_counter()
        for index in range(len(dataset)):
            dataset[index]
        times.append(time.perf_counter() - start)
    return times[0], times[1], 1000 * times[1] / len(dataset)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--exact", type=Path, required=True, help="a cache prepared with --exact")
    parser.add_argument("--compact", type=Path, help="where to write the compact cache (default: a temp dir)")
    parser.add_argument("--image-size", type=int, default=112, help="the model's image size")
    parser.add_argument("--clip-frames", type=int, default=4, help="frames per window")
    parser.add_argument("--threads", type=int, default=1, help="torch threads")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    exact = PreparedStore(args.exact)
    with tempfile.TemporaryDirectory() as directory:
        out = args.compact or Path(directory) / "compact"
        encode = write_compact(exact, out)
        compact = PreparedStore(out)
        sources = sum(Path(entry["record"]["path"]).stat().st_size for entry in exact.ok())
        print(f"{len(encode)} videos, source {sources / 2**20:.1f} MiB; {args.threads} torch thread(s)")
        print(f"{'':<10}{'MiB':>9}{'x source':>10}{'cold load ms':>14}{'epoch 1 s':>11}{'epoch 2 s':>11}"
              f"{'hit ms':>8}")
        for name, store in (("exact", exact), ("compact", compact)):
            size = folder_bytes(store.out / "items")
            first, second, hit = epoch_seconds(store, args.clip_frames, args.image_size)
            print(f"{name:<10}{size / 2**20:>9.1f}{size / sources:>10.2f}{cold_load_ms(store):>14.1f}"
                  f"{first:>11.1f}{second:>11.2f}{hit:>8.2f}")
        print(f"compact encode: {1000 * float(np.mean(encode)):.0f} ms per video")
        lost = losses(exact, compact)
        print("compact loses: " + ", ".join(f"{key} {value:.3g}" for key, value in lost.items()))


if __name__ == "__main__":
    main()
