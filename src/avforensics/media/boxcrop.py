"""Crop boxes out of an image and resample them to a fixed square size, in one vectorised call per scale.

Both the MTCNN cascade (hundreds of candidate boxes per image, 24 or 48 px) and the face cropper (one
box per frame, 224 px) need the same operation: cut an arbitrary, possibly sub-pixel box that may reach
outside the image, fill the outside with black, and resize it. `grid_sample` does the cut and the resize
at once. To shrink large boxes without aliasing at a cost that does not grow with the box, each box is
sampled from a mip level (the image halved `level` times by 2x2 averaging) where it is at most twice the
output size, on a 2x finer grid that is then averaged.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

_SUPERSAMPLE = 2


def crop_resize(image: torch.Tensor, boxes: torch.Tensor, size: int) -> torch.Tensor:
    """Resample `boxes` (n, 4) xyxy of `image` (C, H, W) float to (n, C, size, size).

    Coordinates are continuous pixel edges: pixel i spans [i, i + 1). Outside the image is zero.
    """
    channels = image.shape[0]
    boxes = boxes.to(image.dtype)
    crops = image.new_zeros((boxes.shape[0], channels, size, size))
    if boxes.shape[0] == 0:
        return crops
    longest = (boxes[:, 2:] - boxes[:, :2]).max(dim=1).values
    levels = torch.log2((longest / size).clamp(min=1.0)).floor().long()
    level_image = image[None]
    for level in range(int(levels.max()) + 1):
        if level:
            level_image = F.avg_pool2d(level_image, 2, ceil_mode=True)
        members = (levels == level).nonzero(as_tuple=True)[0]
        if len(members):
            crops[members] = _sample(level_image, boxes[members] / 2**level, size)
    return crops


def _sample(image: torch.Tensor, boxes: torch.Tensor, size: int) -> torch.Tensor:
    """Bilinear samples on a `_SUPERSAMPLE`x finer grid inside each box, averaged down to size x size."""
    count = boxes.shape[0]
    _, channels, height, width = image.shape
    samples = size * _SUPERSAMPLE
    steps = (torch.arange(samples, dtype=image.dtype, device=image.device) + 0.5) / samples
    xs = boxes[:, 0:1] + steps[None] * (boxes[:, 2:3] - boxes[:, 0:1])  # (n, samples) pixel coordinates
    ys = boxes[:, 1:2] + steps[None] * (boxes[:, 3:4] - boxes[:, 1:2])
    grid_x = (xs / width * 2 - 1)[:, None, :].expand(count, samples, samples)
    grid_y = (ys / height * 2 - 1)[:, :, None].expand(count, samples, samples)
    # All boxes are stacked along the grid's height so the image is never copied per box.
    grid = torch.stack([grid_x, grid_y], dim=-1).reshape(1, count * samples, samples, 2)
    # "border" keeps samples within half a pixel of the edge from blending with black; samples truly
    # outside the image are blacked out explicitly below.
    sampled = F.grid_sample(image, grid, mode="bilinear", padding_mode="border", align_corners=False)
    crops = sampled.reshape(channels, count, samples, samples).permute(1, 0, 2, 3)
    inside_x = ((xs >= 0) & (xs < width)).to(image.dtype)
    inside_y = ((ys >= 0) & (ys < height)).to(image.dtype)
    crops = crops * (inside_y[:, None, :, None] * inside_x[:, None, None, :])
    return F.avg_pool2d(crops, _SUPERSAMPLE)
