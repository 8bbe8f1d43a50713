"""`avforensics robustness` end to end on a tiny trained checkpoint, with a subset of perturbations."""

from __future__ import annotations

import csv
import json
from typing import Any

import pytest

from avforensics.cli import main
from avforensics.protocols.robustness import conditions


def test_conditions_are_clean_first_then_each_chosen_level() -> None:
    chosen = conditions(["blur", "mask"], [1, 2])
    assert [(c.perturbation, c.severity, c.level) for c in chosen] == [
        ("none", 0, 0), ("blur", 1, 7), ("blur", 2, 9), ("mask", 1, "audio"), ("mask", 2, "video")]
    with pytest.raises(ValueError, match="--perturbations: unknown 'sepia'"):
        conditions(["sepia"])


def test_robustness_writes_the_table_and_plot_and_the_clean_row_is_the_evaluation(
        trained_tiny: dict[str, Any], tmp_path, capsys) -> None:
    out = tmp_path / "robust"
    code = main(["robustness", str(trained_tiny["checkpoint"]), "--out", str(out), "--part", "val",
                 "--perturbations", "audio_delay,mask,blur", "--levels", "1,3"])
    assert code == 0
    assert "Robustness of tiny_av" in capsys.readouterr().out
    rows = list(csv.DictReader((out / "robustness.csv").open()))
    assert [(r["perturbation"], r["level"]) for r in rows] == [
        ("none", "0"), ("audio_delay", "0.1"), ("audio_delay", "0.4"), ("mask", "audio"), ("blur", "7"),
        ("blur", "13")]
    assert (out / "robustness.png").stat().st_size > 10_000
    assert json.loads((out / "robustness.json").read_text())[0]["perturbation"] == "none"
    # The clean condition re-decodes and re-crops each video at the cache's boxes: the same windows, so
    # the same scores as the engine's validation of this checkpoint.
    engine = trained_tiny["table"]
    keys = zip(engine["video_id"], engine["window"], strict=True)
    expected = dict(zip(keys, engine["p_fake"], strict=True))
    scored = {(r["video_id"], int(r["window"])): float(r["p_fake"])
              for r in csv.DictReader((out / "predictions.csv").open()) if r["perturbation"] == "none"}
    assert scored.keys() == expected.keys()
    assert max(abs(scored[key] - expected[key]) for key in expected) < 1e-5
    # masking the audio changes what an audio-visual model sees; blurring changes the frames
    masked = {(r["video_id"], int(r["window"])): float(r["p_fake"])
              for r in csv.DictReader((out / "predictions.csv").open()) if r["perturbation"] == "mask"}
    assert max(abs(masked[key] - expected[key]) for key in expected) > 1e-4


def test_robustness_refuses_bad_levels_in_cli_terms(trained_tiny: dict[str, Any], tmp_path) -> None:
    assert main(["robustness", str(trained_tiny["checkpoint"]), "--out", str(tmp_path), "--levels", "x"]) == 2
    assert main(["robustness", str(trained_tiny["checkpoint"]), "--out", str(tmp_path),
                 "--perturbations", "sepia"]) == 1
