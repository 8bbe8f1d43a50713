"""Cost of the hook loop: our hooked CLIP / Whisper forwards vs transformers' own, side by side.

Run: .venv/bin/python benchmarks/bench_backbone_hooks.py [--reps 9] [--clip clip-vit-base-patch32]
Variants are timed interleaved (one call each per round) on shared weights, and the median per variant
is compared, so background load hits every variant alike. The no-hook ratio must stay <= 1.05.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import torch
from transformers import CLIPVisionModel
from transformers.models.whisper.modeling_whisper import WhisperEncoder

from avforensics.backbones.clip import HookedCLIPVision
from avforensics.backbones.hooks import FeaturePrompts, TokenPrompts
from avforensics.backbones.sizes import clip_vision_config, whisper_encoder_config
from avforensics.backbones.whisper import HookedWhisperEncoder

LIMIT = 1.05


def interleaved_medians(variants: dict[str, Callable[[], object]], reps: int) -> dict[str, float]:
    """Median seconds per variant, timing one call of each variant per round after one warm-up call."""
    for run in variants.values():
        run()
    times: dict[str, list[float]] = {name: [] for name in variants}
    for _ in range(reps):
        for name, run in variants.items():
            start = time.perf_counter()
            run()
            times[name].append(time.perf_counter() - start)
    return {name: statistics.median(values) for name, values in times.items()}


def report(title: str, medians: dict[str, float], reference: str) -> float:
    print(f"\n{title}")
    base = medians[reference]
    for name, seconds in medians.items():
        print(f"  {name:<34} {seconds * 1000:9.1f} ms   x{seconds / base:.3f}")
    return max(seconds / base for name, seconds in medians.items() if "no hooks" in name)


def bench_clip(name: str, frames: int, reps: int) -> float:
    torch.manual_seed(0)
    reference = CLIPVisionModel(clip_vision_config(name)).eval()
    ours = HookedCLIPVision.from_transformers(reference)
    config = ours.config
    prompts = TokenPrompts(ours.num_layers, num_tokens=1, dim=config.hidden_size, mode="keep")
    images = torch.randn(frames, 3, config.image_size, config.image_size)
    variants = {
        "transformers CLIPVisionModel": lambda: reference(images),
        "hooked, no hooks": lambda: ours(images),
        "hooked, keep-prompts (N=1)": lambda: ours(images, hooks=[prompts]),
    }
    with torch.inference_mode():
        medians = interleaved_medians(variants, reps)
    return report(
        f"CLIP {name}, {frames} images of {config.image_size} px", medians, "transformers CLIPVisionModel"
    )


def bench_whisper(name: str, reps: int) -> float:
    torch.manual_seed(0)
    reference = WhisperEncoder(whisper_encoder_config(name)).eval()
    ours = HookedWhisperEncoder.from_transformers(reference)
    dim = ours.hidden_size
    full = torch.randn(1, ours.config.num_mel_bins, 3000)
    window = torch.randn(16, ours.config.num_mel_bins, 64)  # 16 windows of 0.64 s -> 32 tokens each
    prompts = FeaturePrompts(ours.num_layers, num_tokens=32, dim=dim, prompt_dim=dim)
    with torch.inference_mode():
        full_medians = interleaved_medians(
            {"transformers WhisperEncoder": lambda: reference(full), "hooked, no hooks": lambda: ours(full)},
            reps,
        )
        window_medians = interleaved_medians(
            {
                "hooked, no hooks (reference)": lambda: ours(window),
                "hooked, audio prompts": lambda: ours(window, hooks=[prompts]),
            },
            reps,
        )
    ratio = report(
        f"Whisper {name} encoder, one 30 s input (3000 mel frames)",
        full_medians,
        "transformers WhisperEncoder",
    )
    report(
        f"Whisper {name} encoder, 16 windows of 64 mel frames", window_medians, "hooked, no hooks (reference)"
    )
    return ratio


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=9)
    parser.add_argument("--clip", default="clip-vit-base-patch32")
    parser.add_argument("--frames", type=int, default=4)
    parser.add_argument("--whisper", default="whisper-base")
    args = parser.parse_args()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, {args.reps} interleaved rounds")
    worst = max(bench_clip(args.clip, args.frames, args.reps), bench_whisper(args.whisper, args.reps))
    verdict = "ok" if worst <= LIMIT else "TOO SLOW"
    print(f"\nworst no-hook overhead ratio vs transformers: {worst:.3f} (limit {LIMIT}): {verdict}")
    return 0 if worst <= LIMIT else 1


if __name__ == "__main__":
    raise SystemExit(main())
