"""Training and inference cost of each detector and configuration, on CPU or CUDA: where a GPU's time goes.

Per row (detector/config, random backbones: the configs' weight settings set to None, since throughput does
not depend on the weights): trainable / total parameters; FLOPs of one training step (forward, losses,
the engine's gradient combiner, backward) and of one forward pass, counted by torch's FlopCounterMode;
the step time in fp32 and under bf16 autocast, clips/s, peak memory; inference windows/s; and MFU, the
step's FLOPs per second over those of a large matmul measured in the same run, in the same precision.
Each row runs in its own process, so peak memory (CUDA: allocator peak; CPU: the process's peak RSS) is
that row's and an out-of-memory ends the row, not the run.

    .venv/bin/python benchmarks/bench_train_step.py                      # CPU: small timed, paper FLOPs
    .venv/bin/python benchmarks/bench_train_step.py --device cuda --batch 32 --max-batch
    .venv/bin/python benchmarks/bench_train_step.py --rows cad/paper --by-module   # FLOPs per module

On CPU the paper configs are counted at batch 1 (2 where BatchNorm needs two clips), not timed (timing
them is GPU work). CAD runs without its
frozen-feature cache: a cached step skips the frozen towers, which random windows rarely allow.
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch.utils.flop_counter import FlopCounterMode

from avforensics.experiment.config import load_config
from avforensics.models.registry import build_model, random_backbone_overrides
from avforensics.train.gradients import build_combiner
from avforensics.train.optim import build_optimizer

DETECTORS = ("avprompt", "macbdf", "cad")
SAMPLES_PER_FRAME = 640  # 16 kHz audio beside 25 fps video
GIB = 2**30


def make_batch(batch: int, frames: int, size: int, device: torch.device) -> dict[str, Any]:
    """Random clips with both labels, audio on every clip (content does not change the cost)."""
    generator = torch.Generator().manual_seed(0)
    labels = torch.arange(batch) % 2
    tensors = {
        "frames": torch.randn(batch, frames, 3, size, size, generator=generator),
        "audio": torch.randn(batch, frames * SAMPLES_PER_FRAME, generator=generator) * 0.1,
        "audio_present": torch.ones(batch, dtype=torch.bool),
        "label": labels, "video_label": labels, "audio_label": labels,
        "frame_labels": labels[:, None].expand(batch, frames).clone(),
        "window": torch.zeros(batch, dtype=torch.long),
    }
    return {**{k: v.to(device) for k, v in tensors.items()}, "video_id": [f"clip{i}" for i in range(batch)]}


class Row:
    """One detector/config on one device: the model, its optimiser and combiner, as the engine builds them."""

    def __init__(self, name: str, device: torch.device, checkpointing: bool) -> None:
        detector, config_name = name.split("/")
        self.config = load_config(f"{detector}/{config_name}")
        overrides = {**self.config.model.overrides, **random_backbone_overrides(detector, config_name)}
        if detector == "cad":
            overrides["cache_mb"] = 0.0
        if checkpointing:
            overrides["activation_checkpointing"] = True
        torch.manual_seed(0)
        self.model = build_model(detector, self.config.model.config, **overrides).to(device)
        self.device = device
        self.frames = self.config.data.clip_frames
        self.size = int(self.config.data.options.get("image_size", 224))
        self.optimizer = build_optimizer(self.model.named_parameters(), self.config.optim,
                                         self.model.lr_scales())
        self.combiner = build_combiner(self.config.loss.combiner, **self.config.loss.combiner_options)
        self.trainable = [p for p in self.model.parameters() if p.requires_grad]

    def train_step(self, batch: dict[str, Any], bf16: bool) -> None:
        self.model.train()
        with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=bf16):
            losses = self.model.losses(self.model(batch), batch)
        weights = {name: float(self.config.loss.weights.get(name, 1.0)) for name in losses}
        self.optimizer.zero_grad(set_to_none=True)
        self.combiner.backward(losses, weights, self.model.gradient_groups(), self.trainable)
        self.optimizer.step()

    def forward(self, batch: dict[str, Any], bf16: bool) -> None:
        self.model.eval()
        with torch.inference_mode(), torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=bf16):
            self.model(batch)


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def seconds_per_call(call: Callable[[], None], device: torch.device, repeats: int) -> float:
    """Median wall time of `repeats` calls after one warm-up call."""
    call()
    synchronize(device)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        call()
        synchronize(device)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def count_flops(call: Callable[[], None], by_module: bool) -> tuple[float, dict[str, float]]:
    counter = FlopCounterMode(display=False)
    with counter:
        call()
    modules: dict[str, float] = {}
    if by_module:
        counts = counter.get_flop_counts()
        modules = {name: float(sum(ops.values())) for name, ops in counts.items() if name != "Global"}
    return float(counter.get_total_flops()), modules


def peak_memory_gib(device: torch.device) -> float:
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / GIB
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 / GIB  # Linux: KiB


def fits(row: Row, batch: int, bf16: bool) -> bool:
    """Whether a training step at `batch` runs without running out of GPU memory."""
    try:
        row.train_step(make_batch(batch, row.frames, row.size, row.device), bf16)
        synchronize(row.device)
        return True
    except torch.OutOfMemoryError:
        return False
    finally:
        row.optimizer.zero_grad(set_to_none=True)
        torch.cuda.empty_cache()


def largest_batch(row: Row, start: int, bf16: bool, limit: int = 1024) -> int:
    """Doubling from `start`, then bisection: the largest training batch that fits (0 if none does)."""
    low, high = 0, start
    while high <= limit and fits(row, high, bf16):
        low, high = high, high * 2
    high = min(high, limit + 1)
    while high - low > 1:
        middle = (low + high) // 2
        low, high = (middle, high) if fits(row, middle, bf16) else (low, middle)
    return low


def measure_row(name: str, device: torch.device, batch: int, repeats: int, timed: bool,
                checkpointing: bool, max_batch: int, by_module: bool) -> dict[str, Any]:
    """Everything one row reports; run in a process of its own (see `main`)."""
    row = Row(name, device, checkpointing)
    trainable, total = row.model.parameter_counts()
    result: dict[str, Any] = {"row": name, "device": device.type, "batch": batch,
                              "trainable": trainable, "total": total, "checkpointing": checkpointing}
    clips = make_batch(batch, row.frames, row.size, device)
    result["train_flops"], modules = count_flops(lambda: row.train_step(clips, False), by_module)
    result["forward_flops"], _ = count_flops(lambda: row.forward(clips, False), False)
    if by_module:
        result["train_flops_by_module"] = dict(sorted(modules.items(), key=lambda kv: -kv[1])[:25])
    if timed:
        for precision, bf16 in (("fp32", False), ("bf16", True)):
            if device.type == "cuda":
                torch.cuda.reset_peak_memory_stats(device)
            result[f"step_s_{precision}"] = seconds_per_call(lambda b=bf16: row.train_step(clips, b),
                                                              device, repeats)
            result[f"infer_s_{precision}"] = seconds_per_call(lambda b=bf16: row.forward(clips, b),
                                                               device, repeats)
            result[f"peak_gib_{precision}"] = peak_memory_gib(device)
    if max_batch and device.type == "cuda":
        result["max_batch_bf16"] = largest_batch(row, batch, True, max_batch)
    result["peak_gib_process"] = peak_memory_gib(device)
    return result


def matmul_rate(device: torch.device, dtype: torch.dtype, size: int) -> float:
    """FLOP/s of a size^3 matmul: the peak a step's MFU is measured against."""
    a = torch.randn(size, size, device=device, dtype=dtype)
    b = torch.randn(size, size, device=device, dtype=dtype)
    seconds = seconds_per_call(lambda: torch.mm(a, b), device, 5)
    return 2 * size**3 / seconds


def run_isolated(args: argparse.Namespace, name: str, batch: int, timed: bool) -> dict[str, Any]:
    command = [sys.executable, __file__, "--device", args.device, "--one-row", name, "--batch", str(batch),
               "--repeats", str(args.repeats), "--threads", str(args.threads)]
    command += ["--timed"] if timed else []
    command += ["--checkpointing"] if args.checkpointing else []
    command += ["--max-batch", "--max-batch-limit", str(args.max_batch_limit)] if args.max_batch else []
    command += ["--by-module"] if args.by_module else []
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode != 0:
        last = done.stderr.strip().splitlines()[-1:] or [f"exit status {done.returncode} (-9: killed, "
                                                          "out of memory?)"]
        return {"row": name, "batch": batch, "error": last}
    return json.loads(done.stdout.strip().splitlines()[-1])


def table(results: list[dict[str, Any]], rates: dict[str, float]) -> str:
    """The issue's table: one line per row, '-' where a figure was not measured."""
    def fmt(value: float | None, pattern: str) -> str:
        return "-" if value is None else pattern.format(value)

    lines = ["| row | batch | trainable / total | TFLOP/clip train | fwd | step fp32 s | step bf16 s | "
             "clips/s bf16 | train MFU bf16 | infer windows/s bf16 | infer MFU bf16 | peak GiB bf16 |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in results:
        if "error" in r:
            lines.append(f"| {r['row']} | {r['batch']} | error: {' '.join(r['error'])} |")
            continue
        batch = r["batch"]
        step, infer = r.get("step_s_bf16"), r.get("infer_s_bf16")
        mfu = None if step is None else r["train_flops"] / step / rates["bf16"] * 100
        infer_mfu = None if infer is None else r["forward_flops"] / infer / rates["bf16"] * 100
        peak = r.get("peak_gib_bf16", r.get("peak_gib_process"))
        lines.append(
            f"| {r['row']}{' (ckpt)' if r.get('checkpointing') else ''} | {batch} | "
            f"{r['trainable'] / 1e6:.2f}M / {r['total'] / 1e6:.1f}M | "
            f"{r['train_flops'] / batch / 1e12:.3f} | "
            f"{r['forward_flops'] / batch / 1e12:.3f} | {fmt(r.get('step_s_fp32'), '{:.3f}')} | "
            f"{fmt(step, '{:.3f}')} | {fmt(None if step is None else batch / step, '{:.1f}')} | "
            f"{fmt(mfu, '{:.1f}%')} | {fmt(None if infer is None else batch / infer, '{:.1f}')} | "
            f"{fmt(infer_mfu, '{:.1f}%')} | {fmt(peak, '{:.2f}')} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--rows", nargs="+", help="detector/config rows (default: every detector, small "
                        "and paper)")
    parser.add_argument("--batch", type=int, help="timed batch (default: 32 on CUDA, 4 on CPU)")
    parser.add_argument("--repeats", type=int, default=3, help="timed calls per figure (median)")
    parser.add_argument("--threads", type=int, default=0, help="CPU threads (0: torch's default)")
    parser.add_argument("--matmul-size", type=int,
                        help="matmul side for the peak (default 8192 CUDA, 2048 CPU)")
    parser.add_argument("--max-batch", action="store_true",
                        help="also search the largest bf16 training batch")
    parser.add_argument("--max-batch-limit", type=int, default=1024, help="stop the search there")
    parser.add_argument("--checkpointing", action="store_true", help="activation checkpointing where a "
                        "model has it (cad)")
    parser.add_argument("--by-module", action="store_true", help="training FLOPs of the 25 largest modules")
    parser.add_argument("--out", type=Path, help="write the rows and matmul rates as JSON here")
    parser.add_argument("--one-row", help=argparse.SUPPRESS)
    parser.add_argument("--timed", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    cuda = device.type == "cuda"
    if args.one_row:
        max_batch = args.max_batch_limit if args.max_batch else 0
        print(json.dumps(measure_row(args.one_row, device, args.batch, args.repeats, args.timed,
                                     args.checkpointing, max_batch, args.by_module)))
        return

    size = args.matmul_size or (8192 if cuda else 2048)
    rates = {"fp32": matmul_rate(device, torch.float32, size),
             "bf16": matmul_rate(device, torch.bfloat16, size)}
    print(f"{device.type}: {size}^3 matmul {rates['fp32'] / 1e12:.3f} TFLOP/s fp32, "
          f"{rates['bf16'] / 1e12:.3f} bf16", flush=True)
    batch = args.batch or (32 if cuda else 4)
    rows = args.rows or [f"{d}/{c}" for d in DETECTORS for c in ("small", "paper")]
    results = []
    for name in rows:
        paper_on_cpu = name.endswith("/paper") and not cuda
        result = run_isolated(args, name, 1 if paper_on_cpu else batch, timed=not paper_on_cpu)
        if paper_on_cpu and "error" in result:  # BatchNorm in training (macbdf) needs two clips
            result = run_isolated(args, name, 2, timed=False)
        results.append(result)
        print(json.dumps(result), flush=True)
    print(table(results, rates))
    if args.out:
        summary = {"device": device.type, "matmul_flops_per_s": rates, "rows": results}
        args.out.write_text(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
