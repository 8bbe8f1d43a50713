"""Frozen-feature cache of CAD: training epoch 1 (cache cold) vs epoch 2 (cache warm), same clips, one run.

An epoch is forward + losses + backward + optimiser step over the same clips in the same batches. Epoch 1
runs every frozen layer and fills the cache; epoch 2 reads the shared branch's features and the inputs of
the first adapted CLIP / LoRA Whisper layers from it. Each step of the cached model is interleaved with a
step of the same model without a cache (the reference), so a machine whose load changes during the run
slows both alike; printed are wall and CPU (process) times per epoch, the speed-up epoch 1 / epoch 2, and
the same speed-up normalised by the reference steps taken beside each epoch.

    .venv/bin/python benchmarks/bench_cad_cache.py [--config small] [--clips 16] [--batch-size 4]
                                                   [--override pad_audio_to_30s=true ...]

The small configuration needs Whisper-base (`avforensics weights install whisper-base`); clips are random
(content does not change the cost).
"""

from __future__ import annotations

import argparse
import json
import time

import torch

from avforensics.models.registry import build_model

SAMPLES_PER_FRAME = 640  # 16 kHz audio beside 25 fps video


def make_batches(clips: int, batch_size: int, frames: int, size: int) -> list[dict]:
    generator = torch.Generator().manual_seed(0)
    batches = []
    for start in range(0, clips, batch_size):
        rows = min(batch_size, clips - start)
        labels = torch.randint(0, 2, (rows,), generator=generator)
        batches.append({
            "frames": torch.randn(rows, frames, 3, size, size, generator=generator),
            "audio": torch.randn(rows, frames * SAMPLES_PER_FRAME, generator=generator) * 0.1,
            "audio_present": torch.ones(rows, dtype=torch.bool),
            "label": labels, "video_label": labels, "audio_label": torch.zeros_like(labels),
            "video_id": [f"clip{start + row}" for row in range(rows)],
            "window": torch.zeros(rows, dtype=torch.long),
        })
    return batches


class Timer:
    """Wall and process-CPU seconds accumulated over several timed blocks."""

    def __init__(self) -> None:
        self.wall = self.cpu = 0.0

    def step(self, model: torch.nn.Module, optimizer: torch.optim.Optimizer, batch: dict) -> None:
        wall, cpu = time.perf_counter(), time.process_time()
        optimizer.zero_grad(set_to_none=True)
        sum(model.losses(model(batch), batch).values()).backward()
        optimizer.step()
        self.wall += time.perf_counter() - wall
        self.cpu += time.process_time() - cpu


def interleaved_epoch(models: list, optimizers: list, batches: list[dict]) -> list[Timer]:
    """One epoch of every model, step by step in turn; one Timer per model."""
    timers = [Timer() for _ in models]
    for batch in batches:
        for model, optimizer, timer in zip(models, optimizers, timers, strict=True):
            timer.step(model, optimizer, batch)
    return timers


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default="small")
    parser.add_argument("--clips", type=int, default=16)
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--override", action="append", default=[], metavar="KEY=JSON",
                        help="constructor argument on top of the configuration, e.g. pad_audio_to_30s=true")
    args = parser.parse_args()
    overrides = {key: json.loads(value) for key, value in (item.split("=", 1) for item in args.override)}
    torch.manual_seed(0)
    cached = build_model("cad", args.config, **overrides).train()
    reference = build_model("cad", args.config, **{**overrides, "cache_mb": 0}).train()
    reference.load_state_dict(cached.state_dict())
    size = cached.video_tower.config.image_size
    batches = make_batches(args.clips, args.batch_size, cached.num_frames, size)

    def optimizer_of(model: torch.nn.Module) -> torch.optim.Optimizer:
        return torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-4)

    models = [reference, cached]
    optimizers = [optimizer_of(model) for model in models]
    interleaved_epoch(models, optimizers, batches[:1])  # warm-up: lazy init and allocator
    cached.feature_cache.clear()
    reference_1, cold = interleaved_epoch(models, optimizers, batches)
    reference_2, warm = interleaved_epoch(models, optimizers, batches)
    cache = cached.feature_cache
    threads = torch.get_num_threads()
    setting = f"cad/{args.config} {overrides or ''}"
    print(f"{setting}: {args.clips} clips, batch {args.batch_size}, {threads} threads")
    print("                        wall s    CPU s   (reference without cache beside it: wall, CPU)")
    rows = (("1 (cache cold)", cold, reference_1), ("2 (cache warm)", warm, reference_2))
    for label, timer, beside in rows:
        print(f"  epoch {label} {timer.wall:8.2f} {timer.cpu:8.2f}   ({beside.wall:.2f}, {beside.cpu:.2f})")
    held = cache.memory_bytes / 2**20
    print(f"  cache: {cache.stats.hits} hits, {cache.stats.misses} misses, {held:.1f} MiB held")
    normalised = (cold.wall / reference_1.wall) / (warm.wall / reference_2.wall)
    print(f"  speed-up epoch 1 / epoch 2: wall x{cold.wall / warm.wall:.2f}, CPU x{cold.cpu / warm.cpu:.2f}, "
          f"wall normalised by the reference x{normalised:.2f}")

if __name__ == "__main__":
    main()
