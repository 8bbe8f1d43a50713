"""CLIP preprocessing in torch against transformers' PIL-based CLIPImageProcessor."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from skimage import data
from transformers import CLIPImageProcessorPil

from avforensics.features.image import CLIP_MEAN, CLIP_STD, clip_preprocess, resize_for_clip, resized_shape

# PIL resizes in fixed point; where its rounding of an exact .5 differs from ours, a pixel moves by one
# 8-bit level: 1 / 255 / std <= 0.0146 after normalisation. Only such single-level steps, on very few values.
ONE_LEVEL = 1.0 / 255.0 / min(CLIP_STD) + 1e-5


def _textured(height: int, width: int, seed: int) -> np.ndarray:
    """Blocky colour field with noise: edges and texture at every scale, like a video frame."""
    rng = np.random.default_rng(seed)
    coarse = torch.from_numpy(rng.uniform(0, 255, (1, 3, height // 8 + 2, width // 8 + 2)).astype(np.float32))
    field = torch.nn.functional.interpolate(coarse, size=(height, width), mode="bilinear")[0].permute(1, 2, 0)
    return np.clip(field.numpy() + rng.normal(0, 12, (height, width, 3)), 0, 255).astype(np.uint8)


IMAGES = {
    "astronaut 512x512": data.astronaut(),
    "chelsea 300x451": data.chelsea(),
    "coffee 400x600": data.coffee(),
    "portrait 320x240": _textured(320, 240, 1),
    "odd 225x301": _textured(225, 301, 2),
    "small 100x150 (upscaled)": _textured(100, 150, 3),
    "hd 720x1280": _textured(720, 1280, 4),
    "already 224x224": _textured(224, 224, 5),
}


@pytest.fixture(scope="module")
def processor() -> CLIPImageProcessorPil:
    return CLIPImageProcessorPil()


@pytest.mark.parametrize("name", sorted(IMAGES))
def test_matches_clip_image_processor(name: str, processor: CLIPImageProcessorPil) -> None:
    image = IMAGES[name]
    reference = processor(images=image, return_tensors="pt")["pixel_values"][0]
    ours = clip_preprocess(image)
    assert ours.shape == reference.shape == (3, 224, 224)
    assert ours.dtype == torch.float32
    difference = (ours - reference).abs()
    assert difference.max().item() <= ONE_LEVEL
    assert (difference > 1e-4).float().mean().item() < 1e-3
    assert difference.mean().item() < 1e-4


def test_batch_equals_frames_and_size_is_a_parameter() -> None:
    frames = np.stack([_textured(180, 320, seed) for seed in range(3)])
    batch = clip_preprocess(torch.from_numpy(frames), size=112)
    assert batch.shape == (3, 3, 112, 112)
    for frame, row in zip(frames, batch, strict=True):
        assert torch.equal(clip_preprocess(frame, size=112), row)


def test_constant_image_normalises_exactly() -> None:
    grey = np.full((90, 160, 3), 128, dtype=np.uint8)
    out = clip_preprocess(grey)
    expected = (128 / 255 - torch.tensor(CLIP_MEAN)) / torch.tensor(CLIP_STD)
    assert torch.allclose(out, expected.view(3, 1, 1).expand(3, 224, 224), atol=1e-6)


def test_resized_shape_truncates_the_long_side() -> None:
    assert resized_shape(300, 451, 224) == (224, 336)  # 336.746...
    assert resized_shape(451, 300, 224) == (336, 224)
    assert resized_shape(224, 224, 224) == (224, 224)


def test_bad_input_is_rejected() -> None:
    with pytest.raises(ValueError, match=r"uint8 RGB frames .* got torch.float32 \(4, 4, 3\)"):
        clip_preprocess(np.zeros((4, 4, 3), dtype=np.float32))
    with pytest.raises(ValueError, match=r"got torch.uint8 \(4, 4, 4\)"):
        clip_preprocess(np.zeros((4, 4, 4), dtype=np.uint8))


@pytest.mark.parametrize(("height", "width", "size"), [(224, 224, 112), (100, 160, 64), (48, 40, 112)])
def test_resizing_ahead_gives_the_same_model_input(height: int, width: int, size: int) -> None:
    frames = np.random.default_rng(height).integers(0, 256, (5, height, width, 3), dtype=np.uint8)
    kept = resize_for_clip(frames, size)
    assert kept.dtype == np.uint8 and kept.shape == (5, *resized_shape(height, width, size), 3)
    assert torch.equal(clip_preprocess(kept, size), clip_preprocess(frames, size))
    assert np.array_equal(resize_for_clip(kept, size), kept)  # already at size: left as it is
    with pytest.raises(ValueError, match="uint8 RGB frames"):
        resize_for_clip(frames[0], size)
