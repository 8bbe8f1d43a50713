"""StA's depthwise convolutions: nn.Conv3d against `AxisDepthwiseConv3d` (the same weights run as a Conv2d).

Forward + backward of one convolution on a clip of StA's shape in CAD's paper config (CLIP ViT-B/16 at
224 px: 14 x 14 patches, 16 frames, bottleneck 384 channels), laid out as StA feeds it (a channels-last
view), for every kernel StA uses: temporal (k, 1, 1) and spatial (1, k, k), k in 3, 5, 7. Prints the
median time of each and the speed-up, and checks that both give the same output.

    .venv/bin/python benchmarks/bench_depthwise_conv.py [--device cuda] [--batch 2] [--dtype bf16]
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from avforensics.models.cad.st_adapter import AxisDepthwiseConv3d

DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16}


def seconds(call, device: torch.device, repeats: int) -> float:
    call()
    times = []
    for _ in range(repeats):
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        start = time.perf_counter()
        call()
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--batch", type=int, default=2)
    parser.add_argument("--frames", type=int, default=16)
    parser.add_argument("--grid", type=int, default=14)
    parser.add_argument("--channels", type=int, default=384)
    parser.add_argument("--dtype", choices=sorted(DTYPES), default="fp32")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=0)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device, dtype = torch.device(args.device), DTYPES[args.dtype]
    shape = (args.batch, args.frames, args.grid, args.grid, args.channels)
    clips = torch.randn(shape, device=device, dtype=dtype).permute(0, 4, 1, 2, 3).requires_grad_()
    print(f"{device.type} {args.dtype}: clips (B, C, T, rows, cols) = {tuple(clips.shape)}, "
          "forward + backward")
    print("| kernel | Conv3d ms | as Conv2d ms | speed-up | max abs difference |")
    print("|---|---|---|---|---|")
    for kernel in [(k, 1, 1) for k in (3, 5, 7)] + [(1, k, k) for k in (3, 5, 7)]:
        ours = AxisDepthwiseConv3d(args.channels, kernel).to(device, dtype)
        reference = torch.nn.Conv3d(args.channels, args.channels, kernel, padding=ours.padding,
                                    groups=args.channels).to(device, dtype)
        reference.load_state_dict(ours.state_dict())

        def step(module: torch.nn.Module) -> None:
            module(clips).float().square().mean().backward()

        with torch.no_grad():
            difference = (ours(clips) - reference(clips)).abs().max().item()
        slow = seconds(lambda m=reference: step(m), device, args.repeats)
        fast = seconds(lambda m=ours: step(m), device, args.repeats)
        print(f"| {kernel} | {slow * 1e3:.1f} | {fast * 1e3:.1f} | {slow / fast:.2f}x | {difference:.2e} |")


if __name__ == "__main__":
    main()
