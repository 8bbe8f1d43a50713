"""Protocol runner: a whole paper-style table (one trained model per held-out value) in one call.

For each held-out category or method the experiment config is trained on that protocol's training part
(`train.run.train`), evaluated on its test part (`protocols.evaluate.evaluate`), and reduced to one row; the
rows and their average form one table. Layout of OUT: `runs/<value>/` (run directory, `evaluation/`, and
`row.json` once the row is finished), `table.md/.csv/.json`. A rerun skips finished rows, continues an
interrupted training from its last checkpoint, and refuses rows made with a different config.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from avforensics.eval.tables import ProtocolTable, TableRow, row_from_report
from avforensics.experiment.config import ExperimentConfig, config_from_dict, config_to_dict
from avforensics.protocols.evaluate import evaluate
from avforensics.train.run import LAST_CHECKPOINT, train

log = logging.getLogger(__name__)

ROW_FILE = "row.json"


@dataclass(frozen=True)
class Benchmark:
    """A named paper table: a leave-one-out protocol and the values it holds out, one row each."""

    name: str
    protocol: str
    held_out: tuple[str, ...]
    description: str


BENCHMARKS = {
    benchmark.name: benchmark for benchmark in (
        Benchmark("fakeavceleb-categories", "leave-one-category-out",
                  ("RVFA", "FVRA-WL", "FVFA-FS", "FVFA-GAN", "FVFA-WL"),
                  "FakeAVCeleb cross-manipulation: leave one of the five fake categories out "
                  "(AVAD, AVFF, AV prompt learning, CAD)"),
        Benchmark("synthetic-methods", "leave-one-method-out",
                  ("faceswap", "gan_upsampling", "lipsync", "desync", "vocoder_tts", "voice_conversion"),
                  "synthetic corpus: leave one forgery method out (video and audio methods)"),
    )
}


class BenchmarkError(ValueError):
    """A protocol run that cannot proceed as asked; the message names the file or setting."""


def run_benchmark(
    config: ExperimentConfig,
    out_dir: str | Path,
    *,
    protocol: str,
    held_out: Sequence[str],
    title: str = "",
    part: str = "test",
    level: str = "video",
    head: str = "overall",
    batch_size: int | None = None,
    device: str = "cpu",
    plots: bool = True,
) -> ProtocolTable:
    """Train and evaluate `config` once per held-out value of `protocol`; write and return the table."""
    if not held_out:
        raise BenchmarkError(f"protocol {protocol!r}: no held-out values given")
    if len(set(held_out)) != len(held_out):
        raise BenchmarkError(f"held-out values repeat: {list(held_out)}")
    out = Path(out_dir)
    table = ProtocolTable(
        title or f"{protocol} ({config.model.name})", level, head,
        details={"protocol": protocol, "part": part, "model": config.model.name,
                 "dataset": config.data.dataset, "config": config.source},
    )
    folders = [_directory_name(value) for value in held_out]
    if len(set(folders)) != len(folders):
        raise BenchmarkError(f"held-out values {list(held_out)} give clashing folder names {folders}")
    setting = {"level": level, "head": head, "part": part}
    for value, folder in zip(held_out, folders, strict=True):
        row_dir = out / "runs" / folder
        row_config = held_out_config(config, protocol, value)
        table.rows.append(finished_row(row_dir, row_config, setting) or run_row(
            row_config, row_dir, value, part, level, head, batch_size, device, plots))
    table.write(out)
    return table


def held_out_config(config: ExperimentConfig, protocol: str, value: str) -> ExperimentConfig:
    """`config` with its data split set to `protocol` holding out `value` (other protocol params kept)."""
    tree = config_to_dict(config)
    data = tree["data"]
    options = data.setdefault("options", {})
    params = dict(options.get("protocol_params") or {}) if data.get("protocol") == protocol else {}
    options["protocol_params"] = {**params, "held_out": value}
    data["protocol"], data["split_file"] = protocol, ""
    held = config_from_dict(tree, source=f"{config.source or 'config'} (held out: {value})")
    held.source = config.source
    return held


def run_row(config: ExperimentConfig, row_dir: Path, value: str, part: str, level: str, head: str,
             batch_size: int | None, device: str, plots: bool) -> TableRow:
    resume = (row_dir / LAST_CHECKPOINT).is_file()
    log.info("row %r: %s training in %s", value, "resuming" if resume else "starting", row_dir)
    train(config, row_dir, resume=resume)
    evaluation = evaluate(row_dir, row_dir / "evaluation", part=part, batch_size=batch_size, device=device,
                          plots=plots)
    row = row_from_report(evaluation.report, value, level, head)
    (row_dir / ROW_FILE).write_text(json.dumps({
        "row": row.to_dict(), "config": config_to_dict(config), "level": level, "head": head, "part": part,
        "checkpoint": str(evaluation.checkpoint),
    }, indent=2), encoding="utf-8")
    return row


def finished_row(row_dir: Path, config: ExperimentConfig, setting: dict[str, str]) -> TableRow | None:
    """The saved row of an earlier run of the same config, or None if this row has not finished."""
    path = row_dir / ROW_FILE
    if not path.is_file():
        return None
    try:
        saved: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
        row = TableRow.from_dict(saved["row"])
    except (json.JSONDecodeError, KeyError, TypeError, ValueError) as error:
        raise BenchmarkError(f"{path}: unreadable finished row ({error}); delete it to redo it") from None
    if saved.get("config") != config_to_dict(config):
        raise BenchmarkError(f"{path}: this row was made with a different config; use another output folder "
                             "or delete the row's folder to redo it")
    earlier = {key: saved.get(key) for key in setting}
    if earlier != setting:
        raise BenchmarkError(f"{path}: this row reports {earlier}, not {setting}; use another output folder")
    log.info("row %r: finished earlier (%s), skipped", row.name, path)
    return row


def _directory_name(value: str) -> str:
    """A folder name for a held-out value (categories and methods may hold '/', '+' or spaces)."""
    return re.sub(r"[^A-Za-z0-9._+-]+", "_", value)
