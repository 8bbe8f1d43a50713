"""`evaluate` (predictions, tables, plots, thresholds) and the protocol runner, on briefly trained toys."""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path

import pytest
from data_fixtures import CLIP_SECONDS, write_lavdf
from eval_fixtures import method_config
from sklearn.metrics import roc_auc_score
from train_fixtures import ENGINE_CONFIG

import avforensics.protocols.benchmark as benchmark
from avforensics.cli import main
from avforensics.eval.localization import localization_metrics, read_proposals, timeline_proposals
from avforensics.eval.metrics import MetricUndefined, compute_detection_metrics
from avforensics.eval.predictions import read_predictions
from avforensics.experiment.config import load_config, save_config
from avforensics.protocols.benchmark import BenchmarkError, run_benchmark
from avforensics.protocols.evaluate import DataSelection, evaluate
from avforensics.train.run import train


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A run of the per-frame toy detector on a random 60/20/20 split (val part present)."""
    run_dir = tmp_path_factory.mktemp("eval_run") / "run"
    train(method_config(model="toy_av_frames"), run_dir)
    return run_dir


@pytest.fixture(scope="module")
def evaluated(trained: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("evaluation")
    evaluate(trained, out)
    return out


def _rows(path: Path) -> dict[tuple[str, str, str], dict]:
    rows = json.loads(path.read_text())["rows"]
    return {(row["level"], row["head"], row["subset"]): row for row in rows}


def test_evaluate_writes_predictions_tables_and_plots(evaluated: Path) -> None:
    for name in ("predictions.csv", "predictions.json", "videos.csv", "metrics.md", "metrics.csv",
                 "metrics.json", "summary.json", "validation/predictions.json", "validation/metrics.json"):
        assert (evaluated / name).is_file(), name
    for kind in ("roc", "pr", "hist"):
        for level in ("window", "video"):
            for head in ("overall", "video", "audio"):
                png = evaluated / "plots" / f"{kind}_{level}_{head}.png"
                assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", png
    table = read_predictions(evaluated / "predictions.csv")
    # 40 videos, random stratified 20% test: 8 videos, each cut into its 2 windows.
    assert len(table["video_id"]) == 16 and len(set(table["video_id"])) == 8
    assert sorted(table["window"]) == [0] * 8 + [1] * 8
    assert read_predictions(evaluated / "predictions.json") == table
    summary = json.loads((evaluated / "summary.json").read_text())
    assert summary["checkpoint"].endswith(".ckpt") and "/best-step=" in summary["checkpoint"]
    assert (summary["windows"], summary["videos"], summary["window_policy"]) == (16, 8, "all")


def test_tables_equal_metrics_recomputed_from_written_predictions(evaluated: Path) -> None:
    validation = read_predictions(evaluated / "validation" / "predictions.json")
    thresholds = compute_detection_metrics(validation).thresholds()
    expected = compute_detection_metrics(read_predictions(evaluated / "predictions.csv"), thresholds)
    written = _rows(evaluated / "metrics.json")
    assert len(written) == len(expected.rows)
    for row in expected.rows:
        saved = written[(row.level, row.head, row.subset)]
        assert saved["threshold_source"] == "validation part"
        assert (saved["n"], saved["n_fake"]) == (row.metrics.n, row.metrics.n_fake)
        for name, value in row.metrics.values().items():
            if isinstance(value, float):
                assert saved[name] == pytest.approx(value, abs=1e-12), (row, name)
            else:
                assert saved[name] == {"undefined": value.reason}
    # Frame level: every frame of the 16 windows (4 frames each) is labelled, as the video it belongs to.
    assert written[("frame", "overall", "all")]["n"] == 64
    markdown = (evaluated / "metrics.md").read_text()
    assert f"- video/overall: {thresholds['video/overall']:.3f} (validation part)" in markdown
    assert "### Frame level" in markdown and "| overall | method=bright |" in markdown


def test_video_score_is_the_mean_of_its_window_probabilities(evaluated: Path) -> None:
    table = read_predictions(evaluated / "predictions.csv")
    windows: dict[str, list[float]] = defaultdict(list)
    labels: dict[str, int] = {}
    for video, score, label in zip(table["video_id"], table["p_fake"], table["label"], strict=True):
        windows[video].append(score)
        labels[video] = label
    means = {video: sum(scores) / len(scores) for video, scores in windows.items()}
    videos = (evaluated / "videos.csv").read_text().splitlines()
    assert videos[0].startswith("video_id,windows,p_fake,")
    for line in videos[1:]:
        video, count, p_fake = line.split(",")[:3]
        assert int(count) == 2 and float(p_fake) == pytest.approx(means[video], abs=1e-12)
    ids = sorted(means)
    auc = roc_auc_score([labels[v] for v in ids], [means[v] for v in ids])
    assert _rows(evaluated / "metrics.json")[("video", "overall", "all")]["auc"] == pytest.approx(auc)


def test_without_a_validation_part_acc_uses_half_and_says_so(trained: Path, tmp_path: Path) -> None:
    no_val = DataSelection(overrides=("data.options.protocol_params={train: 0.7, val: 0.0, test: 0.3}",))
    result = evaluate(trained, tmp_path, data=no_val, plots=False)
    assert set(result.thresholds.values.values()) == {0.5}
    for row in json.loads((tmp_path / "metrics.json").read_text())["rows"]:
        assert row["threshold_source"].startswith("0.5: no validation part")
        assert row["acc_tuned"] == row["acc"] and row["threshold"] == 0.5
    assert not (tmp_path / "validation").exists()
    assert "0.500 (0.5: no validation part" in (tmp_path / "metrics.md").read_text()


def test_cli_evaluates_a_part_and_reports_a_missing_run(trained: Path, tmp_path: Path,
                                                        caplog: pytest.LogCaptureFixture) -> None:
    out = tmp_path / "val"
    code = main(["evaluate", str(trained), "--out", str(out), "--data", "toy_av_methods=unused-root",
                 "--part", "val", "--no-plots"])
    assert code == 0
    rows = _rows(out / "metrics.json")
    assert rows[("window", "overall", "all")]["n"] == 16  # 20% of 40 videos, 2 windows each
    assert rows[("window", "overall", "all")]["threshold_source"] == (
        "0.5: evaluating the validation part itself")
    assert main(["evaluate", str(tmp_path / "nowhere"), "--out", str(tmp_path / "x")]) == 1
    assert "neither a checkpoint file nor a run directory" in caplog.text


def test_protocol_runner_one_row_per_held_out_method_average_and_resume(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = method_config(protocol="leave-one-method-out", params={}, epochs=1)
    table = run_benchmark(config, tmp_path, protocol="leave-one-method-out", held_out=["bright", "tone"],
                          plots=False)
    assert [row.name for row in table.rows] == ["bright", "tone"]
    for row in table.rows:
        evaluation = tmp_path / "runs" / row.name / "evaluation"
        saved = _rows(evaluation / "metrics.json")[("video", "overall", "all")]
        expected = (saved["n"], saved["acc_tuned"], saved["auc"], saved["ap"])
        assert (row.n, row.acc, row.auc, row.ap) == expected
        methods = set(read_predictions(evaluation / "predictions.json")["method"])
        assert methods == {"real", row.name, "bright+tone"}  # held-out fakes and real videos only
    written = json.loads((tmp_path / "table.json").read_text())
    assert written["average"]["auc"] == pytest.approx((table.rows[0].auc + table.rows[1].auc) / 2)
    assert [line.split(",")[0] for line in (tmp_path / "table.csv").read_text().splitlines()] == [
        "name", "bright", "tone", "average"]
    assert "| **average** |" in (tmp_path / "table.md").read_text()

    # Rerun: finished rows are read back, not retrained; a row whose row.json is gone is redone (resumed).
    (tmp_path / "runs" / "tone" / "row.json").unlink()
    calls: list[tuple[str, bool]] = []

    def counting_train(config, run_dir, resume=False):
        calls.append((Path(run_dir).name, resume))
        return train(config, run_dir, resume=resume)

    monkeypatch.setattr(benchmark, "train", counting_train)
    again = run_benchmark(config, tmp_path, protocol="leave-one-method-out", held_out=["bright", "tone"],
                          plots=False)
    assert calls == [("tone", True)]
    assert again.rows == table.rows
    changed = method_config(protocol="leave-one-method-out", params={}, epochs=2)
    with pytest.raises(BenchmarkError, match="different config"):
        run_benchmark(changed, tmp_path, protocol="leave-one-method-out", held_out=["bright"], plots=False)


def test_cli_lists_tables_and_runs_a_named_table_with_chosen_values(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["benchmark-protocol", "--list"]) == 0
    listing = capsys.readouterr().out
    categories = "RVFA, FVRA-WL, FVFA-FS, FVFA-GAN, FVFA-WL"
    assert f"fakeavceleb-categories: leave-one-category-out over {categories}" in listing
    assert "synthetic-methods: leave-one-method-out over faceswap," in listing
    config = tmp_path / "config.yaml"
    save_config(method_config(protocol="leave-one-method-out", params={}, epochs=1), config)
    out = tmp_path / "table"
    code = main(["benchmark-protocol", str(config), "--table", "synthetic-methods", "--held-out", "tone",
                 "--out", str(out), "--no-plots", "--head", "audio"])
    assert code == 0
    written = json.loads((out / "table.json").read_text())
    assert (written["head"], [row["name"] for row in written["rows"]]) == ("audio", ["tone"])
    assert written["details"]["protocol"] == "leave-one-method-out"
    assert "| tone |" in capsys.readouterr().out
    assert main(["benchmark-protocol", str(config), "--table", "nope", "--out", str(out)]) == 2
    assert main(["benchmark-protocol", str(config), "--out", str(out)]) == 2


def test_evaluate_on_lavdf_prints_ap_ar_and_writes_proposals(tmp_path: Path, capsys) -> None:
    """A per-frame toy detector (4-frame windows of 8 px faces) scored on the LAV-DF fixture tree: AP@IoU
    and AR@N printed, proposals.json in the AV-Deepfake1M format keyed by the metadata's file names."""
    run_dir = tmp_path / "run"
    train(load_config(ENGINE_CONFIG, [
        "model.name=toy_av_frames", "model.overrides={samples: 2560}", "data.dataset=toy_av_methods",
        "data.clip_frames=4", "data.protocol=random", "data.options={videos: 40, windows: 2, size: 8, "
        "samples: 2560, protocol_params: {train: 0.6, val: 0.2, test: 0.2}}",
        "optim.epochs=1", "optim.milestones=[]", "optim.schedule=constant",
    ]), run_dir)
    root = write_lavdf(tmp_path / "data")
    out = tmp_path / "evaluation"
    code = main(["evaluate", str(run_dir), "--out", str(out), "--data", f"lavdf={root}", "--no-plots",
                 "--protocol", "random", "--set",
                 "data.options={image_size: 8, protocol_params: {train: 0.5, val: 0.25, test: 0.25}}"])
    assert code == 0
    printed = capsys.readouterr().out
    assert "## Temporal localisation (AV-Deepfake1M settings)" in printed
    assert "| AP@0.5 | AP@0.75 | AP@0.9 | AP@0.95 |" in printed
    assert "| AR@50 | AR@30 | AR@20 | AR@10 | AR@5 |" in printed

    predictions = read_predictions(out / "predictions.json")
    test_ids = sorted(set(predictions["video_id"]))
    metadata = json.loads(next(root.rglob("metadata.json")).read_text())
    periods = {entry["file"]: entry["fake_periods"] for entry in metadata}
    proposals = json.loads((out / "proposals.json").read_text())
    assert sorted(proposals) == sorted(video_id.removeprefix("lavdf/") for video_id in test_ids)
    for file, rows in proposals.items():
        assert all(isinstance(row, list) and len(row) == 3 for row in rows)
        assert [row[0] for row in rows] == sorted((row[0] for row in rows), reverse=True)
        assert all(0.0 <= start < end <= CLIP_SECONDS for _, start, end in rows)
        # The per-frame timeline of the file's windows (consecutive, 4 frames each, 25 fps) gives them.
        windows = sorted((w, s) for v, w, s in zip(predictions["video_id"], predictions["window"],
                                                    predictions["p_frame_fake"], strict=True)
                         if v == f"lavdf/{file}")
        timeline = [((4 * w + k) / 25, (4 * w + k + 1) / 25, score)
                    for w, frame_scores in windows for k, score in enumerate(frame_scores)]
        assert rows == [list(p) for p in timeline_proposals(timeline)]
    truth = {file: [tuple(period) for period in periods[file]] for file in proposals}
    expected = localization_metrics(read_proposals(out / "proposals.json"), truth)
    written = json.loads((out / "localization.json").read_text())
    assert written["fake_segments"] == sum(len(p) for p in truth.values()) > 0
    assert written["scores"] == "per-frame p_frame_fake"
    for name, value in expected.items():
        assert written["metrics"][name] == (
            {"undefined": value.reason} if isinstance(value, MetricUndefined) else pytest.approx(value))
