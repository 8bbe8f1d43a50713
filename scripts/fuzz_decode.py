"""Fuzz `avforensics.media.decode.decode` with seeded mutations of small valid media files.

Every mutated file must end as a decoded video or a `MediaError`; any other exception, a crash of the
decoding process or a hang (no answer within `--timeout` seconds) is a bug. Decoding runs in a child
process watched by this one, so a segfault or an endless loop is caught and the run goes on with a fresh
child. Prints the outcome counts; exits 1 if any file ended badly.

    PYTHONPATH=src python scripts/fuzz_decode.py --files 2000 --keep /tmp/fuzz-bad

The same seed gives the same mutations (drawn from `random.Random(f"{seed}:{index}")`), but libx264 does
not write bit-identical seed files from run to run: `--keep` saves each badly ending file to reproduce it.
"""

from __future__ import annotations

import argparse
import collections
import json
import multiprocessing
import random
import resource
import shutil
import sys
import tempfile
import time
import traceback
import warnings
from dataclasses import dataclass
from multiprocessing.connection import Connection
from pathlib import Path

import numpy as np

MUTATIONS = ("flip", "truncate", "duplicate", "mixed")
GOOD_OUTCOMES = ("decoded", "MediaError")
MEMORY_LIMIT = 4 << 30  # bytes of address space a decoding child may use: a runaway allocation fails there


@dataclass(frozen=True)
class Seed:
    """A small valid file to mutate: name (with the container's suffix), video and audio codecs."""

    name: str
    video_codec: str | None
    audio_codec: str | None
    sample_rate: int


SEEDS = (
    Seed("h264_aac.mp4", "libx264", "aac", 44100),
    Seed("h264_aac.mkv", "libx264", "aac", 16000),
    Seed("vp8_opus.webm", "libvpx", "libopus", 48000),
    Seed("mpeg4_pcm.avi", "mpeg4", "pcm_s16le", 16000),
    Seed("h264_aac.mov", "libx264", "aac", 22050),
    Seed("h264_silent.mp4", "libx264", None, 16000),
    Seed("audio_aac.m4a", None, "aac", 16000),
    Seed("audio_pcm.wav", None, "pcm_s16le", 16000),
    Seed("audio_mp3.mp3", None, "mp3", 16000),
)


def write_seeds(folder: Path, seconds: float = 0.6) -> list[Path]:
    """Write the seed files: moving gradients and a stereo tone, a fraction of a second long."""
    from avforensics.media.encode import write_video

    paths = []
    for seed in SEEDS:
        frames = None
        if seed.video_codec is not None:
            n = round(seconds * 25)
            ramp = np.linspace(0, 255, 64, dtype=np.float32)
            frames = np.stack([np.roll(ramp, 3 * k)[None, :].repeat(48, 0) for k in range(n)])
            frames = np.stack([frames, frames[:, ::-1], 255 - frames], axis=-1).astype(np.uint8)
        audio = None
        if seed.audio_codec is not None:
            t = np.arange(round(seconds * seed.sample_rate)) / seed.sample_rate
            audio = np.stack([0.4 * np.sin(2 * np.pi * 440 * t), 0.3 * np.sin(2 * np.pi * 660 * t)])
        path = write_video(
            folder / seed.name,
            frames,
            25,
            audio,
            seed.sample_rate,
            video_codec=seed.video_codec or "libx264",
            audio_codec=seed.audio_codec or "aac",
        )
        paths.append(path)
    return paths


def mutate(data: bytes, rng: random.Random, kind: str) -> bytes:
    """One seeded mutation: flipped bytes, a truncation, a duplicated chunk, or several of them."""
    buffer = bytearray(data)
    if kind == "mixed":
        for step in rng.sample(MUTATIONS[:3], k=rng.randint(2, 3)):
            buffer = bytearray(mutate(bytes(buffer), rng, step))
        return bytes(buffer)
    if kind == "flip":
        for _ in range(rng.randint(1, 16)):
            buffer[_position(buffer, rng)] ^= rng.randint(1, 255)
    elif kind == "truncate":
        buffer = buffer[: rng.randint(1, len(buffer) - 1)]
    elif kind == "duplicate":
        start = _position(buffer, rng)
        chunk = buffer[start : start + rng.randint(1, 4096)]
        at = _position(buffer, rng)
        buffer[at:at] = chunk
    else:
        raise ValueError(f"unknown mutation {kind!r}")
    return bytes(buffer)


def _position(buffer: bytearray, rng: random.Random) -> int:
    """A byte position, half the time among the first or last 512 bytes, where containers keep headers."""
    if rng.random() < 0.5:
        edge = min(512, len(buffer))
        offset = rng.randrange(edge)
        return offset if rng.random() < 0.5 else len(buffer) - 1 - offset
    return rng.randrange(len(buffer))


def decode_worker(connection: Connection) -> None:
    """Child process: decode each path it is sent and answer (outcome, detail)."""
    resource.setrlimit(resource.RLIMIT_AS, (MEMORY_LIMIT, MEMORY_LIMIT))
    warnings.simplefilter("ignore")
    from avforensics.media.decode import decode
    from avforensics.media.errors import MediaError

    while (path := connection.recv()) is not None:
        try:
            video = decode(path, require_video=False, max_duration=120)
            shape = None if video.frames is None else list(video.frames.shape)
            answer = ("decoded", f"frames {shape}, audio {None if video.audio is None else len(video.audio)}")
        except MediaError as error:
            answer = ("MediaError", type(error).__name__)
        except BaseException as error:  # noqa: BLE001 - every other exception is what the fuzzer looks for
            answer = ("exception", f"{type(error).__name__}: {error}\n{traceback.format_exc(limit=-4)}")
        connection.send(answer)


class Watchdog:
    """Runs decode_worker in a child and restarts it after a crash or a hang."""

    def __init__(self, timeout: float) -> None:
        self.timeout = timeout
        self.context = multiprocessing.get_context("spawn")
        self.process: multiprocessing.Process | None = None
        self.connection: Connection | None = None

    def decode(self, path: Path) -> tuple[str, str]:
        if self.process is None:
            self.connection, child = self.context.Pipe()
            self.process = self.context.Process(target=decode_worker, args=(child,), daemon=True)
            self.process.start()
            child.close()
            self.connection.send(str(path))
            ready = self.connection.poll(self.timeout + 30)  # the first call also imports the package
        else:
            self.connection.send(str(path))
            ready = self.connection.poll(self.timeout)
        try:
            if ready:
                return self.connection.recv()
        except EOFError:
            pass
        if self.process.is_alive():
            self.stop()
            return "hang", f"no answer within {self.timeout:.0f} s"
        self.process.join()
        code = self.process.exitcode
        self.stop()
        return "crash", f"decoding process died with exit code {code}"

    def stop(self) -> None:
        if self.process is not None:
            if self.process.is_alive():
                self.connection.send(None)
                self.process.join(2)
            if self.process.is_alive():
                self.process.kill()
                self.process.join()
            self.connection.close()
        self.process = self.connection = None


def run(files: int, seed: int, first: int, timeout: float, keep: Path | None) -> dict:
    """Decode `files` mutated files (indices first .. first+files-1) and return the outcome counts."""
    counts: collections.Counter[str] = collections.Counter()
    media_errors: collections.Counter[str] = collections.Counter()
    bad: list[dict] = []
    watchdog = Watchdog(timeout)
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="fuzz-decode-") as scratch:
        scratch = Path(scratch)
        seeds = [(path, path.read_bytes()) for path in write_seeds(scratch)]
        try:
            for index in range(first, first + files):
                rng = random.Random(f"{seed}:{index}")
                source, data = seeds[rng.randrange(len(seeds))]
                kind = rng.choice(MUTATIONS)
                path = scratch / f"{index:06d}_{kind}_{source.name}"
                path.write_bytes(mutate(data, rng, kind))
                outcome, detail = watchdog.decode(path)
                counts[outcome] += 1
                if outcome == "MediaError":
                    media_errors[detail] += 1
                elif outcome != "decoded":
                    bad.append({"index": index, "file": path.name, "outcome": outcome, "detail": detail})
                    if keep is not None:
                        keep.mkdir(parents=True, exist_ok=True)
                        shutil.copy(path, keep / path.name)
                path.unlink()
        finally:
            watchdog.stop()
    return {
        "files": files,
        "seed": seed,
        "seconds": round(time.monotonic() - started, 1),
        "counts": dict(counts),
        "media_errors": dict(media_errors),
        "bad": bad,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--files", type=int, default=2000, help="how many mutated files to decode")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--first", type=int, default=0, help="index of the first file (to reproduce one)")
    parser.add_argument("--timeout", type=float, default=20.0, help="seconds per file before it is a hang")
    parser.add_argument("--keep", type=Path, help="copy files with bad outcomes into this folder")
    parser.add_argument("--json", type=Path, help="also write the result as JSON here")
    args = parser.parse_args(argv)
    result = run(args.files, args.seed, args.first, args.timeout, args.keep)
    print(f"{result['files']} mutated files (seed {result['seed']}) in {result['seconds']} s")
    for outcome in ("decoded", "MediaError", "exception", "crash", "hang"):
        print(f"  {outcome:<11} {result['counts'].get(outcome, 0)}")
    for name, count in sorted(result["media_errors"].items(), key=lambda item: -item[1]):
        print(f"    {name:<24} {count}")
    for case in result["bad"]:
        print(f"BAD {case['index']} {case['file']}: {case['outcome']}: {case['detail']}")
    if args.json:
        args.json.write_text(json.dumps(result, indent=1))
    return 1 if result["bad"] else 0


if __name__ == "__main__":
    sys.exit(main())
