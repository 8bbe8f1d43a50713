"""Generate a whole synthetic corpus: plan, render in worker processes, write the manifest."""

from __future__ import annotations

import multiprocessing
import warnings
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

from tqdm import tqdm

from avforensics.synth.manifest import SynthVideo, write_manifest
from avforensics.synth.plan import DEFAULT_DURATIONS, ClipSpec, plan_corpus
from avforensics.synth.render import render_clip

DEFAULT_DIFFICULTY = 0.5


def _render(job: tuple[ClipSpec, int, str]) -> SynthVideo:
    clip, seed, out_dir = job
    return render_clip(clip, seed, out_dir)


def _rendered(jobs: list[tuple[ClipSpec, int, str]], workers: int) -> Iterator[SynthVideo]:
    if workers <= 1:
        yield from map(_render, jobs)
        return
    # Workers are single-threaded numpy renderers; "spawn" avoids inheriting thread pools by fork.
    with multiprocessing.get_context("spawn").Pool(workers) as pool:
        yield from pool.imap_unordered(_render, jobs)


def generate_corpus(
    out_dir: str | Path,
    n_videos: int,
    seed: int,
    difficulty: float = DEFAULT_DIFFICULTY,
    workers: int = 1,
    progress: bool = False,
    durations: tuple[float, float] = DEFAULT_DURATIONS,
) -> list[SynthVideo]:
    """Render `n_videos` clips into `out_dir`/videos and write manifest.csv / manifest.json.

    Same (n_videos, seed, difficulty, durations) -> the same manifest and files, whatever the number of
    workers. `durations` is the (min, max) clip length in seconds.
    """
    if workers < 1:
        raise ValueError(f"workers must be >= 1, got {workers}")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    jobs = [(clip, seed, str(out_dir)) for clip in plan_corpus(n_videos, seed, difficulty, durations)]
    planned = {f"{clip.name}.mp4" for clip, _, _ in jobs}
    stale = [p.name for p in (out_dir / "videos").glob("*.mp4") if p.name not in planned]
    if stale:
        warnings.warn(
            f"{out_dir / 'videos'}: {len(stale)} .mp4 files of an earlier run are not in the new manifest",
            stacklevel=2,
        )
    rendered = tqdm(
        _rendered(jobs, workers), total=len(jobs), desc="synth", unit="video", disable=not progress
    )
    videos = sorted(rendered, key=lambda video: video.path)
    write_manifest(out_dir, videos)
    return videos


def summarise(videos: list[SynthVideo]) -> str:
    """Counts per category and per method, and the total duration, as printable lines."""
    categories = Counter(video.category for video in videos)
    methods = Counter(method for video in videos for method in video.methods.split("+"))
    partial = sum(1 for v in videos if v.fake_periods and v.fake_periods != [[0.0, v.duration]])
    lines = [
        f"{len(videos)} videos, {sum(v.duration for v in videos):.1f} s in all, {partial} partially fake"
    ]
    lines.append("categories: " + ", ".join(f"{name} {count}" for name, count in sorted(categories.items())))
    lines.append("methods:    " + ", ".join(f"{name} {count}" for name, count in sorted(methods.items())))
    return "\n".join(lines)
