"""Shared detector pieces: masked BCE over unknown labels, MLP heads, backbones built from a config."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from avforensics.models.common import (
    MLPHead,
    backbone_fingerprint,
    build_backbone,
    masked_bce_with_logits,
    noisy_or_logit,
)

TINY_CLIP = {"hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 1, "num_attention_heads": 2,
             "image_size": 32, "patch_size": 16, "projection_dim": 16}


def test_masked_bce_averages_only_known_rows() -> None:
    logits = torch.tensor([2.0, -1.0, 0.5, 3.0])
    labels = torch.tensor([1, 0, -1, 0])
    expected = F.binary_cross_entropy_with_logits(logits[[0, 1, 3]], torch.tensor([1.0, 0.0, 0.0]))
    assert masked_bce_with_logits(logits, labels).item() == pytest.approx(expected.item(), rel=1e-6)


def test_masked_bce_keep_mask_and_non_finite_ignored_rows() -> None:
    logits = torch.tensor([0.0, math.nan, -2.0], requires_grad=True)
    loss = masked_bce_with_logits(logits, torch.tensor([1, 1, 0]), keep=torch.tensor([True, False, True]))
    expected = (math.log(2.0) + math.log1p(math.exp(-2.0))) / 2
    assert loss.item() == pytest.approx(expected, rel=1e-6)
    loss.backward()
    assert logits.grad is not None and logits.grad[1].item() == 0.0
    assert logits.grad[0].item() == pytest.approx(-0.25, rel=1e-6)  # (sigmoid(0) - 1) / 2 rows


def test_masked_bce_with_no_known_row_is_a_differentiable_zero() -> None:
    logits = torch.tensor([1.0, -1.0], requires_grad=True)
    loss = masked_bce_with_logits(logits, torch.tensor([-1, -1]))
    loss.backward()
    assert loss.item() == 0.0 and logits.grad is not None and logits.grad.abs().sum().item() == 0.0


def test_masked_bce_rejects_other_label_values() -> None:
    with pytest.raises(ValueError, match=r"1 \(fake\), 0 \(real\) or -1 \(unknown\); got \[2\]"):
        masked_bce_with_logits(torch.zeros(2), torch.tensor([0, 2]))


def test_mlp_head_is_two_linear_layers_with_relu() -> None:
    head = MLPHead(6, 5, 2)
    linears = [m for m in head.modules() if isinstance(m, torch.nn.Linear)]
    assert [(m.in_features, m.out_features) for m in linears] == [(6, 5), (5, 2)]
    assert sum(p.numel() for p in head.parameters()) == 6 * 5 + 5 + 5 * 2 + 2
    assert head(torch.zeros(3, 4, 6)).shape == (3, 4, 2)


def test_random_backbone_is_reproducible_from_seed_and_leaves_global_rng_alone() -> None:
    torch.manual_seed(123)
    before = torch.rand(1)
    torch.manual_seed(123)
    first = build_backbone("clip", TINY_CLIP, None, seed=5)
    after = torch.rand(1)
    second = build_backbone("clip", TINY_CLIP, None, seed=5)
    other = build_backbone("clip", TINY_CLIP, None, seed=6)
    assert torch.equal(before, after)
    assert backbone_fingerprint(first) == backbone_fingerprint(second) != backbone_fingerprint(other)
    assert backbone_fingerprint(first).startswith("custom:random:")


def test_meta_device_build_reads_no_weights() -> None:
    with torch.device("meta"):
        tower = build_backbone("whisper", "whisper-base", "/nonexistent/weights", seed=0)
    assert tower.hidden_size == 512 and tower.num_layers == 6
    assert next(tower.parameters()).device.type == "meta"


def test_unknown_backbone_kind_and_missing_weights_are_clear_errors() -> None:
    with pytest.raises(ValueError, match="'clip' or 'whisper'"):
        build_backbone("wav2vec", "whisper-base", None, seed=0)  # type: ignore[arg-type]
    with pytest.raises(Exception, match="/nonexistent/weights"):
        build_backbone("clip", TINY_CLIP, "/nonexistent/weights", seed=0)


def test_loaded_weights_must_match_the_named_architecture(tmp_path) -> None:
    from backbones_fixtures import CLIP_VALUES, random_clip_model

    random_clip_model(seed=1).save_pretrained(tmp_path)
    tower = build_backbone("clip", CLIP_VALUES, str(tmp_path), seed=0)
    assert backbone_fingerprint(tower).startswith("custom:huggingface:")
    with pytest.raises(ValueError, match=rf"{tmp_path}: these clip weights .* the config names"):
        build_backbone("clip", {**CLIP_VALUES, "num_hidden_layers": 3}, str(tmp_path), seed=0)


def test_noisy_or_logit_is_the_probability_that_any_evidence_says_fake() -> None:
    a, b = torch.tensor([0.0, 2.0, -3.0, 8.0]), torch.tensor([-1.0, -2.0, -4.0, -20.0])
    p_a, p_b = torch.sigmoid(a), torch.sigmoid(b)
    expected = 1 - (1 - p_a) * (1 - p_b)  # 0.6345, 0.8889, 0.0650, 0.99966
    assert torch.sigmoid(noisy_or_logit(a, b)) == pytest.approx(expected, abs=1e-6)
    assert float(torch.sigmoid(noisy_or_logit(a, b))[0]) == pytest.approx(0.5 + 0.5 * 0.2689414, abs=1e-6)
    absent = torch.full_like(b, float("-inf"))
    assert noisy_or_logit(a, absent) == pytest.approx(a, abs=1e-4)  # an absent modality adds nothing
    z = torch.tensor([-30.0, -30.0], requires_grad=True)  # every term sure it is real: finite, clamped
    out = noisy_or_logit(z[:1], z[1:])
    out.sum().backward()
    value = float(out.detach())
    assert math.isfinite(value) and value == pytest.approx(math.log(1e-7), abs=1e-3)
    assert torch.isfinite(z.grad).all()


def test_each_detector_has_typed_dimensions_that_name_a_wrong_setting() -> None:
    import dataclasses

    from avforensics.models.registry import registered_models, resolve_dimensions

    for name, cls in registered_models().items():
        if name not in ("avprompt", "cad", "macbdf"):
            continue
        assert dataclasses.is_dataclass(cls.Dimensions) and cls.Dimensions.__dataclass_params__.frozen
        for config in ("paper", "small"):
            assert isinstance(cls.configs[config], cls.Dimensions)
        with pytest.raises(KeyError, match=r"no setting\(s\) \['frmaes'\]"):
            resolve_dimensions(name, "small", frmaes=4)
        stored = dataclasses.asdict(cls.configs["small"])
        assert resolve_dimensions(name, stored) == cls.configs["small"]
        required = next(field.name for field in dataclasses.fields(cls.Dimensions)
                        if field.default is dataclasses.MISSING)
        with pytest.raises(KeyError, match=rf"\['{required}'\] are required"):
            resolve_dimensions(name, {key: value for key, value in stored.items() if key != required})
