"""Crop boxes out of an image and resample them to a fixed square size, in one vectorised call.

Both the MTCNN cascade (hundreds of candidate boxes per image, 24 or 48 px) and the face cropper (one
box per frame, 224 px) need the same operation: cut an arbitrary, possibly sub-pixel box that may reach
outside the image, fill the outside with black, and resize it. `grid_sample` does the cut and the resize
at once; sampling a finer grid and average-pooling it keeps large boxes from aliasing when they shrink.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

_MAX_SUPERSAMPLE = 4  # beyond 4x4 samples per output pixel the extra anti-aliasing is invisible


def crop_resize(image: torch.Tensor, boxes: torch.Tensor, size: int) -> torch.Tensor:
    """Resample `boxes` (n, 4) xyxy pixel edges of `image` (C, H, W) float to (n, C, size, size).

    Coordinates are continuous: pixel i spans [i, i + 1). Outside the image is zero (black for 0-255 data).
    """
    count = boxes.shape[0]
    channels, height, width = image.shape
    if count == 0:
        return image.new_zeros((0, channels, size, size))
    boxes = boxes.to(image.dtype)
    longest = float((boxes[:, 2:] - boxes[:, :2]).max())
    factor = max(1, min(_MAX_SUPERSAMPLE, math.ceil(longest / size)))
    samples = size * factor
    steps = (torch.arange(samples, dtype=image.dtype, device=image.device) + 0.5) / samples
    xs = boxes[:, 0:1] + steps[None] * (boxes[:, 2:3] - boxes[:, 0:1])  # (n, samples) pixel coordinates
    ys = boxes[:, 1:2] + steps[None] * (boxes[:, 3:4] - boxes[:, 1:2])
    grid_x = (xs / width * 2 - 1)[:, None, :].expand(count, samples, samples)
    grid_y = (ys / height * 2 - 1)[:, :, None].expand(count, samples, samples)
    # All boxes of one image are stacked along the grid's height so the image is never copied per box.
    grid = torch.stack([grid_x, grid_y], dim=-1).reshape(1, count * samples, samples, 2)
    sampled = F.grid_sample(image[None], grid, mode="bilinear", padding_mode="zeros", align_corners=False)
    crops = sampled.reshape(channels, count, samples, samples).permute(1, 0, 2, 3)
    return F.avg_pool2d(crops, factor) if factor > 1 else crops.contiguous()
