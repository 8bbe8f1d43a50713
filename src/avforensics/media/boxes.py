"""Box geometry shared by the face detector and the tracker: areas, overlaps, non-maximum suppression.

Boxes are (n, 4) float tensors, xyxy in continuous pixel coordinates (pixel i spans [i, i + 1)).
"""

from __future__ import annotations

import numpy as np
import torch


def box_area(boxes: torch.Tensor) -> torch.Tensor:
    """Areas of (n, 4) xyxy boxes; inverted boxes count as empty."""
    return (boxes[:, 2] - boxes[:, 0]).clamp(min=0) * (boxes[:, 3] - boxes[:, 1]).clamp(min=0)


def box_overlap(box: torch.Tensor, others: torch.Tensor, mode: str = "union") -> torch.Tensor:
    """Overlap of one box (4,) with others (n, 4): intersection over union, or over the smaller area."""
    left_top = torch.maximum(box[:2], others[:, :2])
    right_bottom = torch.minimum(box[2:], others[:, 2:])
    inter = (right_bottom - left_top).clamp(min=0).prod(dim=1)
    area, areas = box_area(box[None])[0], box_area(others)
    denominator = torch.minimum(area, areas) if mode == "min" else area + areas - inter
    return inter / denominator.clamp(min=1e-9)


def nms(
    boxes: torch.Tensor,
    scores: torch.Tensor,
    threshold: float,
    groups: torch.Tensor | None = None,
    mode: str = "union",
) -> torch.Tensor:
    """Greedy non-maximum suppression; returns kept indices, best score first.

    A box is dropped when it overlaps an already kept, higher-scoring box of the same group by more than
    `threshold` (`mode` "union" = IoU, "min" = intersection over the smaller box, used after O-Net so a box
    nested inside a bigger face box is removed). Each loop iteration keeps one box and suppresses against
    all remaining boxes at once, so the cost is (kept boxes) x (vector ops), with no n x n matrix.
    """
    if mode not in ("union", "min"):
        raise ValueError(f"nms mode must be 'union' or 'min', got {mode!r}")
    if boxes.shape[0] == 0:
        return torch.zeros(0, dtype=torch.long)
    if groups is not None:
        # Shift each group to its own region of the plane: boxes of different groups can never overlap.
        span = float(boxes.max() - boxes.min()) + 1.0
        boxes = boxes + (groups.to(boxes.dtype) * span)[:, None]
    # The loop runs once per kept box, thousands of times per video: numpy's per-call cost on these short
    # arrays is a fraction of torch's, and the arithmetic is box_overlap's, operation for operation.
    order = torch.argsort(scores, descending=True, stable=True).numpy()
    x1, y1, x2, y2 = boxes.numpy()[order].T
    areas = np.maximum(x2 - x1, 0) * np.maximum(y2 - y1, 0)
    remaining = np.arange(len(order))
    kept = []
    while remaining.size:
        best, rest = remaining[0], remaining[1:]
        kept.append(best)
        width = np.maximum(np.minimum(x2[best], x2[rest]) - np.maximum(x1[best], x1[rest]), 0)
        height = np.maximum(np.minimum(y2[best], y2[rest]) - np.maximum(y1[best], y1[rest]), 0)
        inter = width * height
        union = np.minimum(areas[best], areas[rest]) if mode == "min" else areas[best] + areas[rest] - inter
        remaining = rest[inter / np.maximum(union, np.float32(1e-9)) <= threshold]
    return torch.from_numpy(order[kept])
