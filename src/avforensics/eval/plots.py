"""ROC and precision-recall curves and score histograms per head and level, written as PNG files.

Figures are drawn on matplotlib's Agg canvas directly (no pyplot, no global backend switch), so plotting
works headless and does not disturb a caller's matplotlib state.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from sklearn.metrics import average_precision_score, precision_recall_curve, roc_auc_score, roc_curve

from avforensics.eval.aggregate import HEADS, Scored, check_table, head_scores, video_level, window_level


def plot_detection(
    table: Mapping[str, Sequence[Any]], out_dir: str | Path, levels: Sequence[str] = ("window", "video")
) -> list[Path]:
    """`roc_<level>_<head>.png`, `pr_<level>_<head>.png`, `hist_<level>_<head>.png` for every scored head.

    Heads the model does not have are left out; curves of a single-class set are left out with a warning
    (they are undefined), its histogram is still drawn.
    """
    check_table(table)
    directory = Path(out_dir)
    directory.mkdir(parents=True, exist_ok=True)
    aggregators = {"window": window_level, "video": video_level}
    written: list[Path] = []
    for head in HEADS:
        scored_head = head_scores(table, head)
        if isinstance(scored_head, str):
            continue
        for level in levels:
            scored = aggregators[level](table, *scored_head)
            title = f"{head} head, {level} level (n={len(scored.labels)}, fake={int(scored.labels.sum())})"
            written.append(_save(_histogram(scored, title), directory / f"hist_{level}_{head}.png"))
            if len(np.unique(scored.labels)) < 2:
                warnings.warn(f"{title}: one class only, ROC and PR curves not drawn", stacklevel=2)
                continue
            written.append(_save(roc_figure(scored, title), directory / f"roc_{level}_{head}.png"))
            written.append(_save(pr_figure(scored, title), directory / f"pr_{level}_{head}.png"))
    return written


def roc_figure(scored: Scored, title: str) -> Figure:
    """The ROC curve, its AUC in the title (as the metric tables compute it)."""
    fpr, tpr, _ = roc_curve(scored.labels, scored.scores)
    figure, axes = _figure(f"{title}\nAUC {roc_auc_score(scored.labels, scored.scores):.3f}")
    axes.plot(fpr, tpr, drawstyle="steps-post")
    axes.plot([0, 1], [0, 1], linestyle=":", color="grey")
    axes.set(xlabel="false positive rate", ylabel="true positive rate", xlim=(0, 1), ylim=(0, 1.01))
    return figure


def pr_figure(scored: Scored, title: str) -> Figure:
    """The precision-recall curve, its average precision in the title (as the metric tables compute it)."""
    precision, recall, _ = precision_recall_curve(scored.labels, scored.scores)
    figure, axes = _figure(f"{title}\nAP {average_precision_score(scored.labels, scored.scores):.3f}")
    axes.plot(recall, precision, drawstyle="steps-post")
    axes.axhline(scored.labels.mean(), linestyle=":", color="grey")  # a random detector's precision
    axes.set(xlabel="recall", ylabel="precision", xlim=(0, 1), ylim=(0, 1.01))
    return figure


def _histogram(scored: Scored, title: str) -> Figure:
    figure, axes = _figure(title)
    bins = np.linspace(0.0, 1.0, 26)
    for label, name in ((0, "real"), (1, "fake")):
        axes.hist(scored.scores[scored.labels == label], bins=bins, alpha=0.6, label=name)
    axes.set(xlabel="probability fake", ylabel="count")
    axes.legend()
    return figure


def _figure(title: str) -> tuple[Figure, Any]:
    figure = Figure(figsize=(4.5, 4.0), dpi=100)
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    axes.set_title(title, fontsize=9)
    return figure, axes


def _save(figure: Figure, path: Path) -> Path:
    figure.tight_layout()
    figure.savefig(path, format="png")
    return path


def plot_robustness(rows: Sequence[Mapping[str, Any]], heads: Sequence[str], path: str | Path) -> Path:
    """AUC against severity, one panel per head, one line per perturbation starting from the clean AUC
    (severity 0); `rows` are the robustness table's (`perturbation`, `severity`, `<head>_auc`)."""
    clean = {head: next((r[f"{head}_auc"] for r in rows if r["severity"] == 0), None) for head in heads}
    figure = Figure(figsize=(4.5 * max(1, len(heads)), 4.0), dpi=100)
    FigureCanvasAgg(figure)
    names = list(dict.fromkeys(r["perturbation"] for r in rows if r["severity"] > 0))
    for number, head in enumerate(heads, start=1):
        axes = figure.add_subplot(1, max(1, len(heads)), number)
        for name in names:
            points = [(0, clean[head])] + [(r["severity"], r[f"{head}_auc"]) for r in rows
                                           if r["perturbation"] == name]
            points = [(x, y) for x, y in points if y is not None]
            if points:
                axes.plot(*zip(*points, strict=True), marker="o", label=name)
        axes.axhline(0.5, linestyle=":", color="grey")  # chance
        axes.set(title=f"{head} head", xlabel="severity (0 = clean)", ylabel="video-level AUC",
                 ylim=(0, 1.01))
    if names:
        figure.axes[-1].legend(fontsize=7, loc="lower left")
    return _save(figure, Path(path))
