"""L_CMFM (Eq. 14-15): hand-computed values, a pair-by-pair reference, masks, the segment-level ablation."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from avforensics.models.avprompt.alignment import FrameAlignment, cosine_distance
from avforensics.models.avprompt.losses import CMFMWeights, cmfm_loss, cmfm_pair_weights

PAPER = CMFMWeights(alpha=2.0, beta=2.0, gamma=1.0)


def reference_cmfm(visual, audio, labels, usable, weights: CMFMWeights) -> float:
    """Eq. 14-15 written as the four nested sums of the paper, one pair at a time."""
    batch, frames, _ = visual.shape
    positive, negative, n_positive, n_negative = 0.0, 0.0, 0, 0
    for m in range(batch):
        for p in range(frames):
            for n in range(batch):
                for q in range(frames):
                    if not (usable[m] and usable[n]):
                        continue
                    distance = 1.0 - F.cosine_similarity(visual[m, p], audio[n, q], dim=0).item()
                    if m == n and labels[m] == 0 and p == q:
                        positive += weights.alpha * distance
                        n_positive += 1
                    elif m == n and labels[m] == 1:
                        negative -= weights.beta * distance
                        n_negative += 1
                    elif m != n:
                        negative -= weights.gamma * distance
                        n_negative += 1
    return positive / max(n_positive, 1) + negative / max(n_negative, 1)


def test_hand_computed_value() -> None:
    # Segment 0 real with matched features (D = 0), segment 1 fake with orthogonal features (D = 1).
    visual = torch.tensor([[[1.0, 0.0]], [[1.0, 0.0]]])
    audio = torch.tensor([[[1.0, 0.0]], [[0.0, 1.0]]])
    loss = cmfm_loss(visual, audio, torch.tensor([0, 1]), torch.tensor([True, True]), PAPER)
    # pull: 2 * 0 / 1; push: (-2 * 1 [fake, own pair] - 1 * 1 [v0, a1] - 1 * 0 [v1, a0]) / 3
    assert loss.item() == pytest.approx(-1.0, abs=1e-6)


def test_matches_the_paper_sums_pair_by_pair() -> None:
    generator = torch.Generator().manual_seed(0)
    visual = torch.randn(4, 3, 5, generator=generator)
    audio = torch.randn(4, 3, 5, generator=generator)
    labels = torch.tensor([0, 1, -1, 0])
    usable = torch.tensor([True, True, True, False])
    loss = cmfm_loss(visual, audio, labels, usable, PAPER)
    assert loss.item() == pytest.approx(reference_cmfm(visual, audio, labels, usable, PAPER), abs=1e-5)


def test_pair_factors_follow_eq_15() -> None:
    factors = cmfm_pair_weights(torch.tensor([0, 1]), torch.tensor([True, True]), frames=2, weights=PAPER)
    expected = torch.tensor([
        [2.0, 0.0, -1.0, -1.0],  # real segment 0: only its own frame pairs are pulled
        [0.0, 2.0, -1.0, -1.0],
        [-1.0, -1.0, -2.0, -2.0],  # fake segment 1: all its own pairs pushed, p = q or not
        [-1.0, -1.0, -2.0, -2.0],
    ])
    assert torch.equal(factors, expected)


def test_rows_without_audio_take_no_part() -> None:
    generator = torch.Generator().manual_seed(1)
    visual = torch.randn(3, 2, 4, generator=generator)
    audio = torch.randn(3, 2, 4, generator=generator)
    labels = torch.tensor([0, 1, 0])
    with_silent_row = cmfm_loss(visual, audio, labels, torch.tensor([True, True, False]), PAPER)
    without_it = cmfm_loss(visual[:2], audio[:2], labels[:2], torch.tensor([True, True]), PAPER)
    assert with_silent_row.item() == pytest.approx(without_it.item(), abs=1e-6)


def test_segment_level_pairs_the_segment_means() -> None:
    generator = torch.Generator().manual_seed(2)
    visual = torch.randn(3, 4, 6, generator=generator)
    audio = torch.randn(3, 4, 6, generator=generator)
    labels, usable = torch.tensor([0, 1, 1]), torch.ones(3, dtype=torch.bool)
    segment = cmfm_loss(visual, audio, labels, usable, PAPER, level="segment")
    means = cmfm_loss(visual.mean(1, keepdim=True), audio.mean(1, keepdim=True), labels, usable, PAPER)
    frame = cmfm_loss(visual, audio, labels, usable, PAPER, level="frame")
    assert segment.item() == pytest.approx(means.item(), abs=1e-6)
    assert abs(segment.item() - frame.item()) > 1e-3
    with pytest.raises(ValueError, match="'frame' or 'segment'"):
        cmfm_loss(visual, audio, labels, usable, PAPER, level="clip")


def test_gradient_step_pulls_real_pairs_and_pushes_fake_pairs() -> None:
    generator = torch.Generator().manual_seed(3)
    visual = torch.randn(2, 3, 8, generator=generator, requires_grad=True)
    audio = torch.randn(2, 3, 8, generator=generator)
    labels, usable = torch.tensor([0, 1]), torch.ones(2, dtype=torch.bool)
    before = cosine_distance(visual, audio).detach()
    cmfm_loss(visual, audio, labels, usable, PAPER).backward()
    with torch.no_grad():
        after = cosine_distance(visual - 0.05 * visual.grad, audio)
    assert bool((after[0] < before[0]).all())  # real segment: matched frames get closer
    assert bool((after[1] > before[1]).all())  # fake segment: its frames move apart


def test_alignment_maps_tokens_to_frames() -> None:
    alignment = FrameAlignment(visual_dim=6, audio_dim=4, fused_dim=5, audio_tokens_per_frame=2)
    visual, audio = alignment(torch.randn(2, 3, 6), torch.randn(2, 6, 4))
    assert visual.shape == audio.shape == (2, 3, 5)
    assert alignment.audio.kernel_size == alignment.audio.stride == (2,)
    # Frame t of f'_a depends on audio tokens 2t and 2t + 1 only.
    tokens = torch.randn(1, 6, 4)
    changed = tokens.clone()
    changed[0, 2:4] += 1.0
    _, base = alignment(torch.zeros(1, 3, 6), tokens)
    _, moved = alignment(torch.zeros(1, 3, 6), changed)
    assert (base - moved).abs().sum(-1)[0].gt(1e-6).tolist() == [False, True, False]
    with pytest.raises(ValueError, match="align to 4 frames, not the 3 video frames"):
        alignment(torch.randn(1, 3, 6), torch.randn(1, 8, 4))
