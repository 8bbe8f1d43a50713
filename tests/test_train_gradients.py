"""Gradient combiners: OM-Pareto (MACB-DF Eqs. 21-24) checked against hand computations, and the plain sum."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn

from avforensics.models.base import GradientGroup
from avforensics.train.gradients import (
    OMPareto,
    WeightedSum,
    build_combiner,
    om_pareto_combine,
    pareto_weights,
    project_to_simplex,
)

LAMBDA0, KAPPA = 1.0, 5.0


def combine(g_m: list[float], g_u: list[float], lambda0: float = LAMBDA0):
    return om_pareto_combine(
        torch.tensor(g_m, dtype=torch.float64), torch.tensor(g_u, dtype=torch.float64),
        lambda0, KAPPA, pgd_steps=200, pgd_lr=1.0,
    )


def eq24(g_m: np.ndarray, g_u: np.ndarray, alpha_m: float) -> np.ndarray:
    """Eq. 24 written out: unit min-norm direction times the amplified norm of the plain sum."""
    d = alpha_m * g_m + (1 - alpha_m) * g_u
    cos = g_m @ g_u / (np.linalg.norm(g_m) * np.linalg.norm(g_u))
    factor = 1 + abs(cos) / (1 + np.linalg.norm(g_m) / np.linalg.norm(g_u))
    return d / np.linalg.norm(d) * factor * np.linalg.norm(g_m + g_u)


def closed_form_min_norm(g_m: np.ndarray, g_u: np.ndarray) -> float:
    """alpha_m minimising ||a g_m + (1-a) g_u||^2 on [0, 1] (Eq. 21 without the orthogonality term)."""
    a, b, c = g_m @ g_m, g_u @ g_u, g_m @ g_u
    return float(np.clip((b - c) / (a + b - 2 * c), 0.0, 1.0))


@pytest.mark.parametrize(
    ("g_m", "g_u"),
    [([2.0, 0.0], [-1.0, 1.0]), ([100.0, 0.0, 1.0], [-0.5, 0.5, 0.0]), ([0.01, 0.02], [-3.0, 1.0])],
    ids=["conflict", "norms-10000x", "norms-0.01x"],
)
def test_conflict_without_orthogonality_term_is_closed_form_min_norm(g_m, g_u):
    h, stats = combine(g_m, g_u, lambda0=0.0)
    gm, gu = np.array(g_m), np.array(g_u)
    alpha = closed_form_min_norm(gm, gu)
    assert stats.conflict and stats.lambda_orth == 0.0
    assert stats.alpha_m == pytest.approx(alpha, abs=1e-9)
    assert stats.alpha_u == pytest.approx(1 - alpha, abs=1e-9)
    np.testing.assert_allclose(h.numpy(), eq24(gm, gu, alpha), rtol=1e-7, atol=1e-12)


def test_conflict_by_hand_numbers():
    # g_m=(2,0), g_u=(-1,1): a=4, b=2, c=-2 -> alpha_m = 4/10; d=(0.2, 0.6); cos=-1/sqrt2.
    h, stats = combine([2.0, 0.0], [-1.0, 1.0], lambda0=0.0)
    cos = -1 / math.sqrt(2)
    scale = (1 + abs(cos) / (1 + 2 / math.sqrt(2))) * math.sqrt(2) / math.sqrt(0.2**2 + 0.6**2)
    assert stats.cos == pytest.approx(cos)
    assert stats.alpha_m == pytest.approx(0.4)
    np.testing.assert_allclose(h.numpy(), [0.2 * scale, 0.6 * scale], rtol=1e-9)
    assert (stats.norm_m, stats.norm_u) == pytest.approx((2.0, math.sqrt(2)))


@pytest.mark.parametrize(
    ("g_m", "g_u"),
    [([2.0, 0.0], [-1.0, 1.0]), ([5.0, 1.0, 0.0], [-0.2, 0.3, 0.1]), ([0.3, -0.1], [-4.0, 0.5]),
     ([1.0, 0.0], [-0.99, 0.05])],
)
@pytest.mark.parametrize("lambda0", [0.5, 1.0, 2.0])
def test_pgd_matches_grid_search_of_augmented_objective(g_m, g_u, lambda0):
    gm, gu = np.array(g_m), np.array(g_u)
    a, b, c = gm @ gm, gu @ gu, gm @ gu
    cos = c / math.sqrt(a * b)
    lam = lambda0 / (1 + math.exp(KAPPA * cos))  # Eq. 23
    t = np.linspace(0.0, 1.0, 100_001)
    objective = (t * gm[:, None] + (1 - t) * gu[:, None]) ** 2  # Eq. 21 per coordinate
    augmented = objective.sum(axis=0) + lam * t * (1 - t) * abs(c)  # Eq. 22's term
    best = t[np.argmin(augmented)]
    h, stats = combine(g_m, g_u, lambda0=lambda0)
    assert stats.conflict
    assert stats.lambda_orth == pytest.approx(lam, rel=1e-12)
    assert stats.alpha_m == pytest.approx(best, abs=1e-5)
    np.testing.assert_allclose(h.numpy(), eq24(gm, gu, stats.alpha_m), rtol=1e-7)


@pytest.mark.parametrize(
    ("g_m", "g_u"), [([1.0, 2.0], [2.0, 4.0]), ([1.0, 0.0], [0.0, 3.0]), ([1000.0, 1.0], [0.001, 0.0])],
    ids=["aligned", "orthogonal", "norms-1e6x"],
)
def test_no_conflict_gives_plain_sum_with_uniform_weights(g_m, g_u):
    h, stats = combine(g_m, g_u)
    assert not stats.conflict
    assert (stats.alpha_m, stats.alpha_u, stats.lambda_orth) == (0.5, 0.5, 0.1 * LAMBDA0)
    np.testing.assert_allclose(h.numpy(), np.array(g_m) + np.array(g_u), rtol=1e-12)


def test_exactly_opposite_gradients_are_pareto_stationary():
    # Min-norm of (3,0) and (-1,0) is exactly zero at alpha_m = 1/4: no direction lowers both losses.
    h, stats = combine([3.0, 0.0], [-1.0, 0.0], lambda0=0.0)
    assert stats.cos == pytest.approx(-1.0)
    assert stats.alpha_m == pytest.approx(0.25)
    assert torch.count_nonzero(h) == 0


def test_zero_gradient_is_no_conflict():
    h, stats = combine([0.0, 0.0], [1.0, -2.0])
    assert not stats.conflict and stats.cos == 0.0 and stats.norm_m == 0.0
    np.testing.assert_array_equal(h.numpy(), [1.0, -2.0])


def test_project_to_simplex():
    np.testing.assert_allclose(project_to_simplex(torch.tensor([0.7, 0.7], dtype=torch.float64)), [0.5, 0.5])
    np.testing.assert_allclose(project_to_simplex(torch.tensor([2.0, -1.0], dtype=torch.float64)), [1.0, 0.0])
    np.testing.assert_allclose(
        project_to_simplex(torch.tensor([0.5, 0.2, -0.3], dtype=torch.float64)), [0.65, 0.35, 0.0]
    )


def test_pareto_weights_at_vertex_when_one_gradient_is_inside_the_other():
    # The segment from (1,0) to (-0.1,0) passes through 0 at alpha_m = 0.1/1.1.
    gram = torch.tensor([[1.0, -0.1], [-0.1, 0.01]], dtype=torch.float64)
    alpha = pareto_weights(gram, 0.0, steps=500, lr=1.0)
    assert alpha[0].item() == pytest.approx(0.1 / 1.1, abs=1e-9)
    # g_m=(1,0), g_u=(2,1): g_m itself is the point of the segment nearest to 0, the vertex alpha_m = 1.
    gram = torch.tensor([[1.0, 2.0], [2.0, 5.0]], dtype=torch.float64)
    assert pareto_weights(gram, 0.0, steps=500, lr=1.0).tolist() == pytest.approx([1.0, 0.0])


class _Toy(nn.Module):
    """A shared (grouped) weight, a weight outside every group, and four loss terms."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.shared = nn.Parameter(torch.randn(3, 2))
        self.shared_bias = nn.Parameter(torch.randn(2))
        self.head = nn.Parameter(torch.randn(2))
        self.unused = nn.Parameter(torch.randn(4))

    def losses(self) -> dict[str, torch.Tensor]:
        x = torch.tensor([[1.0, -2.0, 0.5], [0.3, 0.1, -1.0]])
        z = x @ self.shared + self.shared_bias
        return {
            "fused": ((z * self.head).sum(1) - 1.0).pow(2).mean(),
            "video": (z[:, 0] + 2.0).pow(2).mean(),
            "audio": (z[:, 1] - 3.0).pow(2).mean(),
            "contrast": (z.pow(2).sum() - self.head.sum()).abs(),
        }

    def group(self) -> GradientGroup:
        return GradientGroup("encoder", [self.shared, self.shared_bias], ("video", "audio"), ("fused",))


def _flat_grad(loss: torch.Tensor, params: list[nn.Parameter]) -> torch.Tensor:
    grads = torch.autograd.grad(loss, params, retain_graph=True, allow_unused=True)
    parts = [(torch.zeros_like(p) if g is None else g).flatten() for g, p in zip(grads, params, strict=True)]
    return torch.cat(parts)


def test_om_pareto_writes_group_combination_and_plain_gradient_elsewhere():
    model = _Toy()
    weights = {"fused": 1.0, "video": 0.5, "audio": 2.0, "contrast": 0.3}
    losses = model.losses()
    group = model.group()
    members = [model.shared, model.shared_bias]
    total = sum(weights[n] * v for n, v in losses.items())
    g_m = _flat_grad(weights["fused"] * losses["fused"], members)
    g_u = _flat_grad(weights["video"] * losses["video"] + weights["audio"] * losses["audio"], members)
    g_other = _flat_grad(weights["contrast"] * losses["contrast"], members)
    head_grad = torch.autograd.grad(total, [model.head], retain_graph=True)[0]
    assert torch.dot(g_m, g_u) < 0, "the toy must exercise the conflict branch"
    expected_alpha = closed_form_min_norm(g_m.double().numpy(), g_u.double().numpy())

    params = list(model.parameters())
    diagnostics = OMPareto(lambda0=0.0).backward(losses, weights, [group], params)

    expected = eq24(g_m.double().numpy(), g_u.double().numpy(), expected_alpha) + g_other.double().numpy()
    written = torch.cat([model.shared.grad.reshape(-1), model.shared_bias.grad.reshape(-1)])
    np.testing.assert_allclose(written.numpy(), expected, rtol=2e-5, atol=1e-5)
    torch.testing.assert_close(model.head.grad, head_grad)
    assert model.unused.grad is None
    assert diagnostics["ompareto/encoder/conflict"] == 1.0
    assert diagnostics["ompareto/encoder/alpha_m"] == pytest.approx(expected_alpha, abs=1e-6)
    assert diagnostics["ompareto/encoder/norm_m"] == pytest.approx(g_m.norm().item(), rel=1e-5)
    assert set(diagnostics) == {
        f"ompareto/encoder/{k}" for k in ("cos", "alpha_m", "alpha_u", "lambda_orth", "norm_m", "norm_u",
                                          "conflict")
    }


def test_weighted_sum_equals_backward_of_total_and_om_pareto_without_groups():
    weights = {"fused": 1.0, "video": 0.5, "audio": 0.0, "contrast": 0.3}
    reference = _Toy()
    losses = reference.losses()
    sum(weights[n] * v for n, v in losses.items()).backward()
    for combiner in (WeightedSum(), build_combiner("om_pareto")):
        model = _Toy()
        assert combiner.backward(model.losses(), weights, [], list(model.parameters())) == {}
        for name, param in model.named_parameters():
            ref = getattr(reference, name).grad
            if ref is None:
                assert param.grad is None
            else:
                torch.testing.assert_close(param.grad, ref)


def test_frozen_group_members_are_left_alone():
    model = _Toy()
    model.shared.requires_grad_(False)
    weights = dict.fromkeys(model.losses(), 1.0)
    losses = model.losses()
    members = [model.shared_bias]
    g_m = _flat_grad(losses["fused"], members).double().numpy()
    g_u = _flat_grad(losses["video"] + losses["audio"], members).double().numpy()
    g_other = _flat_grad(losses["contrast"], members).double().numpy()
    OMPareto(lambda0=0.0).backward(losses, weights, [model.group()], list(model.parameters()))
    assert model.shared.grad is None
    assert g_m @ g_u > 0  # on the bias alone the two terms agree: the plain sum
    np.testing.assert_allclose(model.shared_bias.grad.numpy(), g_m + g_u + g_other, rtol=2e-5, atol=1e-5)


def test_bad_inputs_are_named():
    model = _Toy()
    with pytest.raises(ValueError, match=r"\['contrast'\] have no weight"):
        WeightedSum().backward(model.losses(), {"fused": 1, "video": 1, "audio": 1}, [], [model.head])
    weights = dict.fromkeys(model.losses(), 1.0)
    twice = GradientGroup("b", [model.shared], ("video",), ("fused",))
    with pytest.raises(ValueError, match="gradient groups 'encoder' and 'b'"):
        OMPareto().backward(model.losses(), weights, [model.group(), twice], list(model.parameters()))
    with pytest.raises(ValueError, match="unknown OM-Pareto options"):
        build_combiner("om_pareto", lr=1.0)
    with pytest.raises(ValueError, match="unknown gradient combiner 'pcgrad'"):
        build_combiner("pcgrad")
    with pytest.raises(ValueError, match="lambda0 must be in"):
        OMPareto(lambda0=2.5)


def _rotated(eigenvalues: tuple[float, float], degrees: float) -> torch.Tensor:
    angle = math.radians(degrees)
    rotation = torch.tensor([[math.cos(angle), -math.sin(angle)], [math.sin(angle), math.cos(angle)]])
    return rotation @ torch.diag(torch.tensor(eigenvalues)) @ rotation.T


def _train(combiner_name: str, steps: int) -> tuple[float, float]:
    """Gradient descent on two quadratics sharing theta; both are zero only at theta = 0.

    The unimodal loss is stiff (curvatures 30 and 0.1) and its valley lies at 150 degrees to the soft,
    anisotropic multimodal loss. The step 1/L of the summed curvature is the largest stable plain step; with
    it the summed gradient of the two conflicting terms nearly cancels across the valley, so plain descent
    creeps along it, while OM-Pareto's min-norm direction with Eq. 24's magnitude moves along the valley.
    """
    a, b = _rotated((0.02, 0.3), 0.0), _rotated((0.1, 30.0), 150.0)
    theta = nn.Parameter(torch.tensor([-1.0, -5.0]))
    step = 1.0 / torch.linalg.eigvalsh(a + b).max().item()
    group = GradientGroup("shared", [theta], ("unimodal",), ("multimodal",))
    combiner = build_combiner(combiner_name)
    conflicts = 0
    for _ in range(steps):
        losses = {"multimodal": 0.5 * theta @ a @ theta, "unimodal": 0.5 * theta @ b @ theta}
        diagnostics = combiner.backward(losses, {"multimodal": 1.0, "unimodal": 1.0}, [group], [theta])
        conflicts += int(diagnostics.get("ompareto/shared/conflict", 0))
        with torch.no_grad():
            theta -= step * theta.grad
    with torch.no_grad():
        return (0.5 * theta @ a @ theta).item(), (0.5 * theta @ b @ theta).item()


def test_om_pareto_converges_where_plain_sum_creeps():
    # Start: multimodal 3.76, unimodal 363.
    plain = _train("sum", 100)
    pareto = _train("om_pareto", 100)
    assert plain[0] > 1e-2 and plain[1] > 1e-2
    assert pareto[0] < 1e-5 and pareto[1] < 1e-5
