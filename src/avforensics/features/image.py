"""CLIP image preprocessing in torch for uint8 RGB frames, batched, without PIL.

CLIP encoders expect what their training pipeline produced: shortest side resized to 224 with antialiased
bicubic interpolation, a centred 224 x 224 crop, values in [0, 1] normalised by CLIP's channel statistics.
torch's antialiased bicubic uses the same kernel as PIL (a = -0.5); results are rounded back to 8 bits as
PIL does, so the remaining difference to the PIL-based Hugging Face processor is PIL's fixed-point rounding.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)
CLIP_SIZE = 224
_RESIZE_CHUNK = 16  # frames resized at once: bounds the float copy of large (e.g. 1080p) frames


def resized_shape(height: int, width: int, size: int) -> tuple[int, int]:
    """(height, width) with the shorter side `size` and the longer truncated, as CLIP's processor does."""
    if height <= width:
        return size, int(size * width / height)
    return int(size * height / width), size


def resize_for_clip(frames: np.ndarray, size: int = CLIP_SIZE) -> np.ndarray:
    """uint8 RGB (T, H, W, 3) resized as `clip_preprocess` resizes them (shorter side `size`), still uint8.

    `clip_preprocess` of the result equals `clip_preprocess` of the input bit for bit (the resize rounds to
    8-bit levels either way), so a dataset can keep frames at the model's size instead of resizing every
    window again, in a quarter of the memory when 224 px crops feed a 112 px model."""
    pixels = torch.from_numpy(np.asarray(frames))
    if pixels.dtype != torch.uint8 or pixels.dim() != 4 or pixels.shape[-1] != 3:
        raise ValueError(f"expected uint8 RGB frames (T, H, W, 3), got {pixels.dtype} {tuple(pixels.shape)}")
    if tuple(pixels.shape[1:3]) == resized_shape(pixels.shape[1], pixels.shape[2], size) or len(pixels) == 0:
        return np.asarray(frames)
    resized = _shorter_side_to(pixels.permute(0, 3, 1, 2), size)
    return resized.to(torch.uint8).permute(0, 2, 3, 1).contiguous().numpy()


def clip_preprocess(
    frames: np.ndarray | torch.Tensor,
    size: int = CLIP_SIZE,
    mean: tuple[float, float, float] = CLIP_MEAN,
    std: tuple[float, float, float] = CLIP_STD,
    device: str | torch.device | None = None,
) -> torch.Tensor:
    """uint8 RGB (T, H, W, 3) -> float32 (T, 3, size, size); a single (H, W, 3) image -> (3, size, size)."""
    pixels = frames if isinstance(frames, torch.Tensor) else torch.from_numpy(np.asarray(frames))
    if pixels.dtype != torch.uint8 or pixels.dim() not in (3, 4) or pixels.shape[-1] != 3:
        raise ValueError(
            f"expected uint8 RGB frames (T, H, W, 3) or (H, W, 3), got {pixels.dtype} {tuple(pixels.shape)}"
        )
    single = pixels.dim() == 3
    batch = pixels.unsqueeze(0) if single else pixels
    resized = _shorter_side_to(batch.to(device).permute(0, 3, 1, 2), size)
    top, left = (resized.shape[-2] - size) // 2, (resized.shape[-1] - size) // 2
    cropped = resized[..., top : top + size, left : left + size]
    mean_t = torch.tensor(mean, device=cropped.device).view(1, 3, 1, 1) * 255.0
    std_t = torch.tensor(std, device=cropped.device).view(1, 3, 1, 1) * 255.0
    normalised = (cropped - mean_t) / std_t
    return normalised[0] if single else normalised


def _shorter_side_to(batch: torch.Tensor, size: int) -> torch.Tensor:
    """uint8 (N, 3, H, W) -> float (N, 3, h, w) with the shorter side `size`, values on 8-bit levels."""
    height, width = batch.shape[-2:]
    target = resized_shape(height, width, size)
    if (height, width) == target:
        return batch.float()
    return torch.cat([_resize(chunk, target) for chunk in batch.split(_RESIZE_CHUNK)])


def _resize(chunk: torch.Tensor, target: tuple[int, int]) -> torch.Tensor:
    """Antialiased bicubic resize of uint8 (N, 3, H, W) in PIL's order: the width pass, rounded and clipped
    to 8-bit levels, then the height pass, rounded and clipped again."""
    widened = _resize_pass(chunk.float(), (chunk.shape[-2], target[1]))
    return _resize_pass(widened, target)


def _resize_pass(pixels: torch.Tensor, target: tuple[int, int]) -> torch.Tensor:
    if tuple(pixels.shape[-2:]) == target:
        return pixels
    resized = F.interpolate(pixels, size=target, mode="bicubic", antialias=True, align_corners=False)
    return resized.round_().clamp_(0.0, 255.0)
