"""Detection metrics against scikit-learn and hand computations; tables, aggregation, writers, plots."""

from __future__ import annotations

import csv
import io
import json
import math

import numpy as np
import pytest
from scipy.interpolate import interp1d
from scipy.optimize import brentq
from sklearn.metrics import average_precision_score, balanced_accuracy_score, roc_auc_score, roc_curve

from avforensics.eval.aggregate import Scored, TableError
from avforensics.eval.metrics import (
    MetricUndefined,
    binary_metrics,
    choose_threshold,
    compute_detection_metrics,
    equal_error_rate,
)
from avforensics.eval.plots import plot_detection, pr_figure, roc_figure


def _reference_eer(y: np.ndarray, s: np.ndarray) -> float:
    """The usual recipe: root of 1 - TPR(FPR) - FPR on the linearly interpolated ROC curve."""
    fpr, tpr, _ = roc_curve(y, s, drop_intermediate=False)
    return brentq(lambda x: 1.0 - x - interp1d(fpr, tpr)(x), 0.0, 1.0)


@pytest.mark.parametrize("seed", range(6))
def test_binary_metrics_equal_sklearn_on_random_scores_with_ties(seed):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(20, 300))
    y = rng.integers(0, 2, n)
    y[:2] = [0, 1]
    # Rounded scores: many ties, also across classes.
    s = np.round(np.clip(0.5 * y + rng.normal(0.25, 0.3, n), 0, 1), 1 if seed % 2 else 3)
    m = binary_metrics(y, s)
    assert m.auc == pytest.approx(roc_auc_score(y, s), abs=1e-12)
    assert m.ap == pytest.approx(average_precision_score(y, s), abs=1e-12)
    assert m.acc == pytest.approx(np.mean((s >= 0.5) == y))
    assert m.eer == pytest.approx(_reference_eer(y, s), abs=1e-9)
    assert (m.n, m.n_fake) == (n, int(y.sum()))
    # The chosen threshold reaches the best balanced accuracy over every candidate cut.
    cuts = np.unique(s)[:, None] <= s[None, :]
    balanced = ((cuts & (y == 1)).sum(1) / y.sum() + (~cuts & (y == 0)).sum(1) / (1 - y).sum()) / 2
    assert balanced_accuracy_score(y, s >= m.threshold) == pytest.approx(balanced.max())
    assert m.acc_tuned == pytest.approx(np.mean((s >= m.threshold) == y))
    assert m.threshold_source == "chosen on these data"


def test_choose_threshold_and_eer_by_hand():
    y = np.array([0, 0, 0, 1, 1, 1])
    s = np.array([0.1, 0.2, 0.7, 0.3, 0.8, 0.9])
    # Cuts: >=0.8 gives TPR 2/3, FPR 0 (J=2/3); >=0.3 gives TPR 1, FPR 1/3 (J=2/3): the higher cut wins,
    # and the threshold is the midpoint to the next lower score 0.7.
    assert choose_threshold(y, s) == pytest.approx(0.75)
    eer, threshold = equal_error_rate(y, s)
    assert eer == pytest.approx(1 / 3)
    assert 0.3 <= threshold <= 0.7


def test_given_threshold_is_used():
    m = binary_metrics([0, 1, 1, 0], [0.2, 0.6, 0.4, 0.35], threshold=0.38)
    assert m.acc_tuned == pytest.approx(1.0) and m.threshold == 0.38 and m.threshold_source == "given"
    assert m.acc == pytest.approx(0.75)


def test_single_class_and_empty_inputs_give_reasons_not_nan():
    only_real = binary_metrics([0, 0, 0], [0.1, 0.7, 0.2])
    assert only_real.acc == pytest.approx(2 / 3)
    for name in ("auc", "ap", "eer", "threshold", "acc_tuned"):
        value = getattr(only_real, name)
        assert isinstance(value, MetricUndefined), name
    assert only_real.auc.reason == "only real items (n=3)"
    only_fake = binary_metrics([1, 1], [0.9, 0.4], threshold=0.3)
    assert only_fake.auc.reason == "only fake items (n=2)" and only_fake.acc_tuned == 1.0
    empty = binary_metrics([], [])
    assert all(isinstance(v, MetricUndefined) and v.reason == "no items" for v in empty.values().values())
    with pytest.raises(ValueError, match="cannot choose a threshold: only real items"):
        choose_threshold([0, 0], [0.1, 0.2])
    with pytest.raises(ValueError, match="labels must be 0"):
        binary_metrics([0, 2], [0.1, 0.2])
    with pytest.raises(ValueError, match="1 scores are NaN"):
        binary_metrics([0, 1], [0.1, math.nan])


def _table() -> dict[str, list]:
    """Three videos (two windows each) and one video with only unknown labels; no audio head."""
    return {
        "video_id": ["a", "a", "b", "b", "c", "c", "d"],
        "window": [0, 1, 0, 1, 0, 1, 0],
        "p_fake": [0.9, 0.5, 0.2, 0.4, 0.6, 0.1, 0.3],
        "p_video_fake": [0.8, 0.7, 0.1, 0.3, 0.2, 0.2, 0.5],
        "p_audio_fake": [math.nan] * 7,
        "label": [1, 0, 0, 0, 1, 1, -1],  # video a: one fake window -> fake video
        "video_label": [1, 1, 0, 0, 0, -1, -1],
        "audio_label": [0, 0, 0, 0, 1, 1, -1],
        "category": ["FVFA", "FVFA", "RVRA", "RVRA", "RVFA", "RVFA", "RVRA"],
        "method": ["fsgan", "fsgan", "real", "real", "tts", "tts", "real"],
    }


def _row(report, level, head, subset="all"):
    matches = [r for r in report.rows if (r.level, r.head, r.subset) == (level, head, subset)]
    assert len(matches) == 1
    return matches[0].metrics


def test_detection_metrics_video_level_by_hand():
    report = compute_detection_metrics(_table())
    video = _row(report, "video", "overall")
    # Video scores: a=(0.9+0.5)/2=0.7 fake, b=0.3 real, c=0.35 fake; d has no known label.
    assert (video.n, video.n_fake) == (3, 2)
    assert video.auc == pytest.approx(roc_auc_score([1, 0, 1], [0.7, 0.3, 0.35]))
    assert video.acc == pytest.approx(2 / 3)
    window = _row(report, "window", "overall")
    assert (window.n, window.n_fake) == (6, 3)
    assert window.auc == pytest.approx(roc_auc_score([1, 0, 0, 0, 1, 1], [0.9, 0.5, 0.2, 0.4, 0.6, 0.1]))
    # The video head is scored against video_label: c's second window (-1) still enters c's mean score.
    video_head = _row(report, "video", "video")
    assert video_head.auc == pytest.approx(roc_auc_score([1, 0, 0], [0.75, 0.2, 0.2]))
    assert report.skipped["video/audio"] == "the model has no audio head (p_audio_fake is empty)"
    assert report.skipped["frame/overall"] == "no per-frame predictions or labels in the table"
    per_category = _row(report, "video", "overall", "category=RVRA")
    assert per_category.n == 1 and per_category.auc.reason == "only real items (n=1)"
    assert per_category.threshold == video.threshold and per_category.threshold_source == "given"
    assert _row(report, "window", "overall", "method=tts").n == 2


def test_thresholds_from_validation_apply_to_test():
    validation = compute_detection_metrics(_table())
    thresholds = validation.thresholds()
    assert set(thresholds) == {"window/overall", "video/overall", "window/video", "video/video"}
    test = compute_detection_metrics(_table(), thresholds={"video/overall": 0.5})
    assert _row(test, "video", "overall").acc_tuned == pytest.approx(2 / 3)


def test_frame_level_where_frame_labels_exist():
    table = _table()
    table["p_frame_fake"] = [[0.9, 0.8], [0.1, 0.7], None, [0.2, 0.3], [0.6, 0.4], [0.5, 0.5], [0.1, 0.1]]
    table["frame_labels"] = [[1, 1], [0, 1], None, [0, -1], [1, 0], [-1, -1], [0, 0]]
    frames = _row(compute_detection_metrics(table), "frame", "overall")
    y = [1, 1, 0, 1, 0, 1, 0, 0, 0]
    s = [0.9, 0.8, 0.1, 0.7, 0.2, 0.6, 0.4, 0.1, 0.1]
    assert frames.n == 9 and frames.auc == pytest.approx(roc_auc_score(y, s))


def test_bad_tables_are_named():
    table = _table()
    table["p_video_fake"][3] = math.nan
    with pytest.raises(TableError, match=r"p_video_fake has NaN for 1 of 7 windows \(first video 'b'\)"):
        compute_detection_metrics(table)
    del table["method"]
    with pytest.raises(TableError, match=r"lacks columns \['method'\]"):
        compute_detection_metrics(table)


def test_writers_round_trip(tmp_path):
    report = compute_detection_metrics(_table())
    paths = report.write(tmp_path)
    assert [p.name for p in paths] == ["metrics.md", "metrics.csv", "metrics.json"]
    data = json.loads(paths[2].read_text())
    key = ("video", "overall", "all")
    video = next(r for r in data["rows"] if (r["level"], r["head"], r["subset"]) == key)
    assert video["auc"] == _row(report, "video", "overall").auc
    undefined = next(r for r in data["rows"] if r["subset"] == "category=RVRA" and r["level"] == "video")
    assert undefined["auc"] == {"undefined": "only real items (n=1)"}
    rows = list(csv.DictReader(io.StringIO(paths[1].read_text())))
    assert len(rows) == len(report.rows)
    assert float(rows[0]["auc"]) == _row(report, "window", "overall").auc
    markdown = paths[0].read_text()
    assert "### Video level" in markdown and "| overall | all | 3 | 2 | 66.67 |" in markdown
    assert "- video/audio: the model has no audio head" in markdown
    assert "nan" not in paths[1].read_text().lower()
    scalars = report.scalars()
    assert scalars["video/overall/auc"] == video["auc"]
    assert "video/overall/category=RVRA/auc" not in scalars


def test_plots_are_pngs(tmp_path):
    paths = plot_detection(_table(), tmp_path, levels=("video",))
    names = sorted(p.name for p in paths)
    expected = [f"{kind}_video_{head}.png" for kind in ("hist", "pr", "roc") for head in ("overall", "video")]
    assert names == expected
    assert all(p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" for p in paths)


def test_roc_and_pr_plots_carry_their_auc_and_ap_in_the_title():
    labels = np.array([0, 0, 1, 1, 0, 1])
    scores = np.array([0.1, 0.4, 0.35, 0.8, 0.2, 0.9])
    scored = Scored(scores, labels, np.array(["RVRA"] * 6), np.array(["m"] * 6))
    # AUC: 8 of the 9 (fake, real) pairs are ordered right; AP by hand: (1 + 1 + 3/4) / 3.
    assert roc_figure(scored, "overall head").axes[0].get_title() == "overall head\nAUC 0.889"
    assert pr_figure(scored, "overall head").axes[0].get_title() == "overall head\nAP 0.917"
