"""AP@IoU / AR@N against reference values worked out by hand, the file formats, and timeline proposals."""

from __future__ import annotations

import json

import pytest

from avforensics.eval.localization import (
    average_precision,
    average_recall,
    detection_metrics_from_scores,
    iou_1d,
    localization_metrics,
    proposals_from_scores,
    read_ground_truth,
    read_proposals,
    read_scores,
    timeline_proposals,
    write_proposals,
    write_scores,
)
from avforensics.eval.metrics import MetricUndefined

# Three files: one fake segment, two fake segments, a real video.
TRUTH = {"a.mp4": [(1.0, 3.0)], "b.mp4": [(0.0, 2.0), (5.0, 6.0)], "c.mp4": []}
# IoU with the targets: a: 1.0 and 0.6; b: p0 0.5 with (0,2) (not > 0.5), p1 1/1.2 = 0.833 with (5,6),
# p2 1.85/2 = 0.925 with (0,2); c: no target, a false positive.
PROPOSALS = {
    "a.mp4": [(0.9, 1.0, 3.0), (0.6, 1.5, 3.5)],
    "b.mp4": [(0.8, 0.0, 1.0), (0.7, 5.0, 6.2), (0.3, 0.15, 2.0)],
    "c.mp4": [(0.5, 0.0, 1.0)],
}


def test_iou_is_overlap_over_joint_span():
    ious = iou_1d([[1.0, 3.0], [4.0, 5.0]], [[2.0, 4.0], [0.0, 1.0]])
    assert ious.tolist() == [[pytest.approx(1 / 3), 0.0], [0.0, 0.0]]


def test_average_precision_by_hand():
    # IoU > 0.5 (and > 0.75): TPs a0 (0.9), b1 (0.7), b2 (0.3); FPs b0 (0.8), a1 (0.6), c0 (0.5).
    # Ranked: TP FP TP FP FP TP; precision 1, 1/2, 2/3, 1/2, 2/5, 1/2; recall 1/3, 1/3, 2/3, 2/3, 2/3, 1.
    # From recall 1 downwards with the running max of precision: (1 - 2/3) * 1/2 + (2/3 - 1/3) * 2/3
    # = 7/18; the span from recall 0 to the first point (1/3) is not counted, as in the AV-Deepfake1M code.
    # IoU > 0.9: TPs a0 (0.9) and b2 (0.3): (2/3 - 1/3) * 1/3 = 1/9. IoU > 0.95: only a0, ranked first: 0.
    ap = average_precision(PROPOSALS, TRUTH)
    expected = {0.5: pytest.approx(7 / 18), 0.75: pytest.approx(7 / 18), 0.9: pytest.approx(1 / 9), 0.95: 0.0}
    assert ap == expected


def test_average_recall_by_hand():
    # Thresholds 0.50, 0.55, ..., 0.95. a: best IoU 1.0 from the first proposal: found at all 10.
    # b: first 1: IoUs (0.5, 0) -> none; first 2: (0.5, 0.833) -> target 2 at 0.50..0.80 (7);
    # first 3: (0.925, 0.833) -> target 1 at 0.50..0.90 (9) and target 2 (7). c has no target.
    ar = average_recall(PROPOSALS, TRUTH, n_proposals=(50, 5, 2, 1))
    assert ar == {50: pytest.approx(26 / 30), 5: pytest.approx(26 / 30), 2: pytest.approx(17 / 30),
                  1: pytest.approx(10 / 30)}


def test_frames_and_empty_proposal_lists():
    in_frames = {f: [(c, s * 25, e * 25) for c, s, e in rows] for f, rows in PROPOSALS.items()}
    assert localization_metrics(in_frames, TRUTH, fps=25) == localization_metrics(PROPOSALS, TRUTH)
    # A fake file without proposals: its segment counts in AP's recall denominator (now 4)...
    truth = {**TRUTH, "d.mp4": [(0.0, 1.0)]}
    proposals = {**PROPOSALS, "d.mp4": []}
    assert average_precision(proposals, truth, (0.5,))[0.5] == pytest.approx(1 / 4 * 1 / 2 + 1 / 4 * 2 / 3)
    # ...but, as in the package, adds neither hit nor miss to AR.
    assert average_recall(proposals, truth) == average_recall(PROPOSALS, TRUTH)


def test_missing_files_and_no_targets():
    with pytest.raises(KeyError, match=r"1 labelled files have no proposals entry .*'c.mp4'"):
        average_precision({k: v for k, v in PROPOSALS.items() if k != "c.mp4"}, TRUTH)
    undefined = average_precision(PROPOSALS, {"c.mp4": []}, (0.5,))[0.5]
    assert isinstance(undefined, MetricUndefined) and undefined.reason == "no ground-truth fake segment"


def test_formats_round_trip(tmp_path):
    path = write_proposals(PROPOSALS, tmp_path / "proposals.json")
    assert read_proposals(path) == PROPOSALS
    assert json.loads(path.read_text())["a.mp4"][0] == [0.9, 1.0, 3.0]
    scores = {"train/id0/x/real.mp4": 0.125, "weird;name.mp4": 0.9999}
    path = write_scores(scores, tmp_path / "scores.txt")
    assert path.read_text() == "train/id0/x/real.mp4;0.125\nweird;name.mp4;0.9999\n"
    assert read_scores(path) == scores
    (tmp_path / "bad.txt").write_text("a.mp4;0.5\nb.mp4 0.7\n")
    with pytest.raises(ValueError, match=r"bad.txt, line 2: expected 'file;score'"):
        read_scores(tmp_path / "bad.txt")
    (tmp_path / "bad.json").write_text('{"a.mp4": [[0.5, 2.0, 1.0]]}')
    with pytest.raises(ValueError, match=r"bad.json: 'a.mp4': a proposal ends before it starts"):
        read_proposals(tmp_path / "bad.json")
    metadata = [{"file": "a.mp4", "fake_segments": [[1.0, 3.0]]}, {"file": "c.mp4", "fake_segments": []}]
    (tmp_path / "meta.json").write_text(json.dumps(metadata))
    assert read_ground_truth(tmp_path / "meta.json") == {"a.mp4": [(1.0, 3.0)], "c.mp4": []}


def test_proposals_from_scores():
    timeline = [(0, 1, 0.2), (1, 2, 0.8), (2, 3, 0.9), (3, 4, 0.1), (4, 5, 0.7), (6, 7, 0.9)]
    assert proposals_from_scores(timeline, 0.5) == [
        (0.9, 6, 7), (pytest.approx(0.85), 1, 3), (0.7, 4, 5)
    ]
    assert proposals_from_scores(timeline, 0.5, max_gap=1.0) == [(pytest.approx(0.85), 1, 3), (0.8, 4, 7)]
    sliding = [(0.0, 2.0, 0.6), (1.0, 3.0, 0.8), (2.0, 4.0, 0.2)]
    assert proposals_from_scores(sliding, 0.5) == [(pytest.approx(0.7), 0.0, 3.0)]
    assert proposals_from_scores(sliding, 0.95) == []
    with pytest.raises(ValueError, match="ordered by start"):
        proposals_from_scores([(2, 3, 0.9), (1, 2, 0.9)], 0.5)


def test_detection_metrics_from_score_file(tmp_path):
    path = write_scores({"a.mp4": 0.7, "b.mp4": 0.4, "c.mp4": 0.5, "extra.mp4": 0.1}, tmp_path / "s.txt")
    metrics = detection_metrics_from_scores(read_scores(path), TRUTH)  # a, b fake (segments), c real
    assert (metrics.n, metrics.n_fake) == (3, 2)
    assert metrics.auc == pytest.approx(0.5) and metrics.acc == pytest.approx(1 / 3)
    with pytest.raises(KeyError, match="1 labelled files have no score"):
        detection_metrics_from_scores({"a.mp4": 0.7, "b.mp4": 0.4}, TRUTH)


def test_timeline_proposals_are_runs_at_every_score_level_most_confident_first() -> None:
    """Frames of 1 s scored by hand; each level 0.1 ... 0.9 cuts runs, a segment found twice is kept once."""
    scores = [0.05, 0.15, 0.95, 0.85, 0.15, 0.05, 0.55, 0.65, 0.05, 0.35]
    timeline = [(float(k), float(k + 1), score) for k, score in enumerate(scores)]
    # 0.1: (1,5) mean 0.525, (6,8) 0.6, (9,10) 0.35; 0.2-0.3: (2,4) 0.9, (6,8), (9,10); 0.4-0.5: (2,4),
    # (6,8); 0.6: (2,4), (7,8) 0.65; 0.7-0.8: (2,4); 0.9: (2,3) 0.95.
    expected = [(0.95, 2.0, 3.0), (0.9, 2.0, 4.0), (0.65, 7.0, 8.0), (0.6, 6.0, 8.0), (0.525, 1.0, 5.0),
                (0.35, 9.0, 10.0)]
    proposals = timeline_proposals(timeline)
    assert [(start, end) for _, start, end in proposals] == [(start, end) for _, start, end in expected]
    assert [confidence for confidence, _, _ in proposals] == pytest.approx([c for c, _, _ in expected])
    assert timeline_proposals(timeline, thresholds=[0.5]) == proposals_from_scores(timeline, 0.5)
    assert timeline_proposals([(0.0, 1.0, 0.05)]) == []
