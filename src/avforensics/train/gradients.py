"""Gradient combination: how named, weighted loss terms become the `p.grad` the optimiser steps on.

`WeightedSum` is ordinary back-propagation of the weighted total. `OMPareto` is MACB-DF's
Orthogonalization-multimodal Pareto (Sec. 3.5, Eqs. 21-24): on each `GradientGroup` a model declares, the
gradient of its multimodal terms and the gradient of its unimodal terms are combined with min-norm simplex
weights when they conflict. Every reading of an open point of the paper is stated in docs/engine.md.
"""

from __future__ import annotations

import abc
import dataclasses
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn

from avforensics.models.base import GradientGroup

# Below this fraction of the larger gradient norm, the min-norm combination is treated as exactly zero:
# its direction would be float rounding, and Eq. 24 would rescale that rounding to a full-size step.
PARETO_STATIONARY_TOLERANCE = 1e-6


class GradientCombiner(abc.ABC):
    """Writes `p.grad` of every parameter from named losses and their weights; returns diagnostics to log.

    Gradients are assigned, not accumulated: a parameter no weighted term reaches gets `grad = None`, as
    after `loss.backward()` on freshly zeroed gradients.
    """

    def backward(
        self,
        losses: Mapping[str, Tensor],
        weights: Mapping[str, float],
        groups: Sequence[GradientGroup],
        parameters: Sequence[nn.Parameter],
    ) -> dict[str, float]:
        missing = sorted(set(losses) - set(weights))
        if missing:
            raise ValueError(f"loss terms {missing} have no weight; weights are given for {sorted(weights)}")
        trainable = [p for p in parameters if p.requires_grad]
        # A group acts on its trainable parameters (an ablation may freeze part of it); loss names a group
        # lists but `losses` lacks this step (e.g. a frame loss on a batch without frame labels) are absent.
        trainable_groups = [
            dataclasses.replace(g, parameters=[p for p in g.parameters if p.requires_grad]) for g in groups
        ]
        active = [g for g in trainable_groups if g.parameters]
        _check_groups(active, trainable)
        return self._combine(losses, weights, active, trainable)

    @abc.abstractmethod
    def _combine(
        self,
        losses: Mapping[str, Tensor],
        weights: Mapping[str, float],
        groups: Sequence[GradientGroup],
        parameters: list[nn.Parameter],
    ) -> dict[str, float]:
        """Compute and assign the gradients of validated inputs."""


class WeightedSum(GradientCombiner):
    """The plain weighted sum of all terms, one backward pass; gradient groups are ignored."""

    def _combine(
        self,
        losses: Mapping[str, Tensor],
        weights: Mapping[str, float],
        groups: Sequence[GradientGroup],
        parameters: list[nn.Parameter],
    ) -> dict[str, float]:
        total = weighted_total(losses, weights, losses.keys())
        grads = _gradients([(total, parameters)])[0]
        _assign(parameters, grads)
        return {}


class OMPareto(GradientCombiner):
    """MACB-DF OM-Pareto on each gradient group; the ordinary weighted-sum gradient everywhere else.

    lambda0 and kappa are Eq. 23's baseline strength and curvature; the conflict branch runs `pgd_steps`
    projected-gradient iterations on the simplex with step `pgd_lr / L` (L the Lipschitz constant of the
    augmented objective's gradient), so the step does not depend on the scale of the gradients.
    """

    def __init__(
        self, lambda0: float = 1.0, kappa: float = 5.0, pgd_steps: int = 50, pgd_lr: float = 1.0
    ) -> None:
        # Up to lambda0 = 2 the orthogonality term at most cancels the conflict term of Eq. 21 and PGD with
        # step 1/L contracts by at least 1/2 per iteration (docs/engine.md); beyond, it would turn a conflict
        # into an apparent agreement and PGD could need thousands of iterations.
        if not 0.0 <= lambda0 <= 2.0:
            raise ValueError(f"OM-Pareto lambda0 must be in [0, 2], got {lambda0}")
        if kappa <= 0:
            raise ValueError(f"OM-Pareto kappa must be > 0 (Eq. 23), got {kappa}")
        if pgd_steps < 1:
            raise ValueError(f"OM-Pareto pgd_steps must be >= 1, got {pgd_steps}")
        if not 0.0 < pgd_lr < 2.0:
            raise ValueError(f"OM-Pareto pgd_lr must be in (0, 2) (a fraction of 1/L), got {pgd_lr}")
        self.lambda0 = lambda0
        self.kappa = kappa
        self.pgd_steps = pgd_steps
        self.pgd_lr = pgd_lr

    def _combine(
        self,
        losses: Mapping[str, Tensor],
        weights: Mapping[str, float],
        groups: Sequence[GradientGroup],
        parameters: list[nn.Parameter],
    ) -> dict[str, float]:
        grouped = {id(p) for group in groups for p in group.parameters}
        ungrouped = [p for p in parameters if id(p) not in grouped]
        requests: list[tuple[Tensor | None, list[nn.Parameter]]] = []
        if ungrouped:
            requests.append((weighted_total(losses, weights, losses.keys()), ungrouped))
        for group in groups:
            members = list(group.parameters)
            paired = (*group.multimodal_losses, *group.unimodal_losses)
            in_neither = [name for name in losses if name not in paired]
            requests.append((weighted_total(losses, weights, group.multimodal_losses), members))
            requests.append((weighted_total(losses, weights, group.unimodal_losses), members))
            requests.append((weighted_total(losses, weights, in_neither), members))
        results = iter(_gradients(requests))
        diagnostics: dict[str, float] = {}
        if ungrouped:
            _assign(ungrouped, next(results))
        for group in groups:
            members = list(group.parameters)
            multimodal, unimodal, other = next(results), next(results), next(results)
            if all(g is None for g in (*multimodal, *unimodal, *other)):
                _assign(members, multimodal)
                continue
            g_m, g_u = _flatten(multimodal, members), _flatten(unimodal, members)
            h_final, stats = om_pareto_combine(
                g_m, g_u, self.lambda0, self.kappa, self.pgd_steps, self.pgd_lr
            )
            if any(g is not None for g in other):
                h_final = h_final + _flatten(other, members)
            _assign(members, _unflatten(h_final, members))
            for key, value in stats.as_dict().items():
                diagnostics[f"ompareto/{group.name}/{key}"] = value
        return diagnostics


@dataclass(frozen=True)
class ParetoStats:
    """What OM-Pareto decided for one group at one step (logged to see conflicts over training)."""

    cos: float
    alpha_m: float
    alpha_u: float
    lambda_orth: float
    norm_m: float
    norm_u: float
    conflict: bool

    def as_dict(self) -> dict[str, float]:
        return {
            "cos": self.cos, "alpha_m": self.alpha_m, "alpha_u": self.alpha_u,
            "lambda_orth": self.lambda_orth, "norm_m": self.norm_m, "norm_u": self.norm_u,
            "conflict": float(self.conflict),
        }


def om_pareto_combine(
    g_m: Tensor, g_u: Tensor, lambda0: float, kappa: float, pgd_steps: int, pgd_lr: float
) -> tuple[Tensor, ParetoStats]:
    """Eqs. 21-24 on two flat gradients: the combined gradient h_final and the decision behind it."""
    gram = _gram(g_m, g_u)
    norm_m, norm_u = math.sqrt(gram[0, 0].item()), math.sqrt(gram[1, 1].item())
    # A zero gradient has no direction, so it cannot conflict; its cosine is reported as 0.
    cos = gram[0, 1].item() / (norm_m * norm_u) if norm_m > 0 and norm_u > 0 else 0.0
    if cos >= 0:
        # Non-conflict: alpha stays 0.5/0.5; the 0.1*lambda0 correction only enters the alpha objective,
        # which is not solved here, so it is reported and changes nothing. Eq. 24 with alpha = 0.5 and
        # without the conflict amplification is exactly g_m + g_u: the plain weighted-sum gradient.
        stats = ParetoStats(cos, 0.5, 0.5, 0.1 * lambda0, norm_m, norm_u, conflict=False)
        return g_m + g_u, stats
    lambda_orth = lambda0 / (1.0 + math.exp(kappa * cos))
    alpha = pareto_weights(gram, lambda_orth, pgd_steps, pgd_lr)
    alpha_m, alpha_u = alpha[0].item(), alpha[1].item()
    stats = ParetoStats(cos, alpha_m, alpha_u, lambda_orth, norm_m, norm_u, conflict=True)
    combined = alpha_m * g_m + alpha_u * g_u
    accumulate = torch.promote_types(combined.dtype, torch.float32)
    combined_norm = torch.linalg.vector_norm(combined, dtype=accumulate).item()
    if combined_norm <= PARETO_STATIONARY_TOLERANCE * max(norm_m, norm_u):
        # Pareto-stationary: no direction lowers both objectives; Eq. 24 would normalise rounding noise.
        return torch.zeros_like(g_m), stats
    sum_norm = math.sqrt(max(gram.sum().item(), 0.0))  # ||g_m + g_u|| from the Gram matrix
    amplification = 1.0 + abs(cos) / (1.0 + norm_m / norm_u)
    return combined * (amplification * sum_norm / combined_norm), stats


def pareto_weights(gram: Tensor, lambda_orth: float, steps: int, lr: float) -> Tensor:
    """(alpha_m, alpha_u) minimising Eq. 21 plus Eq. 22's orthogonality term, by PGD on the simplex.

    With G the 2x2 Gram matrix of (g_m, g_u), the augmented objective is
    alpha^T G alpha + lambda_orth * |G_01| * alpha_m * alpha_u, whose gradient is H alpha with
    H = 2 G + lambda_orth * |G_01| * [[0, 1], [1, 0]]. PGD starts at the uniform weighting (0.5, 0.5).
    """
    swap = torch.tensor([[0.0, 1.0], [1.0, 0.0]], dtype=torch.float64)
    hessian = 2.0 * gram + lambda_orth * gram[0, 1].abs() * swap
    lipschitz = torch.linalg.eigvalsh(hessian).abs().max().item()
    alpha = torch.full((2,), 0.5, dtype=torch.float64)
    if lipschitz == 0.0:
        return alpha
    step = lr / lipschitz
    for _ in range(steps):
        updated = project_to_simplex(alpha - step * (hessian @ alpha))
        if torch.equal(updated, alpha):
            break
        alpha = updated
    return alpha


def project_to_simplex(v: Tensor) -> Tensor:
    """Euclidean projection of a vector onto {x >= 0, sum(x) = 1} (sort-based, exact)."""
    ordered, _ = torch.sort(v, descending=True)
    cumulative = torch.cumsum(ordered, dim=0) - 1.0
    ranks = torch.arange(1, v.numel() + 1, dtype=v.dtype)
    support = ordered - cumulative / ranks > 0
    last = int(torch.nonzero(support).max())
    threshold = cumulative[last] / (last + 1)
    return torch.clamp(v - threshold, min=0.0)


def build_combiner(name: str, **options: Any) -> GradientCombiner:
    """`"sum"` (no options) or `"om_pareto"` (lambda0, kappa, pgd_steps, pgd_lr)."""
    if name == "sum":
        if options:
            raise ValueError(f"gradient combiner 'sum' takes no options, got {sorted(options)}")
        return WeightedSum()
    if name == "om_pareto":
        known = {"lambda0", "kappa", "pgd_steps", "pgd_lr"}
        unknown = sorted(set(options) - known)
        if unknown:
            raise ValueError(f"unknown OM-Pareto options {unknown}; known: {sorted(known)}")
        return OMPareto(**options)
    raise ValueError(f"unknown gradient combiner {name!r}; choose 'sum' or 'om_pareto'")


def weighted_total(
    losses: Mapping[str, Tensor], weights: Mapping[str, float], names: Iterable[str]
) -> Tensor | None:
    """Sum of weight * loss over the named terms present with a non-zero weight; None if there are none."""
    terms = [weights[name] * losses[name] for name in names if name in losses and weights[name] != 0]
    return torch.stack(terms).sum() if terms else None


def _check_groups(groups: Sequence[GradientGroup], trainable: list[nn.Parameter]) -> None:
    trainable_ids = {id(p) for p in trainable}
    owner: dict[int, str] = {}
    for group in groups:
        overlap = set(group.unimodal_losses) & set(group.multimodal_losses)
        if overlap:
            raise ValueError(f"gradient group {group.name!r}: {sorted(overlap)} both unimodal and multimodal")
        for parameter in group.parameters:
            if id(parameter) not in trainable_ids:
                raise ValueError(f"gradient group {group.name!r} holds a parameter not in `parameters`")
            if id(parameter) in owner:
                raise ValueError(
                    f"a parameter is in gradient groups {owner[id(parameter)]!r} and {group.name!r}"
                )
            owner[id(parameter)] = group.name


def _gradients(
    requests: Sequence[tuple[Tensor | None, list[nn.Parameter]]],
) -> list[list[Tensor | None]]:
    """Gradients of each (loss, parameters) request over one graph, freed after the last backward pass."""
    live = [i for i, (loss, _) in enumerate(requests) if loss is not None and loss.requires_grad]
    results: list[list[Tensor | None]] = [[None] * len(params) for _, params in requests]
    for i in live:
        loss, params = requests[i]
        retain = i != live[-1]
        results[i] = list(torch.autograd.grad(loss, params, retain_graph=retain, allow_unused=True))
    return results


def _assign(parameters: Sequence[nn.Parameter], grads: Sequence[Tensor | None]) -> None:
    for parameter, grad in zip(parameters, grads, strict=True):
        parameter.grad = None if grad is None else grad.detach()


def _flatten(grads: Sequence[Tensor | None], parameters: Sequence[nn.Parameter]) -> Tensor:
    """One vector over the group's parameters; a parameter a term does not reach contributes zeros."""
    return torch.cat([
        (torch.zeros_like(p) if g is None else g).reshape(-1) for g, p in zip(grads, parameters, strict=True)
    ])


def _unflatten(flat: Tensor, parameters: Sequence[nn.Parameter]) -> list[Tensor]:
    sizes = [p.numel() for p in parameters]
    return [part.view_as(p) for part, p in zip(torch.split(flat, sizes), parameters, strict=True)]


def _gram(g_m: Tensor, g_u: Tensor) -> Tensor:
    """2x2 Gram matrix of the two gradients in float64 (dot products accumulated in at least float32)."""
    if g_m.dtype in (torch.float16, torch.bfloat16):
        g_m, g_u = g_m.float(), g_u.float()
    mm, mu, uu = (torch.dot(a, b).item() for a, b in ((g_m, g_m), (g_m, g_u), (g_u, g_u)))
    return torch.tensor([[mm, mu], [mu, uu]], dtype=torch.float64)
