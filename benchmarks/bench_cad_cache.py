"""Frozen-feature cache of CAD: training epoch 1 (cache cold) vs epoch 2 (cache warm), same clips, one run.

An epoch is forward + losses + backward + optimiser step over the same clips in the same batches. Epoch 1
runs every frozen layer and fills the cache; epoch 2 reads the shared branch's features and the inputs of
the first adapted CLIP / LoRA Whisper layers from it. Printed: both epoch times and their ratio (the
speed-up), side by side with an epoch of the same model without a cache as the reference.

    .venv/bin/python benchmarks/bench_cad_cache.py [--config small] [--clips 16] [--batch-size 4]

The small configuration needs Whisper-base (`avforensics weights install whisper-base`); clips are random
(content does not change the cost).
"""

from __future__ import annotations

import argparse
import time

import torch

from avforensics.models.registry import build_model

FRAMES, SAMPLES = 16, 16 * 640


def make_batches(clips: int, batch_size: int, size: int) -> list[dict]:
    generator = torch.Generator().manual_seed(0)
    batches = []
    for start in range(0, clips, batch_size):
        rows = min(batch_size, clips - start)
        labels = torch.randint(0, 2, (rows,), generator=generator)
        batches.append({
            "frames": torch.randn(rows, FRAMES, 3, size, size, generator=generator),
            "audio": torch.randn(rows, SAMPLES, generator=generator) * 0.1,
            "audio_present": torch.ones(rows, dtype=torch.bool),
            "label": labels, "video_label": labels, "audio_label": torch.zeros_like(labels),
            "video_id": [f"clip{start + row}" for row in range(rows)],
            "window": torch.zeros(rows, dtype=torch.long),
        })
    return batches


def train_epoch(model: torch.nn.Module, optimizer: torch.optim.Optimizer, batches: list[dict]) -> float:
    start = time.perf_counter()
    for batch in batches:
        optimizer.zero_grad(set_to_none=True)
        sum(model.losses(model(batch), batch).values()).backward()
        optimizer.step()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default="small")
    parser.add_argument("--clips", type=int, default=16)
    parser.add_argument("--batch-size", type=int, default=4)
    args = parser.parse_args()
    torch.manual_seed(0)
    cached = build_model("cad", args.config).train()
    reference = build_model("cad", args.config, cache_mb=0).train()
    reference.load_state_dict(cached.state_dict())
    batches = make_batches(args.clips, args.batch_size, cached.clip.config.image_size)

    def optimizer_of(model: torch.nn.Module) -> torch.optim.Optimizer:
        return torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-4)

    cached_optimizer, reference_optimizer = optimizer_of(cached), optimizer_of(reference)
    train_epoch(reference, reference_optimizer, batches[:1])  # warm-up: lazy init, allocator
    no_cache = train_epoch(reference, reference_optimizer, batches)
    cold = train_epoch(cached, cached_optimizer, batches)
    warm = train_epoch(cached, cached_optimizer, batches)
    cache = cached.feature_cache
    threads = torch.get_num_threads()
    print(f"cad/{args.config}: {args.clips} clips, batch {args.batch_size}, {threads} threads")
    print(f"  epoch without cache  {no_cache:8.2f} s")
    print(f"  epoch 1 (cache cold) {cold:8.2f} s   misses {cache.stats.misses}")
    held = cache.memory_bytes / 2**20
    print(f"  epoch 2 (cache warm) {warm:8.2f} s   hits {cache.stats.hits}, {held:.1f} MiB held")
    print(f"  speed-up epoch 1 / epoch 2: x{cold / warm:.2f}   (no cache / epoch 2: x{no_cache / warm:.2f})")


if __name__ == "__main__":
    main()
