"""CAD's L_KL (Eq. 7) and L_KD (Eq. 8) against direct computations on hand-made tensors."""

from __future__ import annotations

import math

import pytest
import torch

from avforensics.models.cad.losses import (
    alignment_loss,
    kl_distillation,
    simsiam_distillation,
    softmax_kl,
)


def test_softmax_kl_equals_the_sum_of_p_log_p_over_q():
    p_logits = torch.tensor([[0.0, math.log(3.0)]])  # softmax -> (1/4, 3/4)
    q_logits = torch.tensor([[0.0, 0.0]])  # softmax -> (1/2, 1/2)
    expected = 0.25 * math.log(0.25 / 0.5) + 0.75 * math.log(0.75 / 0.5)
    assert softmax_kl(p_logits, q_logits).item() == pytest.approx(expected, abs=1e-6)
    assert softmax_kl(q_logits, q_logits).item() == pytest.approx(0.0, abs=1e-7)


def test_alignment_loss_averages_steps_then_clips_with_audio_only():
    x_v2a = torch.tensor([[[0.0, math.log(3.0)], [0.0, 0.0]], [[5.0, 0.0], [0.0, 5.0]]])
    x_a2v = torch.zeros(2, 2, 2)
    step = 0.25 * math.log(0.5) + 0.75 * math.log(1.5)
    loss, per_step = alignment_loss(x_v2a, x_a2v, keep=torch.tensor([True, False]))
    assert per_step.shape == (2, 2)
    assert per_step[0].tolist() == pytest.approx([step, 0.0], abs=1e-6)
    assert loss.item() == pytest.approx(step / 2, abs=1e-6)  # clip 1 (no audio) is ignored
    none_kept, _ = alignment_loss(x_v2a, x_a2v, keep=torch.tensor([False, False]))
    assert none_kept.item() == 0.0


def test_alignment_loss_rejects_different_shapes():
    with pytest.raises(ValueError, match="must have one shape"):
        alignment_loss(torch.zeros(1, 4, 8), torch.zeros(1, 8, 8), torch.tensor([True]))


def test_simsiam_distillation_matches_eq8_by_hand():
    x_v = torch.tensor([[3.0, 4.0]])
    x_a = torch.tensor([[1.0, 0.0]])
    z_v = torch.tensor([[0.0, 2.0]])
    z_a = torch.tensor([[4.0, 3.0]])
    dist_1 = -(3 / 5 * 4 / 5 + 4 / 5 * 3 / 5)  # -Norm(x_v) . Norm(z_a)
    dist_2 = -(1.0 * 0.0 + 0.0 * 1.0)  # -Norm(x_a) . Norm(z_v)
    loss = simsiam_distillation(x_v, x_a, z_v, z_a, keep=torch.tensor([True]))
    assert loss.item() == pytest.approx((dist_1 + dist_2) / 2, abs=1e-6)


def test_simsiam_stop_gradient_keeps_the_embeddings_out_of_the_graph():
    x_v = torch.randn(4, 8, requires_grad=True)
    x_a = torch.randn(4, 8, requires_grad=True)
    z_v = torch.randn(4, 8, requires_grad=True)
    z_a = torch.randn(4, 8, requires_grad=True)
    simsiam_distillation(x_v, x_a, z_v, z_a, keep=torch.ones(4, dtype=torch.bool)).backward()
    assert x_v.grad is None and x_a.grad is None  # the stopped side receives nothing
    assert z_v.grad is not None and z_a.grad is not None
    assert z_v.grad.abs().sum().item() > 0 and z_a.grad.abs().sum().item() > 0


def test_simsiam_gradient_reaches_an_encoder_only_through_its_predictor():
    """x_v feeds z_v = h(x_v): its gradient flows through z_v (Dist_2), never as a target (Dist_1)."""
    x_v = torch.randn(2, 6, requires_grad=True)
    x_a = torch.randn(2, 6)
    predictor = torch.nn.Linear(6, 6)
    z_a = torch.randn(2, 6)
    z_v = predictor(x_v)
    simsiam_distillation(x_v, x_a, z_v, z_a, keep=torch.ones(2, dtype=torch.bool)).backward()
    through_predictor = x_v.grad.clone()
    x_v.grad = None
    z_v_detached = predictor(x_v).detach()
    loss = simsiam_distillation(x_v, x_a, z_v_detached, z_a, keep=torch.ones(2, dtype=torch.bool))
    assert not loss.requires_grad  # with the predictor path cut, x_v gets no gradient at all
    assert through_predictor.abs().sum().item() > 0


def test_kl_distillation_is_the_masked_mean_of_softmax_kl():
    x_v = torch.tensor([[0.0, math.log(3.0)], [1.0, 2.0]])
    x_a = torch.zeros(2, 2)
    expected = softmax_kl(x_v[:1], x_a[:1]).item()
    assert kl_distillation(x_v, x_a, torch.tensor([True, False])).item() == pytest.approx(expected)
