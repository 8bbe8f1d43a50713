"""MACB-DF losses and statistics against direct computations on hand-made inputs.

Contrastive losses with margin and K nearest negatives (Eqs. 2, 7, intra-modal), the temperature basis
functions and update (Eqs. 3-6), the composite distance (Eq. 9), the adaptive clustering, the queue and
the frame targets of Eq. 20.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from avforensics.models.macbdf.cluster_weights import ClusterState, composite_distance
from avforensics.models.macbdf.heads import ProgressiveMLPHead, modality_frame_targets
from avforensics.models.macbdf.macl import (
    AdaptiveTemperature,
    NegativeQueue,
    TemperatureStep,
    cross_modal_loss,
    intra_modal_loss,
    margin_contrast,
    nearest_negatives,
)


def _unit(*angles: float) -> torch.Tensor:
    """2-D unit vectors at the given angles (radians): similarities are cos(angle differences)."""
    return torch.tensor([[math.cos(a), math.sin(a)] for a in angles], dtype=torch.float64)


def _direct_term(positive: float, negatives: list[float], tau: float, margin: float) -> float:
    numerator = math.exp(positive / tau)
    return -math.log(numerator / (numerator + sum(math.exp((n - margin) / tau) for n in negatives)))


def test_margin_contrast_is_eq2_summand() -> None:
    loss = margin_contrast(torch.tensor(0.8), torch.tensor([0.5, -0.2]), 0.1, 0.2)
    assert loss.item() == pytest.approx(_direct_term(0.8, [0.5, -0.2], 0.1, 0.2), rel=1e-6)


def test_nearest_negatives_picks_the_k_most_similar_allowed() -> None:
    similarity = torch.tensor([[0.9, 0.1, 0.7, 0.3], [0.2, 0.8, -0.5, 0.6]])
    allowed = torch.tensor([[False, True, True, True], [True, False, False, False]])
    picked = nearest_negatives(similarity, allowed, 2)
    assert picked[0].tolist() == pytest.approx([0.7, 0.3])
    assert picked[1, 0].item() == pytest.approx(0.2)
    assert picked[1, 1].item() < -1e3  # fewer allowed than K: the slot contributes exp(..) = 0


def test_cross_modal_loss_matches_direct_computation() -> None:
    tau, margin, k = 0.5, 0.2, 2
    audio = _unit(0.0, 1.0, 2.0)
    video = _unit(0.1, 1.5, 2.2)
    queue = _unit(0.3, 3.0, -0.4)
    queue_valid = torch.tensor([True, True, False])
    anchors = torch.tensor([True, False, True])  # clip 1 is a fake pair: no anchor
    targets = torch.tensor([True, True, True])
    loss = cross_modal_loss(audio, video, anchors, targets, queue, queue_valid, k, tau, margin)
    expected = []
    for i in (0, 2):
        positive = float(audio[i] @ video[i])
        pool = [float(audio[i] @ video[j]) for j in range(3) if j != i]
        pool += [float(audio[i] @ queue[q]) for q in range(3) if queue_valid[q]]
        expected.append(_direct_term(positive, sorted(pool, reverse=True)[:k], tau, margin))
    assert loss.item() == pytest.approx(np.mean(expected), rel=1e-9)


def test_intra_modal_loss_matches_direct_computation() -> None:
    tau, margin, k = 0.3, 0.1, 2
    embeddings = _unit(0.0, 0.2, 2.0, 2.5, 1.0)
    labels = torch.tensor([0, 0, 1, 1, -1])
    queue = _unit(0.4, 1.8)
    queue_labels = torch.tensor([1, 0])
    loss = intra_modal_loss(embeddings, labels, queue, queue_labels, k, tau, margin)
    pool = torch.cat([embeddings, queue])
    pool_labels = labels.tolist() + queue_labels.tolist()
    expected = []
    for i in range(4):
        negatives = sorted(
            (
                float(embeddings[i] @ pool[j])
                for j in range(len(pool))
                if pool_labels[j] not in (-1, int(labels[i]))
            ),
            reverse=True,
        )[:k]
        for j in range(4):
            if j != i and labels[j] == labels[i]:
                expected.append(_direct_term(float(embeddings[i] @ embeddings[j]), negatives, tau, margin))
    assert len(expected) == 4
    assert loss.item() == pytest.approx(np.mean(expected), rel=1e-9)


def test_contrast_without_negatives_or_anchors_is_a_connected_zero() -> None:
    embeddings = _unit(0.0, 0.5).requires_grad_(True)
    loss = intra_modal_loss(
        embeddings,
        torch.tensor([0, 0]),
        embeddings[:0].detach(),
        torch.zeros(0, dtype=torch.long),
        3,
        0.1,
        0.2,
    )
    assert loss.item() == 0.0
    loss.backward()
    assert torch.isfinite(embeddings.grad).all()


def test_temperature_basis_functions_match_direct_computation() -> None:
    torch.manual_seed(0)
    temperature = AdaptiveTemperature(0.07, 0.01, 0.5).double()
    similarity = torch.tensor([[0.9, 0.1], [-0.3, 0.6], [0.2, 0.0]], dtype=torch.float64)
    distance = torch.tensor([[0.4, 1.3], [1.6, 0.9], [1.2, 1.4]], dtype=torch.float64)
    phi = temperature.basis(similarity, distance)
    s = similarity.numpy().ravel()
    features = np.stack([s, s - s.mean(), distance.numpy().ravel()], axis=1)
    layer1, layer2 = temperature.pair_scorer[0], temperature.pair_scorer[2]
    scores = np.tanh(features @ layer1.weight.detach().numpy().T + layer1.bias.detach().numpy())
    scores = (scores @ layer2.weight.detach().numpy().T + layer2.bias.detach().numpy()).ravel()
    w = np.exp(scores - scores.max()) / np.exp(scores - scores.max()).sum()  # Eq. 3
    expected = [
        np.var(s),  # phi_1: Var(S)
        np.sum(w * np.abs(s - s.mean()) ** 3),  # phi_2: weighted skewness
        -np.sum(w * np.log(w)) / np.log(s.size),  # phi_3: attention entropy, normalised
    ]
    np.testing.assert_allclose(phi.detach().numpy(), expected, rtol=1e-9)


def test_temperature_eqs_4_to_6_and_state_update() -> None:
    temperature = AdaptiveTemperature(0.1, 0.01, 0.5)
    with torch.no_grad():
        temperature.beta.copy_(torch.tensor([2.0, -1.0, 0.5]))
        temperature.previous_tau.fill_(0.2)
    audio, video = _unit(0.0, 1.0, 2.0).float(), _unit(0.3, 1.2, 1.7).float()
    step = temperature(audio, video)
    phi = temperature.basis(audio @ video.T, torch.cdist(audio, video))
    tau_new = 0.1 * math.exp(float((temperature.beta * phi).sum().detach()))  # Eq. 4
    gamma = 0.9  # the gate starts at sigmoid(log 9) whatever its input (Eq. 5)
    assert step.tau.item() == pytest.approx(gamma * 0.2 + (1 - gamma) * tau_new, rel=1e-5)  # Eq. 6
    assert step.tau.requires_grad
    temperature.update(step, torch.tensor(-3.0))
    assert temperature.previous_tau.item() == pytest.approx(step.tau.item())
    assert temperature.previous_change.item() == pytest.approx(step.tau.item() - 0.2, abs=1e-7)
    assert temperature.previous_gradient.item() == -3.0
    expected_history = 0.9 * torch.tensor([math.log(0.1), 0, 0, 0]) + 0.1 * torch.cat(
        [torch.log(step.tau.detach())[None], step.basis]
    )
    torch.testing.assert_close(temperature.history, expected_history)


def test_temperature_stays_in_bounds_and_needs_two_pairs() -> None:
    temperature = AdaptiveTemperature(0.07, 0.05, 0.1)
    with torch.no_grad():
        temperature.beta.fill_(100.0)
    step = temperature(_unit(0.0, 1.0).float(), _unit(2.0, 3.0).float())
    assert 0.05 <= step.tau.item() <= 0.1
    single = temperature(_unit(0.0).float(), _unit(1.0).float())
    assert isinstance(single, TemperatureStep) and single.tau.item() == pytest.approx(0.07)


def test_composite_distance_matches_direct_computation() -> None:
    x = torch.tensor([[1.0, 2.0, 0.5], [-1.0, 0.3, 2.0]], dtype=torch.float64)
    centre = torch.tensor([[0.5, 1.0, 1.0], [0.0, 0.0, 1.0]], dtype=torch.float64)
    covariance = torch.tensor([[2.0, 0.3, 0.0], [0.3, 1.0, 0.2], [0.0, 0.2, 0.5]], dtype=torch.float64)
    precision = torch.linalg.inv(covariance)
    distance = composite_distance(x, centre, precision, 3.0, beta=0.25)
    for i in range(2):
        diff = (x[i] - centre[i]).numpy()
        mahalanobis = math.sqrt(diff @ np.linalg.inv(covariance.numpy()) @ diff)
        cosine = 1 - float(x[i] @ centre[i]) / (float(x[i].norm()) * float(centre[i].norm()))
        assert distance[i].item() == pytest.approx(0.25 * mahalanobis / 3.0 + 0.75 * cosine, rel=1e-9)


def test_cluster_count_adapts_to_the_data() -> None:
    torch.manual_seed(0)
    one_blob = torch.nn.functional.normalize(
        torch.tensor([1.0, 0.0, 0.0]) + 0.05 * torch.randn(32, 3), dim=-1
    )
    two_blobs = torch.cat([one_blob[:16], -one_blob[16:]])
    single, double = ClusterState(3, 4, 0.5), ClusterState(3, 4, 0.5, mass_decay=0.5)
    for _ in range(5):
        single.update(one_blob)
        double.update(two_blobs)
    assert single.count == 1 and double.count == 2
    centres = torch.nn.functional.normalize(double.centres[double.active], dim=-1)
    assert sorted(round(v) for v in centres[:, 0].tolist()) == [-1, 1]
    assert double.max_mahalanobis.item() > 0
    # A cluster no sample reaches any more decays and is retired, freeing its slot.
    for _ in range(12):
        double.update(one_blob[:16])
    assert double.count == 1


def test_queue_wraps_around_and_marks_missing_audio() -> None:
    queue = NegativeQueue(4, 2)
    rows = torch.arange(12, dtype=torch.float32).reshape(6, 2)
    queue.enqueue(
        rows[:3],
        -rows[:3],
        torch.tensor([0, 1, 0]),
        torch.tensor([1, 1, 0]),
        torch.tensor([True, False, True]),
    )
    assert queue.pointer.item() == 3 and queue.filled.tolist() == [True, True, True, False]
    assert queue.audio_label.tolist() == [1, -1, 0, -1]
    queue.enqueue(
        rows[3:], -rows[3:], torch.tensor([1, 1, 1]), torch.tensor([0, 0, 0]), torch.ones(3, dtype=torch.bool)
    )
    assert queue.pointer.item() == 2
    assert queue.video[:, 0].tolist() == [8.0, 10.0, 4.0, 6.0]  # slots 3, 0, 1 overwritten in order
    assert queue.has_audio.tolist() == [True, True, True, True]


def test_frame_targets_follow_the_modality_label() -> None:
    frames = torch.tensor([[0, 1, 1], [1, 1, 0], [0, 0, 1]])
    targets = modality_frame_targets(torch.tensor([0, 1, -1]), frames)
    assert targets.tolist() == [[0, 0, 0], [1, 1, 0], [-1, -1, -1]]


def test_progressive_head_halves_the_width() -> None:
    head = ProgressiveMLPHead(32, reductions=2, dropout=0.5)
    widths = [m.out_features for m in head.layers if isinstance(m, torch.nn.Linear)]
    assert widths == [16, 8, 1]
    assert sum(isinstance(m, torch.nn.BatchNorm1d) for m in head.layers) == 2
    assert head(torch.randn(4, 32)).shape == (4,)
