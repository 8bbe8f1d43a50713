"""Cost of training augmentation: one training epoch (load + augment + forward + backward + step) with the
detector's `data.augment` against the same epoch without it.

Run: .venv/bin/python benchmarks/bench_augment.py CONFIG --corpus DIR --prepared DIR [--epochs 2]
     [--set KEY=VALUE ...]   (e.g. a demo corpus: avforensics demo --out D; CONFIG macbdf/demo)
The two variants alternate epoch by epoch (so background load hits both alike) and the medians are
compared; the target is a ratio below 1.25 (issue 20). Threads: trainer.threads of the config.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
from torch.utils.data import DataLoader

from avforensics.experiment.config import ExperimentConfig, config_from_dict, config_to_dict, load_config
from avforensics.experiment.data import build_dataset, collate_windows
from avforensics.models.registry import build_model

LIMIT = 1.25


def epoch_seconds(config: ExperimentConfig, epoch: int) -> float:
    """Seconds of one epoch of plain gradient steps on the training part (the sum of the model's losses)."""
    torch.manual_seed(0)
    dataset = build_dataset(config.data, config.data.train_split, config.data.window_policy)
    model = build_model(config.model.name, config.model.config, **config.model.overrides).train()
    optimiser = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=1e-4)
    dataset.set_epoch(epoch)
    loader = DataLoader(dataset, batch_size=config.data.batch_size, shuffle=True, drop_last=True,
                        num_workers=config.data.workers, collate_fn=collate_windows)
    start = time.perf_counter()
    for batch in loader:
        losses = model.losses(model(batch), batch)
        optimiser.zero_grad()
        sum(losses.values()).backward()
        optimiser.step()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("config", help="experiment config with data.augment, e.g. macbdf/demo")
    parser.add_argument("--corpus", required=True, help="synthetic corpus folder")
    parser.add_argument("--prepared", required=True, help="its prepared cache")
    parser.add_argument("--epochs", type=int, default=2, help="epochs per variant")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    args = parser.parse_args()
    data = [f"data.root={args.corpus}", f"data.options.prepared={args.prepared}"]
    augmented = load_config(args.config, [*data, *args.overrides])
    if not augmented.data.augment:
        parser.error(f"{args.config}: data.augment is empty, nothing to compare")
    tree = config_to_dict(augmented)
    tree["data"]["augment"] = {}
    plain = config_from_dict(tree, "plain")
    if augmented.trainer.threads:
        torch.set_num_threads(augmented.trainer.threads)
    times: dict[str, list[float]] = {"plain": [], "augmented": []}
    for epoch in range(args.epochs):
        times["plain"].append(epoch_seconds(plain, epoch))
        times["augmented"].append(epoch_seconds(augmented, epoch))
    medians = {name: statistics.median(values) for name, values in times.items()}
    ratio = medians["augmented"] / medians["plain"]
    print(f"{args.config}: data.augment = {augmented.data.augment}")
    for name, seconds in medians.items():
        print(f"  {name:<10} {seconds:8.2f} s per epoch (median of {args.epochs})")
    print(f"  ratio      x{ratio:.3f} (target < {LIMIT})")


if __name__ == "__main__":
    main()
